"""Ground truth of the simulated markets: a pure function of (seed, epoch, recorded moves).

The feeds serve this price (plus per-venue noise and injected data faults); the checkers
recompute it from the run's seed, epoch and the price moves recorded in the history. No
service's output is ever needed to know the truth.

Model
- Time ``t`` is wall-clock seconds (``time.time()``); ``epoch`` is the run's price origin.
  Before ``epoch`` the price is the market's ``initial_price``.
- Log-price is a seeded random walk sampled every ``STEP_S`` seconds and linearly
  interpolated in between. Each step's shock is derived by hashing (seed, market, step), so
  any instant is computable without state; a cache keeps the cumulative sum.
- A ``PriceMove`` multiplies the price by ``1 + pct/100`` ramped linearly over its duration
  (the world moving, e.g. 12% while a venue is halted). Moves compose multiplicatively.
- Funding accrues every ``FUNDING_INTERVAL_S`` seconds: interval k (ending at
  ``epoch + k * FUNDING_INTERVAL_S``) adds ``funding_rate(k) * price(t_k)`` to the market's
  funding index, which starts at ``initial_funding_index``. ``|funding_rate| <= max_rate``.
- An account's unrealised funding on a position of ``size`` entered at index ``F0`` is
  ``-size * (F_now - F0)``; longs pay positive funding.
"""

from __future__ import annotations

import hashlib
import math
import struct
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

STEP_S = 0.1
FUNDING_INTERVAL_S = 1.0


@dataclass(frozen=True)
class MarketSpec:
    """Static parameters of one perpetual market."""

    name: str
    initial_price: float
    volatility: float  # standard deviation of log-price per sqrt(second)
    initial_funding_index: float
    max_funding_rate: float  # per funding interval, as a fraction of price
    tick: float
    maintenance_margin: float = 0.02  # equity below this x notional may be liquidated


# A perpetual's funding index is the funding paid per contract since the market opened; after
# years of funding it is a large fraction of the price (here half of it), so a reset to 0
# books shorts a loss of half their notional.
MARKETS: tuple[MarketSpec, ...] = (
    MarketSpec("BTC-PERP", 60_000.0, 0.002, 30_000.0, 0.0002, 0.5),
    MarketSpec("ETH-PERP", 3_000.0, 0.0025, 1_500.0, 0.0002, 0.01),
)
MARKET_NAMES: tuple[str, ...] = tuple(m.name for m in MARKETS)

# Margin parameters shared by the stack and the checkers.
MAINTENANCE_MARGIN_RATIO = 0.02
INITIAL_MARGIN_RATIO = 0.025


def market_spec(name: str) -> MarketSpec:
    for spec in MARKETS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown market {name!r} (known: {', '.join(MARKET_NAMES)})")


@dataclass(frozen=True)
class PriceMove:
    """The true price of ``market`` ('*' for all) moves by ``pct`` percent over
    [start, start + duration] (wall-clock seconds)."""

    market: str
    start: float
    duration: float
    pct: float

    def factor(self, market: str, t: float) -> float:
        if self.market not in ("*", market) or t <= self.start:
            return 1.0
        progress = 1.0 if self.duration <= 0 else min(1.0, (t - self.start) / self.duration)
        return 1.0 + self.pct / 100.0 * progress


def _unit_normals(seed: int, market: str, step: int) -> float:
    """A standard normal variate that depends only on (seed, market, step)."""
    digest = hashlib.blake2b(f"{seed}:{market}:{step}".encode(), digest_size=16).digest()
    u1, u2 = struct.unpack("<QQ", digest)
    a = (u1 + 1) / (2**64 + 1)
    b = u2 / 2**64
    return math.sqrt(-2.0 * math.log(a)) * math.cos(2.0 * math.pi * b)


