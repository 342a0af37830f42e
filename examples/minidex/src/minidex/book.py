"""One symbol's order book, price-time priority, exact decimal prices and sizes (pure).

Each side is one list kept best-first: bids by (-px, ref), asks by (px, ref), where ``ref``
is the journal number of the order's ORDER entry (lower = earlier).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from decimal import Decimal

BUY, SELL = "BUY", "SELL"


@dataclass
class Resting:
    ref: int  # journal number of its ORDER entry
    cid: str
    acct: int
    sym: str
    side: str
    px: Decimal
    left: Decimal


def _key(order: Resting) -> tuple[Decimal, int]:
    return (-order.px if order.side == BUY else order.px, order.ref)


class Book:
    def __init__(self) -> None:
        self.sides: dict[str, list[Resting]] = {BUY: [], SELL: []}

    def add(self, order: Resting) -> None:
        bisect.insort(self.sides[order.side], order, key=_key)

    def remove(self, order: Resting) -> None:
        orders = self.sides[order.side]
        i = bisect.bisect_left(orders, _key(order), key=_key)
        if i < len(orders) and orders[i] is order:
            del orders[i]

    def best(self, side: str) -> Decimal | None:
        orders = self.sides[side]
        return orders[0].px if orders else None

    def crosses(self, side: str, limit: Decimal | None) -> bool:
        """Whether an order of ``side`` at ``limit`` (None: any price) would trade now."""
        best = self.best(SELL if side == BUY else BUY)
        return best is not None and (limit is None or _within(side, best, limit))

    def match(
        self, side: str, limit: Decimal | None, size: Decimal
    ) -> list[tuple[Resting, Decimal]]:
        """What a taker of ``side`` for ``size`` up to ``limit`` (None: any price) would
        trade now: ``(maker, size)`` pairs, best maker first, at the maker's price. Pure:
        the book changes only when the trades are applied."""
        makers = self.sides[SELL if side == BUY else BUY]
        fills = []
        for maker in makers:
            if size <= 0 or not (limit is None or _within(side, maker.px, limit)):
                break
            traded = min(size, maker.left)
            fills.append((maker, traded))
            size -= traded
        return fills


def _within(side: str, px: Decimal, limit: Decimal) -> bool:
    return px <= limit if side == BUY else px >= limit
