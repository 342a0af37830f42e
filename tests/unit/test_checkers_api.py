"""The checkers' public surface: CheckParams, REGISTRY, run_all, Verdict."""

from __future__ import annotations

import json
from pathlib import Path

import histgen
import pytest

from chaos.checkers import REGISTRY, CheckParams, run_all
from chaos.checkers.chain import block_hash
from chaos.history import History

INVARIANTS = [
    "no_unintended_liquidations",
    "no_corrupt_chain_writes",
    "no_lost_acked_orders",
    "no_duplicate_orders",
    "sequence_integrity",
    "fills_within_band",
    "no_stale_price_execution",
    "recovery_within_rto",
    "no_off_market_execution",
]
RECOVERED = [  # after the response (issue 21): unknown when the history has no response
    "rollback_restores_snapshot",
    "no_corrupt_market_data_remains",
    "no_unreported_lost_orders",
    "trigger_orders_survive_cancel_all",
    "recovered_state_matches_replay",
]


def test_registry_has_the_nine_invariants_and_the_recovered_ones() -> None:
    assert sorted(REGISTRY) == sorted(INVARIANTS + RECOVERED)
    assert all(REGISTRY[name].name == name for name in REGISTRY)


def test_params_defaults_are_documented_values() -> None:
    assert CheckParams.DEFAULTS == {
        "margin_tolerance": 0.05,
        "price_lag_s": 2.0,
        "band_bps": 500.0,
        "stale_after_s": 5.0,
        "rto_s": 10.0,
        "funding_tolerance": 0.02,
        "price_tolerance": 0.05,
        "harm_off_market_bps": 500.0,
        "max_counterexamples": 5,
        "off_market_bps": None,
    }
    assert CheckParams().off_market_tolerance_bps == 502.0  # the band + the venues' noise
    assert CheckParams.from_mapping({"band_bps": 200}).off_market_tolerance_bps == 502.0
    assert CheckParams.from_mapping({"band_bps": 800}).off_market_tolerance_bps == 802.0
    assert CheckParams.from_mapping({"off_market_bps": 50}).off_market_tolerance_bps == 50.0
    assert CheckParams.from_mapping({"off_market_bps": None}).off_market_bps is None
    with pytest.raises(ValueError, match="must be a number"):
        CheckParams.from_mapping({"band_bps": None})


def test_params_from_mapping_overrides_and_validates() -> None:
    params = CheckParams.from_mapping({"band_bps": 300, "max_counterexamples": 2})
    assert params.band_bps == 300.0 and params.max_counterexamples == 2
    assert params.rto_s == 10.0
    with pytest.raises(
        ValueError, match=r"unknown check parameter 'band'.*known: margin_tolerance"
    ):
        CheckParams.from_mapping({"band": 1})
    with pytest.raises(ValueError, match="must be a number"):
        CheckParams.from_mapping({"rto_s": "10s"})
    with pytest.raises(ValueError, match=">= 0"):
        CheckParams.from_mapping({"rto_s": -1})
    with pytest.raises(ValueError, match="integer >= 1"):
        CheckParams.from_mapping({"max_counterexamples": 0.5})


def test_run_all_rejects_an_unknown_invariant(tmp_path: Path) -> None:
    history = History.open(histgen.clean_history(1, 10).write(tmp_path))
    with pytest.raises(ValueError, match="unknown invariant 'no_bugs'"):
        run_all(history, ["no_bugs"])


def test_run_all_keeps_order_and_verdicts_serialise(tmp_path: Path) -> None:
    history = History.open(histgen.clean_history(1, 10).write(tmp_path))
    names = ["sequence_integrity", "no_corrupt_chain_writes"]
    verdicts = run_all(history, names)
    assert [v.invariant for v in verdicts] == names
    doc = json.loads(json.dumps([v.to_dict() for v in verdicts]))
    assert doc[0]["valid"] is True and doc[0]["checked"] > 0
    assert set(doc[0]) == {
        "invariant",
        "valid",
        "count",
        "checked",
        "unit",
        "no_evidence",
        "counterexamples",
        "message",
    }
    assert doc[0]["unit"] == "events" and doc[1]["unit"] == "blocks"


