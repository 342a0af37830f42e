"""Ground truth of a run: price moves from the history, and accounts replayed at truth."""

from __future__ import annotations

from pathlib import Path

import histgen
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.history import History
from chaos.history.truth import Ledger, RunTruth
from chaos.world import FUNDING_INTERVAL_S, MAINTENANCE_MARGIN_RATIO, PriceMove, PricePath

EPOCH = histgen.EPOCH


def test_truth_includes_recorded_price_moves(tmp_path: Path) -> None:
    b = histgen.clean_history(2, 10)
    truth = History.open(b.write(tmp_path)).truth()
    move = b.moves[0]
    after = move.start + move.duration + 0.01
    plain = PricePath(2, EPOCH)
    assert truth.price("BTC-PERP", after) == pytest.approx(
        plain.price("BTC-PERP", after) * (1 + move.pct / 100)
    )


def test_instants_cover_knots_and_funding_boundaries() -> None:
    truth = RunTruth(1, EPOCH, [PriceMove("*", EPOCH + 5.05, 0.5, 3.0)])
    instants = truth.instants(EPOCH + 4.95, EPOCH + 6.0)
    assert instants[0] == EPOCH + 4.95 and instants[-1] == EPOCH + 6.0
    assert any(abs(t - (EPOCH + 5.0)) < 1e-9 for t in instants)  # funding boundary
    assert any(abs(t - (EPOCH + 5.05)) < 1e-9 for t in instants)  # move start
    assert instants == sorted(instants)


def test_ledger_round_trip_realises_pnl_and_funding_at_truth() -> None:
    truth = RunTruth(3, EPOCH)
    ledger = Ledger(truth)
    ledger.deposit(1, 10_000.0)
    t0, t1 = EPOCH + 0.5, EPOCH + 3.5
    ledger.trade(1, "BTC-PERP", 2.0, 60_000.0, t0)
    ledger.trade(1, "BTC-PERP", -2.0, 60_100.0, t1)
    funding = truth.funding_index("BTC-PERP", t1) - truth.funding_index("BTC-PERP", t0)
    acct = ledger.account(1)
    assert acct.collateral == pytest.approx(10_000.0 + 2 * 100.0 - 2 * funding)
    assert acct.positions["BTC-PERP"].size == 0.0


@settings(max_examples=50, deadline=None)
@given(
    fills=st.lists(
        st.tuples(st.floats(-3, 3).filter(lambda q: abs(q) > 1e-3), st.floats(50_000, 70_000)),
        min_size=1,
        max_size=12,
    )
)
def test_ledger_equity_equals_cash_flow_accounting(fills: list[tuple[float, float]]) -> None:
    """Whatever the fills, equity at t = deposits - sum(q * price) + size * p(t) - funding,
    with funding summed interval by interval on the size held (an independent formula)."""
    truth = RunTruth(4, EPOCH)
    ledger = Ledger(truth)
    ledger.deposit(1, 1e6)
    cash, size, funding_paid = 1e6, 0.0, 0.0
    for i, (qty, price) in enumerate(fills):
        t = EPOCH + 0.7 + i * 1.3
        if i:
            prev_t = EPOCH + 0.7 + (i - 1) * 1.3
            funding_paid += size * (
                truth.funding_index("BTC-PERP", t) - truth.funding_index("BTC-PERP", prev_t)
            )
        ledger.trade(1, "BTC-PERP", qty, price, t)
        cash -= qty * price
        size += qty
    t_end = EPOCH + 0.7 + len(fills) * 1.3
    t_last = EPOCH + 0.7 + (len(fills) - 1) * 1.3
    funding_paid += size * (
        truth.funding_index("BTC-PERP", t_end) - truth.funding_index("BTC-PERP", t_last)
    )
    margin = ledger.margin(ledger.account(1), t_end)
    p = truth.price("BTC-PERP", t_end)
    assert margin.equity == pytest.approx(cash + size * p - funding_paid, rel=1e-9, abs=1e-4)
    assert margin.maintenance == pytest.approx(MAINTENANCE_MARGIN_RATIO * abs(size) * p)


def test_funding_intervals_between() -> None:
    truth = RunTruth(5, EPOCH)
    assert truth.funding_intervals_between(EPOCH + 0.5, EPOCH + 3.2 * FUNDING_INTERVAL_S) == 3


def test_a_recorded_run_is_judged_with_its_own_market_parameters(tmp_path: Path) -> None:
    """run.json records every market's parameters; changing the defaults later must not
    change the truth of an old run (e.g. its initial funding index)."""
    import dataclasses
    import json

    from chaos.history.reader import History
    from chaos.world import MARKETS

    specs = [dataclasses.asdict(spec) for spec in MARKETS]
    specs[0]["initial_funding_index"] = 1234.0
    (tmp_path / "history").mkdir()
    run = {"seed": 3, "epoch": 1000.0, "markets": [s["name"] for s in specs],
           "market_specs": specs}  # fmt: skip
    (tmp_path / "history" / "run.json").write_text(json.dumps(run))
    truth = History.open(tmp_path).truth()
    assert truth.funding_index(specs[0]["name"], 999.0) == 1234.0
