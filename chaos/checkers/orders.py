"""no_lost_acked_orders and no_duplicate_orders: client intents versus the event log.

no_lost_acked_orders holds when every order a client saw acknowledged (a client op of type
``ok``, ``f: order``) is in the db event log (an ``order_accepted`` with its
``client_order_id``, or an ``order_accepted`` at the ``seq`` the client was told) and, after
the writer's final flush, in a chain block too. An order whose outcome the client never
learnt (``info``) or that failed (``fail``) is never lost, whether it appears or not.
Memory: the acknowledged orders not yet found.

no_duplicate_orders holds when no client intent (account + client_order_id) was accepted
more than once, and no fill executes an order that is no longer open (filled beyond its
quantity, or after its cancel). Memory: the open orders, plus 8 bytes per accepted order
(a hash of its intent); only when a hash repeats does a second pass read the acceptances
exactly.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

from chaos.checkers.base import Findings, Verdict, since_epoch
from chaos.checkers.params import CheckParams
from chaos.history.events import ClientOp, Event, FillEvent
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
        found.add(_lost(history, op, coid, "the db event log"))
    if history.has("chain"):
        on_chain = (e for block in history.blocks() for e in block.get("events") or ())
        for coid, op in _absent(acked, on_chain).items():
            if coid not in not_in_db:
                found.add(_lost(history, op, coid, "the chain (after the final flush)"))
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


def _lost(history: History, op: ClientOp, coid: str, where: str) -> dict[str, object]:
    return {
        "problem": f"order {coid} of account {op.get('account')} was acknowledged to the "
        f"client (process {op.get('process')}, {since_epoch(history, op.get('time'))}) but is "
        f"missing from {where}",
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


def check_duplicates(history: History, params: CheckParams) -> Verdict:
    found = Findings(DUPLICATE, params.max_counterexamples)
    if not history.has("events"):
        return found.verdict("accepted orders", unknown="no events.jsonl in the history")
    intent_hashes = array("q")  # 8 bytes per accepted order
    open_orders: dict[object, list[float]] = {}  # order_id -> [remaining qty, accepted seq]
    for event in history.events():
        if event["kind"] == "order_accepted":
            intent_hashes.append(hash(_intent(event)))
            qty = event.get("qty")
            if isinstance(qty, int | float):
                open_orders[event.get("order_id")] = [float(qty), float(event["seq"])]
        elif event["kind"] == "fill":
            _fill(found, event, open_orders)
        elif event["kind"] == "order_cancelled":
            open_orders.pop(event.get("order_id"), None)
    repeated = _repeated(intent_hashes)
    if repeated:
        _confirm_twice(found, history, repeated)
    found.checked = len(intent_hashes)
    return found.verdict("accepted orders")


def _intent(event: Event) -> str:
    return f"{event.get('account')}\x1f{event.get('client_order_id')}"


def _repeated(hashes: array[int]) -> set[int]:
    """The values that occur more than once (sorting, not a set: 8 bytes per value).
    Sorts ``hashes`` in place."""
    if len(hashes) < 2:
        return set()
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with matplotlib
        seen: set[int] = set()
        twice: set[int] = set()
        for h in hashes:
            (twice if h in seen else seen).add(h)
        return twice
    values = np.frombuffer(hashes, dtype=np.int64)  # a view: sorted in place
    values.sort()
    return {int(v) for v in values[1:][values[1:] == values[:-1]]}


def _fill(found: Findings, event: FillEvent, open_orders: dict[object, list[float]]) -> None:
    """Count the fill against its orders; a fill of an order that is not open (fully
    filled or cancelled) executes it again. A liquidation's own side has no order."""
    for side in ("taker_order_id", "maker_order_id"):
        order_id = event.get(side)
        if order_id is None:
            continue
        order = open_orders.get(order_id)
        if order is not None:
            order[0] -= event["qty"]
            if order[0] <= _QTY_EPS * max(1.0, event["qty"]):
                del open_orders[order_id]
            continue
        found.add(
            {
                "problem": f"seq {event['seq']} fills order {order_id} for {event['qty']} "
                f"but that order is not open (already fully filled or cancelled, or never "
                f"accepted): executed more than once",
                "seq": event["seq"],
                "order_id": order_id,
                "side": side.removesuffix("_order_id"),
                "qty": event["qty"],
                "price": event.get("price"),
                "market": event.get("market"),
                "time": event.get("time"),
            }
        )


def _confirm_twice(found: Findings, history: History, candidates: set[int]) -> None:
    """Second pass, only when some intent hash repeats: the exact acceptances."""
    accepted: dict[str, list[tuple[int, object, object]]] = {}
    for event in history.events():
        if event["kind"] != "order_accepted":
            continue
        key = _intent(event)
        if hash(key) in candidates:
            accepted.setdefault(key, []).append(
                (event["seq"], event.get("order_id"), event.get("time"))
            )
    for key, acceptances in accepted.items():
        if len(acceptances) < 2:
            continue
        account, _, coid = key.partition("\x1f")
        (first_seq, first_id, _), *again = acceptances
        for seq, order_id, time in again:
            found.add(
                {
                    "problem": f"client order {coid} of account {account} accepted again at "
                    f"seq {seq} (order {order_id}); first accepted at seq {first_seq} "
                    f"(order {first_id})",
                    "client_order_id": coid,
                    "account": account,
                    "first_seq": first_seq,
                    "first_order_id": first_id,
                    "seq": seq,
                    "order_id": order_id,
                    "time": time,
                }
            )
