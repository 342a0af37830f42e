"""Harmful executions, and every account as it would be without them (causal harm).

Three kinds of event harm an account by themselves (docs/checkers.md, "Causal harm"):
- an **off-market fill** (``off_market``): a fill priced outside the true price range of
  [t - price_lag_s, t] widened by ``CheckParams.off_market_tolerance_bps``;
- a **duplicate execution**: a fill of an order that was not open (filled beyond its
  quantity, after its cancel, never accepted) or of an order accepted again for an intent
  already accepted (``chaos.checkers.orders``);
- an **unintended liquidation** (``chaos.checkers.liquidations``), and its fills.
A liquidation that is intended under the true state, but would not have happened without
earlier harm to the account, is a fourth: a **consequential liquidation**.

``FairWorld`` is the counterfactual replay: the accounts as they would be had the harm not
happened. It holds only the accounts that diverged from the actual replay (an account
nothing harmful touched is, in the fair world, exactly as in the actual one), so a
history without harm costs nothing. In the fair world an off-market fill stands at the
true price (the trade was wanted, its price was the harm), and a duplicate execution or a
harmful liquidation with its fills does not happen. Each diverged account keeps the harm
events that made it diverge: its ``causes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chaos.checkers.params import CheckParams
from chaos.history.events import FillEvent
from chaos.history.truth import Account, Ledger, RunTruth

OFF_MARKET = "off_market_fill"
DUPLICATE = "duplicate_execution"
UNINTENDED = "unintended_liquidation"
CONSEQUENTIAL = "consequential_liquidation"
MAX_CAUSES = 10  # kept per account; more are counted

Cause = dict[str, object]


@dataclass(frozen=True)
class OffMarket:
    """How far one fill was from the market: ``ratio`` = price / true price at its time;
    the fair range is [``low``, ``high``] (the true range of the lag window, widened by
    the tolerance)."""

    price: float
    true_price: float
    low: float
    high: float
    tolerance_bps: float

    @property
    def ratio(self) -> float:
        return self.price / self.true_price

    @property
    def off_bps(self) -> float:
        """Signed distance from the true price at the fill's time, in bps."""
        return (self.ratio - 1.0) * 10_000.0

    @property
    def severity(self) -> float:
        """|ln ratio|: 10x and 1/10x are equally bad."""
        return abs(math.log(self.ratio)) if self.ratio > 0 else math.inf


def true_range(truth: RunTruth, market: str, t0: float, t1: float) -> tuple[float, float]:
    """The lowest and highest true price of ``market`` over [t0, t1] (exact: the price is
    monotone between ``RunTruth.instants``)."""
    prices = [truth.price(market, s) for s in truth.instants(t0, t1)]
    return min(prices), max(prices)


def off_market(truth: RunTruth, fill: FillEvent, params: CheckParams) -> OffMarket | None:
    """The fill's distance from the market when it is off-market, else None.

    Off-market: the price is outside [low x (1 - tol), high x (1 + tol)], where [low, high]
    is the true price range over [t - price_lag_s, t] and tol the off-market tolerance (a
    quote made at any instant of the lag window at the then-true price, plus the band and
    the venues' noise, is fair). A price that is not a finite number > 0 is off-market.
    """
    t, market, price = fill["time"], fill["market"], fill["price"]
    tol = params.off_market_tolerance_bps / 10_000.0
    now = truth.price(market, t)
    finite = isinstance(price, int | float) and math.isfinite(price) and price > 0
    if finite and now * (1 - tol) <= price <= now * (1 + tol):
        return None  # the fast path: within the tolerance of the price at t itself
    low, high = true_range(truth, market, t - params.price_lag_s, t)
    if finite and low * (1 - tol) <= price <= high * (1 + tol):
        return None
    shown = float(price) if finite else math.nan
    return OffMarket(shown, now, low * (1 - tol), high * (1 + tol), tol * 10_000.0)


class FairWorld:
    """The accounts without the harm: a second ledger for the accounts that diverged.

    Contract: ``fork(account, state)`` is called with the account's actual state just
    before the first harmful event touching it; from then on every event of the account
    must be applied here too (``trade``), harmful ones skipped or repriced by the caller.
    """

    def __init__(self, truth: RunTruth, follow: frozenset[int] | None = None) -> None:
        """``follow``: the only accounts that may diverge (None: every account)."""
        self.ledger = Ledger(truth)
        self.follow = follow
        self.causes: dict[int, list[Cause]] = {}
        self.cause_counts: dict[int, int] = {}

    def follows(self, *accounts: int) -> bool:
        """True when one of ``accounts`` may diverge (their harm matters)."""
        return self.follow is None or any(a in self.follow for a in accounts)

    def diverged(self, account: int) -> bool:
        return account in self.ledger.accounts

    def state(self, account: int) -> Account | None:
        """The account's fair state, or None when it never diverged (fair = actual)."""
        return self.ledger.accounts.get(account)

    def fork(self, account: int, actual: Account) -> None:
        """Start following ``account`` from ``actual`` (copied), if not already (and if it
        is one of the accounts followed)."""
        if account not in self.ledger.accounts and (self.follow is None or account in self.follow):
            self.ledger.accounts[account] = actual.copy()

    def note(self, account: int, cause: Cause) -> None:
        """Remember ``cause`` as one of the harm events that made ``account`` diverge (the
        same cause noted twice in a row, as by a liquidation and its fills, counts once)."""
        if account not in self.ledger.accounts:
            return  # not followed
        kept = self.causes.get(account)
        if kept and kept[-1] is cause:
            return
        self.cause_counts[account] = self.cause_counts.get(account, 0) + 1
        kept = self.causes.setdefault(account, [])
        if len(kept) < MAX_CAUSES:
            kept.append(cause)

    def trade(self, fill: FillEvent, price: float | None = None) -> None:
        """Apply ``fill`` to whichever of its accounts diverged (at ``price`` if given)."""
        signed = fill["qty"] if fill.get("taker_side") == "buy" else -fill["qty"]
        at = fill["price"] if price is None else price
        t, market = fill["time"], fill["market"]
        if fill["taker_account"] in self.ledger.accounts:
            self.ledger.trade(fill["taker_account"], market, signed, at, t)
        if fill["maker_account"] in self.ledger.accounts:
            self.ledger.trade(fill["maker_account"], market, -signed, at, t)

    def deposit(self, account: int, amount: float) -> None:
        if account in self.ledger.accounts:
            self.ledger.deposit(account, amount)
