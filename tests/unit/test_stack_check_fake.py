"""``tradechaos stack check``'s exercises against a fake exchange (an HTTP server in this
process): each binding OK when the stack answers as its stack file says, and for each kind
of mistake a FAIL with what was sent, what came back and the key to fix. The real stacks
are tests/integration/test_stack_check.py."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chaos.bindings.exercise import exercise
from chaos.bindings.exercise_base import State
from chaos.bindings.exercise_history import _judge_source
from chaos.bindings.places import Places
from chaos.runner.stackcheck import CheckReport, render
from chaos.stackfile import load, resolve

STACK = """\
name: fake
markets:
  BTC-PERP: {initial_price: 50000, tick: 0.5}
services:
  api: {command: [sleep, "60"], health: {tcp: true}}
links: [clients->api]
bindings:
  orders:
    via: clients->api
    submit: {POST: /orders, body: {cid: "{client_order_id}", acct: "{account}",
             px: "{price|str}", sz: "{qty|str}"}}
    cancel: {POST: /orders/cancel, body: {cid: "{client_order_id}"}}
    answer:
      ok: [{status: 200, json: {$.status: [accepted, cancelled]}}]
      fail: [{status: 2xx}, {status: 4xx}]
      seq: $.seq
      reason: [$.why]
  trading_mode:
    services: [api]
    set: {PUT: /mode, body: {status: "{mode}"}}
    get: {GET: /mode, mode: $.status}
    modes: {normal: OPEN, cancel_only: CANCEL_ONLY, halt: HALTED}
