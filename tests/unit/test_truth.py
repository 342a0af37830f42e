"""chaos.world: the true market is a pure function of (seed, epoch, recorded moves)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.world import (
    FUNDING_INTERVAL_S,
    MAINTENANCE_MARGIN_RATIO,
    MARKETS,
    PriceMove,
    PricePath,
    equity,
    market_spec,
)

EPOCH = 1_700_000_000.0


@given(seed=st.integers(0, 2**31), dt=st.floats(0.0, 300.0))
@settings(max_examples=60, deadline=None)
def test_price_is_a_pure_function_of_seed_and_time(seed: int, dt: float) -> None:
    a, b = PricePath(seed, EPOCH), PricePath(seed, EPOCH)
    b.price("ETH-PERP", EPOCH + 2 * dt + 1)  # a different query order must not matter
    for market in ("BTC-PERP", "ETH-PERP"):
        assert a.price(market, EPOCH + dt) == b.price(market, EPOCH + dt)
        assert a.price(market, EPOCH + dt) > 0


def test_before_the_epoch_the_price_is_the_initial_price() -> None:
    path = PricePath(3, EPOCH)
    for spec in MARKETS:
        assert path.price(spec.name, EPOCH - 10) == spec.initial_price
        assert path.funding_index(spec.name, EPOCH - 10) == spec.initial_funding_index


def test_different_seeds_give_different_paths() -> None:
    assert PricePath(1, EPOCH).price("BTC-PERP", EPOCH + 30) != PricePath(2, EPOCH).price(
        "BTC-PERP", EPOCH + 30
    )


def test_a_move_ramps_to_its_full_size_and_only_in_its_market() -> None:
    path = PricePath(5, EPOCH)
    before = {m: path.price(m, EPOCH + 20) for m in ("BTC-PERP", "ETH-PERP")}
    path.add_move(PriceMove("BTC-PERP", start=EPOCH + 10, duration=4.0, pct=-10.0))
    assert math.isclose(path.price("BTC-PERP", EPOCH + 20), before["BTC-PERP"] * 0.9)
    assert path.price("ETH-PERP", EPOCH + 20) == before["ETH-PERP"]
    half = path.price("BTC-PERP", EPOCH + 12) / path.base_price("BTC-PERP", EPOCH + 12)
    assert math.isclose(half, 0.95)
    assert path.price("BTC-PERP", EPOCH + 9) == path.base_price("BTC-PERP", EPOCH + 9)


@given(seed=st.integers(0, 2**31))
@settings(max_examples=30, deadline=None)
def test_funding_steps_stay_within_max_rate_times_price(seed: int) -> None:
    path = PricePath(seed, EPOCH)
    spec = market_spec("BTC-PERP")
    for k in range(1, 40):
        t = EPOCH + k * FUNDING_INTERVAL_S
        step = path.funding_index("BTC-PERP", t) - path.funding_index(
            "BTC-PERP", t - FUNDING_INTERVAL_S
        )
        assert abs(step) <= spec.max_funding_rate * path.price("BTC-PERP", t) + 1e-9


def test_volatility_makes_leveraged_accounts_liquidatable_within_a_run() -> None:
    """Over 30 s the standard deviation of returns across seeds is about 1%: a 45x account
    (2.2% margin) is within reach of maintenance (2%) in a normal run."""
    moves = [PricePath(s, 0.0).price("BTC-PERP", 30.0) / 60_000.0 - 1 for s in range(300)]
    mean = sum(moves) / len(moves)
    std = math.sqrt(sum((m - mean) ** 2 for m in moves) / len(moves))
    assert 0.005 < std < 0.02


def test_equity_counts_pnl_and_funding_and_maintenance_scales_with_notional() -> None:
    # a 1 BTC long entered at 60000 with index 6000; mark 61000, index 6010
    eq, maintenance = equity(5_000.0, [(1.0, 60_000.0, 6_000.0, 61_000.0, 6_010.0)])
    assert math.isclose(eq, 5_000.0 + 1_000.0 - 10.0)
    assert math.isclose(maintenance, MAINTENANCE_MARGIN_RATIO * 61_000.0)
    # a funding index reset to 0 books the short side a loss of its entry index
    eq_short, _ = equity(10_000.0, [(-1.0, 60_000.0, 6_000.0, 60_000.0, 0.0)])
    assert math.isclose(eq_short, 10_000.0 - 6_000.0)
