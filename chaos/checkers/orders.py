"""no_lost_acked_orders and no_duplicate_orders: client intents versus the event log.

no_lost_acked_orders holds when every order a client saw acknowledged (a client op of type
``ok``, ``f: order``) is in the db event log (an ``order_accepted`` with its
``client_order_id``, or an ``order_accepted`` at the ``seq`` the client was told) and, after
the writer's final flush, in a chain block too. An order whose outcome the client never
learnt (``info``) or that failed (``fail``) is never lost, whether it appears or not.
Memory: the acknowledged orders not yet found.

no_duplicate_orders holds when no client intent (account + client_order_id) was accepted
more than once, and no fill executes an order that is no longer open (filled beyond its
quantity, after its cancel, or never accepted). Unit: orders (every accepted order, plus
every order id a fill names that was never accepted); a violated order is one accepted
again for an intent already accepted, or one executed when not open. Memory: the open
orders, plus 8 bytes per accepted order (a hash of its intent); only when a hash repeats,
or a fill names an order that is not open, does a second pass read the acceptances exactly.
``ExecutionTracker`` is the streaming part, shared with the causal replay of
``no_unintended_liquidations`` (a duplicate execution is harm).
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from chaos.checkers.base import Findings, Verdict, since_t0, when
from chaos.checkers.params import CheckParams
from chaos.history.events import (
    ClientOp,
    Event,
    FillEvent,
    OrderAcceptedEvent,
    OrderCancelledEvent,
)
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
        found.add(_lost(history, op, coid, "the db event log"), unit=coid)
    if history.has("chain"):
        on_chain = (e for block in history.blocks() for e in block.get("events") or ())
        for coid, op in _absent(acked, on_chain).items():
            if coid not in not_in_db:
                found.add(_lost(history, op, coid, "the chain (after the final flush)"), unit=coid)
    return found.verdict(
        "acknowledged orders", nothing="no order was acknowledged to a client (no client ok)"
    )


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
        f"client (process {op.get('process')}, {since_t0(history, op.get('time'))}) but is "
        f"missing from {where}",
        "client_order_id": coid,
        "account": op.get("account"),
        "process": op.get("process"),
        **when(history, op.get("time")),
        "seq_told": op.get("seq"),
        "market": op.get("market"),
        "side": op.get("side"),
        "qty": op.get("qty"),
        "missing_from": where,
    }


@dataclass
class ExecutionTracker:
    """The open orders and the intents accepted so far, fed the event log in order.

    ``fill(event)`` returns the order ids the fill executes that are not open (the fill is
    a duplicate execution); ``repeated_intents()`` at the end, the hashes of intents
    accepted more than once (confirm them with ``reacceptances``).
    """

    intent_hashes: array[int] = field(default_factory=lambda: array("q"))  # 8 bytes/order
    open_orders: dict[object, list[float]] = field(default_factory=dict)  # id -> [qty left]

    def accept(self, event: OrderAcceptedEvent) -> None:
        self.intent_hashes.append(hash(_intent(event)))
        qty = event.get("qty")
        if isinstance(qty, int | float):
            self.open_orders[event.get("order_id")] = [float(qty)]

    def cancel(self, event: OrderCancelledEvent) -> None:
        self.open_orders.pop(event.get("order_id"), None)

    def fill(self, event: FillEvent) -> list[tuple[str, object]]:
        """Count the fill against its orders: the (side, order id) of each side whose order
        was not open. A liquidation's own side has no order."""
        not_open: list[tuple[str, object]] = []
        for side in ("taker_order_id", "maker_order_id"):
            order_id = event.get(side)
            if order_id is None:
                continue
            order = self.open_orders.get(order_id)
            if order is None:
                not_open.append((side.removesuffix("_order_id"), order_id))
                continue
            order[0] -= event["qty"]
            if order[0] <= _QTY_EPS * max(1.0, event["qty"]):
                del self.open_orders[order_id]
        return not_open

    def repeated_intents(self) -> set[int]:
        """Hashes of intents accepted more than once (sorts the hashes in place)."""
        return _repeated(self.intent_hashes)


