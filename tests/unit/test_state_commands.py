"""`tradechaos stack status|down|up` and `tradechaos cleanup` on stack files and run folders
(no stack is started here: these are the paths that must answer without one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.cli import main
from chaos.host import processes
from chaos.host.runs import (
    CurrentStack,
    RunFolder,
    StackService,
    load_state,
    read_current_stack,
    write_current_stack,
)


def dead_pid() -> tuple[int, int | None]:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    start = processes.start_time(proc.pid)
    proc.wait(timeout=10)
    return proc.pid, start


def stack_file(out: Path, pid: int, start: int | None, run_dir: Path) -> None:
    write_current_stack(
        out,
        CurrentStack(
            run_dir=str(run_dir),
            pid=pid,
            pid_start_time=start,
            backend="process",
            toxiproxy_url="http://127.0.0.1:9",
            services={"db": StackService("127.0.0.1:9", None, "core")},
            links={},
        ),
    )


def test_status_without_a_stack_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stack", "status", "--out", str(tmp_path)]) == 2
    assert "no stack is up" in capsys.readouterr().err


def test_status_and_down_with_a_crashed_owner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = RunFolder.create(tmp_path, "stack", "all")
    (run.data_dir("db")).mkdir()
    run.record_data_dir(run.data_dir("db"))
    pid, start = dead_pid()
    raw = json.loads(run.state_path.read_text())
    raw["pid"], raw["pid_start_time"] = pid, start  # the owner that crashed
    run.state_path.write_text(json.dumps(raw))
    stack_file(tmp_path, pid, start, run.path)

    assert main(["stack", "status", "--out", str(tmp_path)]) == 2
    assert f"its owner (pid {pid}) is gone" in capsys.readouterr().err

    assert main(["stack", "down", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert f"removed data dir {run.data_dir('db')}" in printed
    assert read_current_stack(tmp_path) is None
    assert load_state(run.path).status == "cleaned" and not run.data_dir("db").exists()
    assert main(["stack", "down", "--out", str(tmp_path)]) == 0
    assert "nothing to stop" in capsys.readouterr().out


def test_up_refuses_a_second_stack_and_bad_mitigations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stack", "up", "--mitigations", "nonsense", "--out", str(tmp_path)]) == 2
    assert "--mitigations: unknown mitigation 'nonsense'" in capsys.readouterr().err
    detach = ["stack", "up", "--detach", "--mitigations", "x", "--out", str(tmp_path)]
    assert main(detach) == 2
    assert not (tmp_path / "stack-supervisor.log").exists()  # refused before spawning
    stack_file(tmp_path, os.getpid(), processes.start_time(os.getpid()), tmp_path / "r")
    assert main(["stack", "up", "--out", str(tmp_path)]) == 2
    assert "a stack is already up" in capsys.readouterr().err


def test_cleanup_reports_nothing_or_the_stale_stack_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cleanup", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == "nothing to clean"
    pid, start = dead_pid()
    stack_file(tmp_path, pid, start, tmp_path / "r")
    assert main(["cleanup", "--out", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["removed"] == [f"removed the stale stack file of pid {pid} ({tmp_path / 'r'})"]
    assert read_current_stack(tmp_path) is None
