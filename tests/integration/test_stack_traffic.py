"""The reference stack under trading traffic, no faults: it trades, accrues funding,
liquidates only accounts that truly fell below maintenance, and the chain equals the event
log, with every guard on and with every guard off."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from stack_harness import DirectStack, TradingClient, make_stack, read_jsonl, wait_until

from chaos.bindings.history import export as export_history
from chaos.stack.blocks import chain_problems
from chaos.world import MARKET_NAMES, MARKETS, PricePath

pytestmark = pytest.mark.integration


def export(stack: DirectStack, run_dir: Path, seed: int) -> dict[str, list[dict[str, Any]]]:
    export_history(stack.definition, run_dir, stack.places())
    history = run_dir / "history"
    (history / "run.json").write_text(
        json.dumps(
            {
                "run_id": run_dir.name,
                "experiment": "stack-traffic",
                "variant": "test",
                "seed": seed,
                "epoch": float(stack.params["epoch"]),
                "started_at": time.time(),
                "mitigations": [],
                "markets": list(MARKET_NAMES),
                "params": {},
            }
        )
    )
    return {
        name: list(read_jsonl(history / f"{name}.jsonl"))
        for name in ("events", "chain", "oracle", "modes")
    }


def assert_chain_equals_event_log(records: dict[str, list[dict[str, Any]]]) -> None:
    events, blocks = records["events"], records["chain"]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), "event seqs are not 1..N without gaps"
    assert chain_problems(blocks) == []
    on_chain = [e for b in blocks for e in b["events"]]
    assert on_chain == events, "chain events differ from the db event log"
    for block in blocks:
        for md in block["market_data"]:
            assert md["mark_price"] > 0


def assert_checkers_pass(run_dir: Path, names: list[str]) -> None:
    from chaos.checkers import run_all
    from chaos.history.reader import History

    verdicts = run_all(History.open(run_dir), names)
    failed = [(v.invariant, v.message, v.counterexamples[:2]) for v in verdicts if v.valid is False]
    assert not failed, failed


@pytest.mark.parametrize("mitigations", ["all", "none"])
def test_traffic_trades_accrues_funding_liquidates_and_chains(
    tmp_path: Path, mitigations: str
) -> None:
    seed = 11
    with make_stack(tmp_path, mitigations=mitigations, seed=seed) as stack:
        client = TradingClient(stack.client_url("sequencer"), seed=seed)
        client.start()
        try:
            wait_until(
                lambda: stack.query("SELECT 1 FROM events WHERE kind = 'liquidation'"),
                30.0,
                "a liquidation",
                interval_s=0.5,
            )
        finally:
            client.stop()
        stack.quiesce()
        records = export(stack, tmp_path, seed)

    kinds = [e["kind"] for e in records["events"]]
    assert kinds.count("fill") >= 20
    assert "funding_settle" in kinds
    assert client.stats["errors"] == 0
    # funding accrued, and the oracle's index follows the published schedule closely
    truth = PricePath(seed, float(stack.params["epoch"]))
    last = {p["market"]: p for p in records["oracle"]}
    for spec in MARKETS:
        publication = last[spec.name]
        assert publication["funding_index"] > spec.initial_funding_index
        true_index = truth.funding_index(spec.name, publication["time"])
        assert publication["funding_index"] == pytest.approx(true_index, rel=1e-3)
    # every liquidation: below maintenance on a price close to the truth at that time
    liquidations = [e for e in records["events"] if e["kind"] == "liquidation"]
    assert liquidations
    for liq in liquidations:
        assert liq["equity"] < liq["maintenance"]
        assert liq["mark_price"] == pytest.approx(
            truth.price(liq["market"], liq["oracle_ts"]), rel=2e-3
        )
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
