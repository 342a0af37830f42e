"""The load as a Locust master and workers (issue 18), real Locust processes against the
small fake sequencer of test_load_driver: every request accounted for across workers, each
worker on its own accounts and process ids, one merged client history; a fault on the
orders link (through the embedded proxy) hits every worker's traffic; the processes are
recorded for ``tradechaos cleanup`` while they live, die with a SIGKILLed owner, and a
worker that cannot start takes the master down with it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tcp_servers import ProxyProcess
from test_load_driver import FakeSequencer

from chaos.errors import InfrastructureError
from chaos.host import processes as host_processes
from chaos.host.runs import load_state
from chaos.load.driver import LoadDriver, LoadTarget
from chaos.load.merge import worker_client_file
from chaos.proxy.client import ToxiproxyClient
from chaos.runner.cleanup import sweep_dead_runs
from chaos.stackfile import reference_stack_path

pytestmark = pytest.mark.integration


class Marks:
    """``ProcessMarks`` that remember what was recorded and forgotten."""

    def __init__(self) -> None:
        self.live: dict[str, int] = {}
        self.forgotten: list[str] = []

    def record_process(self, service: str, pid: int, pgid: int, start_time: int | None) -> None:
        self.live[service] = pid

    def forget_process(self, service: str) -> None:
        self.live.pop(service)
        self.forgotten.append(service)


@pytest.fixture
def sequencer() -> Iterator[FakeSequencer]:
    fake = FakeSequencer(unknown_every=7)
    yield fake
    fake.close()


def ops_of(history: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (history / "client.jsonl").read_text().splitlines()]


def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout_s}s: {what}")
        time.sleep(0.1)


def dead(pid: int) -> bool:
    return host_processes.proc_state(pid) in (None, "Z")


def test_two_workers_share_the_users_and_one_history_holds_both(
    tmp_path: Path, sequencer: FakeSequencer
) -> None:
    history = tmp_path / "history"
    marks = Marks()
    target = LoadTarget(reference_stack_path(), sequencer.url)
    driver = LoadDriver(
        target, history, 7, 8, 8, tmp_path / "load.log", range(1, 9), workers=2, processes=marks
    )
    with driver:
        assert set(marks.live) == {"load-master", "load-worker-0", "load-worker-1"}
        wait_for(lambda: driver.sample().users == 8 and driver.sample().requests >= 200, 30,
                 f"8 users and 200 requests: {driver.sample()}")  # fmt: skip
        pids = list(marks.live.values())
    assert all(dead(pid) for pid in pids) and not marks.live  # reaped, and forgotten
    assert driver.exit_code == 0 and driver.worker_exit_codes == [0, 0]
    accounting = driver.accounting()
    assert accounting.matches, accounting.describe()
    final = driver.final_stats()
    assert final["final"] is True and set(final["workers"]) == {"0", "1"}
    ops = ops_of(history)
    by_worker = Counter(op["worker"] for op in ops)
    assert set(by_worker) == {0, 1}, by_worker
    accounts = {w: {op["account"] for op in ops if op["worker"] == w} for w in (0, 1)}
    assert accounts[0] <= {1, 3, 5, 7} and accounts[1] <= {2, 4, 6, 8}, accounts
    processes = {w: {op["process"] for op in ops if op["worker"] == w} for w in (0, 1)}
    assert not processes[0] & processes[1]
    assert min(processes[1]) > 10_000
    assert all(op["client_order_id"].startswith(f"u{op['process']}-") for op in ops)
    assert len({(op["worker"], op["client_order_id"]) for op in ops}) == len(
        {op["client_order_id"] for op in ops}
    )  # no client_order_id used by two workers
    times = [op["time"] for op in ops]
    assert times == sorted(times)
    for worker in (0, 1):  # the per-worker files stay beside the merged one
        assert worker_client_file(history, worker).exists()
    summary = driver.summary()
    assert summary["workers"] == 2 and summary["ops"] == sum(summary["ops_per_worker"].values())
    assert summary["ops_per_worker"] == {
        str(w): sum(1 for op in ops if op["worker"] == w and op["type"] == "invoke") for w in (0, 1)
    }
    load = [json.loads(line) for line in (history / "load.jsonl").read_text().splitlines()]
    assert load[-1]["final"] is True and load[-1]["requests"] == final["requests"]


def test_a_fault_on_the_orders_link_hits_every_worker(
    tmp_path: Path, sequencer: FakeSequencer
) -> None:
    history = tmp_path / "history"
    with ProxyProcess() as proxy:
        client = ToxiproxyClient(proxy.url)
        link = client.create("clients-sequencer", "127.0.0.1:0", sequencer.url[len("http://") :])
        target = LoadTarget(reference_stack_path(), f"http://{link['listen']}")
        driver = LoadDriver(target, history, 3, 6, 6, tmp_path / "load.log", workers=2)
        with driver:
            wait_for(lambda: driver.sample().requests >= 60, 30, "traffic before the fault")
            down_at = time.time()
            client.update("clients-sequencer", enabled=False)
            try:
                time.sleep(2.0)  # the outage itself: what the workers see during it
            finally:
                up_at = time.time()
                client.update("clients-sequencer", enabled=True)

            def recovered(worker: int) -> bool:  # its own file, written as it goes
                text = worker_client_file(history, worker).read_text()
                ops = [json.loads(line) for line in text.splitlines()[:-1]]
                return any(op["type"] == "ok" and op["time"] > up_at for op in ops)

            wait_for(lambda: recovered(0) and recovered(1), 30, "every worker trading again")
    ops = ops_of(history)
    for worker in (0, 1):
        mine = [op for op in ops if op["worker"] == worker and op["type"] != "invoke"]
        during = [op for op in mine if down_at + 0.2 < op["time"] < up_at]
        assert during and all(op["type"] in ("fail", "info") for op in during), (worker, during)


def test_load_processes_die_with_their_owner_and_are_in_state_json(tmp_path: Path) -> None:
    """A runner holding a distributed load is SIGKILLed: no load process outlives it, and
    the run's state.json named every one of them for ``tradechaos cleanup``."""
    out = tmp_path / "runs"
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(out), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        started = json.loads(owner.stdout.readline())
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
    names = {"load-master", "load-worker-0", "load-worker-1"}
    assert set(started["processes"]) == names
    recorded = {p.service: p.pid for p in load_state(Path(started["run_dir"])).processes}
    assert recorded == started["processes"]
    wait_for(lambda: all(dead(pid) for pid in recorded.values()), 10, "PDEATHSIG")
    sweep_dead_runs(out)  # what tradechaos cleanup does: the recorded groups, by identity
    assert all(dead(pid) for pid in recorded.values())
    assert load_state(Path(started["run_dir"])).status == "cleaned"


