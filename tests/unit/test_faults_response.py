"""The response steps (chaos.faults.response) against two scripted HTTP servers standing in
for a leader and a standby: each step sends its binding's request straight to the first
service that takes it, records the answer as its evidence (read back by
chaos.history.response), hands a snapshot's answer to a later rollback, and fails with one
sentence when the stack refuses or says it did not do it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chaos.backends.base import Endpoint
from chaos.bindings.response import NotTaken, Refused
from chaos.errors import FaultError
from chaos.experiment.model import Step
from chaos.faults.base import FaultContext
from chaos.faults.build import build
from chaos.history.events import FaultRecord
from chaos.history.response import read_response
from chaos.stackfile import load, reference_stack_path, resolve

Answer = tuple[int, dict[str, Any]]
Script = dict[str, Callable[[dict[str, Any]], Answer]]


@dataclass
class FakeService:
    """An HTTP server answering POSTs from ``script`` (path -> body -> (status, JSON))."""

    script: Script = field(default_factory=dict)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.do_POST()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                service.received.append((self.path, body))
                handler = service.script.get(self.path)
                status, answer = handler(body) if handler else (404, {"error": "no route"})
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", int(self.server.server_address[1]))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Backend:
    def __init__(self, services: dict[str, FakeService]) -> None:
        self.services = services
        self.running = set(services)
        self.links: dict[str, FakeService] = {}  # what listens behind a link

    def endpoint(self, service: str) -> Endpoint:
        return self.services[service].endpoint

    def link_endpoint(self, link: str) -> Endpoint:
        if link not in self.links:
            raise AssertionError(f"a response step went through link {link}")
        return self.links[link].endpoint

    def is_running(self, service: str) -> bool:
        return service in self.running


class Sink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []  # faults.jsonl
        self.client_ops: list[dict[str, Any]] = []  # client.jsonl

    def record(self, stream: str, obj: dict[str, Any]) -> None:
        assert stream in ("faults", "client"), stream
        (self.records if stream == "faults" else self.client_ops).append(obj)

    def evidence(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["phase"] == "evidence"]


def standby(_body: dict[str, Any]) -> Answer:
    return 503, {"error": "not leader (standby)"}


SNAPSHOT = {"status": "accepted", "snapshot": "pre", "seq": 41, "time": 100.0,
            "chain_height": 7, "chain_last_seq": 39, "chain_hash": "ab" * 32,
            "market_state": []}  # fmt: skip


def rolled_back(chain: dict[str, Any]) -> Callable[[dict[str, Any]], Answer]:
    def answer(body: dict[str, Any]) -> Answer:
        return 200, {"status": "accepted", "rollback": 3, "snapshot": body.get("snapshot"),
                     "to_seq": 41, "from_seq": 90, "chain_height": 7, "time": 101.0,
                     "rolled_back": {"events": 49, "orders": [{"seq": 45, "client_order_id":
                                     "c-1", "account": 5}]},
                     "mode": "normal", "at_seq": 41,
                     "accounts": {"5": {"collateral": 100000.0, "positions": {}}},
                     "chain": chain}  # fmt: skip

    return answer


@pytest.fixture
def stack() -> Iterator[tuple[dict[str, FakeService], Backend, Sink, FaultContext]]:
    definition = resolve(load(reference_stack_path()), {"standby": True})
    services = {"sequencer": FakeService({p: standby for p in ("/admin/snapshot",
                "/admin/rollback", "/admin/cancel_all", "/admin/replay")}),
                "sequencer_b": FakeService()}  # fmt: skip
    backend = Backend(services)
    sink = Sink()
    ctx = FaultContext(backend, proxy=None, recorder=sink, definition=definition)  # type: ignore[arg-type]
    try:
        yield services, backend, sink, ctx
    finally:
        for service in services.values():
            service.close()


def step(action: str, index: int = 0, step_id: str | None = None, **params: Any) -> Step:
    return Step(id=step_id or f"{action}-{index}", index=index, action=action, target=None,
                params=params, at_s=0.0, fault=False)  # fmt: skip


def test_a_snapshot_then_a_rollback_to_it_through_the_standby_fallback(stack: Any) -> None:
    services, _backend, sink, ctx = stack
    leader = services["sequencer_b"]
    leader.script["/admin/snapshot"] = lambda body: (200, {**SNAPSHOT, "snapshot": body["label"]})
    leader.script["/admin/rollback"] = rolled_back({"rolled_back": True, "height": 7})
    build(step("snapshot", step_id="pre"), ctx).inject()
    build(step("chain_rollback", 1, step_id="back", to="pre", wait=12), ctx).inject()
    # the first service said 503 (a standby): each request went on to the next one
    assert [p for p, _ in services["sequencer"].received] == ["/admin/snapshot", "/admin/rollback"]
    assert leader.received == [
        ("/admin/snapshot", {"label": "pre"}),
        ("/admin/rollback", {"snapshot": "pre", "seq": 41, "chain_height": 7, "wait_s": 12.0}),
    ]
    snapshot, rollback = sink.evidence()
    assert snapshot["action"] == "snapshot" and snapshot["evidence"]["service"] == "sequencer_b"
    assert snapshot["evidence"]["seq"] == 41 and snapshot["evidence"]["chain_hash"] == "ab" * 32
    assert rollback["evidence"]["chain"] == {"rolled_back": True, "height": 7}
    assert ctx.runbook["snapshot:pre"]["seq"] == 41
    assert ctx.runbook["rollback:back"]["rollback"] == 3
    # the records are those the recovered-state checkers read
    log = read_response(FaultRecord.from_json(r) for r in sink.records)
    assert log.problems == []
    assert [(s.label, s.seq, s.chain_height) for s in log.snapshots] == [("pre", 41, 7)]
    (back,) = log.rollbacks
    assert (back.snapshot, back.to_seq, back.chain_rolled_back) == ("pre", 41, True)
    assert back.at_seq == 41
    assert back.reverted_orders[0]["client_order_id"] == "c-1"
    assert log.state_reports[0].accounts == {"5": {"collateral": 100000.0, "positions": {}}}


def test_a_rollback_to_a_seq_sends_only_the_seq_and_height(stack: Any) -> None:
    services, _backend, _sink, ctx = stack
    services["sequencer_b"].script["/admin/rollback"] = rolled_back({"rolled_back": True})
    build(step("chain_rollback", seq=41), ctx).inject()
    assert services["sequencer_b"].received == [("/admin/rollback", {"seq": 41, "wait_s": 10.0})]


def test_a_chain_that_was_not_rolled_back_fails_the_step_after_recording_it(stack: Any) -> None:
    services, _backend, sink, ctx = stack
    services["sequencer_b"].script["/admin/rollback"] = rolled_back(
        {"rolled_back": False, "pending": True, "error": "the writer has not rolled the chain "
         "back within 1 s"}
    )  # fmt: skip
    with pytest.raises(FaultError, match=r"^the stack rolled its log back to seq 41 but not its "
                       r"chain: the writer has not rolled the chain back within 1 s$"):  # fmt: skip
        build(step("chain_rollback", seq=41, wait=1), ctx).inject()
    (record,) = sink.evidence()
    assert record["evidence"]["chain"]["rolled_back"] is False


def test_a_rollback_to_a_snapshot_that_was_not_taken_fails_before_sending(stack: Any) -> None:
    services, _backend, sink, ctx = stack
    with pytest.raises(FaultError, match="snapshot 'pre' has no recorded answer"):
        build(step("chain_rollback", to="pre"), ctx).inject()
    assert services["sequencer_b"].received == [] and sink.evidence() == []


def test_a_refusal_stops_at_the_service_that_refused(stack: Any) -> None:
    services, _backend, sink, ctx = stack
    services["sequencer"].script["/admin/cancel_all"] = lambda body: (
        400, {"error": "except: unknown trailing"})  # fmt: skip
    with pytest.raises(Refused, match=r"sequencer refused cancel_all \(POST /admin/cancel_all "
                       r".*\): HTTP 400 except: unknown trailing"):  # fmt: skip
        params: dict[str, Any] = {"except": ["take_profit"]}  # `except` is a keyword
        build(step("cancel_all", **params), ctx).inject()
    assert services["sequencer_b"].received == [] and sink.evidence() == []


def test_no_running_service_is_named_service_by_service(stack: Any) -> None:
    _services, backend, _sink, ctx = stack
    backend.running = {"sequencer"}
    with pytest.raises(
        NotTaken,
        match=r"no service of bindings.response took snapshot: "
        r"sequencer: HTTP 503 not leader \(standby\); sequencer_b: not running",
    ):
        build(step("snapshot"), ctx).inject()


def test_cancel_all_sends_its_exceptions_as_a_list_and_drops_what_is_not_given(
    stack: Any,
) -> None:
    services, _backend, sink, ctx = stack
    kept = [{"order_id": 9, "order_type": "stop_loss", "account": 3}]
    services["sequencer_b"].script["/admin/cancel_all"] = lambda body: (
        200,
        {
            "status": "accepted",
            "time": 5.0,
            "except": body["except"],
            "at_seq": 10,
            "last_seq": 12,
            "cancelled": 2,
            "kept": 1,
            "cancelled_orders": [],
            "kept_orders": kept,
        },
    )
    params: dict[str, Any] = {"except": ["take_profit", "stop_loss"], "accounts": [3]}
    build(step("cancel_all", **params), ctx).inject()
    assert services["sequencer_b"].received == [("/admin/cancel_all", {
        "except": ["take_profit", "stop_loss"], "accounts": [3], "source": "runbook"})]  # fmt: skip
    log = read_response(FaultRecord.from_json(r) for r in sink.records)
    assert log.cancel_alls[0].excepted == ("take_profit", "stop_loss")
    assert log.cancel_alls[0].kept == tuple(kept) and log.cancel_alls[0].accounts == frozenset({3})


def test_access_steps_fail_when_the_stack_reports_the_other_state(stack: Any) -> None:
    services, _backend, sink, ctx = stack
    services["sequencer"].script["/admin/disable_access"] = lambda body: (
        200, {"status": "accepted", "enabled": False, "reason": body.get("reason"),
              "at_seq": 4, "time": 2.0})  # fmt: skip
    services["sequencer"].script["/admin/enable_access"] = lambda body: (
        200, {"status": "accepted", "enabled": False, "at_seq": 4, "time": 3.0})  # fmt: skip
    build(step("disable_access", reason="incident"), ctx).inject()
    assert services["sequencer"].received == [("/admin/disable_access", {"reason": "incident"})]
    with pytest.raises(FaultError, match="enable_access: the stack answered enabled=False"):
        build(step("enable_access", 1), ctx).inject()
    log = read_response(FaultRecord.from_json(r) for r in sink.records)
    assert log.access == [(2.0, False), (3.0, True)]


def test_a_replay_names_the_stacks_id_of_an_earlier_rollback_step(stack: Any) -> None:
    services, _backend, _sink, ctx = stack
    leader = services["sequencer_b"]
    leader.script["/admin/rollback"] = rolled_back({"rolled_back": True})
    leader.script["/admin/replay"] = lambda body: (200, {
        "status": "accepted", "rollback": body.get("rollback"), "time": 9.0, "replayed": 1,
        "results": [], "at_seq": 44, "accounts": {}})  # fmt: skip
    build(step("chain_rollback", step_id="back", seq=41), ctx).inject()
    build(step("replay", 1, kinds=["deposit"], rollback="back"), ctx).inject()
    assert leader.received[-1] == ("/admin/replay", {"kinds": ["deposit"], "rollback": 3})


def test_heal_undoes_nothing_and_records_the_end(stack: Any) -> None:
    services, _backend, sink, ctx = stack
    services["sequencer_b"].script["/admin/snapshot"] = lambda body: (200, SNAPSHOT)
    fault = build(step("snapshot", step_id="pre"), ctx)
    fault.inject()
    fault.heal()
    assert [r["phase"] for r in sink.records] == ["begin", "evidence", "end"]
    assert sink.records[-1]["evidence"] == {}


def test_an_access_change_is_retried_while_the_leader_cannot_write_yet(stack: Any) -> None:
    services, backend, sink, ctx = stack
    backend.running = {"sequencer"}
    answers = iter(
        [
            (503, {"error": "write failed; outcome unknown: connection closed"}),
            (200, {"status": "accepted", "enabled": False, "at_seq": 4, "time": 2.0}),
        ]
    )
    services["sequencer"].script["/admin/disable_access"] = lambda body: next(answers)
    build(step("disable_access"), ctx).inject()
    assert [p for p, _ in services["sequencer"].received] == ["/admin/disable_access"] * 2
    assert sink.evidence()[0]["evidence"]["enabled"] is False


def test_trigger_orders_wait_on_the_side_of_the_mark_their_type_and_side_say(stack: Any) -> None:
    """Through the orders link like any trader: a sell stop-loss and a buy take-profit below
    the mark, a sell take-profit and a buy stop-loss above it, each a client op."""
    services, backend, sink, ctx = stack
    venue = FakeService()
    backend.links["clients-sequencer"] = venue
    try:
        venue.script["/markets"] = lambda body: (200, {"mode": "normal", "markets": {
            "BTC-PERP": {"oracle_price": 60000.0}}})  # fmt: skip
        seqs = iter(range(100, 200))
        venue.script["/orders"] = lambda body: (200, {"status": "accepted", "seq": next(seqs),
                                                      "order_id": 1, "fills": []})  # fmt: skip
        build(step("trigger_orders", count=4, accounts=[31, 32], market="BTC-PERP",
                   distance_pct=10), ctx).inject()  # fmt: skip
    finally:
        venue.close()
    orders = [body for path, body in venue.received if path == "/orders"]
    placed = {(o["type"], o["side"]): (o["trigger_price"], o["account"]) for o in orders}
    assert placed == {
        ("take_profit", "sell"): (66000.0, 31),
        ("stop_loss", "sell"): (54000.0, 32),
        ("take_profit", "buy"): (54000.0, 31),
        ("stop_loss", "buy"): (66000.0, 32),
    }
    assert all("price" not in o and "post_only" not in o for o in orders)
    assert [op["type"] for op in sink.client_ops] == ["invoke", "ok"] * 4
    assert {op["process"] for op in sink.client_ops} == {800_031, 800_032}
    assert all("adversary" not in op for op in sink.client_ops)
    (evidence,) = sink.evidence()
    assert evidence["evidence"]["sent"] == {"ok": 4, "fail": 0, "info": 0}
    assert services["sequencer"].received == []
