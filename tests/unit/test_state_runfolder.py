"""Run folders and state files: layout, no overwrite, atomic and complete state records."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from chaos.host import processes
from chaos.host.runs import (
    CurrentStack,
    RunFolder,
    StackService,
    default_out_dir,
    load_state,
    read_current_stack,
    remove_current_stack,
    write_current_stack,
)

NOW = 1_790_000_000.0


def test_layout_and_initial_state(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "paradex db/upgrade", "vulnerable", now=NOW)
    assert run.path.parent == tmp_path.resolve()
    assert run.path.name.endswith("-paradex_db_upgrade-vulnerable")
    assert run.path.name[:15].replace("-", "").isdigit()
    for sub in ("logs", "history", "data"):
        assert (run.path / sub).is_dir()
    state = json.loads(run.state_path.read_text())
    assert state["run_id"] == run.run_id == run.path.name
    assert state["pid"] == os.getpid()
    assert state["pid_start_time"] == processes.start_time(os.getpid())
    assert state["status"] == "running" and state["started_at"] == NOW
    assert state["processes"] == [] and state["proxy"] is None
    assert load_state(run.path).runner_alive()


def test_never_overwrites_an_earlier_run(tmp_path: Path) -> None:
    first = RunFolder.create(tmp_path, "x", "v", now=NOW)
    (first.path / "journal.json").write_text("{}")
    second = RunFolder.create(tmp_path, "x", "v", now=NOW)
    third = RunFolder.create(tmp_path, "x", "v", now=NOW)
    assert len({first.path, second.path, third.path}) == 3
    assert second.path.name == first.path.name + "-2"
    assert third.path.name == first.path.name + "-3"
    assert (first.path / "journal.json").read_text() == "{}"


def test_records_processes_proxy_data_and_status(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "x", "v")
    run.record_process("db", 100, 100, 5)
    run.record_process("api", 200, 200, 6)
    run.record_process("db", 300, 300, 7)  # a restart replaces the record
    run.record_proxy("http://127.0.0.1:1234", embedded=True, pid=400, start_time=8)
    run.record_proxy_name("api-db")
    run.record_proxy_name("api-db")
    run.record_data_dir(run.data_dir("db"))
    run.record_container("abc")
    state = load_state(run.path)
    assert [(p.service, p.pid, p.start_time) for p in state.processes] == [
        ("api", 200, 6),
        ("db", 300, 7),
    ]
    assert state.proxy is not None and state.proxy.proxies == ["api-db"]
    assert state.proxy.embedded and state.proxy.pid == 400
    assert state.data_dirs == [str(run.data_dir("db"))] and state.containers == ["abc"]
    run.forget_process("api")
    run.forget_data_dir(run.data_dir("db"))
    run.mark("finished")
    state = load_state(run.path)
    assert [p.service for p in state.processes] == ["db"] and state.data_dirs == []
    assert state.status == "finished" and state.ended_at is not None


def test_state_writes_are_atomic_under_concurrency(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "x", "v")
    errors: list[Exception] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                json.loads(run.state_path.read_text())
            except Exception as err:  # a torn write would show up here
                errors.append(err)

    def record(i: int) -> None:
        try:
            for n in range(40):
                run.record_process(f"s{i}", n, n, n)
        except Exception as err:  # a writer that fails must fail the test, not just its thread
            errors.append(err)

    thread = threading.Thread(target=reader)
    thread.start()
    writers = [threading.Thread(target=record, args=(i,)) for i in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    stop.set()
    thread.join()
    assert errors == []
    assert {p.service for p in load_state(run.path).processes} == {"s0", "s1", "s2", "s3"}
    assert not list(run.path.glob(".*.tmp"))


def test_a_dead_runner_is_recognised_by_start_time(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "x", "v")
    raw = json.loads(run.state_path.read_text())
    raw["pid_start_time"] += 1  # same pid, another process: the pid was reused
    run.state_path.write_text(json.dumps(raw))
    assert not load_state(run.path).runner_alive()


def test_current_stack_file_round_trip(tmp_path: Path) -> None:
    assert read_current_stack(tmp_path) is None
    stack = CurrentStack(
        run_dir="/r",
        pid=os.getpid(),
        pid_start_time=processes.start_time(os.getpid()),
        backend="process",
        toxiproxy_url="http://127.0.0.1:1",
        services={"db": StackService("127.0.0.1:5", 42, "core", "pg", "/health")},
        links={"api-db": "127.0.0.1:6"},
    )
    write_current_stack(tmp_path, stack)
    loaded = read_current_stack(tmp_path)
    assert loaded == stack and loaded.owner_alive()
    raw = json.loads((tmp_path / "current-stack.json").read_text())
    assert raw["services"]["db"]["endpoint"] == "127.0.0.1:5"  # the fault command reads this
    assert not remove_current_stack(tmp_path, owner_pid=os.getpid() + 1)
    assert remove_current_stack(tmp_path, owner_pid=os.getpid())
    (tmp_path / "current-stack.json").write_text("[1")
    with pytest.raises(ValueError, match="unreadable stack file"):
        read_current_stack(tmp_path)


def test_default_out_dir_honours_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRADECHAOS_OUT", raising=False)
    assert default_out_dir() == Path("runs")
    monkeypatch.setenv("TRADECHAOS_OUT", "/tmp/elsewhere")
    assert default_out_dir() == Path("/tmp/elsewhere")
