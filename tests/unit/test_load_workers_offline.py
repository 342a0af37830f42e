"""Distributed load (issue 18): accounts dealt out to workers, process ids unique across
them, their client files merged into one history the checkers read as before, and
``load.workers`` / ``--load-workers`` validated with file:line:field."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import histgen
import pytest

from chaos.checkers.orders import LOST, check_lost
from chaos.checkers.params import CheckParams
from chaos.checkers.recovery import check as check_recovery
from chaos.cli import main
from chaos.errors import BadInput, InvalidExperiment
from chaos.experiment.loader import load
from chaos.experiment.partition import (
    ADVERSARY_PROCESS,
    FAULT_PROCESSES,
    PROCESS_BLOCK,
    TRIGGER_PROCESS,
    process_id,
    worker_accounts,
)
from chaos.experiment.writer import to_yaml
from chaos.history.reader import History
from chaos.load.driver import LoadDriver, LoadTarget
from chaos.load.figures import Window
from chaos.load.merge import count_ops, merge_client_history, worker_client_file
from chaos.runner.jobs import Job, child_argv
from chaos.runner.runner import RunOptions
from chaos.stackfile import reference_stack_path

TRADERS = list(range(1, 37))


# -- partitioning ------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2, 3, 4, 7, 36])
def test_each_account_belongs_to_exactly_one_worker(workers: int) -> None:
    shares = [worker_accounts(TRADERS, workers, i) for i in range(workers)]
    dealt = [a for share in shares for a in share]
    assert sorted(dealt) == TRADERS  # every account, none twice
    assert all(shares)  # every worker has accounts of its own
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_an_even_split_of_users_trades_the_accounts_one_process_would() -> None:
    users = 10  # one process: user n trades account n
    single = {TRADERS[(n - 1) % len(TRADERS)] for n in range(1, users + 1)}
    shares = [worker_accounts(TRADERS, 2, i) for i in range(2)]
    split = {share[(n - 1) % len(share)] for share in shares for n in range(1, users // 2 + 1)}
    assert split == single


def test_fewer_accounts_than_workers_is_refused() -> None:
    with pytest.raises(ValueError, match="3 load workers need at least 3 trader accounts"):
        worker_accounts([1, 2], 3, 0)
    with pytest.raises(BadInput, match="need at least 5 trader accounts"):
        LoadDriver(LoadTarget(reference_stack_path(), "http://x"), "h", 1, 5, 5, "l.log",
                   [1, 2, 3], workers=5)  # fmt: skip


def test_process_ids_are_unique_across_workers_and_below_the_adversaries() -> None:
    assert [process_id(None, n) for n in (1, 2, 3)] == [1, 2, 3]  # one process: as before
    ids = [process_id(w, n) for w in range(64) for n in (1, 2, PROCESS_BLOCK)]
    assert len(set(ids)) == len(ids)
    assert max(ids) < FAULT_PROCESSES == TRIGGER_PROCESS < ADVERSARY_PROCESS
    coids = {f"u{p}-1" for p in ids}  # the locustfile's client_order_ids
    assert len(coids) == len(ids)
    with pytest.raises(ValueError):
        process_id(0, PROCESS_BLOCK + 1)
    with pytest.raises(ValueError):  # worker 80's block would hold trigger_orders' ids
        process_id(TRIGGER_PROCESS // PROCESS_BLOCK, 1)


def test_the_faults_traders_are_not_the_loads() -> None:
    """trigger_orders' and the adversaries' ops are left out of the load's ops count."""
    from chaos.load.merge import is_adversary

    assert is_adversary({"process": TRIGGER_PROCESS + 31})
    assert is_adversary({"process": ADVERSARY_PROCESS + 37})
    assert not is_adversary({"process": 63 * PROCESS_BLOCK + PROCESS_BLOCK})


# -- merging -----------------------------------------------------------------------------


def op(kind: str, process: int, t: float, coid: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "process": process, "f": "order", "client_order_id": coid,
            "account": process % 100, "time": t, "attempt": 1, **extra}  # fmt: skip


def write_lines(path: Path, records: list[dict[str, Any]], partial: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + partial)


def read_ops(history: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (history / "client.jsonl").read_text().splitlines()]


