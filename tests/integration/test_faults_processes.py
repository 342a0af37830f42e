"""Fault families on real processes behind the real (embedded) proxy, with a small stack of
fake services (this file is also the fake service: ``python THIS serve --name N --port P``).

Each test proves the effect (latency measured through the link, refused connections, a
new pid, a frozen counter, exactly one site's processes gone) and that heal leaves every
link clean and every service running.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

FAKE = Path(__file__).resolve()


def _serve(argv: list[str]) -> None:
    import argparse
    import http.server
    import os

    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    ticks = [0]

    def tick() -> None:  # progress that stops when the process is stopped (SIGSTOP)
        while True:
            ticks[0] += 1
            time.sleep(0.01)

    threading.Thread(target=tick, daemon=True).start()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"name": args.name, "pid": os.getpid(), "ticks": ticks[0]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    _serve(sys.argv[2:])
    raise SystemExit(0)

import statistics  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from stack_harness import Step, fault_context, process_backend  # noqa: E402

from chaos.backends.process import ProcessBackend  # noqa: E402
from chaos.faults.base import FaultContext  # noqa: E402
from chaos.faults.build import build  # noqa: E402
from chaos.history.recorder import Recorder  # noqa: E402
from chaos.stackfile.definition import HealthCheck, LinkSpec, ServiceSpec, StackDefinition  # noqa: E402

pytestmark = pytest.mark.integration


def _fake(name: str, site: str, depends_on: tuple[str, ...] = ()) -> ServiceSpec:
    command = ("{python}", str(FAKE), "serve", "--name", name, "--port", "{port}")
    return ServiceSpec(
        name, command, HealthCheck(timeout_s=15.0), depends_on, site, stop_grace_s=2.0
    )


DEFINITION = StackDefinition(
    "fake-trading",
    (_fake("db", "core"), _fake("sequencer", "a", ("db",)), _fake("oracle", "a", ("db",))),
    (
        LinkSpec("clients-sequencer", "clients", "sequencer"),
        LinkSpec("sequencer-db", "sequencer", "db"),
        LinkSpec("oracle-db", "oracle", "db"),
        LinkSpec("clients-db", "clients", "db"),
    ),
)


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessBackend]:
    with process_backend(
        tmp_path_factory.mktemp("runs"), "faults", DEFINITION, {"seed": "1"}
    ) as be:
        yield be


@pytest.fixture
def ctx(backend: ProcessBackend, tmp_path: Path) -> Iterator[FaultContext]:
    with fault_context(backend, DEFINITION, tmp_path / "history", 1) as context:
        yield context
    assert_clean(context)


def assert_clean(ctx: FaultContext) -> None:
    """Every link enabled without toxics, every service running and answering."""
    for link in DEFINITION.links:
        assert ctx.proxy.get(link.name)["enabled"] is True, link.name
        assert list(ctx.proxy.toxics(link.name)) == [], link.name
    for spec in DEFINITION.services:
        assert ctx.backend.is_running(spec.name), spec.name
        assert fetch(ctx.backend.endpoint(spec.name).url)["name"] == spec.name


def fetch(url: str, timeout: float = 3.0) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/", timeout=timeout) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def link_latency_ms(ctx: FaultContext, link: str, n: int = 5) -> float:
    url = ctx.backend.link_endpoint(link).url
    samples = []
    for _ in range(n):
        began = time.monotonic()
        fetch(url)
        samples.append((time.monotonic() - began) * 1000)
    return statistics.median(samples)


def records(ctx: FaultContext, phase: str) -> list[dict[str, Any]]:
    recorder = ctx.recorder
    assert isinstance(recorder, Recorder)  # the harness's fault_context records into one
    path = recorder.history_dir / "faults.jsonl"
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["phase"] == phase]


def test_latency_raises_the_measured_latency_of_that_link_only(ctx: FaultContext) -> None:
    before = link_latency_ms(ctx, "clients-sequencer")
    fault = build(Step("latency", "clients-sequencer", {"latency": "150ms"}), ctx)
    try:
        fault.inject()
        during = link_latency_ms(ctx, "clients-sequencer")
        other = link_latency_ms(ctx, "clients-db")
    finally:
        fault.heal()
    after = link_latency_ms(ctx, "clients-sequencer")
    # both directions delayed: at least 2 x 150 ms per request/response
    assert during >= before + 290, (before, during)
    assert other < 150 and after < 150, (other, after)
    evidence = records(ctx, "evidence")[0]["evidence"]
    assert len(evidence["after"]["clients-sequencer"]["toxics"]) == 2


def test_down_refuses_connections_until_healed(ctx: FaultContext) -> None:
    url = ctx.backend.link_endpoint("clients-sequencer").url
    fault = build(Step("down", "sequencer"), ctx)  # every link of the sequencer
    try:
        fault.inject()
        with pytest.raises(urllib.error.URLError):
            fetch(url, timeout=1.0)
        assert fetch(ctx.backend.link_endpoint("oracle-db").url)["name"] == "db"
    finally:
        fault.heal()
    assert fetch(url)["name"] == "sequencer"


def test_partition_cuts_every_link_between_the_sets(ctx: FaultContext) -> None:
    fault = build(Step("partition", None, {"between": ["sequencer", "oracle"], "and": ["db"]}), ctx)
    try:
        fault.inject()
        cut = {lk.name for lk in DEFINITION.links if not ctx.proxy.get(lk.name)["enabled"]}
    finally:
        fault.heal()
    assert cut == {"sequencer-db", "oracle-db"}


def test_restart_changes_the_pid_and_comes_back_healthy(ctx: FaultContext) -> None:
    before = ctx.backend.pid("oracle")
    fault = build(Step("restart", "oracle", {"downtime": "200ms"}), ctx)
    fault.inject()
    fault.heal()
    after = fetch(ctx.backend.endpoint("oracle").url)["pid"]
    assert after == ctx.backend.pid("oracle") and after != before
    assert records(ctx, "evidence")[0]["evidence"]["pid_changed"] == {"oracle": True}


def test_pause_stops_progress_and_resume_restores_it(ctx: FaultContext) -> None:
    url = ctx.backend.endpoint("db").url
    fault = build(Step("pause", "db"), ctx)
    fault.inject()
    try:
        with pytest.raises(OSError):  # a stopped server does not answer
            fetch(url, timeout=0.5)
        assert records(ctx, "evidence")[0]["evidence"]["states"] == {"db": "T"}
    finally:
        fault.heal()
    first = fetch(url)["ticks"]
    time.sleep(0.3)
    assert fetch(url)["ticks"] > first


def test_node_loss_kills_exactly_the_sites_processes(ctx: FaultContext) -> None:
    db_pid = ctx.backend.pid("db")
    site = {s: ctx.backend.pid(s) for s in ("sequencer", "oracle")}
    fault = build(
        Step(
            "node_loss", "a", {"ramp": "300ms", "steps": 3, "max_latency": "100ms", "min_cpu": 0.5}
        ),
        ctx,
    )
    try:
        fault.inject()
        assert not ctx.backend.is_running("sequencer") and not ctx.backend.is_running("oracle")
        assert ctx.backend.pid("db") == db_pid
        assert not ctx.proxy.get("clients-sequencer")["enabled"]
        assert ctx.proxy.get("clients-db")["enabled"]
        ramp = [r["evidence"] for r in records(ctx, "evidence") if "ramp_step" in r["evidence"]]
        assert [r["latency_ms"] for r in ramp] == [33, 67, 100]
    finally:
        fault.heal()
    assert all(ctx.backend.pid(s) not in (None, pid) for s, pid in site.items())


def test_heal_in_the_middle_of_a_procedure_leaves_everything_clean(ctx: FaultContext) -> None:
    fault = build(Step("node_loss", "a", {"ramp": "20s", "max_latency": "200ms"}), ctx)
    worker = threading.Thread(target=fault.inject)
    worker.start()
    deadline = time.monotonic() + 10
    while not list(ctx.proxy.toxics("oracle-db")) and time.monotonic() < deadline:
        time.sleep(0.02)
    fault.heal()  # an interrupted run: cancel the ramp, undo it
    worker.join(10)
    assert not worker.is_alive()
    fault.heal()  # idempotent