def test_missing_sources_give_unknown_not_a_pass(tmp_path: Path) -> None:
    run_dir = histgen.clean_history(1, 10).write(tmp_path)
    for name in ("events", "chain", "client"):
        (run_dir / "history" / f"{name}.jsonl").unlink()
    verdicts = {v.invariant: v for v in run_all(History.open(run_dir))}
    for name in ("sequence_integrity", "no_corrupt_chain_writes", "no_lost_acked_orders"):
        assert verdicts[name].valid == "unknown", name
        assert "no " in verdicts[name].message


def test_malformed_history_gives_unknown_naming_the_problem(tmp_path: Path) -> None:
    run_dir = histgen.clean_history(1, 10).write(tmp_path)
    path = run_dir / "history" / "events.jsonl"
    path.write_text(path.read_text() + '{"kind": "fill"}\n')  # no seq
    verdict = run_all(History.open(run_dir), ["sequence_integrity"])[0]
    assert verdict.valid == "unknown" and "malformed history" in verdict.message


def test_counterexamples_are_capped_but_counted(tmp_path: Path) -> None:
    b = histgen.clean_history(1, 10)
    for event in b.events[3:]:
        event["sequencer"] = "b"
    history = History.open(b.write(tmp_path))
    params = CheckParams.from_mapping({"max_counterexamples": 2})
    verdict = run_all(history, ["sequence_integrity"], params)[0]
    assert verdict.count == len(b.events) - 3
    assert len(verdict.counterexamples) == 2


def test_block_hash_is_sha256_of_canonical_json_without_hash() -> None:
    b = histgen.clean_history(1, 10)
    block = b.blocks[0]
    assert block_hash(block) == block["hash"]
    assert block_hash({**block, "hash": "anything"}) == block["hash"]


def test_no_node_loss_is_unknown_for_lack_of_evidence(tmp_path: Path) -> None:
    b = histgen.clean_history(1, 10)
    b.faults = [f for f in b.faults if f["action"] != "node_loss"]
    verdict = run_all(History.open(b.write(tmp_path)), ["recovery_within_rto"])[0]
    assert verdict.valid == "unknown" and verdict.no_evidence and verdict.checked == 0
    assert "no node loss" in verdict.message


def test_run_ending_before_the_rto_is_unknown(tmp_path: Path) -> None:
    b = histgen.clean_history(1, 10)
    b.faults.append(
        {
            "time": b.t + 1.0,
            "id": "late",
            "action": "node_loss",
            "target": "a",
            "phase": "begin",
            "params": {"ramp": 0.0},
        }
    )
    verdict = run_all(History.open(b.write(tmp_path)), ["recovery_within_rto"])[0]
    assert verdict.valid == "unknown" and "run ended" in verdict.message


def test_node_loss_outage_starts_after_its_ramp(tmp_path: Path) -> None:
    """A cooling-style loss degrades for ``ramp`` s first: RTO counts from the loss."""
    b = histgen.clean_history(1, 10)
    histgen.plant_slow_recovery(b, downtime=15.0)
    b.faults[-1]["params"]["ramp"] = 8.0  # lost 8 s in: resumed 7 s after the loss
    verdict = run_all(History.open(b.write(tmp_path)), ["recovery_within_rto"])[0]
    assert verdict.valid is True, verdict.message


def test_node_loss_outage_starts_at_the_lost_evidence(tmp_path: Path) -> None:
    b = histgen.clean_history(1, 10)
    want = histgen.plant_slow_recovery(b, downtime=15.0)
    b.faults.append(
        {
            "time": want["wall_time"] + 6.0,
            "id": "loss2",
            "action": "node_loss",
            "target": "a",
            "phase": "evidence",
            "params": {"ramp": 0.0},
            "evidence": {"lost": True},
        }
    )
    verdict = run_all(History.open(b.write(tmp_path)), ["recovery_within_rto"])[0]
    assert verdict.valid is True, verdict.message  # 9 s after the loss itself
