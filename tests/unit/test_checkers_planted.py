"""Property tests: clean generated histories pass every checker; each planted violation is
caught by its checker with a counterexample that points at it; near misses pass."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import histgen
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.checkers import REGISTRY, RESPONSE_INVARIANTS, CheckParams, Verdict, run_all
from chaos.history.reader import History
from chaos.world import MAINTENANCE_MARGIN_RATIO, PricePath, market_spec

FAST = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False
)
seeds = st.integers(min_value=0, max_value=2**31 - 1)
BASE = [n for n in REGISTRY if n not in RESPONSE_INVARIANTS]  # those need a response
sizes = st.integers(min_value=10, max_value=40)


def verdicts(
    b: histgen.Builder, params: CheckParams | None = None, compact: bool = True
) -> dict[str, Verdict]:
    with tempfile.TemporaryDirectory() as tmp:
        history = History.open(b.write(Path(tmp), compact=compact))
        return {v.invariant: v for v in run_all(history, BASE, params)}


def caught(v: Verdict, **expected: Any) -> dict[str, object]:
    """The counterexample of ``v`` that matches ``expected`` (asserting there is one)."""
    assert v.valid is False, v.message
    assert v.count >= 1 and v.counterexamples
    for example in v.counterexamples:
        if all(_matches(example.get(k), want) for k, want in expected.items()):
            assert isinstance(example.get("problem"), str) and example["problem"]
            return example
    raise AssertionError(f"no counterexample with {expected}: {v.counterexamples}")


def _matches(got: object, want: object) -> bool:
    if isinstance(want, str) and isinstance(got, str):
        return want in got
    if isinstance(want, float) and isinstance(got, int | float):
        return abs(got - want) < 1e-6
    return got == want


def all_valid_but(vs: dict[str, Verdict], *names: str) -> None:
    for name, v in vs.items():
        if name not in names:
            assert v.valid is True, f"{name}: {v.message}"


@FAST
@given(seed=seeds, trades=sizes)
def test_clean_histories_pass_every_checker(seed: int, trades: int) -> None:
    vs = verdicts(histgen.clean_history(seed, trades))
    assert set(vs) == set(BASE)
    all_valid_but(vs)
    assert vs["no_unintended_liquidations"].checked == 1  # the 0.1%-below near miss
    assert vs["recovery_within_rto"].checked == 1
    assert vs["fills_within_band"].checked >= 1


@FAST
@given(seed=seeds, above=st.floats(min_value=0.5, max_value=5.0))
def test_liquidation_of_a_healthy_account_is_caught(seed: int, above: float) -> None:
    b = histgen.clean_history(seed, 12)
    want = histgen.plant_unintended_liquidation(b, above=above)
    vs = verdicts(b)
    example = caught(vs["no_unintended_liquidations"], **want)
    assert example["true_margin_ratio"] == pytest.approx(1 + above, rel=1e-3)
    for key in (
        "mark_price_used",
        "true_price",
        "funding_index_used",
        "true_funding_index",
        "service_equity",
        "mode",
        "t",
        "wall_time",
    ):
        assert key in example
    all_valid_but(vs, "no_unintended_liquidations")


@FAST
@given(seed=seeds, below=st.floats(min_value=0.0005, max_value=0.5))
def test_liquidation_below_maintenance_is_intended(seed: int, below: float) -> None:
    b = histgen.clean_history(seed, 10)
    histgen.quiet(b)
    b.near_miss_liquidation(account=60, below=below)
    b.build_chain()
    assert verdicts(b)["no_unintended_liquidations"].valid is True


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_margin_tolerance_edge(seed: int) -> None:
    """4% above maintenance is within the 5% tolerance; with tolerance 0.01 it is not."""
    b = histgen.clean_history(seed, 10)
    histgen.quiet(b)
    event = b.near_miss_liquidation(account=61, below=-0.04)
    b.build_chain()
    assert verdicts(b)["no_unintended_liquidations"].valid is True
    strict = CheckParams.from_mapping({"margin_tolerance": 0.01, "price_lag_s": 0.0})
    caught(verdicts(b, strict)["no_unintended_liquidations"], seq=event["seq"])


def test_liquidation_while_halted_is_caught() -> None:
    b = histgen.clean_history(5, 10)
    want = histgen.plant_halted_liquidation(b)
    caught(verdicts(b)["no_unintended_liquidations"], **want)


CHAIN_PLANTS: list[tuple[str, Callable[[histgen.Builder, int], dict[str, Any]], str]] = [
    ("zero funding", histgen.plant_zero_funding_on_chain, "funding index 0.0; true"),
    ("tampered event", histgen.plant_chain_event_tampered, "differs from the db"),
    ("fork", histgen.plant_fork, "fork"),
    ("bad hash", histgen.plant_bad_hash, "does not match its contents"),
]


@FAST
@given(
    seed=seeds,
    which=st.sampled_from(CHAIN_PLANTS),
    where=st.floats(0.0, 1.0),
    compact=st.booleans(),
)
def test_chain_corruption_is_caught(seed: int, which: Any, where: float, compact: bool) -> None:
    """Caught whether the db lines match the chain byte for byte (fast path) or not."""
    _, plant, phrase = which
    b = histgen.clean_history(seed, 20)
    height = 1 + int(where * (len(b.blocks) - 1))
    want = plant(b, height)
    want.pop("field", None)
    vs = verdicts(b, compact=compact)
    example = caught(vs["no_corrupt_chain_writes"], **want)
    assert phrase in str(example["problem"])
    all_valid_but(vs, "no_corrupt_chain_writes")


@pytest.mark.parametrize("compact", [True, False])
def test_one_tampered_block_does_not_cascade(compact: bool) -> None:
    b = histgen.clean_history(9, 30)
    want = histgen.plant_chain_event_tampered(b, 2)
    verdict = verdicts(b, compact=compact)["no_corrupt_chain_writes"]
    assert verdict.count == 1
    example = caught(verdict, height=2, seq=want["seq"])
    assert example["differences"] == [
        {
            "field": "time",
            "db": b.events[want["seq"] - 1]["time"],
            "chain": b.events[want["seq"] - 1]["time"] + 1.0,
        }
    ]


def _last_btc_entry(b: histgen.Builder) -> tuple[dict[str, Any], float, float]:
    """The last block's BTC entry, and the previous entry's funding index and ts."""
    entries = [
        md for block in b.blocks for md in block["market_data"] if md["market"] == "BTC-PERP"
    ]
    last = entries[-1]
    prev = next(e for e in reversed(entries[:-1]) if e["ts"] < last["ts"])
    return last, prev["funding_index"], prev["ts"]


@pytest.mark.parametrize("seed", [0, 7, 21])
@pytest.mark.parametrize(("factor", "valid"), [(1.0, True), (1.01, False)])
def test_funding_step_at_the_bound_is_valid(seed: int, factor: float, valid: bool) -> None:
    """A funding step of exactly max_rate x price x (elapsed intervals + 1) is valid;
    1% more is invalid market data."""
    b = histgen.clean_history(seed, 30)
    last, prev_f, prev_ts = _last_btc_entry(b)
    path = PricePath(b.seed, b.epoch, list(b.moves))
    elapsed = path.funding_interval(last["ts"]) - path.funding_interval(prev_ts)
    price = max(path.price("BTC-PERP", prev_ts), path.price("BTC-PERP", last["ts"]))
    bound = market_spec("BTC-PERP").max_funding_rate * price * (elapsed + 1)
    # every entry of the last publication gets the stepped value (repeated in blocks)
    for block in b.blocks:
        for md in block["market_data"]:
            if md["market"] == "BTC-PERP" and md["ts"] == last["ts"]:
                md["funding_index"] = prev_f + bound * factor
    b.reseal_from(1)
    v = verdicts(b)["no_corrupt_chain_writes"]
    if valid:
        assert v.valid is True, v.message
    else:
        caught(v, market="BTC-PERP", ts=last["ts"])


def test_unknown_outcome_order_never_seen_is_not_lost() -> None:
    b = histgen.clean_history(3, 10)
    assert any(op["type"] == "info" for op in b.client)
    assert verdicts(b)["no_lost_acked_orders"].valid is True


@FAST
@given(seed=seeds, where=st.sampled_from(["db", "chain"]))
def test_lost_acknowledged_order_is_caught(seed: int, where: str) -> None:
    b = histgen.clean_history(seed, 10)
    if where == "db":
        want = histgen.plant_acked_order_missing(b)
    else:
        want = histgen.plant_acked_order_not_on_chain(b)
    caught(verdicts(b)["no_lost_acked_orders"], **want)


@FAST
@given(seed=seeds, overfill=st.booleans())
def test_duplicate_execution_is_caught(seed: int, overfill: bool) -> None:
    b = histgen.clean_history(seed, 10)
    want = histgen.plant_overfill(b) if overfill else histgen.plant_duplicate_acceptance(b)
    vs = verdicts(b)
    caught(vs["no_duplicate_orders"], **want)
    all_valid_but(vs, "no_duplicate_orders")


SEQ_PLANTS = [
    histgen.plant_seq_gap,
    histgen.plant_seq_duplicate,
    histgen.plant_second_writer,
    histgen.plant_deposed_writer,
]


@FAST
@given(seed=seeds, plant=st.sampled_from(SEQ_PLANTS), where=st.floats(0.05, 0.9))
def test_sequence_violation_is_caught(seed: int, plant: Any, where: float) -> None:
    b = histgen.clean_history(seed, 10)
    want = plant(b, int(where * len(b.events)))
    caught(verdicts(b)["sequence_integrity"], **want)


@FAST
@given(seed=seeds, off=st.one_of(st.floats(520, 3000), st.floats(-3000, -520)))
def test_fill_outside_band_in_post_only_is_caught(seed: int, off: float) -> None:
    b = histgen.clean_history(seed, 10)
    want = histgen.plant_fill_outside_band(b, off_bps=off)
    example = caught(verdicts(b)["fills_within_band"], **want)
    assert example["off_bps"] == pytest.approx(off, abs=2.0)


@pytest.mark.parametrize("off", [480.0, -480.0])
def test_fill_inside_band_passes(off: float) -> None:
    b = histgen.clean_history(4, 10)
    histgen.plant_fill_outside_band(b, off_bps=off)
    assert verdicts(b)["fills_within_band"].valid is True


@pytest.mark.parametrize(("age", "valid"), [(10.0, False), (4.9, True)])
def test_stale_oracle_price(age: float, valid: bool) -> None:
    b = histgen.clean_history(6, 10)
    want = histgen.plant_stale_fill(b, age=age)
    v = verdicts(b)["no_stale_price_execution"]
    if valid:
        assert v.valid is True, v.message
    else:
        example = caught(v, **want)
        assert example["age_s"] == pytest.approx(age, abs=1e-3)


@pytest.mark.parametrize(("downtime", "valid"), [(15.0, False), (9.9, True)])
def test_recovery_within_rto(downtime: float, valid: bool) -> None:
    b = histgen.clean_history(8, 10)
    want = histgen.plant_slow_recovery(b, downtime=downtime)
    v = verdicts(b)["recovery_within_rto"]
    assert v.checked == 2
    if valid:
        assert v.valid is True, v.message
    else:
        caught(v, **want)


@pytest.mark.parametrize("fills_first", [False, True])
def test_liquidation_is_judged_on_the_state_before_its_own_fills(fills_first: bool) -> None:
    """The stack may write a liquidation before or after its fills: either way the margin
    is judged on the account as it was before them (the near miss stays intended)."""
    b = histgen.clean_history(12, 10)
    histgen.quiet(b)
    event = b.near_miss_liquidation(account=62, below=0.001)
    if fills_first:
        fill = b.events.pop()
        b.events.insert(b.events.index(event), fill)
        for seq, e in enumerate(b.events, 1):
            e["seq"] = seq
    b.build_chain()
    vs = verdicts(b)
    assert vs["no_unintended_liquidations"].valid is True
    assert vs["no_unintended_liquidations"].checked == 2


def test_second_liquidation_after_the_first_restored_margin_is_caught() -> None:
    """Risk sends one liquidation per position from one margin snapshot: once the first
    closes the losing position the account is healthy, and the second is unintended."""
    b = histgen.clean_history(13, 10)
    histgen.quiet(b)
    first = b.near_miss_liquidation(account=63, below=0.001)
    b.deposit(63, 1_000_000.0)  # the account is healthy again (here: by a deposit)
    b.fill("ETH-PERP", round(b.truth.price("ETH-PERP", b.t), 2), 1.0, taker=63, maker=1)
    second = b.liquidate(63, "ETH-PERP", 1.0)
    b.build_chain()
    v = verdicts(b)["no_unintended_liquidations"]
    caught(v, seq=second["seq"], account=63)
    assert all(c["seq"] != first["seq"] for c in v.counterexamples)


def test_every_leg_of_one_liquidation_decision_is_judged_on_the_state_before_it() -> None:
    """Risk liquidates both positions of an account below maintenance in one decision: the
    second leg, written after the first closed the losing position, is still intended."""
    b = histgen.clean_history(14, 10)
    histgen.quiet(b)
    b.fill("ETH-PERP", round(b.truth.price("ETH-PERP", b.t), 2), 1.0, taker=64, maker=1)
    histgen.quiet(b)
    first = b.near_miss_liquidation(account=64, below=0.001)
    # other accounts trade between the two legs, as they do on a live sequencer
    b.fill("BTC-PERP", round(b.truth.price("BTC-PERP", b.t), 2), 0.1, taker=2, maker=1)
    second = b.liquidate(64, "ETH-PERP", 1.0)
    b.build_chain()
    v = verdicts(b)["no_unintended_liquidations"]
    assert v.valid is True, v.message
    assert v.checked >= 2
    assert first["seq"] < second["seq"]


@pytest.mark.parametrize("fills_first", [False, True])
def test_a_maker_of_another_liquidation_is_judged_with_that_fill(fills_first: bool) -> None:
    """Account 65 takes over account 66's liquidated long as the maker, and is liquidated
    in the same run of events: its margin counts the position it just took (before, the
    checker judged it on its state before the whole run and called it unintended)."""
    b = histgen.clean_history(16, 10)
    histgen.quiet(b)
    market = "BTC-PERP"
    mark = b.truth.price(market, b.t + 0.05)
    b.deposit(65, 0.5 * MAINTENANCE_MARGIN_RATIO * mark)  # thin for one BTC long
    b.deposit(66, 1.0)
    b.fill(market, round(b.truth.price(market, b.t + 0.01), 2), 1.0, taker=66, maker=1,
           taker_side="buy")  # fmt: skip
    histgen.quiet(b, 0.5)
    run = len(b.events)
    first = b.emit("liquidation", account=66, market=market, qty=1.0,
                   mark_price=round(mark, 2), oracle_ts=round(b.t - 0.1, 6),
                   funding_index=b.truth.funding_index(market, b.t), equity=0.0,
                   maintenance=0.0)  # fmt: skip
    b.fill(market, round(mark, 2), 1.0, taker=66, maker=65, taker_side="sell",
           liquidation=True)  # fmt: skip
    if fills_first:
        b.events.insert(run, b.events.pop())
        for seq, e in enumerate(b.events, 1):
            e["seq"] = seq
    second = b.liquidate(65, market, 1.0)  # its event, then its fill against the fund
    b.build_chain()
    v = verdicts(b)["no_unintended_liquidations"]
    assert all(c["account"] != 65 for c in v.counterexamples), v.counterexamples
    assert first["seq"] < second["seq"] and v.checked >= 2


def test_a_db_event_that_no_block_carries_is_a_corrupt_chain() -> None:
    """Split brain: the deposed primary wrote seq N too; the writer, past N, never put it on
    chain. The chain no longer equals the db events of its range."""
    b = histgen.clean_history(15, 30)
    b.build_chain()
    index = len(b.events) // 2
    deposed = {**b.events[index], "sequencer": "a", "epoch": 1, "kind": "order_cancelled"}
    b.events.insert(index + 1, deposed)  # after the chain was built: on no block
    v = verdicts(b)["no_corrupt_chain_writes"]
    assert v.valid is False
    caught(v, seq=deposed["seq"])
    problem = v.counterexamples[0]["problem"]
    assert isinstance(problem, str) and "is on no block" in problem
