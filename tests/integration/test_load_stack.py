"""The trading load against the reference stack: the configured users and a real rate, every
request accounted for in the client history, and replies cut by a flapping link turned
into unknown outcomes that are retried with the same client_order_id. Both tests run behind
our proxy (``[ours]``) and behind the real Toxiproxy 2.12.0 (``[real]``)."""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from proxy_servers import KINDS, started
from stack_harness import process_backend, reference_stack

from chaos.backends.process import ProcessBackend
from chaos.faults.base import FaultContext
from chaos.faults.build import build
from chaos.faults.proxyapi import proxy_control
from chaos.history.recorder import Recorder
from chaos.load.driver import LoadDriver, LoadSample, LoadTarget
from chaos.stackfile import reference_stack_path

pytestmark = pytest.mark.integration
DEFINITION = reference_stack()
USERS = 8


class Step:
    def __init__(self, action: str, target: str, params: dict[str, Any]) -> None:
        self.id, self.action, self.target, self.params, self.for_s = (
            "flap",
            action,
            target,
            params,
            None,
        )


@pytest.fixture(scope="module", params=KINDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProcessBackend]:
    """The stack behind our proxy, or (``[real]``) behind the real Toxiproxy 2.12.0."""
    params = {"seed": "5", "epoch": repr(time.time()), "mitigations": "all"}
    root = tmp_path_factory.mktemp("runs")
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(started("real")).url if request.param == "real" else None
        yield stack.enter_context(process_backend(root, "load-stack", DEFINITION, params, url))


def wait_for(driver: LoadDriver, predicate: Any, timeout_s: float) -> LoadSample:
    deadline = time.monotonic() + timeout_s
    sample = driver.sample()
    while not predicate(sample):
        assert driver.running, driver._log_tail()
        if time.monotonic() >= deadline:
            raise AssertionError(f"load did not get there in {timeout_s}s: {sample}")
        time.sleep(0.2)
        sample = driver.sample()
    return sample


def client_ops(history: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (history / "client.jsonl").read_text().splitlines()]


def test_load_reaches_its_rate_and_every_request_is_in_the_history(
    backend: ProcessBackend, tmp_path: Path
) -> None:
    history = tmp_path / "history"
    clients = backend.link_endpoint("clients-sequencer").url
    driver = LoadDriver(
        LoadTarget(reference_stack_path(), clients),
        history,
        5,
        USERS,
        USERS,
        tmp_path / "load.log",
        range(1, 37),
    )
    with driver:
        sample = wait_for(
            driver, lambda s: s.users == USERS and s.requests >= 300 and s.rps >= 20, 60
        )
    assert sample.error_rate < 0.05, sample
    assert driver.exit_code == 0
    accounting = driver.accounting()
    assert accounting.matches, accounting.describe()
    kinds = Counter(op["type"] for op in client_ops(history))
    assert kinds["ok"] > kinds["fail"] + kinds["info"], kinds
    fills = [op for op in client_ops(history) if op["type"] == "ok" and op["f"] == "order"]
    assert len({op["account"] for op in fills}) >= USERS // 2


def test_cut_replies_are_unknown_and_retried_with_the_same_id(
    backend: ProcessBackend, tmp_path: Path
) -> None:
    history = tmp_path / "history"
    clients = backend.link_endpoint("clients-sequencer").url
    target = LoadTarget(reference_stack_path(), clients)
    driver = LoadDriver(target, history, 6, 4, 4, tmp_path / "load.log", range(1, 37))
    with Recorder(history) as recorder, driver:
        ctx = FaultContext(
            backend,
            proxy_control(backend.toxiproxy_url),
            recorder,
            DEFINITION,
            rng=random.Random(6),
        )
        wait_for(driver, lambda s: s.users == 4 and s.requests >= 40, 60)
        flap = build(
            Step(
                "flap",
                "clients-sequencer",
                {
                    "period": "1s",
                    "bad_fraction": 0.5,
                    "fault": {"action": "reset_peer", "direction": "downstream", "timeout": 0},
                },
            ),
            ctx,
        )
        try:
            flap.inject()
            time.sleep(3.0)
        finally:
            flap.heal()
        before = driver.sample().requests
        wait_for(driver, lambda s: s.requests >= before + 20, 30)  # recovered after heal
    assert driver.accounting().matches, driver.accounting().describe()
    ops = client_ops(history)
    infos = [op for op in ops if op["type"] == "info"]
    assert infos, Counter(op["type"] for op in ops)
    retried = {(op["process"], op["client_order_id"]) for op in ops if op["attempt"] > 1}
    assert {(op["process"], op["client_order_id"]) for op in infos} & retried
