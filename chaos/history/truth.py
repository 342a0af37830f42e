"""Ground truth for one run: true prices, true funding, and accounts replayed at them.

``RunTruth`` is ``chaos.world.PricePath`` for the run's seed and epoch plus the price moves
recorded as world events (``faults.jsonl``, ``phase: world``, ``action: price_move``). It
never reads what a service computed.

``Ledger`` replays the event log into accounts: deposits add collateral; fills move
positions (average entry price, realised P&L on the part that reduces a position); funding
is booked continuously at the TRUE funding index: whenever a position changes, the funding
owed on the old size since the last change is moved into collateral, so at any time
``equity = collateral + sum(size * (p - entry) - size * (F_true(t) - F_mark))``. The
stack's ``funding_settle`` amounts are therefore not needed (and not trusted): they only move
funding the truth has already booked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chaos.world import (
    FUNDING_INTERVAL_S,
    MARKETS,
    STEP_S,
    MarketSpec,
    PriceMove,
    PricePath,
    equity,
)

if TYPE_CHECKING:
    from chaos.history.events import FaultRecord, RunInfo


def price_moves(faults: Iterable[FaultRecord]) -> list[PriceMove]:
    """The world's price moves recorded in ``faults.jsonl``, in recorded order."""
    moves = []
    for fault in faults:
        if fault.phase == "world" and fault.action == "price_move":
            p = fault.params
            moves.append(
                PriceMove(
                    market=str(p.get("market", "*")),
                    start=float(p["start"]),
                    duration=float(p.get("duration", 0.0)),
                    pct=float(p["pct"]),
                )
            )
    return moves


class RunTruth:
    """True price and funding index of every market at any wall-clock time of one run."""

    def __init__(
        self,
        seed: int,
        epoch: float,
        moves: Iterable[PriceMove] = (),
        markets: Sequence[MarketSpec] = MARKETS,
    ) -> None:
        self.path = PricePath(seed=seed, epoch=epoch, moves=list(moves), markets=markets)
        self.markets = frozenset(spec.name for spec in self.path.markets)

    @classmethod
    def of_run(cls, run: RunInfo, faults: Iterable[FaultRecord]) -> RunTruth:
        """The truth of a recorded run (``History.truth()``): its seed, epoch, the price
        moves among its faults and (when run.json records them) its markets' parameters,
        not today's defaults."""
        recorded = run.market_specs
        markets = tuple(MarketSpec(**spec) for spec in recorded) if recorded else MARKETS
        return cls(run.seed, run.epoch, price_moves(faults), markets)

    def price(self, market: str, t: float) -> float:
        return self.path.price(market, t)

    def funding_index(self, market: str, t: float) -> float:
        return self.path.funding_index(market, t)

    def max_funding_rate(self, market: str) -> float:
        return self.path.spec(market).max_funding_rate

    def funding_intervals_between(self, t0: float, t1: float) -> int:
        """Whole funding intervals that accrued between ``t0`` and ``t1`` (>= 0)."""
        return abs(self.path.funding_interval(t1) - self.path.funding_interval(t0))

    def instants(self, t0: float, t1: float) -> list[float]:
        """Instants that bound every price/funding segment of [t0, t1]: both ends, each
        random-walk knot, each funding boundary (and just before it), each move's ends.

        Between consecutive instants a single market's price is monotone and the funding
        index is constant, so a margin that is linear in the price takes its extremes here.
        """
        out = {t0, t1}
        epoch = self.path.epoch
        k = math.ceil((t0 - epoch) / STEP_S)
        while epoch + k * STEP_S < t1:
            out.add(epoch + k * STEP_S)
            k += 1
        k = math.ceil((t0 - epoch) / FUNDING_INTERVAL_S)
        while epoch + k * FUNDING_INTERVAL_S <= t1:
            boundary = epoch + k * FUNDING_INTERVAL_S
            out.add(boundary)
            out.add(max(t0, boundary - 1e-6))
            k += 1
        for move in self.path.moves:
            for edge in (move.start, move.start + move.duration):
                if t0 < edge < t1:
                    out.add(edge)
        return sorted(out)


@dataclass
class Position:
    """One account's position in one market under truth."""

    size: float = 0.0
    entry_price: float = 0.0
    funding_mark: float = 0.0  # true funding index up to which funding is in collateral


@dataclass
class Account:
    collateral: float = 0.0
    positions: dict[str, Position] = field(default_factory=dict)

    def copy(self) -> Account:
        return Account(
            self.collateral,
            {m: Position(p.size, p.entry_price, p.funding_mark) for m, p in self.positions.items()},
        )


@dataclass(frozen=True)
class Margin:
    """An account's equity and maintenance requirement at one instant under truth."""

    t: float
    equity: float
    maintenance: float


class Ledger:
    """Accounts replayed from the event log at true prices and true funding."""

    def __init__(self, truth: RunTruth) -> None:
        self.truth = truth
        self.accounts: dict[int, Account] = {}

    def account(self, account_id: int) -> Account:
        acct = self.accounts.get(account_id)
        if acct is None:
            acct = self.accounts[account_id] = Account()
        return acct

    def deposit(self, account_id: int, amount: float) -> None:
        self.account(account_id).collateral += amount

    def trade(
        self, account_id: int, market: str, signed_qty: float, price: float, t: float
    ) -> None:
        """Apply a fill of ``signed_qty`` (+ buys, - sells) at ``price`` at time ``t``."""
        acct = self.account(account_id)
        pos = acct.positions.get(market)
        f_now = self.truth.funding_index(market, t)
        if pos is None:
            pos = acct.positions[market] = Position(funding_mark=f_now)
        acct.collateral -= pos.size * (f_now - pos.funding_mark)
        pos.funding_mark = f_now
        size = pos.size
        if size == 0.0 or (size > 0) == (signed_qty > 0):
            new_size = size + signed_qty
            pos.entry_price = (size * pos.entry_price + signed_qty * price) / new_size
            pos.size = new_size
            return
        closed = min(abs(signed_qty), abs(size))
        acct.collateral += closed * (price - pos.entry_price) * (1.0 if size > 0 else -1.0)
        new_size = size + signed_qty
        if abs(new_size) < 1e-12:
            pos.size, pos.entry_price = 0.0, 0.0
        elif (new_size > 0) != (size > 0):  # flipped: the remainder opens at this price
            pos.size, pos.entry_price = new_size, price
        else:
            pos.size = new_size

    def margin(self, acct: Account, t: float) -> Margin:
        """Equity and maintenance of ``acct`` at true prices and funding at ``t``."""
        rows = [
            (
                p.size,
                p.entry_price,
                p.funding_mark,
                self.truth.price(m, t),
                self.truth.funding_index(m, t),
            )
            for m, p in acct.positions.items()
            if p.size != 0.0
        ]
        ratios = [
            self.truth.path.spec(m).maintenance_margin
            for m, p in acct.positions.items()
            if p.size != 0.0
        ]
        eq, maintenance = equity(acct.collateral, rows, ratios)
        return Margin(t, eq, maintenance)
