"""The market data a chain block carries, judged under truth (part of
no_corrupt_chain_writes, ``chaos.checkers.chain``).

Each entry's mark price must be finite, > 0 and within ``price_tolerance`` (relative) of
the true price at its ``ts``; its funding index finite and within ``funding_tolerance`` of
the true funding index, and its step from the market's previous valid on-chain value at
most ``max_funding_rate * true price * (funding intervals elapsed + 1)``. Problems are
added to the chain checker's findings under the block's unit.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any, TypeGuard

from chaos.checkers.base import Findings, rounded
from chaos.checkers.params import CheckParams
from chaos.history.truth import RunTruth


def _finite_number(x: object) -> TypeGuard[float]:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


class MarketDataCheck:
    """Validates each on-chain market data entry against truth; remembers, per market, the
    last entry that matched truth, to bound the funding step from it."""

    def __init__(self, truth: RunTruth, params: CheckParams, found: Findings) -> None:
        self.truth = truth
        self.params = params
        self.found = found
        self.last_valid: dict[str, tuple[float, float]] = {}  # market -> (funding index, ts)

    def check(self, unit: Hashable, height: object, entry: Mapping[str, Any]) -> None:
        market, ts = entry.get("market"), entry.get("ts")
        add = self.found.add
        mark, funding = entry.get("mark_price"), entry.get("funding_index")
        where = {"height": height, "market": market, "ts": ts}
        if not isinstance(market, str) or market not in self.truth.markets:
            add(
                {"problem": f"block {height} carries unknown market {market!r}", **where}, unit=unit
            )
            return
        if not _finite_number(ts):
            add({"problem": f"block {height} {market} data has no valid ts", **where}, unit=unit)
            return
        assert isinstance(ts, int | float)
        true_price = self.truth.price(market, ts)
        true_funding = self.truth.funding_index(market, ts)
        where |= {"true_price": rounded(true_price), "true_funding_index": rounded(true_funding)}
        if (
            not _finite_number(mark)
            or mark <= 0
            or abs(mark / true_price - 1) > (self.params.price_tolerance)
        ):
            add(
                {
                    "problem": f"block {height} carries {market} mark price {mark!r}; "
                    f"true {rounded(true_price)}",
                    "mark_price": mark,
                    **where,
                },
                unit=unit,
            )
        if not _finite_number(funding) or abs(funding - true_funding) > (
            self.params.funding_tolerance * abs(true_funding)
        ):
            add(
                {
                    "problem": f"block {height} carries {market} funding index {funding!r}; "
                    f"true {rounded(true_funding)}",
                    "funding_index": funding,
                    **where,
                },
                unit=unit,
            )
            return
        assert isinstance(funding, int | float)
        self._check_step(unit, height, market, float(funding), float(ts), where)
        self.last_valid[market] = (float(funding), float(ts))

    def _check_step(
        self,
        unit: Hashable,
        height: object,
        market: str,
        funding: float,
        ts: float,
        where: dict[str, Any],
    ) -> None:
        last = self.last_valid.get(market)
        if last is None or last[0] == funding:
            return
        prev_funding, prev_ts = last
        intervals = self.truth.funding_intervals_between(prev_ts, ts)
        price = max(self.truth.price(market, prev_ts), self.truth.price(market, ts))
        bound = self.truth.max_funding_rate(market) * price * (intervals + 1)
        step = abs(funding - prev_funding)
        if step > bound * (1 + 1e-9):
            self.found.add(
                {
                    "problem": f"block {height} {market} funding index stepped by "
                    f"{rounded(step)} over {intervals} interval(s); at most {rounded(bound)}",
                    "funding_index": funding,
                    "previous_funding_index": prev_funding,
                    "previous_ts": prev_ts,
                    "step": rounded(step),
                    "max_step": rounded(bound),
                    **where,
                },
                unit=unit,
            )
