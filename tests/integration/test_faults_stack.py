"""Faults on the reference trading stack (real PostgreSQL, feeds, oracle, sequencer, ...):
each proves its effect through what the services themselves report, then heals clean.

The stack runs with every mitigation off, so that injected bad data is not filtered out.
Every test runs twice: ``[ours]`` with the embedded proxy (or the external Toxiproxy that
``TRADECHAOS_TOXIPROXY_URL`` names) and ``[real]`` behind the real Toxiproxy 2.12.0, which
the test starts (skipped without one, except in CI; see proxy_servers.py).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from proxy_servers import KINDS, started
from stack_harness import Step, fault_context, process_backend, reference_stack

from chaos.backends.process import ProcessBackend
from chaos.faults.base import FaultContext
from chaos.faults.build import build
from chaos.history.recorder import Recorder

pytestmark = pytest.mark.integration
DEFINITION = reference_stack()


@pytest.fixture(scope="module", params=KINDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProcessBackend]:
    params = {"seed": "3", "epoch": repr(time.time()), "mitigations": "none"}
    root = tmp_path_factory.mktemp("runs")
    with contextlib.ExitStack() as stack:
        url = None
        if request.param == "real":
            url = stack.enter_context(started("real")).url
        be = stack.enter_context(process_backend(root, "faults-stack", DEFINITION, params, url))
        if url is not None:
            assert be.toxiproxy_url == url
        yield be


@pytest.fixture
def ctx(backend: ProcessBackend, tmp_path: Path) -> Iterator[FaultContext]:
    with fault_context(backend, DEFINITION, tmp_path / "history", 3) as context:
        yield context
    for link in DEFINITION.links:
        assert context.proxy.get(link.name)["enabled"] is True, link.name
        assert list(context.proxy.toxics(link.name)) == [], link.name
    for spec in DEFINITION.services:
        assert backend.is_running(spec.name), spec.name


def get(url: str) -> Any:
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return response.json()


def eventually(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout_s}s: {what}")
        time.sleep(0.1)


def oracle_age(ctx: FaultContext) -> float:
    answer = get(ctx.backend.endpoint("oracle").url + "/prices")
    return float(answer["ts"]) - min(float(m["ts"]) for m in answer["markets"].values())


def db_rows(endpoint: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    host, _, port = endpoint.rpartition(":")
    with psycopg.connect(
        host=host, port=int(port), user="postgres", dbname="tradechaos", connect_timeout=5
    ) as conn:
        return list(conn.execute(sql, args).fetchall())


def records(ctx: FaultContext, stream: str = "faults") -> list[dict[str, Any]]:
    recorder = ctx.recorder
    assert isinstance(recorder, Recorder)  # the harness's fault_context records into one
    path = recorder.history_dir / f"{stream}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_partition_from_the_feeds_makes_the_oracle_price_stale(ctx: FaultContext) -> None:
    eventually(lambda: oracle_age(ctx) < 1.0, 10, "the oracle publishes fresh prices")
    fault = build(Step("partition", None, {"between": ["oracle"], "and": ["feeds"]}), ctx)
    try:
        fault.inject()
        eventually(lambda: oracle_age(ctx) > 1.5, 10, "the oracle's price goes stale")
    finally:
        fault.heal()
    eventually(lambda: oracle_age(ctx) < 1.0, 10, "fresh prices again after heal")


def test_feed_zero_shows_up_in_the_oracle_inputs(ctx: FaultContext) -> None:
    db = str(ctx.backend.endpoint("db"))
    began = time.time()
    fault = build(Step("feed_fault", None, {"kind": "zero", "venue": 0}), ctx)
    try:
        fault.inject()

        def zero_seen() -> bool:
            rows = db_rows(db, "SELECT inputs FROM oracle_prices WHERE ts > %s", began)
            return any(0.0 in list(inputs) for (inputs,) in rows)

        eventually(zero_seen, 10, "a zero quote among the oracle's inputs")
        evidence = records(ctx)[1]["evidence"]
        assert evidence["fault_id"]
    finally:
        fault.heal()
    healed = time.time() + 0.5
    time.sleep(1.0)
    rows = db_rows(db, "SELECT inputs FROM oracle_prices WHERE ts > %s", healed)
    assert rows and not any(0.0 in list(inputs) for (inputs,) in rows)


def test_restart_of_the_sequencer_changes_its_pid_and_it_serves_again(ctx: FaultContext) -> None:
    before = ctx.backend.pid("sequencer")
    fault = build(Step("restart", "sequencer", {"downtime": "300ms"}), ctx)
    fault.inject()
    fault.heal()
    assert ctx.backend.pid("sequencer") not in (None, before)
    assert get(ctx.backend.endpoint("sequencer").url + "/health")["status"] == "ok"


def test_trading_mode_and_price_move(ctx: FaultContext) -> None:
    sequencer = ctx.backend.endpoint("sequencer").url
    build(Step("trading_mode", None, {"mode": "cancel_only"}, id="m1"), ctx).inject()
    assert get(sequencer + "/mode")["mode"] == "cancel_only"
    build(Step("trading_mode", None, {"mode": "normal"}, id="m2"), ctx).inject()
    assert get(sequencer + "/mode")["mode"] == "normal"
    feeds = ctx.backend.endpoint("feeds").url
    move = build(
        Step("price_move", None, {"market": "ETH-PERP", "pct": 10, "over": 0}, id="w"), ctx
    )
    truth_before = get(feeds + "/admin/truth/ETH-PERP")["price"]
    move.inject()
    world = [r for r in records(ctx) if r["phase"] == "world"]
    assert world[0]["params"]["pct"] == 10.0 and world[0]["params"]["market"] == "ETH-PERP"
    eventually(
        lambda: get(feeds + "/admin/truth/ETH-PERP")["price"] > truth_before * 1.07,
        5,
        "the true price moved by about 10%",
    )


def test_db_migrate_moves_the_data_and_switches_the_links(ctx: FaultContext) -> None:
    old_db = str(ctx.backend.endpoint("db"))
    fault = build(
        Step("db_upgrade", None, {"strategy": "migrate", "copy_delay": "100ms", "new_name": "db2"}),
        ctx,
    )
    fault.inject()
    fault.heal()
    new_db = str(ctx.backend.endpoint("db2"))
    for link in ("sequencer-db", "oracle-db", "risk-db", "writer-db"):
        assert ctx.proxy.get(link)["upstream"] == new_db, link
    copied = dict(db_rows(new_db, "SELECT account, collateral FROM accounts"))
    assert copied == dict(db_rows(old_db, "SELECT account, collateral FROM accounts"))
    assert len(copied) > 1
    evidence: dict[str, Any] = {}
    for record in records(ctx):
        evidence.update(record["evidence"] if record["phase"] == "evidence" else {})
    assert evidence["rows_copied"]["market_state"] >= 1
    assert evidence["upstream_before"]["sequencer-db"] == old_db
    # the services keep working against the new instance
    eventually(lambda: oracle_age(ctx) < 1.0, 10, "the oracle publishes via the new db")
    rows = db_rows(new_db, "SELECT count(*) FROM oracle_prices WHERE ts > %s", time.time() - 1)
    assert rows[0][0] > 0
