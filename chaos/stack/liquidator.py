"""Liquidations of the exchange engine: the risk engine's requests, IOC against the book
within ``LIQUIDATION_SLIPPAGE`` of the mark, the rest taken by the insurance fund at the mark.

A mixin of ``chaos.stack.engine.Engine``.
"""

from __future__ import annotations

import math
from typing import Any

from chaos.stack.book import EPS
from chaos.stack.changes import BadRequest, Changes, NotServing
from chaos.stack.matching import Matching
from chaos.world import equity

INSURANCE_FUND = 0
# A liquidation takes book liquidity within 5% of the mark (towards the bankruptcy price, as
# venues do on thin books); the insurance fund takes what is left at the mark. On a book
# that holds quotes far from the fair price, this is how liquidations fill off-market.
LIQUIDATION_SLIPPAGE = 0.05


class Liquidations(Matching):
    """The liquidation half of the engine."""

    def liquidate(self, req: dict[str, Any], changes: Changes, now: float) -> dict[str, Any]:
        try:
            account = int(req["account"])
            market = str(req["market"])
            qty = float(req["qty"])
            mark = float(req["mark_price"])
        except (KeyError, TypeError, ValueError) as err:
            raise BadRequest(f"liquidation needs account, market, qty, mark_price: {err}") from err
        if market not in self.books:
            raise BadRequest(f"unknown market {market!r}")
        if self.mode == "halt":
            raise NotServing("trading is halted")
        rejected: dict[str, Any] = {
            "status": "rejected",
            "order_id": None,
            "seq": None,
            "fills": [],
        }
        if account == INSURANCE_FUND:
            return {**rejected, "reason": "the insurance fund is not liquidated"}
        block = self.price_block(market, now)
        oracle_ts = req.get("oracle_ts")
        if (
            block is None
            and "staleness_guard" in self.mitigations
            and (not isinstance(oracle_ts, (int, float)) or now - oracle_ts > self.stale_after_s)
        ):
            block = "liquidation price is stale"
        if block is not None:
            return {**rejected, "reason": block}
        if not (math.isfinite(mark) and mark > 0):
            return {**rejected, "reason": "invalid mark price"}
        pos = self.positions.get((account, market))
        if pos is None or pos.size == 0.0:
            return {**rejected, "reason": "no position"}
        if not self._below_maintenance(account, market, req):
            # risk decided from an older snapshot (another leg of the same decision already
            # closed, or the account traded since): nothing to liquidate any more
            return {**rejected, "reason": "the account is no longer below maintenance"}
        qty = min(abs(qty), abs(pos.size)) if qty > 0 else abs(pos.size)
        side = "sell" if pos.size > 0 else "buy"
        seq = self._emit(
            changes,
            now,
            "liquidation",
            {
                "account": account,
                "market": market,
                "qty": qty,
                "mark_price": mark,
                "oracle_ts": oracle_ts,
                "funding_index": req.get("funding_index"),
                "equity": req.get("equity"),
                "maintenance": req.get("maintenance"),
            },
        )
        limit = mark * (1 - LIQUIDATION_SLIPPAGE if side == "sell" else 1 + LIQUIDATION_SLIPPAGE)
        fills, remaining = self._take(
            changes, now, market, side, account, None, limit, qty, liquidation=True
        )
        if remaining > EPS:
            fills.append(
                self._fill(
                    changes,
                    now,
                    market,
                    side,
                    account,
                    None,
                    INSURANCE_FUND,
                    None,
                    mark,
                    remaining,
                    liquidation=True,
                )
            )
        return {"status": "accepted", "order_id": None, "seq": seq, "fills": fills}

    def _below_maintenance(self, account: int, market: str, req: dict[str, Any]) -> bool:
        """Whether ``account`` is below maintenance now, on the engine's own positions and
        collateral, with the mark and funding risk sent for ``market`` and the engine's
        oracle prices for the others. True when a price is missing (risk's call stands)."""
        rows = []
        for (acct, mkt), pos in self.positions.items():
            if acct != account or pos.size == 0.0:
                continue
            if mkt == market:
                mark = float(req["mark_price"])
                sent = req.get("funding_index")
                funding = float(sent) if isinstance(sent, int | float) else self._funding(mkt)
            elif mkt in self.prices:
                mark, funding = self.prices[mkt].mark_price, self.prices[mkt].funding_index
            else:
                return True
            rows.append((pos.size, pos.entry_price, pos.entry_funding_index, mark, funding))
        value, maintenance = equity(self.collateral.get(account, 0.0), rows)
        return value < maintenance
