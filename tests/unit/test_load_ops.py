"""How client operations are judged and recorded (shared by the users and the adversary):
the reference stack's answers through its stack file's orders binding."""

from __future__ import annotations

import json

import pytest

from chaos.bindings.http import classify
from chaos.load.ops import op_record
from chaos.load.worker import Window, parse_accounts, percentile
from chaos.stackfile import load, reference_stack_path

ORDERS = load(reference_stack_path()).bindings.orders
assert ORDERS is not None  # the reference stack binds orders
ANSWER = ORDERS.answer


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"status": "accepted", "seq": 4}, "ok"),
        (200, {"status": "rejected", "reason": "post-only would cross"}, "fail"),
        (400, {"error": "bad qty"}, "fail"),
        (503, {"error": "not serving (standby)"}, "fail"),
        (503, {"error": "trading is halted"}, "fail"),
        (503, {"error": "fenced: epoch moved"}, "fail"),
        (503, {"error": "timed out; outcome unknown"}, "info"),
        (503, {"error": "timed out before processing; not executed"}, "fail"),
        (503, {"error": "write failed; outcome unknown: conn reset"}, "info"),
        (502, None, "info"),
    ],
)
def test_answers_are_ok_fail_or_unknown(status: int, body: object, expected: str) -> None:
    text = json.dumps(body) if body is not None else "Bad Gateway"
    assert classify(ANSWER, status, text).kind == expected


def test_op_record_carries_the_client_order_id_and_attempt() -> None:
    order = {
        "client_order_id": "u1-3",
        "account": 5,
        "market": "BTC-PERP",
        "side": "buy",
        "type": "limit",
        "price": 1.5,
        "qty": 2.0,
    }
    record = op_record("info", 1, "order", order, 10.0, 2, error="timeout", seq=None)
    assert record["client_order_id"] == "u1-3" and record["attempt"] == 2
    assert record["order_type"] == "limit" and record["error"] == "timeout"
    assert "seq" not in record


def test_accounts_and_percentiles() -> None:
    assert parse_accounts("1-3,7") == [1, 2, 3, 7]
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert percentile([], 0.99) == 0.0
    window = Window(60.0)
    for ms, failed in ((10.0, False), (20.0, True), (30.0, False), (40.0, False)):
        window.add(ms, failed)
    figures = window.figures()
    assert figures["error_rate"] == 0.25 and figures["p99_ms"] == 40.0
