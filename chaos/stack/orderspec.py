"""Order requests of the exchange engine: validation of a trader's order, and the view of an
order that admin answers list.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from chaos.stack.book import ORDER_TYPES, TRIGGER_TYPES, Order
from chaos.stack.changes import BadRequest


def order_view(order: Order) -> dict[str, Any]:
    """An order as the admin answers list it."""
    return {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "account": order.account,
        "market": order.market,
        "side": order.side,
        "order_type": order.order_type,
        "price": order.price,
        "trigger_price": order.trigger_price,
        "remaining": order.remaining,
        "status": order.status,
    }


def parse_order(req: dict[str, Any], markets: tuple[str, ...]) -> dict[str, Any]:
    coid = req.get("client_order_id")
    account = req.get("account")
    market = req.get("market")
    side = req.get("side")
    kind = req.get("type", "limit")
    qty = req.get("qty")
    price = req.get("price")
    if not isinstance(coid, str) or not coid:
        raise BadRequest("client_order_id must be a non-empty string")
    if not isinstance(account, int) or isinstance(account, bool) or account < 0:
        raise BadRequest("account must be a non-negative integer")
    if market not in markets:
        raise BadRequest(f"unknown market {market!r}")
    if side not in ("buy", "sell"):
        raise BadRequest("side must be buy or sell")
    if kind not in ORDER_TYPES:
        raise BadRequest(f"type must be one of {', '.join(ORDER_TYPES)}")
    if not isinstance(qty, (int, float)) or not math.isfinite(qty) or qty <= 0:
        raise BadRequest("qty must be a positive number")
    trigger = req.get("trigger_price")
    if kind in TRIGGER_TYPES:
        if not _positive(trigger):
            raise BadRequest(f"a {kind} order needs a positive trigger_price")
        trigger = float(trigger)
        if price is not None and not _positive(price):
            raise BadRequest(f"a {kind} order's price (its limit once triggered) must be positive")
        price = None if price is None else float(price)
    elif kind == "limit":
        if not _positive(price):
            raise BadRequest("a limit order needs a positive price")
        price = float(price)
        trigger = None
    else:
        price, trigger = None, None
    return {
        "client_order_id": coid,
        "account": account,
        "market": market,
        "side": side,
        "type": kind,
        "qty": float(qty),
        "price": price,
        "post_only": bool(req.get("post_only", False)),
        "trigger_price": trigger,
    }


def _positive(value: Any) -> TypeGuard[int | float]:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
