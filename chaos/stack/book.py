"""Price-time priority order book of one market (pure).

Resting orders are kept per price level in arrival order; levels are kept sorted with the
best first (bids by descending price, asks by ascending price). Trigger orders (take-profit,
stop-loss) waiting for their trigger price are ``Order``s too, but never in a ``Book``.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass

EPS = 1e-9


ORDER_TYPES = ("limit", "market", "take_profit", "stop_loss")
TRIGGER_TYPES = ("take_profit", "stop_loss")


@dataclass(eq=False)  # identity: two orders are never the same order because fields match
class Order:
    """An order the engine keeps: resting in a book (``status`` open) or a trigger order
    waiting for its trigger price (``status`` pending; ``price`` None: a market order once
    triggered). ``status`` ends as filled, cancelled or done (a market remainder dropped)."""

    order_id: int
    client_order_id: str
    account: int
    market: str
    side: str
    price: float | None
    qty: float
    remaining: float
    status: str = "open"
    order_type: str = "limit"
    trigger_price: float | None = None


class Book:
    """Price-time priority book of one market. Keys sort best-first: bids by -price."""

    def __init__(self) -> None:
        self.levels: dict[str, dict[float, deque[Order]]] = {"buy": {}, "sell": {}}
        self.keys: dict[str, list[float]] = {"buy": [], "sell": []}

    @staticmethod
    def _key(side: str, price: float) -> float:
        return -price if side == "buy" else price

    def best(self, side: str) -> float | None:
        keys = self.keys[side]
        if not keys:
            return None
        return -keys[0] if side == "buy" else keys[0]

    def add(self, order: Order) -> None:
        assert order.price is not None, "only priced orders rest in a book"
        key = self._key(order.side, order.price)
        level = self.levels[order.side].get(key)
        if level is None:
            level = self.levels[order.side][key] = deque()
            bisect.insort(self.keys[order.side], key)
        level.append(order)

    def remove(self, order: Order) -> None:
        if order.price is None:
            return
        key = self._key(order.side, order.price)
        level = self.levels[order.side].get(key)
        if level is None:
            return
        for i, resting in enumerate(level):
            if resting is order:
                del level[i]
                break
        else:
            return
        if not level:
            self._drop_level(order.side, key)

    def _drop_level(self, side: str, key: float) -> None:
        del self.levels[side][key]
        keys = self.keys[side]
        keys.pop(bisect.bisect_left(keys, key))

    def crosses(self, side: str, limit: float | None) -> bool:
        """Would an order on ``side`` with ``limit`` (None: market) trade now?"""
        other = "sell" if side == "buy" else "buy"
        best = self.best(other)
        if best is None:
            return False
        if limit is None:
            return True
        return best <= limit if side == "buy" else best >= limit

    def take(self, side: str, limit: float | None, qty: float) -> list[tuple[Order, float, float]]:
        """Consume resting orders opposite to ``side`` up to ``qty`` within ``limit``.

        Returns (maker, price, qty) per fill; makers are updated (remaining, status) and
        removed from the book when filled.
        """
        other = "sell" if side == "buy" else "buy"
        fills: list[tuple[Order, float, float]] = []
        while qty > EPS and self.crosses(side, limit):
            key = self.keys[other][0]
            level = self.levels[other][key]
            maker = level[0]
            traded = min(qty, maker.remaining)
            assert maker.price is not None
            fills.append((maker, maker.price, traded))
            qty -= traded
            maker.remaining -= traded
            if maker.remaining <= EPS:
                maker.remaining = 0.0
                maker.status = "filled"
                level.popleft()
                if not level:
                    self._drop_level(other, key)
        return fills
