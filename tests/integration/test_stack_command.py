"""``tradechaos stack up --detach | status | down`` and foreground ``stack up`` end to end,
on the reference stack; plus the cold start-to-healthy figure (median of 5, printed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaos.backends.control import ControlClient
from chaos.host import ports, processes
from chaos.host.runs import load_state, read_current_stack

pytestmark = pytest.mark.integration


def tradechaos(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaos", *args], capture_output=True, text=True, timeout=timeout
    )


def _gone(pids: list[int], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while any(processes.proc_state(pid) not in (None, "Z") for pid in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def test_detached_stack_up_status_down(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    assert tradechaos("stack", "status", "--out", str(out)).returncode == 2

    up = tradechaos("stack", "up", "--detach", "--seed", "3", "--out", str(out))
    assert up.returncode == 0, up.stderr + up.stdout
    stack = read_current_stack(out)
    assert stack is not None and stack.owner_alive()
    assert "sequencer" in up.stdout and stack.toxiproxy_url in up.stdout
    assert set(stack.services) >= {"db", "feeds", "oracle", "sequencer", "risk", "writer"}
    assert "clients-sequencer" in stack.links
    again = tradechaos("stack", "up", "--detach", "--out", str(out))
    assert again.returncode == 2 and "already up" in again.stderr

    status = tradechaos("stack", "status", "--json", "--out", str(out))
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert report["healthy"] is True
    assert all(s["healthy"] for s in report["services"].values())

    victim = stack.services["risk"].pid
    assert victim is not None
    os.killpg(victim, signal.SIGKILL)
    assert _gone([victim])
    degraded = tradechaos("stack", "status", "--out", str(out))
    assert degraded.returncode == 3
    assert "down (no process)" in degraded.stdout
    # another process asks the owner to bring it back (what `tradechaos fault` does)
    assert stack.control_url is not None
    new_pid = ControlClient(stack.control_url).call("risk", "start", timeout_s=30)
    assert new_pid not in (None, victim)
    deadline = time.monotonic() + 5
    while (current := read_current_stack(out)) is None or current.services["risk"].pid != new_pid:
        assert time.monotonic() < deadline, "the stack file was not updated with the new pid"
        time.sleep(0.1)
    assert tradechaos("stack", "status", "--out", str(out)).returncode == 0
    stack = current

    pids = [s.pid for s in stack.services.values() if s.pid is not None] + [stack.pid]
    listeners = [int(s.endpoint.rsplit(":", 1)[1]) for s in stack.services.values()]
    down = tradechaos("stack", "down", "--out", str(out))
    assert down.returncode == 0, down.stderr
    assert _gone(pids)
    assert not any(ports.is_listening(port) for port in listeners)
    assert read_current_stack(out) is None
    run_dir = Path(stack.run_dir)
    assert load_state(run_dir).status == "finished"
    assert not (run_dir / "data").exists() and (run_dir / "logs" / "db.log").exists()
    assert tradechaos("stack", "status", "--out", str(out)).returncode == 2
    assert "nothing to stop" in tradechaos("stack", "down", "--out", str(out)).stdout


def test_foreground_stack_up_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaos", "stack", "up", "--mitigations", "none", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        stack = None
        while stack is None or stack.status != "up":
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "stack did not come up"
            time.sleep(0.1)
            stack = read_current_stack(out)
        assert stack.mitigations == "none" and stack.pid == proc.pid
        pids = [s.pid for s in stack.services.values() if s.pid is not None]
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, output
    assert "stack stopped" in output
    assert _gone(pids)
    assert read_current_stack(out) is None
