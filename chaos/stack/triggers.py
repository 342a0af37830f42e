"""Trigger orders (take-profit, stop-loss) of the exchange engine: held outside the book until
the mark price crosses their trigger price, then executed as market or limit orders.

A mixin of ``chaos.stack.engine.Engine`` (it uses the engine's books, prices, guards and
``_take``); see the engine's module docstring for the trigger rules.
"""

from __future__ import annotations

from typing import Any

from chaos.stack.book import EPS, Order
from chaos.stack.changes import Changes
from chaos.stack.matching import Matching


class TriggerOrders(Matching):
    """The trigger-order half of the engine (state: ``self.triggers``)."""

    triggers: dict[int, Order]

    def _wait_for_trigger(
        self, order: dict[str, Any], seq: int, changes: Changes
    ) -> dict[str, Any]:
        pending = Order(
            seq,
            order["client_order_id"],
            order["account"],
            order["market"],
            order["side"],
            order["price"],
            order["qty"],
            order["qty"],
            status="pending",
            order_type=order["type"],
            trigger_price=order["trigger_price"],
        )
        self.hold_trigger(pending)
        changes.orders[seq] = pending
        return {
            "status": "accepted",
            "order_id": seq,
            "seq": seq,
            "fills": [],
            "remaining": order["qty"],
            "triggered": False,
        }

    def hold_trigger(self, order: Order) -> None:
        """Keep ``order`` (status pending) until its trigger price is crossed."""
        self.triggers[order.order_id] = order
        self.orders_by_id[order.order_id] = order
        self.open_by_client_id.setdefault(order.client_order_id, []).append(order.order_id)

    def due_triggers(self, now: float) -> bool:
        """Whether ``fire_triggers`` would fire anything now (cheap; no state changes)."""
        return self.mode == "normal" and any(
            self._due(order, now) for order in self.triggers.values()
        )

    def _due(self, order: Order, now: float) -> bool:
        price = self.prices.get(order.market)
        if price is None or order.trigger_price is None:
            return False
        if not trigger_crossed(order.order_type, order.side, order.trigger_price, price.mark_price):
            return False
        return self.price_block(order.market, now) is None

    def fire_triggers(self, changes: Changes, now: float) -> list[dict[str, Any]]:
        """Execute every pending trigger order whose trigger price the mark crossed, in
        order_id order (normal mode only). Returns one summary per fired order."""
        if self.mode != "normal":
            return []
        fired = []
        for order in [o for o in self.triggers.values() if self._due(o, now)]:
            del self.triggers[order.order_id]
            mark = self.prices[order.market]
            self._emit(
                changes,
                now,
                "order_triggered",
                {
                    "order_id": order.order_id,
                    "client_order_id": order.client_order_id,
                    "account": order.account,
                    "market": order.market,
                    "side": order.side,
                    "order_type": order.order_type,
                    "trigger_price": order.trigger_price,
                    "price": order.price,
                    "mark_price": mark.mark_price,
                    "oracle_ts": mark.ts,
                },
            )
            fills, remaining = self._take(
                changes,
                now,
                order.market,
                order.side,
                order.account,
                order.order_id,
                order.price,
                order.remaining,
                liquidation=False,
            )
            order.remaining = max(0.0, remaining)
            if remaining > EPS and order.price is not None:
                order.status = "open"
                self.books[order.market].add(order)
            else:
                order.status = "filled" if remaining <= EPS else "done"
                self._forget_open(order)
            changes.orders[order.order_id] = order
            fired.append({"order_id": order.order_id, "fills": fills, "remaining": remaining})
        return fired


def trigger_crossed(order_type: str, side: str, trigger_price: float, mark: float) -> bool:
    """Whether ``mark`` reached the trigger of a take-profit/stop-loss order on ``side``:
    a sell stop-loss and a buy take-profit fire at or below, the others at or above."""
    below = (order_type == "stop_loss") == (side == "sell")
    return mark <= trigger_price if below else mark >= trigger_price
