"""A SIGKILLed runner's leftovers are swept by ``tradechaos cleanup`` (and nothing else is)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from chaos.host import processes
from chaos.host.runs import RunFolder, load_state
from chaos.runner.cleanup import sweep_dead_runs

pytestmark = pytest.mark.integration

FAKE = Path(__file__).with_name("test_process_backend.py")

RUNNER = """
import json, sys
from pathlib import Path
from chaos.backends.process import ProcessBackend
from chaos.host.runs import RunFolder
from chaos.stackfile.definition import HealthCheck, LinkSpec, ServiceSpec, StackDefinition

fake, out, toxiproxy_url = sys.argv[1], sys.argv[2], sys.argv[3] or None
def svc(name, *flags):
    return ServiceSpec(name, ("{python}", fake, "serve", "--name", name, "--port", "{port}",
                              *flags), HealthCheck(timeout_s=15.0))
links = (LinkSpec("api-db", "api", "db"),) if toxiproxy_url else ()
definition = StackDefinition("crash", (svc("db", "--grandchild"), svc("api")), links)
run = RunFolder.create(out, "crash", "test")
backend = ProcessBackend(definition, run, toxiproxy_url=toxiproxy_url, embedded_proxy=False)
backend.start_stack()
(run.data_dir("db") / "pgdata").mkdir()
print(json.dumps({"run_dir": str(run.path), "db": backend.pid("db"), "api": backend.pid("api")}),
      flush=True)
sys.stdin.read()
"""


def _wait_dead(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while processes.proc_state(pid) not in (None, "Z"):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _grandchild(run_dir: Path) -> int:
    for line in (run_dir / "logs" / "db.log").read_text().splitlines():
        if line.startswith("grandchild "):
            return int(line.split()[1])
    raise AssertionError("no grandchild line in db.log")


def _cleanup(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaos", "cleanup", "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _crash_a_runner(out: Path, toxiproxy_url: str = "") -> dict[str, Any]:
    """Start a backend in a child runner, SIGKILL the runner, return what it had started."""
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(FAKE), str(out), toxiproxy_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert runner.stdout is not None
        started: dict[str, Any] = json.loads(runner.stdout.readline())
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
    return started


def test_sigkilled_runner_is_swept_and_logs_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    started = _crash_a_runner(out)
    run_dir = Path(started["run_dir"])
    leftover = _grandchild(run_dir)
    # the group leaders die with their runner (PR_SET_PDEATHSIG) ...
    assert _wait_dead(started["db"]) and _wait_dead(started["api"])
    # ... but what they spawned survives, and so do the data dir and the state
    assert processes.proc_state(leftover) not in (None, "Z")
    assert (run_dir / "data" / "db" / "pgdata").is_dir()
    assert load_state(run_dir).status == "running"
    (run_dir / "journal.json").write_text("{}")

    result = _cleanup(out)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"{run_dir.name}: killed db (process group {started['db']})" in lines
    assert any(line.endswith(f"removed data dir {run_dir / 'data' / 'db'}") for line in lines)
    assert _wait_dead(leftover)
    assert not (run_dir / "data").exists()
    assert (run_dir / "logs" / "db.log").exists() and (run_dir / "journal.json").exists()
    assert (run_dir / "history").is_dir()
    assert load_state(run_dir).status == "cleaned"

    again = _cleanup(out, "--json")
    assert json.loads(again.stdout)["removed"] == []
    assert _cleanup(out).stdout.strip() == "nothing to clean"


def test_reused_pid_and_live_runs_are_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        # a dead run that recorded the bystander's pid with another start time: a reused pid
        dead = RunFolder.create(out, "dead", "v")
        dead.record_process("db", bystander.pid, bystander.pid, 1)
        dead_state = dead.state()
        raw = json.loads(dead.state_path.read_text())
        raw["pid_start_time"] = (dead_state.pid_start_time or 0) + 12345  # runner "gone"
        dead.state_path.write_text(json.dumps(raw))
        # a live run (this process) with the bystander as its own process: not touched
        live = RunFolder.create(out, "live", "v")
        live.record_process("db", bystander.pid, bystander.pid, processes.start_time(bystander.pid))

        removed = sweep_dead_runs(out)

        assert removed == []
        assert bystander.poll() is None
        assert load_state(dead.path).status == "cleaned"
        assert load_state(live.path).status == "running"
    finally:
        bystander.kill()
        bystander.wait(timeout=5)
    assert os.path.isdir(out)


@pytest.mark.parametrize("kind", ["ours", "real"])
def test_proxies_of_a_dead_run_are_deleted_from_an_external_toxiproxy(
    tmp_path: Path, kind: str
) -> None:
    """``kind``: our proxy as an outside server, or the real Toxiproxy 2.12.0."""
    from proxy_servers import started

    from chaos.proxy.client import ToxiproxyClient

    out = tmp_path / "runs"
    with started(kind) as toxiproxy, ToxiproxyClient(toxiproxy.url) as client:
        client.create("someone-else", "127.0.0.1:0", "127.0.0.1:9")
        crashed = _crash_a_runner(out, toxiproxy.url)
        assert "api-db" in client.proxies()  # the runner died; its proxy stayed
        removed = sweep_dead_runs(out)
        run_id = Path(crashed["run_dir"]).name
        assert f"{run_id}: deleted proxy api-db on {toxiproxy.url}" in removed
        assert sorted(client.proxies()) == ["someone-else"]
