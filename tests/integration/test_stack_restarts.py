"""Stopping and starting single services while traffic flows (every guard on): the chain
still equals the event log and the sequence has no gap."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from stack_harness import DirectStack, TradingClient, make_stack, wait_until
from test_stack_traffic import assert_chain_equals_event_log, assert_checkers_pass, export

from chaos.world import PricePath

pytestmark = pytest.mark.integration


def wait_for_trades(stack: DirectStack, what: str) -> None:
    """Until the event log has grown by more than 20 events from now."""
    before = stack.max_seq()
    wait_until(lambda: stack.max_seq() > before + 20, 15.0, what)


def test_restarting_services_under_traffic_keeps_chain_and_sequence(tmp_path: Path) -> None:
    seed = 5
    with make_stack(tmp_path, mitigations="all", seed=seed) as stack:
        client = TradingClient(stack.client_url("sequencer"), seed=seed)
        client.start()
        try:
            for service in ("oracle", "writer", "sequencer"):
                wait_for_trades(stack, "trading progress")
                stack.stop(service)
                time.sleep(0.5)  # the outage itself, not a readiness wait
                stack.start(service)
            wait_for_trades(stack, "trading after restarts")
        finally:
            client.stop()
        # the restarted sequencer resumed from the db: new orders were accepted after it
        assert client.stats["accepted"] > 50
        stack.quiesce()
        records = export(stack, tmp_path, seed)
    kinds = [e["kind"] for e in records["events"]]
    assert kinds.count("fill") > 10
    restored = [p for p in records["oracle"] if p["restored"]]
    assert len(restored) >= 4  # first publication per market after each oracle start
    truth = PricePath(seed, float(stack.params["epoch"]))
    for publication in records["oracle"]:  # the restart restored the index, not 0.0
        true_index = truth.funding_index(publication["market"], publication["time"])
        assert publication["funding_index"] == pytest.approx(true_index, rel=1e-3)
    assert_chain_equals_event_log(records)
    assert_checkers_pass(
        tmp_path,
        [
            "no_unintended_liquidations",
            "no_corrupt_chain_writes",
            "sequence_integrity",
            "no_stale_price_execution",
        ],
    )
