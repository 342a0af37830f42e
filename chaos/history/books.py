"""Accounts as the stack booked them, and as it should have booked them (pure).

Both replay the same fills (positions, average entry price, realised P&L at the fill price,
exactly as the reference engine does it: docs/history.md "Replaying accounts"); they differ
only in funding. Funding is settled into collateral whenever a position changes, on the
size held since its last change:

- ``book``: at the funding index the stack used for the fill (the fill's
  ``funding_index``), i.e. what the stack's own ledger holds;
- ``fair``: at the TRUE funding index at the instant of the price the stack used (the
  fill's ``oracle_ts``; its time when absent), i.e. the same accounting with the truth
  in place of the stack's number. A correct oracle makes the two equal up to its noise;
  a zeroed funding index makes them differ by the false funding booked.

``equity(account, t)`` values either collateral with the open positions at true prices and
their unsettled funding at the true funding index. The stack's ``funding_settle`` events
are not read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from chaos.history.events import FillEvent
from chaos.history.truth import RunTruth

EPS = 1e-9  # quantities closer than this are equal (as the engines that write the log count them)
Basis = Literal["book", "fair"]


@dataclass
class BookPosition:
    size: float = 0.0
    entry_price: float = 0.0
    f_used: float = 0.0  # funding index the stack settled this position up to
    f_fair: float = 0.0  # the true index at the oracle time of that settlement


@dataclass
class BookAccount:
    book: float = 0.0
    fair: float = 0.0
    positions: dict[str, BookPosition] = field(default_factory=dict)
    funding_moved: float = 0.0  # sum of |fair funding settled|: the scale of funding noise

    def copy(self) -> BookAccount:
        return BookAccount(
            self.book,
            self.fair,
            {
                m: BookPosition(p.size, p.entry_price, p.f_used, p.f_fair)
                for m, p in self.positions.items()
            },
            self.funding_moved,
        )


class Books:
    """Every account's ``book`` and ``fair`` collateral and its positions (see the module)."""

    def __init__(self, truth: RunTruth) -> None:
        self.truth = truth
        self.accounts: dict[int, BookAccount] = {}

    def account(self, account_id: int) -> BookAccount:
        acct = self.accounts.get(account_id)
        if acct is None:
            acct = self.accounts[account_id] = BookAccount()
        return acct

    def deposit(self, account_id: int, amount: float) -> None:
        acct = self.account(account_id)
        acct.book += amount
        acct.fair += amount

    def fill(self, event: FillEvent) -> None:
        """Both sides of a fill (taker first, as the engine books them)."""
        market = event["market"]
        oracle_ts = event.get("oracle_ts")
        at = float(oracle_ts) if isinstance(oracle_ts, int | float) else float(event["time"])
        f_fair = self.truth.funding_index(market, at) if market in self.truth.markets else 0.0
        used = event.get("funding_index")
        f_used = float(used) if isinstance(used, int | float) else f_fair
        qty = float(event["qty"])
        signed = qty if event.get("taker_side") == "buy" else -qty
        price = float(event["price"])
        self.trade(int(event["taker_account"]), market, signed, price, f_used, f_fair)
        self.trade(int(event["maker_account"]), market, -signed, price, f_used, f_fair)

    def trade(
        self,
        account_id: int,
        market: str,
        signed_qty: float,
        price: float,
        f_used: float,
        f_fair: float,
    ) -> None:
        acct = self.account(account_id)
        pos = acct.positions.get(market)
        if pos is None:
            pos = acct.positions[market] = BookPosition(f_used=f_used, f_fair=f_fair)
        if pos.size != 0.0:
            acct.book -= pos.size * (f_used - pos.f_used)
            acct.fair -= pos.size * (f_fair - pos.f_fair)
            acct.funding_moved += abs(pos.size * (f_fair - pos.f_fair))
        pos.f_used, pos.f_fair = f_used, f_fair
        old = pos.size
        new = old + signed_qty
        if abs(new) < EPS:
            new = 0.0
        if new == 0.0 and old == 0.0:
            return
        if old == 0.0 or old * signed_qty > 0:
            pos.entry_price = (abs(old) * pos.entry_price + abs(signed_qty) * price) / abs(new)
        else:
            closed = min(abs(signed_qty), abs(old))
            pnl = closed * (price - pos.entry_price) * (1.0 if old > 0 else -1.0)
            acct.book += pnl
            acct.fair += pnl
            if new == 0.0:
                pos.entry_price = 0.0
            elif old * new < 0:
                pos.entry_price = price
        pos.size = new

    def equity(self, acct: BookAccount, t: float, basis: Basis) -> float:
        """``basis`` collateral plus every open position at the true price at ``t`` minus its
        funding since ``f_fair`` at the true funding index at ``t``."""
        value = acct.book if basis == "book" else acct.fair
        for market, pos in acct.positions.items():
            if pos.size == 0.0 or market not in self.truth.markets:
                continue
            value += pos.size * (self.truth.price(market, t) - pos.entry_price)
            value -= pos.size * (self.truth.funding_index(market, t) - pos.f_fair)
        return value
