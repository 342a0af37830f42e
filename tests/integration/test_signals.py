"""Stopping ``tradechaos run`` with SIGINT, SIGTERM and SIGKILL at several points.

SIGINT/SIGTERM: exit 130, journal status interrupted, every process of the run gone, the
proxy (and with it every toxic) gone, the run's ports free. SIGKILL: no journal, the run
is left "running" in state.json, and ``tradechaos cleanup`` reports it, removes whatever
is left (the process backend's services also die with their parent) and marks it cleaned."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from run_cli_helpers import (
    DATA,
    RunProcess,
    alive,
    only_run_dir,
    ports_held_by_run,
    ports_of,
    processes_mentioning,
    proxy_listing,
    state_of,
    tradechaos,
)

pytestmark = [
    pytest.mark.integration,
]
TARGET = str(DATA / "signal-target.yaml")
SIGNALS = [signal.SIGINT, signal.SIGTERM]


def start(out: Path) -> RunProcess:
    return RunProcess(TARGET, "--out", str(out))


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    """Pids still alive after ``timeout`` (a killed child is reaped by init shortly)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def fault_in_effect(run_dir: Path) -> tuple[list[int], set[int], str]:
    """Pids, ports and proxy URL of the run, after checking the toxic is really there."""
    state = state_of(run_dir)
    url = state["proxy"]["url"]
    listing = proxy_listing(url)
    with urllib.request.urlopen(f"{url}/proxies/sequencer-db/toxics", timeout=3) as reply:
        toxics = json.loads(reply.read().decode())
    assert toxics, "the latency toxic should be in place during the fault"
    pids = [p["pid"] for p in state["processes"]]
    if state["proxy"].get("pid"):
        pids.append(state["proxy"]["pid"])
    assert pids and all(alive(p) for p in pids)
    return pids, ports_of(listing), url


def assert_interrupted_and_clean(
    run: RunProcess, run_dir: Path, pids: list[int], ports: set[int]
) -> None:
    code = run.finish()
    assert code == 130, "".join(run.seen[-20:])
    journal = json.loads((run_dir / "journal.json").read_text())
    assert journal["status"] == "interrupted"
    assert "interrupted" in journal["error"]
    assert wait_gone(pids) == []
    assert processes_mentioning(str(run_dir)) == []
    assert ports_held_by_run(ports, pids, run_dir) == []


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_signal_during_a_fault(tmp_path: Path, signum: int) -> None:
    run = start(tmp_path)
    try:
        run.wait_for("in effect: slow-db")
        run_dir = only_run_dir(tmp_path)
        pids, ports, url = fault_in_effect(run_dir)
        run.send(signum)
        assert_interrupted_and_clean(run, run_dir, pids, ports)
        with pytest.raises(OSError):
            proxy_listing(url)  # the proxy is gone, and every toxic with it
        journal = json.loads((run_dir / "journal.json").read_text())
        assert journal["timeline"][0]["started"] is not None
    finally:
        run.stop_everything()


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_signal_while_starting(tmp_path: Path, signum: int) -> None:
    run = start(tmp_path)
    try:
        run.wait_for("starting stack")
        run_dir = only_run_dir(tmp_path)
        run.send(signum)
        assert_interrupted_and_clean(run, run_dir, [], set())
    finally:
        run.stop_everything()


def test_second_ctrl_c_does_not_abandon_cleanup(tmp_path: Path) -> None:
    run = start(tmp_path)
    try:
        run.wait_for("in effect: slow-db")
        run_dir = only_run_dir(tmp_path)
        pids, ports, _ = fault_in_effect(run_dir)
        run.send(signal.SIGINT)
        run.wait_for("healing and stopping")
        run.send(signal.SIGINT)
        assert_interrupted_and_clean(run, run_dir, pids, ports)
    finally:
        run.stop_everything()


def test_sigterm_after_the_method_while_stopping_the_load(tmp_path: Path) -> None:
    """The last point before the checkers (the signal during the checkers themselves is
    tested with the real runner and fake modules in tests/unit/test_runner_lifecycle.py:
    they take milliseconds here)."""
    out = tmp_path / "runs"
    short = tmp_path / "short.yaml"
    text = Path(TARGET).read_text()
    short.write_text(text.replace("duration: 30s", "duration: 2s").replace("for: 28s", "for: 1s"))
    run = RunProcess(str(short), "--out", str(out))
    try:
        run.wait_for("stopping load", timeout=180)
        run.send(signal.SIGTERM)
        assert run.finish() == 130, "".join(run.seen[-20:])
        run_dir = only_run_dir(out)
        journal = json.loads((run_dir / "journal.json").read_text())
        assert journal["status"] == "interrupted" and journal["verdicts"] == []
        assert journal["timeline"][0]["ended"] is not None
        assert wait_gone(processes_mentioning(str(run_dir))) == []
    finally:
        run.stop_everything()


