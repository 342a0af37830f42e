"""no_lost_acked_orders and no_duplicate_orders: client intents versus the event log.

no_lost_acked_orders holds when every order a client saw acknowledged (a client op of type
``ok``, ``f: order``) is in the db event log (an ``order_accepted`` with its
``client_order_id``, or an ``order_accepted`` at the ``seq`` the client was told) and, after
the writer's final flush, in a chain block too. An order whose outcome the client never
learnt (``info``) or that failed (``fail``) is never lost, whether it appears or not.
Memory: the acknowledged orders not yet found.

no_duplicate_orders holds when no client intent (account + client_order_id) was accepted
more than once, and no order was filled for more than its quantity (executed twice).
Memory: one entry per accepted order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chaos.checkers.base import Findings, Verdict, rounded
from chaos.checkers.params import CheckParams
from chaos.history.events import ClientOp, Event, OrderAcceptedEvent
from chaos.history.reader import History

LOST = "no_lost_acked_orders"
DUPLICATE = "no_duplicate_orders"
_QTY_EPS = 1e-9


def check_lost(history: History, params: CheckParams) -> Verdict:
    found = Findings(LOST, params.max_counterexamples)
    if not history.has("client"):
        return found.verdict("acknowledged orders", unknown="no client.jsonl in the history")
    acked: dict[str, ClientOp] = {}
    for op in history.client_ops():
        if op.get("type") == "ok" and op.get("f") == "order":
            acked.setdefault(str(op.get("client_order_id")), op)
    found.checked = len(acked)
    not_in_db = _absent(acked, history.events())
    for coid, op in not_in_db.items():
        found.add(_lost(op, coid, "the db event log"))
    if history.has("chain"):
        on_chain = (e for block in history.blocks() for e in block.get("events") or ())
        for coid, op in _absent(acked, on_chain).items():
            if coid not in not_in_db:
                found.add(_lost(op, coid, "the chain (after the final flush)"))
    return found.verdict("acknowledged orders")


def _absent(acked: dict[str, ClientOp], events: Iterable[Event]) -> dict[str, ClientOp]:
    """The acknowledged orders with no ``order_accepted`` (by client_order_id or seq)."""
    missing = dict(acked)
    by_seq = {op["seq"]: coid for coid, op in acked.items() if isinstance(op.get("seq"), int)}
    for event in events:
        if not missing:
            break
        if event.get("kind") != "order_accepted":
            continue
        missing.pop(str(event.get("client_order_id")), None)
        coid = by_seq.get(event["seq"])
        if coid is not None:
            missing.pop(coid, None)
    return missing


def _lost(op: ClientOp, coid: str, where: str) -> dict[str, object]:
    return {
        "problem": f"order {coid} of account {op.get('account')} was acknowledged to the "
        f"client (process {op.get('process')}, t={op.get('time')}) but is missing from {where}",
        "client_order_id": coid,
        "account": op.get("account"),
        "process": op.get("process"),
        "time": op.get("time"),
        "seq_told": op.get("seq"),
        "market": op.get("market"),
        "side": op.get("side"),
        "qty": op.get("qty"),
        "missing_from": where,
    }


@dataclass
class _Order:
    seq: int
    qty: float
    filled: float = 0.0
    fills: int = 0


def check_duplicates(history: History, params: CheckParams) -> Verdict:
    found = Findings(DUPLICATE, params.max_counterexamples)
    if not history.has("events"):
        return found.verdict("accepted orders", unknown="no events.jsonl in the history")
    first_of_intent: dict[tuple[object, str], tuple[int, object]] = {}
    orders: dict[object, _Order] = {}
    overfilled: set[object] = set()
    for event in history.events():
        if event["kind"] == "order_accepted":
            _accepted(found, event, first_of_intent, orders)
        elif event["kind"] == "fill":
            for side in ("taker_order_id", "maker_order_id"):
                order_id = event.get(side)
                order = orders.get(order_id) if order_id is not None else None
                if order is None:
                    continue
                order.filled += event["qty"]
                order.fills += 1
                if order.filled > order.qty + _QTY_EPS and order_id not in overfilled:
                    overfilled.add(order_id)
                    found.add(
                        {
                            "problem": f"order {order_id} (accepted at seq {order.seq}, qty "
                            f"{order.qty}) filled for {rounded(order.filled)} by seq "
                            f"{event['seq']}: executed more than once",
                            "order_id": order_id,
                            "accepted_seq": order.seq,
                            "qty": order.qty,
                            "filled": rounded(order.filled),
                            "fills": order.fills,
                            "seq": event["seq"],
                            "time": event.get("time"),
                        }
                    )
    found.checked = len(first_of_intent)
    return found.verdict("client intents")


def _accepted(
    found: Findings,
    event: OrderAcceptedEvent,
    first_of_intent: dict[tuple[object, str], tuple[int, object]],
    orders: dict[object, _Order],
) -> None:
    intent = (event.get("account"), str(event.get("client_order_id")))
    order_id = event.get("order_id")
    qty = event.get("qty")
    orders[order_id] = _Order(event["seq"], float(qty) if isinstance(qty, int | float) else 0.0)
    first = first_of_intent.setdefault(intent, (event["seq"], order_id))
    if first[0] != event["seq"]:
        found.add(
            {
                "problem": f"client order {intent[1]} of account {intent[0]} accepted twice: "
                f"seq {first[0]} (order {first[1]}) and seq {event['seq']} (order {order_id})",
                "client_order_id": intent[1],
                "account": intent[0],
                "first_seq": first[0],
                "first_order_id": first[1],
                "seq": event["seq"],
                "order_id": order_id,
                "time": event.get("time"),
            }
        )
