"""Accounts: cash and positions, and the margin of an account at given marks (pure).

Cash moves by credits and by realised P&L: a trade that reduces a position realises
``closed * (px - entry) * sign(position)``; a position that grows takes the size-weighted
average entry price; a flip opens the remainder at the trade price. Equity is
``cash + sum(size * (mark - entry))`` and the maintenance requirement
``maint_margin * sum(|size| * mark)``. There is no funding.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass
class Position:
    size: Decimal = Decimal(0)  # + long, - short
    entry: float = 0.0


@dataclass
class Ledger:
    cash: dict[int, float] = field(default_factory=dict)
    positions: dict[int, dict[str, Position]] = field(default_factory=dict)

    def credit(self, acct: int, amount: float) -> None:
        self.cash[acct] = self.cash.get(acct, 0.0) + amount

    def trade(self, acct: int, sym: str, signed: Decimal, px: float) -> None:
        """Apply a trade of ``signed`` (+ bought, - sold) at ``px``."""
        pos = self.positions.setdefault(acct, {}).setdefault(sym, Position())
        old, new = pos.size, pos.size + signed
        if old == 0 or (old > 0) == (signed > 0):
            pos.entry = (float(abs(old)) * pos.entry + float(abs(signed)) * px) / float(abs(new))
        else:
            closed = float(min(abs(signed), abs(old)))
            self.credit(acct, closed * (px - pos.entry) * (1.0 if old > 0 else -1.0))
            if new == 0:
                pos.entry = 0.0
            elif (new > 0) != (old > 0):
                pos.entry = px
        pos.size = new
        if new == 0:
            del self.positions[acct][sym]

    def open_positions(self, acct: int) -> dict[str, Position]:
        return self.positions.get(acct, {})

    def accounts(self) -> Iterator[int]:
        """The accounts holding a position."""
        return (acct for acct, held in self.positions.items() if held)

    def margin(
        self, acct: int, marks: Mapping[str, float], maint_margin: float
    ) -> tuple[float, float] | None:
        """(equity, maintenance) at ``marks``; None when a held symbol has no mark."""
        equity, maintenance = self.cash.get(acct, 0.0), 0.0
        for sym, pos in self.open_positions(acct).items():
            mark = marks.get(sym)
            if mark is None:
                return None
            size = float(pos.size)
            equity += size * (mark - pos.entry)
            maintenance += maint_margin * abs(size) * mark
        return equity, maintenance