def test_merge_interleaves_by_time_keeps_each_file_in_order_and_is_idempotent(
    tmp_path: Path,
) -> None:
    adversary = ADVERSARY_PROCESS + 37
    write_lines(tmp_path / "client.jsonl", [
        op("invoke", adversary, 2.0, "a1", adversary=True),
        op("ok", adversary, 2.1, "a1", adversary=True),
    ])  # fmt: skip
    # worker 0's clock stepped back between an invoke and its completion
    write_lines(worker_client_file(tmp_path, 0), [
        op("invoke", 1, 1.0, "u1-1"), op("ok", 1, 3.0, "u1-1"),
        op("invoke", 1, 3.5, "u1-2"), op("info", 1, 3.4, "u1-2"),
    ])  # fmt: skip
    write_lines(
        worker_client_file(tmp_path, 1),
        [op("invoke", 10_001, 1.5, "u10001-1"), op("fail", 10_001, 2.5, "u10001-1")],
        partial='{"type": "invoke", "process": 10001, "ti',  # killed mid-write: dropped
    )
    merge_client_history(tmp_path, [0, 1])
    merged = read_ops(tmp_path)
    assert [(o["client_order_id"], o["type"]) for o in merged] == [
        ("u1-1", "invoke"), ("u10001-1", "invoke"), ("a1", "invoke"), ("a1", "ok"),
        ("u10001-1", "fail"), ("u1-1", "ok"), ("u1-2", "invoke"), ("u1-2", "info"),
    ]  # fmt: skip
    assert [o.get("worker") for o in merged] == [0, 1, None, None, 1, 0, 0, 0]
    merge_client_history(tmp_path, [0, 1])  # again: the same file, no op twice
    assert read_ops(tmp_path) == merged
    counts = count_ops(tmp_path)
    assert (counts.ops, counts.per_worker) == (3, {"0": 2, "1": 1})  # adversaries not counted
    assert not list(tmp_path.glob(".client.jsonl.*"))  # no temporary file left


def test_checkers_judge_a_merged_history_as_the_single_process_one(tmp_path: Path) -> None:
    """Split a history's client ops between two workers by account (as the partition does),
    merge them back: the verdicts of the checkers that read client ops are unchanged, for a
    clean history and for planted violations of each."""
    for plant in (None, histgen.plant_acked_order_missing, histgen.plant_slow_recovery):
        builder = histgen.clean_history(11)
        if plant is not None:
            plant(builder)
        single = builder.write(tmp_path / f"single-{getattr(plant, '__name__', 'clean')}")
        split = builder.write(tmp_path / f"split-{getattr(plant, '__name__', 'clean')}")
        history = split / "history"
        ops = read_ops(history)
        for worker in (0, 1):
            mine = [o for o in ops if o["account"] % 2 == worker]
            write_lines(worker_client_file(history, worker), mine)
        (history / "client.jsonl").unlink()
        merge_client_history(history, [0, 1])
        assert {o["worker"] for o in read_ops(history)} == {0, 1}
        params = CheckParams.from_mapping({})
        for checker in (check_lost, check_recovery):
            want = checker(History.open(single), params)
            got = checker(History.open(split), params)
            assert (got.valid, got.count, got.checked) == (want.valid, want.count, want.checked)
        lost = check_lost(History.open(split), params)
        assert lost.invariant == LOST
        assert lost.valid is (plant is not histgen.plant_acked_order_missing)


def test_a_master_window_counts_worker_reports() -> None:
    window = Window(60.0)
    window.add_report({"10": 3, "200": 1}, failures=1)
    window.add_report({}, failures=0)
    figures = window.figures()
    assert figures["error_rate"] == 0.25 and figures["p99_ms"] == 200.0
    assert figures["p50_ms"] == 10.0


# -- the experiment key and the flag -----------------------------------------------------