OWNER = """
import json, sys, threading
sys.path.insert(0, sys.argv[2])
from test_load_driver import FakeSequencer
from chaos.load.driver import LoadDriver, LoadTarget
from chaos.host.runs import RunFolder
from chaos.stackfile import reference_stack_path
folder = RunFolder.create(sys.argv[1], "owner", "test")
fake = FakeSequencer()
driver = LoadDriver(LoadTarget(reference_stack_path(), fake.url), folder.history, 1, 4, 4,
                    folder.log_path("load"), workers=2, processes=folder)
driver.start()
live = driver.pids()
print(json.dumps({"run_dir": str(folder.path), "processes": live}), flush=True)
threading.Event().wait()
"""


def test_a_worker_that_cannot_start_stops_the_whole_load(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nservices: {}\n")
    marks = Marks()
    driver = LoadDriver(LoadTarget(broken, "http://127.0.0.1:9"), tmp_path / "h", 1, 4, 4,
                        tmp_path / "load.log", workers=2, processes=marks)  # fmt: skip
    started = time.monotonic()
    with pytest.raises(InfrastructureError, match=r"did not start.*load-worker-"):
        driver.start()
    assert time.monotonic() - started < 30
    assert not driver.running and not marks.live
    assert all(dead(pid) for pid in driver.pids().values())
