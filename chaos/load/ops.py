"""Client operations as history records (Jepsen's model), shared by the Locust users and
the adversarial-orders fault. Pure: no locust, no gevent, no I/O.

An operation is an ``invoke`` followed by exactly one completion of the same process and
client_order_id: ``ok`` (the stack acknowledged it), ``fail`` (it certainly did not
happen: refused before sending, rejected, not serving) or ``info`` (unknown: a timeout or
a reset after the request was sent, or an answer that says the outcome is unknown). Which
answers are which is the stack file's orders binding's ``answer`` mapping
(``chaos.bindings.http.classify``).
"""

from __future__ import annotations

from typing import Any


def op_record(
    kind: str,
    process: int,
    f: str,
    order: dict[str, Any],
    now: float,
    attempt: int,
    **extra: Any,
) -> dict[str, Any]:
    """One ``client.jsonl`` record for ``order`` (the body sent to the sequencer)."""
    record: dict[str, Any] = {
        "type": kind,
        "process": process,
        "f": f,
        "client_order_id": order.get("client_order_id"),
        "account": order.get("account"),
        "market": order.get("market"),
        "side": order.get("side"),
        "order_type": order.get("type"),
        "price": order.get("price"),
        "qty": order.get("qty"),
        "time": now,
        "attempt": attempt,
    }
    record.update({k: v for k, v in extra.items() if v is not None})
    return record