def test_sigkill_leaves_leftovers_that_cleanup_removes(tmp_path: Path) -> None:
    run = start(tmp_path)
    try:
        run.wait_for("in effect: slow-db")
        run_dir = only_run_dir(tmp_path)
        pids, ports, _ = fault_in_effect(run_dir)
        run.send(signal.SIGKILL)
        run.proc.wait(timeout=10)
        assert state_of(run_dir)["status"] == "running"  # nobody marked it finished
        assert not (run_dir / "journal.json").exists()
        cleaned = tradechaos("cleanup", "--out", str(tmp_path))
        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        assert run_dir.name in cleaned.stdout + cleaned.stderr
        assert state_of(run_dir)["status"] == "cleaned"
        assert wait_gone(pids) == []
        assert processes_mentioning(str(run_dir)) == []
        assert ports_held_by_run(ports, pids, run_dir) == []
        again = tradechaos("cleanup", "--out", str(tmp_path))
        assert again.returncode == 0 and run_dir.name not in again.stdout
    finally:
        run.stop_everything()


def _both_runs_in_effect(run: RunProcess, out: Path) -> list[tuple[Path, list[int], set[int]]]:
    """With ``--controls --jobs 2``: wait until the fault run has its toxic in place and the
    control run is in its method; the pids and ports of each."""
    for marker in ("] in effect: slow-db", " (control)] method"):
        if not any(marker in line for line in run.seen):
            run.wait_for(marker)
    dirs = sorted(d for d in out.iterdir() if d.is_dir())
    assert len(dirs) == 2, dirs
    found = []
    for run_dir in dirs:
        state = state_of(run_dir)
        pids = [p["pid"] for p in state["processes"]] + [state["proxy"]["pid"]]
        assert pids and all(alive(p) for p in pids), run_dir
        found.append((run_dir, pids, ports_of(proxy_listing(state["proxy"]["url"]))))
    return found


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_signal_to_a_jobs_run_stops_every_child_run(tmp_path: Path, signum: int) -> None:
    """``--jobs 2``: the signal reaches both child runs, each heals and stops its own stack,
    the command exits 130 and no run is left for ``cleanup``."""
    run = RunProcess(TARGET, "--out", str(tmp_path), "--controls", "--jobs", "2")
    try:
        runs = _both_runs_in_effect(run, tmp_path)
        run.send(signum)
        assert run.finish() == 130, "".join(run.seen[-20:])
        for run_dir, pids, ports in runs:
            journal = json.loads((run_dir / "journal.json").read_text())
            assert journal["status"] == "interrupted", run_dir
            assert wait_gone(pids) == []
            assert processes_mentioning(str(run_dir)) == []
            assert ports_held_by_run(ports, pids, run_dir) == []
        swept = tradechaos("cleanup", "--out", str(tmp_path))
        assert swept.returncode == 0 and "killed" not in swept.stdout, swept.stdout
    finally:
        run.stop_everything()


def test_sigkill_of_a_jobs_run_still_heals_the_child_runs(tmp_path: Path) -> None:
    """The parent of ``--jobs`` dies by SIGKILL: each child run gets SIGTERM from the kernel
    (PDEATHSIG), heals, stops its stack and writes an interrupted journal."""
    run = RunProcess(TARGET, "--out", str(tmp_path), "--controls", "--jobs", "2")
    try:
        runs = _both_runs_in_effect(run, tmp_path)
        run.send(signal.SIGKILL)
        run.proc.wait(timeout=10)
        deadline = time.monotonic() + 60  # the children heal on their own; wait for both
        while time.monotonic() < deadline and not all(
            (run_dir / "journal.json").exists() for run_dir, _, _ in runs
        ):
            time.sleep(0.1)
        for run_dir, pids, ports in runs:
            journal = json.loads((run_dir / "journal.json").read_text())
            assert journal["status"] == "interrupted", run_dir
            assert wait_gone(pids, timeout=30) == []
            assert processes_mentioning(str(run_dir)) == []
            assert ports_held_by_run(ports, pids, run_dir) == []
    finally:
        run.stop_everything()
