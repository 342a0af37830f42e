"""The venues' quotes: the true price path of the world's markets with per-venue noise,
after the data faults in force (``freeze``, ``zero``, ``scale``, ``offset``, ``drop``), and
a venue's book top (``tick``) that every shape writes in its own form."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from chaos.builtins.symbols import HALF_SPREAD, VenueShape, venue_shapes
from chaos.world import MARKETS, STEP_S, MarketSpec, PricePath, venue_noise

FAULT_KINDS = ("freeze", "zero", "scale", "offset", "drop")


@dataclass(frozen=True)
class DataFault:
    id: int
    venue: int | str
    market: str
    kind: str
    value: float
    began: float

    def applies(self, venue: int, market: str) -> bool:
        return self.venue in ("*", venue) and self.market in ("*", market)


class Venues:
    def __init__(
        self,
        seed: int,
        epoch: float,
        venues: int,
        markets: tuple[MarketSpec, ...] = MARKETS,
        shapes: tuple[VenueShape, ...] | None = None,
    ) -> None:
        self.seed = seed
        self.path = PricePath(seed, epoch, markets=markets)
        self.markets = tuple(m.name for m in markets)
        self.venues = venues
        self.shapes = shapes or venue_shapes(None, venues, self.markets)
        self.faults: dict[int, DataFault] = {}
        self._ids = itertools.count(1)
        self.clock: Callable[[], float] = time.time  # wall-clock s; tests may replace it

    def clean_price(self, venue: int, market: str, t: float) -> float:
        step = max(0, int((t - self.path.epoch) / STEP_S))
        return self.path.price(market, t) * venue_noise(self.seed, venue, market, step)

    def quote(self, venue: int, market: str, t: float) -> float | None:
        """The venue's quote at ``t`` after data faults; None when the venue drops it."""
        price = self.clean_price(venue, market, t)
        for fault in self.faults.values():
            if not fault.applies(venue, market):
                continue
            if fault.kind == "drop":
                return None
            if fault.kind == "freeze":
                price = self.clean_price(venue, market, fault.began)
            elif fault.kind == "zero":
                price = 0.0
            elif fault.kind == "scale":
                price *= fault.value
            elif fault.kind == "offset":
                price += fault.value
        return price

    def frozen_since(self, venue: int, market: str) -> float | None:
        """When the ``freeze`` fault holding this venue's market began (None: not frozen)."""
        began = [f.began for f in self.faults.values()
                 if f.kind == "freeze" and f.applies(venue, market)]  # fmt: skip
        return min(began) if began else None

    def add_fault(self, body: dict[str, Any]) -> DataFault:
        kind = body.get("kind")
        if kind not in FAULT_KINDS:
            raise web.HTTPBadRequest(text=f"kind must be one of {', '.join(FAULT_KINDS)}")
        venue = body.get("venue", "*")
        if venue != "*" and not (isinstance(venue, int) and 0 <= venue < self.venues):
            raise web.HTTPBadRequest(text=f"venue must be '*' or 0..{self.venues - 1}")
        market = body.get("market", "*")
        if market != "*" and market not in self.markets:
            raise web.HTTPBadRequest(text=f"unknown market {market!r}")
        value = body.get("value", 1.0 if kind == "scale" else 0.0)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise web.HTTPBadRequest(text="value must be a finite number")
        fault = DataFault(next(self._ids), venue, market, kind, float(value), self.clock())
        self.faults[fault.id] = fault
        return fault


@dataclass(frozen=True)
class Tick:
    """A venue's book top for one market at one instant (after data faults)."""

    price: float
    bid: float
    ask: float
    trade_id: int  # grows each price step; stops while frozen
    traded_at: float  # wall-clock s of the last trade; stops while frozen


def tick(venues: Venues, venue: int, market: str, now: float) -> Tick | None:
    """The venue's tick, or None while a ``drop`` fault holds."""
    price = venues.quote(venue, market, now)
    if price is None:
        return None
    frozen = venues.frozen_since(venue, market)
    traded_at = now if frozen is None else frozen
    step = max(0, int((traded_at - venues.path.epoch) / STEP_S))
    half = abs(price) * HALF_SPREAD
    return Tick(price, price - half, price + half, step + 1, traded_at)
