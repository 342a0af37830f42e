"""Off-market execution and causal harm: a planted off-market fill is caught in any trading
mode, worst first; a liquidation that only happened because of earlier harm (an
off-market fill, a duplicate execution) is consequential, with its cause, and fails
no_unintended_liquidations; clean histories have no harm."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any, cast

import histgen
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.checkers import CheckParams, Verdict, run_all
from chaos.checkers.harm import OFF_MARKET
from chaos.history.reader import History
from chaos.world import venue_noise

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(min_value=0, max_value=2**31 - 1)
ratios = st.one_of(st.floats(2.0, 1000.0), st.floats(0.001, 0.4))
LIQ = "no_unintended_liquidations"
OFF = "no_off_market_execution"


def verdicts(b: histgen.Builder, params: CheckParams | None = None) -> dict[str, Verdict]:
    with tempfile.TemporaryDirectory() as tmp:
        history = History.open(b.write(Path(tmp)))
        return {v.invariant: v for v in run_all(history, None, params)}


def test_the_venue_noise_bound_is_the_one_the_tolerance_assumes() -> None:
    from chaos.checkers.params import VENUE_NOISE_BPS

    worst = max(
        abs(venue_noise(seed, venue, "BTC-PERP", step) - 1.0) * 1e4
        for seed in range(5)
        for venue in range(3)
        for step in range(400)
    )
    assert 1.5 < worst <= VENUE_NOISE_BPS


@FAST
@given(seed=seeds, ratio=st.one_of(st.floats(1.06, 1000.0), st.floats(0.001, 0.94)))
def test_an_off_market_fill_in_normal_mode_is_caught(seed: int, ratio: float) -> None:
    b = histgen.clean_history(seed, 10)
    want = histgen.plant_off_market_fill(b, ratio)
    vs = verdicts(b)
    v = vs[OFF]
    assert v.valid is False and v.count == 1 and v.checked >= 10, v.message
    (first,) = v.counterexamples
    example: dict[str, Any] = dict(first)
    assert example["seq"] == want["seq"] and example["mode"] == "normal"
    assert example["ratio"] == pytest.approx(ratio, rel=1e-3)
    assert example["price"] == pytest.approx(example["true_price"] * ratio, rel=1e-3)
    assert vs["fills_within_band"].valid is True  # the band judges non-normal modes only


def test_a_planted_10x_fill_reads_as_price_paid_truth_and_ratio() -> None:
    b = histgen.clean_history(3, 10)
    histgen.plant_off_market_fill(b, 10.0)
    (example,) = verdicts(b)[OFF].counterexamples
    assert example["ratio"] == pytest.approx(10.0, rel=1e-4)
    assert "is 10x the true price" in str(example["problem"])
    assert {"price", "true_price", "ratio", "off_bps", "t", "wall_time", "tolerance_bps"} <= set(
        example
    )


@pytest.mark.parametrize(("off_bps", "caught"), [(490.0, False), (-490.0, False), (530.0, True)])
def test_the_default_tolerance_is_the_band_plus_the_venue_noise(
    off_bps: float, caught: bool
) -> None:
    b = histgen.clean_history(4, 10)
    histgen.plant_off_market_fill(b, 1 + off_bps / 1e4)
    # the window's true range widens the band: strict lag 0 makes it the price at t
    v = verdicts(b, CheckParams.from_mapping({"price_lag_s": 0.0}))[OFF]
    assert (v.valid is False) is caught, v.message


def test_worst_counterexamples_come_first() -> None:
    b = histgen.clean_history(5, 10)
    for account, ratio in ((80, 1.2), (81, 30.0), (82, 0.5), (83, 2.0), (84, 0.01)):
        histgen.plant_off_market_fill(b, ratio, account=account)
    v = verdicts(b, CheckParams.from_mapping({"max_counterexamples": 3}))[OFF]
    assert v.count == 5 and len(v.counterexamples) == 3
    assert [example["taker_account"] for example in v.counterexamples] == [84, 81, 83]


@FAST
@given(seed=seeds, ratio=ratios, fills_first=st.booleans())
def test_a_liquidation_caused_by_a_bad_fill_is_consequential(
    seed: int, ratio: float, fills_first: bool
) -> None:
    b = histgen.clean_history(seed, 10)
    want = histgen.plant_harm_chain(b, ratio, fills_first=fills_first)
    vs = verdicts(b)
    v = vs[LIQ]
    assert v.valid is False and v.count == 1, v.message
    (first,) = v.counterexamples
    example: dict[str, Any] = dict(first)
    assert example["seq"] == want["liquidation_seq"] and example["harm"] == "consequential"
    assert example["account"] == want["account"]
    # under true prices the account really was below maintenance...
    assert example["true_margin_ratio"] is None or example["true_margin_ratio"] < 1.0
    # ...but without the bad fill it would have been far above it
    assert example["fair_margin_ratio"] > 10.0
    (cause,) = cast(list[dict[str, Any]], example["caused_by"])
    assert cause["kind"] == OFF_MARKET and cause["seq"] == want["fill_seq"]
    assert cause["ratio"] == pytest.approx(ratio, rel=1e-3)
    assert f"off-market fill seq {want['fill_seq']}" in str(example["problem"])
    assert vs[OFF].valid is False
    for name, verdict in vs.items():
        if name not in (LIQ, OFF):  # held, or (no response step here) nothing to check
            assert verdict.valid is True or verdict.no_evidence, f"{name}: {verdict.message}"


def test_a_liquidation_caused_by_a_duplicate_execution_is_consequential() -> None:
    b = histgen.clean_history(6, 10)
    want = histgen.plant_duplicate_harm_chain(b)
    vs = verdicts(b)
    (first,) = vs[LIQ].counterexamples
    example: dict[str, Any] = dict(first)
    assert example["seq"] == want["liquidation_seq"] and example["harm"] == "consequential"
    (cause,) = cast(list[dict[str, Any]], example["caused_by"])
    assert cause["kind"] == "duplicate_execution" and cause["seq"] == want["duplicate_seq"]
    assert vs["no_duplicate_orders"].valid is False
    assert vs[OFF].valid is True


def test_the_counterparty_of_a_bad_fill_is_not_harmed_by_it() -> None:
    """Account 1 sold at 10x: it gained; its later (justified) liquidation is intended."""
    b = histgen.clean_history(7, 10)
    histgen.plant_harm_chain(b, 10.0, account=73)
    histgen.quiet(b)
    b.near_miss_liquidation(account=74, below=0.001)  # an untouched account: intended
    b.build_chain()
    v = verdicts(b)[LIQ]
    assert v.count == 1 and v.counterexamples[0]["account"] == 73


@FAST
@given(seed=seeds, trades=st.integers(10, 40))
def test_clean_histories_have_no_harm(seed: int, trades: int) -> None:
    vs = verdicts(histgen.clean_history(seed, trades))
    assert vs[OFF].valid is True and vs[OFF].checked > trades
    assert vs[LIQ].valid is True and vs[LIQ].checked == 1


def test_severity_is_symmetric_in_the_ratio() -> None:
    from chaos.checkers.harm import OffMarket

    up = OffMarket(1000.0, 100.0, 95.0, 105.0, 500.0)
    down = OffMarket(10.0, 100.0, 95.0, 105.0, 500.0)
    assert up.severity == pytest.approx(down.severity) == pytest.approx(math.log(10))
