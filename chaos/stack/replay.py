"""Rebuild the exchange state from the event log (pure): what a rollback restores.

``rebuild(engine, events)`` applies events, in seq order, to a fresh ``Engine`` and leaves it
exactly as the sequencer was after the last one: collateral (deposits, realised P&L and
funding settled at each position change, recomputed by the engine's own ``_trade`` from the
fills, so the floats are the same), positions, the resting book in price-time order, the
pending trigger orders, the trading mode and ``seq``. Idempotency results and access control
are not in the log; the caller reloads them from the db.

Why the book comes out the same: the engine rests a limit order right after its own fills
(same batch, no other order in between), so resting it at its acceptance and reducing it
by its fills gives the same queue position and the same remaining quantity.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chaos.stack.book import EPS, TRIGGER_TYPES, Order
from chaos.stack.changes import Changes
from chaos.stack.engine import Engine


def rebuild(engine: Engine, events: Iterable[dict[str, Any]]) -> Engine:
    """Apply ``events`` (history/db event objects, seq order) to ``engine``; returns it."""
    scratch = Changes()  # the recomputed funding settlements are not written again
    for event in events:
        apply_event(engine, event, scratch)
        scratch.events.clear()
    return engine


def apply_event(engine: Engine, event: dict[str, Any], scratch: Changes) -> None:
    """The effect of one logged event on ``engine`` (see the module)."""
    kind = event["kind"]
    engine.seq = max(engine.seq, int(event["seq"]))
    if kind == "deposit":
        account = int(event["account"])
        engine.collateral[account] = engine.collateral.get(account, 0.0) + float(event["amount"])
    elif kind == "order_accepted":
        _accepted(engine, event)
    elif kind == "order_triggered":
        order = engine.triggers.pop(int(event["order_id"]), None)
        if order is not None and order.price is not None:
            order.status = "open"
            engine.books[order.market].add(order)
        elif order is not None:
            order.status = "done"  # a market order: its fills follow, nothing rests
            engine._forget_open(order)
    elif kind == "fill":
        _fill(engine, event, scratch)
    elif kind == "order_cancelled":
        order = engine.orders_by_id.get(int(event["order_id"]))
        if order is not None:
            engine.books[order.market].remove(order)
            engine.triggers.pop(order.order_id, None)
            order.status = "cancelled"
            engine._forget_open(order)
    elif kind == "mode":
        engine.mode = str(event["mode"])
    # liquidation, funding_settle: no state of their own (the fills carry the effect)


def _accepted(engine: Engine, event: dict[str, Any]) -> None:
    order_type = str(event.get("order_type") or "limit")
    if order_type == "market" or event["market"] not in engine.books:
        return
    price = event.get("price")
    order = Order(
        int(event["order_id"]),
        str(event["client_order_id"]),
        int(event["account"]),
        str(event["market"]),
        str(event["side"]),
        None if price is None else float(price),
        float(event["qty"]),
        float(event["qty"]),
        order_type=order_type,
        trigger_price=event.get("trigger_price"),
    )
    if order_type in TRIGGER_TYPES:
        order.status = "pending"
        engine.hold_trigger(order)
    else:
        engine.rest(order)


def _fill(engine: Engine, event: dict[str, Any], scratch: Changes) -> None:
    qty = float(event["qty"])
    for key in ("maker_order_id", "taker_order_id"):
        order_id = event.get(key)
        order = None if order_id is None else engine.orders_by_id.get(int(order_id))
        if order is None or order.order_id in engine.triggers:
            continue
        order.remaining -= qty
        if order.remaining <= EPS:
            order.remaining = 0.0
            order.status = "filled"
            engine.books[order.market].remove(order)
            engine._forget_open(order)
    sign = 1.0 if event["taker_side"] == "buy" else -1.0
    market, price, t = str(event["market"]), float(event["price"]), float(event["time"])
    funding = float(event.get("funding_index") or 0.0)
    engine._trade(scratch, t, int(event["taker_account"]), market, sign * qty, price, funding)
    engine._trade(scratch, t, int(event["maker_account"]), market, -sign * qty, price, funding)
