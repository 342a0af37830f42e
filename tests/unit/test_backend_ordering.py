"""Dependency-ordered, concurrent start and stop of services (chaos.backends.ordering)."""

from __future__ import annotations

import threading

import pytest

from chaos.backends.ordering import reverse_deps, run_in_order

DEPS = {"db": (), "feeds": (), "oracle": ("db", "feeds"), "risk": ("oracle", "db")}


def test_each_runs_after_its_dependencies() -> None:
    finished: list[str] = []
    lock = threading.Lock()

    def action(name: str) -> None:
        with lock:
            assert all(dep in finished for dep in DEPS[name]), (name, finished)
            finished.append(name)

    run_in_order(list(DEPS), DEPS, action)
    assert sorted(finished) == sorted(DEPS)
    assert finished.index("risk") > finished.index("oracle") > finished.index("db")


def test_independent_names_run_concurrently() -> None:
    barrier = threading.Barrier(2, timeout=5)  # deadlocks (BrokenBarrierError) if serial

    def meet(name: str) -> None:
        barrier.wait()

    run_in_order(["db", "feeds"], DEPS, meet)


def test_first_failure_stops_new_work_and_calls_on_error_once() -> None:
    started: list[str] = []
    aborted: list[bool] = []

    def action(name: str) -> None:
        started.append(name)
        if name == "db":
            raise RuntimeError("db broke")

    with pytest.raises(RuntimeError, match="db broke"):
        run_in_order(["db", "oracle", "risk"], DEPS, action, on_error=lambda: aborted.append(True))
    assert started == ["db"] and aborted == [True]


def test_dependencies_outside_the_set_are_ignored_and_cycles_refused() -> None:
    done: list[str] = []
    run_in_order(["risk"], DEPS, done.append)
    assert done == ["risk"]
    with pytest.raises(ValueError, match="dependency cycle among: a, b"):
        run_in_order(["a", "b"], {"a": ("b",), "b": ("a",)}, done.append)


def test_reverse_deps_orders_a_stop() -> None:
    names = list(DEPS)
    dependents = reverse_deps(names, DEPS)
    assert dependents["db"] == ("oracle", "risk") and dependents["risk"] == ()
    stopped: list[str] = []
    run_in_order(names, dependents, stopped.append)
    assert stopped.index("db") > stopped.index("oracle") > stopped.index("risk")