"""


class FakeExchange(BaseHTTPRequestHandler):
    mode = "OPEN"
    answers: dict[str, tuple[int, Any]] = {}
    seen: list[tuple[str, str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def do_GET(self) -> None:
        self._reply(200, {"status": FakeExchange.mode})

    def do_PUT(self) -> None:
        FakeExchange.mode = self._body()["status"]
        self._reply(200, {"status": FakeExchange.mode})

    def do_POST(self) -> None:
        body = self._body()
        FakeExchange.seen.append(("POST", self.path, body))
        default = {"/orders": (200, {"status": "accepted", "seq": 7}),
                   "/orders/cancel": (200, {"status": "cancelled"})}  # fmt: skip
        status, answer = FakeExchange.answers.get(self.path) or default.get(
            self.path, (404, {"why": "no such route"}))  # fmt: skip
        self._reply(status, answer)


class Locator:
    def __init__(self, port: int) -> None:
        self.port = port

    def endpoint(self, service: str) -> str:
        return f"127.0.0.1:{self.port}"

    def link_endpoint(self, link: str) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def server() -> Iterator[int]:
    FakeExchange.mode, FakeExchange.answers, FakeExchange.seen = "OPEN", {}, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeExchange)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def check(tmp_path: Path, port: int, text: str = STACK) -> dict[str, Any]:
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    definition = resolve(load(path))
    results = exercise(definition, Places(definition, Locator(port)), lambda _s: True, tmp_path)
    return {r.binding: r for r in results}


def test_every_binding_holds_on_a_stack_that_answers_as_its_file_says(
    tmp_path: Path, server: int
) -> None:
    found = check(tmp_path, server)
    assert [found[b].status for b in ("orders.submit", "orders.cancel", "trading_mode.get",
                                      "trading_mode.set")] == ["OK"] * 4  # fmt: skip
    assert found["trading_mode.get"].detail == "api: normal"
    assert found["trading_mode.set"].detail == "set cancel_only and back to normal"
    assert FakeExchange.mode == "OPEN"  # set back
    _, path, body = FakeExchange.seen[0]
    assert path == "/orders" and body["px"] == "49000" and body["sz"] == "0.01"  # 2% under
    assert {found[b].status for b in ("accounts.fund", "db_upgrade", "history")} == {"SKIP"}


@pytest.mark.parametrize(
    ("answer", "fix", "got"),
    [
        ((400, {"why": "bad field px"}), "bindings.orders.submit (body)", "HTTP 400"),
        ((503, {"why": "down"}), "bindings.orders.submit", "HTTP 503"),
        ((200, {"status": "rejected", "why": "price band"}),
         "bindings.orders.answer (or the order was refused: see the reason)", "HTTP 200"),
    ],
)  # fmt: skip
def test_a_refused_order_names_what_was_sent_what_came_back_and_the_key(
    tmp_path: Path, server: int, answer: tuple[int, Any], fix: str, got: str
) -> None:
    FakeExchange.answers["/orders"] = answer
    found = check(tmp_path, server)
    submit = found["orders.submit"]
    assert (submit.status, submit.fix) == ("FAIL", fix)
    assert submit.sent.startswith('POST /orders {"cid": "stack-check-')
    assert submit.got.startswith(got)
    assert found["orders.cancel"].status == "SKIP"


def test_a_wrong_path_is_named(tmp_path: Path, server: int) -> None:
    found = check(tmp_path, server, STACK.replace("POST: /orders,", "POST: /orderz,"))
    submit = found["orders.submit"]
    assert submit.fix == "bindings.orders.submit (path or method)"
    assert submit.got == 'HTTP 404 {"why": "no such route"}'


def test_a_stack_that_is_not_there_names_the_link(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    found = check(tmp_path, port)
    assert found["orders.submit"].fix == "bindings.orders.via (is its server up?)"
    assert found["trading_mode.get"].fix == "bindings.trading_mode.get"


def test_a_mode_the_map_lacks_is_named(tmp_path: Path, server: int) -> None:
    FakeExchange.mode = "REDUCE_ONLY"
    found = check(tmp_path, server)
    assert found["trading_mode.get"].status == "FAIL"
    assert found["trading_mode.get"].fix == "bindings.trading_mode.modes"


def test_history_records_are_judged_on_their_fields_and_the_checks_own_order() -> None:
    state = State(accepted=True, client_order_id="stack-check-1")
    base = {"seq": 1, "epoch": 1, "sequencer": "a", "time": 1.0}
    lacking = _judge_source("events", [{**base, "kind": "deposit", "account": 1}], state)
    assert lacking.status == "FAIL" and lacking.detail == "a deposit record lacks amount"
    assert lacking.fix == "bindings.history.events (the query's columns)"
    records = [{**base, "kind": "deposit", "account": 1, "amount": 5.0}]
    missing = _judge_source("events", records, state)
    assert missing.status == "FAIL" and "not the order stack check submitted" in missing.detail
    order = {**base, "seq": 2, "kind": "order_accepted", "client_order_id": "stack-check-1",
             "order_id": 9, "account": 1, "market": "BTC-PERP", "side": "buy",
             "order_type": "limit", "qty": 0.01}  # fmt: skip
    held = _judge_source("events", [*records, order], state)
    assert (held.status, held.detail) == ("OK", "2 records (deposit 1, order_accepted 1)")


def test_the_table_says_what_to_fix(tmp_path: Path, server: int) -> None:
    FakeExchange.answers["/orders"] = (400, {"why": "bad field px"})
    results = list(check(tmp_path, server).values())
    text = render(CheckReport("stack.yaml", False, tmp_path, results))
    lines = text.splitlines()
    assert lines[0].split() == ["binding", "result", "detail"]
    row = next(i for i, line in enumerate(lines) if line.startswith("orders.submit"))
    assert "FAIL" in lines[row]
    assert lines[row + 1].strip().startswith("sent: POST /orders")
    assert lines[row + 2].strip() == 'got:  HTTP 400 {"why": "bad field px"}'
    assert lines[row + 3].strip() == "fix:  bindings.orders.submit (body)"
    summary = "stack check of stack.yaml: some bindings FAIL (2 OK, 1 FAIL, 4 SKIP)"
    assert lines[-1].startswith(summary)
