"""Client operations as history records (Jepsen's model), shared by the Locust users and
the adversarial-orders fault. Pure: no locust, no gevent, no I/O.

An operation is an ``invoke`` followed by exactly one completion of the same process and
client_order_id: ``ok`` (the sequencer acknowledged it), ``fail`` (it certainly did not
happen: refused before sending, rejected, not serving) or ``info`` (unknown: a timeout or
a reset after the request was sent, or a 5xx that says the outcome is unknown).
"""

from __future__ import annotations

from typing import Any

NOT_SERVING = (
    "not serving",
    "not leader",
    "standby",
    "loading",
    "halted",
    "fenced",
    "not executed",
)


def reason_of(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("error") or body.get("reason") or "")
    return ""


def classify_answer(status: int, body: Any) -> str:
    """ok / fail / info for an HTTP answer to an order or a cancel.

    200 ``accepted`` (or a cancel's ``cancelled``/``ok``) is ok and any other 200 is a
    rejection (fail); 4xx is fail; a 5xx is info when it says the outcome is unknown or
    says nothing, fail when it says the sequencer was not serving (not leader, halted).
    """
    if status == 200:
        state = body.get("status") if isinstance(body, dict) else None
        return "ok" if state in ("accepted", "cancelled", "ok") else "fail"
    if status < 500:
        return "fail"
    reason = reason_of(body).lower()
    if "unknown" in reason:
        return "info"
    return "fail" if any(word in reason for word in NOT_SERVING) else "info"


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
