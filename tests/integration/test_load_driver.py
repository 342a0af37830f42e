"""The load driver runs real Locust in its own process against a small fake sequencer
(an HTTP server in this test): rate reached, clean stop, every request accounted for,
unknown outcomes retried with the same client_order_id, failover to a standby."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chaos.load.driver import LoadDriver, LoadTarget
from chaos.stackfile import reference_stack_path

pytestmark = pytest.mark.integration


class FakeSequencer:
    """Accepts orders; every ``unknown_every``-th order is taken but answered 503 'outcome
    unknown'; with ``serving=False`` answers 503 'not serving (standby)'."""

    def __init__(self, unknown_every: int = 0, serving: bool = True) -> None:
        self.orders: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.unknown_every = unknown_every
        self.serving = serving
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def answer(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                markets = {
                    "BTC-PERP": {"oracle_price": 60000.0},
                    "ETH-PERP": {"oracle_price": 3000.0},
                }
                self.answer(200, {"markets": markets, "mode": "normal"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if not fake.serving:
                    self.answer(503, {"error": "not serving (standby)"})
                    return
                with fake.lock:
                    fake.orders.append(body)
                    n = len(fake.orders)
                if fake.unknown_every and n % fake.unknown_every == 0:
                    self.answer(503, {"error": "write failed; outcome unknown: boom"})
                else:
                    self.answer(200, {"status": "accepted", "seq": n, "fills": []})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sequencer() -> Iterator[FakeSequencer]:
    fake = FakeSequencer(unknown_every=7)
    yield fake
    fake.close()


def _ops(history: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (history / "client.jsonl").read_text().splitlines()]


def _wait_for(predicate: Any, timeout_s: float) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _reached(sample: Any) -> bool:
    """Six users spawned, at least 10 orders/s over the window, 150 requests in all."""
    return bool(sample.users == 6 and sample.rps >= 10 and sample.requests >= 150)


def test_load_reaches_its_rate_and_accounts_for_every_request(
    tmp_path: Path, sequencer: FakeSequencer
) -> None:
    history = tmp_path / "history"
    target = LoadTarget(reference_stack_path(), sequencer.url)
    driver = LoadDriver(target, history, 7, 6, 6, tmp_path / "load.log", range(1, 7))
    with driver:
        assert _wait_for(lambda: _reached(driver.sample()), 30), driver.sample()
    assert driver.exit_code == 0
    final = driver.final_stats()
    assert final["final"] is True and final["requests"] > 0
    accounting = driver.accounting()
    assert accounting.matches, accounting.describe()
    ops = _ops(history)
    # each 503 'outcome unknown' is info and is retried with the same client_order_id
    infos = [op for op in ops if op["type"] == "info"]
    assert infos
    retried = {(op["process"], op["client_order_id"]) for op in ops if op["attempt"] > 1}
    assert {(op["process"], op["client_order_id"]) for op in infos} & retried
    load = [json.loads(line) for line in (history / "load.jsonl").read_text().splitlines()]
    assert load[-1]["final"] is True and load[-1]["requests"] == final["requests"]


def test_users_fail_over_to_the_standby(tmp_path: Path) -> None:
    primary = FakeSequencer(serving=False)
    standby = FakeSequencer()
    try:
        target = LoadTarget(reference_stack_path(), primary.url, standby.url)
        driver = LoadDriver(target, tmp_path / "h", 1, 2, 2, tmp_path / "l.log")
        with driver:
            assert _wait_for(lambda: len(standby.orders) >= 10, 20)
        ops = _ops(tmp_path / "h")
        assert any(op["type"] == "fail" and "not serving" in op.get("error", "") for op in ops)
        assert sum(op["type"] == "ok" for op in ops) >= 10
        assert driver.accounting().matches
    finally:
        primary.close()
        standby.close()