@dataclass
class PricePath:
    """The true price and funding of every market for one run.

    Thread-safe; cheap to call for any ``t`` (cached cumulative sums grow on demand).
    """

    seed: int
    epoch: float
    moves: list[PriceMove] = field(default_factory=list)
    markets: Sequence[MarketSpec] = MARKETS
    _walk: dict[str, list[float]] = field(default_factory=dict, repr=False)
    _funding: dict[str, list[float]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def spec(self, market: str) -> MarketSpec:
        for spec in self.markets:
            if spec.name == market:
                return spec
        raise KeyError(f"unknown market {market!r}")

    def add_move(self, move: PriceMove) -> None:
        """Record a move; funding already cached after ``move.start`` is recomputed."""
        with self._lock:
            self.moves.append(move)
            self._funding.clear()

    def _log_walk(self, market: str, step: int) -> float:
        walk = self._walk.setdefault(market, [0.0])
        if step >= len(walk):
            sigma = self.spec(market).volatility * math.sqrt(STEP_S)
            for k in range(len(walk), step + 1):
                walk.append(walk[-1] + sigma * _unit_normals(self.seed, market, k))
        return walk[step]

    def base_price(self, market: str, t: float) -> float:
        """The seeded random walk without moves."""
        with self._lock:
            return self._base_unlocked(market, t)

    def price(self, market: str, t: float) -> float:
        """The true price of ``market`` at wall-clock time ``t``."""
        with self._lock:
            return self._price_unlocked(market, t)

    def funding_rate(self, market: str, interval: int) -> float:
        """The funding rate of funding interval ``interval`` (a fraction of price)."""
        spec = self.spec(market)
        z = _unit_normals(self.seed ^ 0x5EED, market, interval)
        rate = spec.max_funding_rate * 0.5 * (0.6 + 0.4 * z)
        return max(-spec.max_funding_rate, min(spec.max_funding_rate, rate))

    def funding_interval(self, t: float) -> int:
        """The number of whole funding intervals elapsed at ``t`` (0 before the epoch)."""
        return max(0, int((t - self.epoch) // FUNDING_INTERVAL_S))

    def funding_index(self, market: str, t: float) -> float:
        """The true funding index of ``market`` at ``t``: accrued up to the last interval."""
        n = self.funding_interval(t)
        with self._lock:
            series = self._funding.get(market)
            if series is None:
                series = [self.spec(market).initial_funding_index]
                self._funding[market] = series
            while len(series) <= n:
                k = len(series)
                t_k = self.epoch + k * FUNDING_INTERVAL_S
                rate = self.funding_rate(market, k)
                series.append(series[-1] + rate * self._price_unlocked(market, t_k))
        return series[n]

    def _base_unlocked(self, market: str, t: float) -> float:
        spec = self.spec(market)
        x = (t - self.epoch) / STEP_S
        if x <= 0:
            return spec.initial_price
        k = int(x)
        frac = x - k
        lo = self._log_walk(market, k)
        hi = self._log_walk(market, k + 1)
        return spec.initial_price * math.exp(lo + (hi - lo) * frac)

    def _price_unlocked(self, market: str, t: float) -> float:
        p = self._base_unlocked(market, t)
        for move in self.moves:
            p *= move.factor(market, t)
        return p


def venue_noise(seed: int, venue: int, market: str, step: int) -> float:
    """Multiplicative quote noise of one venue, within +-0.02%."""
    return 1.0 + 0.0002 * math.tanh(_unit_normals(seed ^ (venue + 1) * 7919, market, step))


def equity(
    collateral: float,
    positions: Iterable[tuple[float, float, float, float, float]],
    maintenance_ratios: Iterable[float] | None = None,
) -> tuple[float, float]:
    """(equity, maintenance requirement) of an account.

    ``positions`` holds (size, entry_price, entry_funding_index, mark_price, funding_index)
    per market; ``maintenance_ratios`` the maintenance margin of each of those markets
    (``MAINTENANCE_MARGIN_RATIO`` for every one when not given).
    """
    eq = collateral
    maintenance = 0.0
    ratios = iter(maintenance_ratios) if maintenance_ratios is not None else None
    for size, entry, f_entry, mark, f_now in positions:
        ratio = next(ratios) if ratios is not None else MAINTENANCE_MARGIN_RATIO
        eq += size * (mark - entry) - size * (f_now - f_entry)
        maintenance += ratio * abs(size) * mark
    return eq, maintenance