@dataclass(frozen=True)
class Reacceptance:
    """An order accepted again for an intent (account + client_order_id) accepted before."""

    account: str
    client_order_id: str
    first_seq: int
    first_order_id: object
    seq: int
    order_id: object
    time: object


def check_duplicates(history: History, params: CheckParams) -> Verdict:
    found = Findings(DUPLICATE, params.max_counterexamples)
    if not history.has("events"):
        return found.verdict("orders", unknown="no events.jsonl in the history")
    tracker = ExecutionTracker()
    not_open: dict[object, list[Obj]] = {}  # order id -> its executions while not open
    for event in history.events():
        if event["kind"] == "order_accepted":
            tracker.accept(event)
        elif event["kind"] == "fill":
            for side, order_id in tracker.fill(event):
                not_open.setdefault(order_id, []).append(
                    _executed_again(history, event, side, order_id)
                )
        elif event["kind"] == "order_cancelled":
            tracker.cancel(event)
    repeated = tracker.repeated_intents()
    found.checked = len(tracker.intent_hashes)
    accepted_ids: set[object] = set()
    if repeated or not_open:
        again, accepted_ids = _second_pass(history, repeated, set(not_open))
        for item in again:
            found.add(_reaccepted(history, item), unit=_order_unit(item.order_id, item.seq))
    found.checked += len(set(not_open) - accepted_ids)  # order ids no acceptance had
    for order_id, examples in not_open.items():
        for example in examples:
            found.add(example, unit=_order_unit(order_id, None))
    return found.verdict("orders", nothing="no order accepted in the event log")


Obj = dict[str, object]


def _order_unit(order_id: object, seq: int | None) -> Hashable:
    if order_id is None or not isinstance(order_id, Hashable):
        return ("acceptance", seq)
    return ("order", order_id)


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


def _executed_again(history: History, event: FillEvent, side: str, order_id: object) -> Obj:
    return {
        "problem": f"seq {event['seq']} fills order {order_id} for {event['qty']} "
        f"but that order is not open (already fully filled or cancelled, or never "
        f"accepted): executed more than once",
        "seq": event["seq"],
        "order_id": order_id,
        "side": side,
        "qty": event["qty"],
        "price": event.get("price"),
        "market": event.get("market"),
        **when(history, event.get("time")),
    }


def reacceptances(history: History, candidates: set[int]) -> list[Reacceptance]:
    """The second and later acceptances of intents whose hash is in ``candidates`` (a
    pass over the acceptances, exact: hash collisions cannot produce one)."""
    return _second_pass(history, candidates, set())[0]


def _second_pass(
    history: History, candidates: set[int], order_ids: set[object]
) -> tuple[list[Reacceptance], set[object]]:
    """Re-acceptances of the ``candidates`` intents, and which of ``order_ids`` some
    acceptance had."""
    accepted: dict[str, list[tuple[int, object, object]]] = {}
    seen_ids: set[object] = set()
    for event in history.events():
        if event["kind"] != "order_accepted":
            continue
        if order_ids and event.get("order_id") in order_ids:
            seen_ids.add(event.get("order_id"))
        if not candidates:
            continue
        key = _intent(event)
        if hash(key) in candidates:
            accepted.setdefault(key, []).append(
                (event["seq"], event.get("order_id"), event.get("time"))
            )
    again: list[Reacceptance] = []
    for key, acceptances in accepted.items():
        if len(acceptances) < 2:
            continue
        account, _, coid = key.partition("\x1f")
        (first_seq, first_id, _), *rest = acceptances
        for seq, order_id, time in rest:
            again.append(Reacceptance(account, coid, first_seq, first_id, seq, order_id, time))
    return again, seen_ids


def _reaccepted(history: History, item: Reacceptance) -> Obj:
    return {
        "problem": f"client order {item.client_order_id} of account {item.account} accepted "
        f"again at seq {item.seq} (order {item.order_id}); first accepted at seq "
        f"{item.first_seq} (order {item.first_order_id})",
        "client_order_id": item.client_order_id,
        "account": item.account,
        "first_seq": item.first_seq,
        "first_order_id": item.first_order_id,
        "seq": item.seq,
        "order_id": item.order_id,
        **when(history, item.time),
    }
