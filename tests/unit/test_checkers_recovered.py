"""The recovered-state invariants on generated histories with a recorded response: each holds
after a correct response, each catches its planted violation with a counterexample that
points at it, and each answers unknown when the history holds no response to judge."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import harmgen
import histgen
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.checkers import REGISTRY, CheckParams, Verdict, run_all
from chaos.history.reader import History

FAST = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(min_value=0, max_value=2**31 - 1)
RECOVERED = [
    "rollback_restores_snapshot",
    "no_corrupt_market_data_remains",
    "no_unreported_lost_orders",
    "trigger_orders_survive_cancel_all",
    "recovered_state_matches_replay",
]


def verdicts(b: histgen.Builder) -> dict[str, Verdict]:
    with tempfile.TemporaryDirectory() as tmp:
        history = History.open(harmgen.write(b, Path(tmp)))
        return {v.invariant: v for v in run_all(history, RECOVERED, CheckParams())}


def example(v: Verdict, **expected: Any) -> dict[str, object]:
    assert v.valid is False, v.message
    assert 0 < v.count <= v.checked or v.checked == 0
    for found in v.counterexamples:
        if all(found.get(k) == want for k, want in expected.items()):
            assert isinstance(found.get("problem"), str) and found["problem"]
            return found
    raise AssertionError(f"no counterexample with {expected}: {v.counterexamples}")


def responded(seed: int, harm: bool = True) -> tuple[histgen.Builder, dict[str, Any]]:
    """A clean run, then the Paradex runbook: snapshot, harm, cancel_all except TP/SL,
    rollback to the snapshot (reporting the restored accounts), trading again."""
    b = histgen.clean_history(seed, trades=20)
    resting = b.order(3, "BTC-PERP", "buy", 1000.0, 0.1)  # open at the snapshot
    stop = harmgen.trigger_order(b, 4, "stop_loss", 100.0)
    snap = harmgen.snapshot(b)
    late = b.order(5, "ETH-PERP", "buy", 2900.0, 0.1)  # acknowledged after the snapshot
    if harm:
        harmgen.plant_unintended_liquidation_at_false_price(b, account=60)
    cancel = harmgen.cancel_all(b, [resting, late], [stop], ["take_profit", "stop_loss"])
    state = harmgen.stack_state(b.events[: snap["seq"]])
    back = harmgen.rollback(b, snap, accounts=state)
    b.trade(1, 2, "BTC-PERP", 0.0)
    harmgen.chain_after_rollback(b)
    return b, {"snap": snap, "cancel": cancel, "back": back, "late": late, "stop": stop}


def test_the_recovered_invariants_are_registered() -> None:
    assert set(RECOVERED) <= set(REGISTRY)


@FAST
@given(seeds)
def test_a_correct_response_passes_every_recovered_invariant(seed: int) -> None:
    b, _ = responded(seed)
    for name, v in verdicts(b).items():
        assert v.valid is True, f"{name}: {v.message} {v.counterexamples[:1]}"
        assert v.checked > 0, name


def test_without_a_response_the_response_invariants_are_unknown() -> None:
    vs = verdicts(histgen.clean_history(3, trades=20))
    for name in ("rollback_restores_snapshot", "trigger_orders_survive_cancel_all",
                 "recovered_state_matches_replay"):  # fmt: skip
        assert vs[name].valid == "unknown", name
    assert vs["no_corrupt_market_data_remains"].valid is True
    assert vs["no_unreported_lost_orders"].valid is True


def test_a_chain_not_rolled_back_to_the_snapshot_is_caught() -> None:
    b, r = responded(4)
    height = r["snap"]["chain_height"]
    b.blocks[height - 1]["time"] += 1.0  # block H is not the one the snapshot saw
    b.reseal_from(height)
    v = verdicts(b)["rollback_restores_snapshot"]
    assert "is not the snapshot's" in str(example(v, height=height)["problem"])


def test_a_rolled_back_event_back_on_chain_is_caught() -> None:
    b, r = responded(5)
    height = r["snap"]["chain_height"]
    removed = b.rolled_back[0]
    block = b.blocks[height]  # the first block after the snapshot's
    block["events"][0] = {k: v for k, v in removed.items() if k != "rollback"}
    b.reseal_from(height + 1)
    v = verdicts(b)["rollback_restores_snapshot"]
    assert "not the event log's" in str(example(v, height=height + 1)["problem"])


def test_a_rollback_the_stack_says_it_did_not_do_is_caught() -> None:
    b, _ = responded(6)
    rollback = next(f for f in b.faults if f["action"] == "chain_rollback")
    rollback["evidence"]["chain"]["rolled_back"] = False
    v = verdicts(b)["rollback_restores_snapshot"]
    assert "did not roll the chain back" in str(example(v, step="rollback")["problem"])


def test_corrupt_market_data_left_on_chain_is_caught() -> None:
    b, _ = responded(7)
    height = len(b.blocks)
    entry = next(md for md in b.blocks[-1]["market_data"] if md["market"] == "BTC-PERP")
    entry["funding_index"] = 0.0
    b.reseal_from(height)
    vs = verdicts(b)
    assert "funding index 0.0" in str(
        example(vs["no_corrupt_market_data_remains"], height=height)["problem"]
    )
    assert vs["rollback_restores_snapshot"].valid is False  # a block after it is not valid


def test_the_runbook_cancellations_and_reverted_orders_are_reported_per_account() -> None:
    b, _ = responded(8)
    v = verdicts(b)["no_unreported_lost_orders"]
    assert v.valid is True
    assert "cancel_all cancelled 2 (by account 3: 1, 5: 1)" in v.message
    assert "reverted 1 (by account 5: 1)" in v.message  # 5's late order was rolled back


def test_an_acknowledged_order_nobody_reported_is_lost() -> None:
    b, r = responded(9)
    rollback = next(f for f in b.faults if f["action"] == "chain_rollback")
    listed = rollback["evidence"]["rolled_back"]["orders"]
    listed[:] = [o for o in listed if o["client_order_id"] != r["late"]["client_order_id"]]
    listed.append({"client_order_id": "something-else", "account": 1})
    v = verdicts(b)["no_unreported_lost_orders"]
    example(v, client_order_id=r["late"]["client_order_id"], account=5)


def test_a_lost_acknowledged_order_is_caught_with_or_without_a_response() -> None:
    b = histgen.clean_history(10, trades=20)
    histgen.plant_acked_order_missing(b)
    example(verdicts(b)["no_unreported_lost_orders"], client_order_id="ghost-1")


def test_a_cancel_all_that_cancels_a_stop_loss_is_caught() -> None:
    b = histgen.clean_history(11, trades=20)
    stop = harmgen.trigger_order(b, 4, "stop_loss", 100.0)
    harmgen.cancel_all(b, [stop], [], ["take_profit", "stop_loss"])
    b.build_chain()
    v = verdicts(b)["trigger_orders_survive_cancel_all"]
    found = example(v, order_id=stop["order_id"], order_type="stop_loss")
    assert "a type it was told to keep" in str(found["problem"])


def test_a_cancel_all_that_leaves_an_ordinary_order_open_is_caught() -> None:
    b = histgen.clean_history(12, trades=20)
    resting = b.order(3, "BTC-PERP", "buy", 1000.0, 0.1)
    take = harmgen.trigger_order(b, 4, "take_profit", 90_000.0)
    harmgen.cancel_all(b, [], [take], ["take_profit", "stop_loss"])
    b.build_chain()
    v = verdicts(b)["trigger_orders_survive_cancel_all"]
    found = example(v, order_id=resting["order_id"], account=3)
    assert "left it open" in str(found["problem"])


def test_a_recovered_state_that_differs_from_the_fair_replay_is_caught() -> None:
    b, _ = responded(13)
    rollback = next(f for f in b.faults if f["action"] == "chain_rollback")
    accounts = rollback["evidence"]["accounts"]
    accounts["2"]["collateral"] -= 100.0
    v = verdicts(b)["recovered_state_matches_replay"]
    found = example(v, account=2, step="rollback")
    assert "collateral" in str(found["problem"]) and found["difference"] == -100.0


def test_a_recovered_position_that_differs_from_the_fair_replay_is_caught() -> None:
    b, _ = responded(13)
    rollback = next(f for f in b.faults if f["action"] == "chain_rollback")
    account, state = next((a, s) for a, s in rollback["evidence"]["accounts"].items()
                          if s["positions"])  # fmt: skip
    market = next(iter(state["positions"]))
    state["positions"][market]["size"] += 0.5
    v = verdicts(b)["recovered_state_matches_replay"]
    assert f"{market} size" in str(example(v, account=int(account))["problem"])


def test_a_snapshot_taken_after_false_funding_was_booked_does_not_recover() -> None:
    """The stack restores exactly what its kept log says; but the kept log settled funding
    at a zeroed index, so the state is not the fair one."""
    b = histgen.clean_history(14, trades=20)
    planted = harmgen.plant_zero_funding_liquidation(b)
    snap = harmgen.snapshot(b)  # too late: after the corrupt settlement
    harmgen.rollback(b, snap, accounts=harmgen.stack_state(b.events[: snap["seq"]]))
    harmgen.chain_after_rollback(b)
    v = verdicts(b)["recovered_state_matches_replay"]
    found = example(v, account=planted["account"])
    replayed, reported = found["collateral_replayed"], found["collateral_reported"]
    assert isinstance(replayed, int | float) and isinstance(reported, int | float), found
    assert reported == pytest.approx(found["collateral_booked_by_the_log"])
    assert replayed - reported == pytest.approx(planted["funding"], rel=1e-6)


def test_a_replay_after_the_rollback_is_judged_at_its_own_point() -> None:
    b, r = responded(15)
    deposit = b.deposit(7, 123.0)
    deposit["replay_of"] = 999
    answer = {
        "status": "accepted",
        "time": round(b.t, 6),
        "replayed": 1,
        "at_seq": deposit["seq"],
        "accounts": harmgen.stack_state(b.events),
        "rollback": 1,
    }
    harmgen.record(b, "keep", "replay", answer, kinds=["deposit"])
    b.trade(1, 2, "BTC-PERP", 0.0)  # after the replay: not part of its state
    harmgen.chain_after_rollback(b)
    assert verdicts(b)["recovered_state_matches_replay"].valid is True
    answer["accounts"]["7"]["collateral"] += 1.0
    v = verdicts(b)["recovered_state_matches_replay"]
    example(v, account=7, step="keep")
    assert r["back"]["to_seq"] < deposit["seq"]


def test_recovered_checkers_survive_their_own_json_round_trip() -> None:
    b, _ = responded(16)
    json.dumps({k: v.to_dict() for k, v in verdicts(b).items()})