EXPERIMENT = """\
name: w
duration: 5s
load: {users: 4, spawn_rate: 4, workers: 2}
method:
  - {at: 1s, action: latency, target: clients-sequencer, latency: 10ms, for: 1s}
invariants: [no_lost_acked_orders]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "w.yaml"
    path.write_text(text)
    return path


def test_load_workers_is_read_written_and_defaults_to_one_process(tmp_path: Path) -> None:
    experiment = load(write(tmp_path, EXPERIMENT))
    assert experiment.load.workers == 2
    assert load(write(tmp_path, EXPERIMENT.replace(", workers: 2", ""))).load.workers == 0
    again = tmp_path / "again.yaml"
    again.write_text(to_yaml(experiment, ["x"], tmp_path))
    assert load(again).load == experiment.load
    assert "workers" not in to_yaml(load(write(tmp_path, EXPERIMENT.replace(", workers: 2", ""))),
                                    ["x"], tmp_path)  # fmt: skip


@pytest.mark.parametrize(
    ("workers", "says"),
    [
        ("-1", "w.yaml:3: load.workers: expected a whole number from 0 to 64, got -1"),
        ("65", "w.yaml:3: load.workers: expected a whole number from 0 to 64, got 65"),
        ("two", "w.yaml:3: load.workers: expected a whole number from 0 to 64, got 'two'"),
        ("1.5", "w.yaml:3: load.workers: expected a whole number from 0 to 64, got 1.5"),
        ("40", "w.yaml:3: load.workers: 40 load workers need at least 40 trader accounts"),
    ],
)
def test_bad_load_workers_name_file_line_and_field(tmp_path: Path, workers: str, says: str) -> None:
    path = write(tmp_path, EXPERIMENT.replace("workers: 2", f"workers: {workers}"))
    with pytest.raises(InvalidExperiment) as caught:
        load(path)
    assert str(caught.value).startswith(str(tmp_path) + "/" + says)


def test_workers_beyond_load_accounts_are_refused(tmp_path: Path) -> None:
    text = EXPERIMENT.replace("workers: 2", "workers: 3, accounts: 2")
    with pytest.raises(InvalidExperiment, match=r":3: load.workers: .*there are 2 \(load.accounts"):
        load(write(tmp_path, text))


def test_the_load_workers_flag_is_checked_and_reaches_the_children(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(write(tmp_path, EXPERIMENT))
    with pytest.raises(SystemExit) as caught:
        main(["run", path, "--load-workers", "many", "--dry-run"])
    assert caught.value.code == 2
    assert "--load-workers: expected a whole number from 0 to 64" in capsys.readouterr().err
    assert main(["run", path, "--load-workers", "37", "--dry-run"]) == 2
    assert "--load-workers 37 for" in capsys.readouterr().err
    assert main(["run", path, "--load-workers", "4", "--dry-run"]) == 0
    options = RunOptions(tmp_path, load_workers=4)
    argv = child_argv(Job(path, "w", "default", False), options)
    assert argv[argv.index("--load-workers") + 1] == "4"
    assert "--load-workers" not in child_argv(Job(path, "w", "default", False), RunOptions())


def test_master_and_worker_command_lines_use_one_port_and_distinct_indexes(
    tmp_path: Path,
) -> None:
    target = LoadTarget(reference_stack_path(), "http://127.0.0.1:9", "http://127.0.0.1:8")
    driver = LoadDriver(target, tmp_path / "h", 3, 8, 8, tmp_path / "load.log", workers=2)
    master = driver.master_argv(20123)
    assert master[master.index("--role") + 1] == "master"
    assert master[master.index("--master-bind-host") + 1] == "127.0.0.1"
    assert master[master.index("--workers") + 1] == "2"
    workers = [driver.worker_argv(i, 20123) for i in range(2)]
    for index, argv in enumerate(workers):
        assert argv[argv.index("--role") + 1] == "worker"
        assert argv[argv.index("--worker-index") + 1] == str(index)
        assert argv[argv.index("--master-port") + 1] == "20123"
        assert argv[argv.index("--host") + 1] == "http://127.0.0.1:9"  # the same orders link
        assert argv[argv.index("--failover") + 1] == "http://127.0.0.1:8"
    stats = {argv[argv.index("--stats-file") + 1] for argv in [master, *workers]}
    assert len(stats) == 3
    assert "--role" not in driver.argv()  # workers: 0 is the single process of old


def test_shuffled_history_is_merged_back_in_time_order(tmp_path: Path) -> None:
    rng = random.Random(4)
    files: dict[int, list[dict[str, Any]]] = {0: [], 1: [], 2: []}
    t = 0.0
    for n in range(300):
        worker = rng.randrange(3)
        t += rng.random() / 10
        process = process_id(worker, 1 + n % 5)
        files[worker] += [op("invoke", process, t, f"u{process}-{n}"),
                          op("ok", process, t + 0.01, f"u{process}-{n}")]  # fmt: skip
    for worker, records in files.items():  # each worker writes in its own time order
        write_lines(worker_client_file(tmp_path, worker), sorted(records, key=lambda o: o["time"]))
    merge_client_history(tmp_path, [0, 1, 2])
    merged = read_ops(tmp_path)
    assert len(merged) == 600
    times = [o["time"] for o in merged]
    assert times == sorted(times)
    assert count_ops(tmp_path).per_worker == {str(w): len(r) // 2 for w, r in files.items()}
