"""An incident experiment with its load as a Locust master and two workers (issue 18):
Cloudflare's edge outage (the clients->sequencer link flaps, replies are cut, clients
retry) run both ways meets its expectations (the vulnerable variant's retried orders are
duplicates, the mitigated one has none), the flapping link hits both workers' traffic, and
the client history holds ops from both workers, as journal.json and run.json count them.
A run interrupted mid-method stops every load process and leaves nothing to clean up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from chaos.host import processes as host_processes
from chaos.host.runs import load_state

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLOUDFLARE = ROOT / "experiments" / "incidents" / "cloudflare-2025-edge.yaml"


def with_workers(tmp_path: Path, workers: int) -> Path:
    text = CLOUDFLARE.read_text()
    load = "load: {users: 10, spawn_rate: 10}"
    assert load in text
    path = tmp_path / CLOUDFLARE.name
    path.write_text(text.replace(load, f"load: {{users: 10, spawn_rate: 10, workers: {workers}}}"))
    return path


def tradechaos(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaos", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cloudflare_with_two_load_workers_meets_its_expectations(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    proc = tradechaos("run", str(with_workers(tmp_path, 2)), "--jobs", "2", "--out", str(out),
                      "--json", "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    journals = {j["variant"]: j for j in json.loads(proc.stdout)}
    assert set(journals) == {"vulnerable", "mitigated"}
    verdicts = {
        name: {v["invariant"]: v["valid"] for v in journal["verdicts"]}
        for name, journal in journals.items()
    }
    assert verdicts["vulnerable"] == {"no_duplicate_orders": False, "no_lost_acked_orders": True}
    assert verdicts["mitigated"] == {"no_duplicate_orders": True, "no_lost_acked_orders": True}
    for journal in journals.values():
        run_dir = Path(journal["run_dir"])
        ops = read_jsonl(run_dir / "history" / "client.jsonl")
        by_worker = Counter(op["worker"] for op in ops if op["type"] == "invoke")
        assert set(by_worker) == {0, 1} and min(by_worker.values()) > 100, by_worker
        load = journal["load"]
        assert load["workers"] == 2
        assert load["ops_per_worker"] == {str(w): n for w, n in sorted(by_worker.items())}
        assert load["ops"] == sum(by_worker.values())
        run_json = json.loads((run_dir / "history" / "run.json").read_text())
        assert run_json["load"]["workers"] == 2
        assert run_json["load"]["ops_per_worker"] == load["ops_per_worker"]
        # the flapping clients link cut replies of both workers: unknown outcomes, retried
        flap = journal["timeline"][0]
        for worker in (0, 1):
            cut = [
                op
                for op in ops
                if op["worker"] == worker
                and op["type"] == "info"
                and flap["started"] <= op["time"] <= flap["ended"] + 1.0
            ]
            assert cut, f"worker {worker} saw no cut reply"
            retried = {(op["process"], op["client_order_id"]) for op in ops if op["attempt"] > 1}
            assert {(op["process"], op["client_order_id"]) for op in cut} & retried
        accounts = {w: {op["account"] for op in ops if op["worker"] == w} for w in (0, 1)}
        assert not accounts[0] & accounts[1], accounts


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_stops_every_load_process(tmp_path: Path, signum: int) -> None:
    out = tmp_path / "runs"
    path = with_workers(tmp_path, 2)
    runner = subprocess.Popen(
        [sys.executable, "-m", "chaos", "run", str(path), "--variant", "vulnerable",
         "--out", str(out), "--json", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        run_dir = wait_for_load(out, runner)
        recorded = {p.service: p.pid for p in load_state(run_dir).processes}
        load_pids = {s: pid for s, pid in recorded.items() if s.startswith("load")}
        assert set(load_pids) == {"load-master", "load-worker-0", "load-worker-1"}
        runner.send_signal(signum)
        stdout, stderr = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert runner.returncode == 130, stderr[-3000:]
    (journal,) = json.loads(stdout)
    assert journal["status"] == "interrupted"
    for pid in load_pids.values():
        assert host_processes.proc_state(pid) in (None, "Z"), pid
    assert not any(p.service.startswith("load") for p in load_state(run_dir).processes)
    ops = read_jsonl(run_dir / "history" / "client.jsonl")  # merged on the way out
    assert {op["worker"] for op in ops} == {0, 1}

    def ops_of(invoke: bool) -> Counter[tuple[int, str]]:
        keys = (
            (op["process"], op["client_order_id"])
            for op in ops
            if (op["type"] == "invoke") is invoke
        )
        return Counter(keys)

    assert ops_of(True) == ops_of(False)  # every operation completed (or was recorded interrupted)
    cleanup = tradechaos("cleanup", "--out", str(out), timeout=60)
    assert cleanup.returncode == 0 and cleanup.stdout.strip() == "nothing to clean", cleanup.stdout


def wait_for_load(out: Path, runner: subprocess.Popen[str], timeout_s: float = 90.0) -> Path:
    """The run folder once both workers are trading (ops in each worker's file)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert runner.poll() is None, runner.communicate()[1][-3000:]
        for history in out.glob("*/history"):
            files = [history / f"client.{w}.jsonl" for w in (0, 1)]
            if all(f.exists() and f.stat().st_size > 2000 for f in files):
                return history.parent
        time.sleep(0.2)
    raise AssertionError(f"the load did not start within {timeout_s}s")
