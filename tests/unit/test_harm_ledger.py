"""The harm ledger reports exactly the planted loss per account (to the cent), nothing for a
clean run, the insurance fund's side, and what a rollback made whole versus what is owed."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path
from typing import Any

import harmgen
import histgen
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.checkers.params import CheckParams
from chaos.harm import harm_ledger
from chaos.history.reader import History

FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(min_value=0, max_value=2**31 - 1)


def ledger_of(b: histgen.Builder, params: CheckParams | None = None, **run: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        history = History.open(harmgen.write(b, Path(tmp), **run))
        return harm_ledger(history, params).to_dict()


def row(ledger: dict[str, Any], account: int) -> dict[str, Any]:
    return next(r for r in ledger["accounts"] if r["account"] == account)


def cents(x: float) -> float:
    return round(x, 2)


@FAST
@given(seeds)
def test_a_clean_run_has_an_empty_ledger(seed: int) -> None:
    ledger = ledger_of(histgen.clean_history(seed, trades=30))
    assert ledger["affected_accounts"] == 0
    assert ledger["item_count"] == 0 and ledger["items"] == []
    assert ledger["totals"]["total"] == 0.0 and ledger["totals"]["lost_orders"] == 0
    # only the insurance fund's own line, with nothing won or lost in harm
    assert [r["account"] for r in ledger["accounts"]] == [0]
    assert ledger["insurance_fund_side"]["won"] == ledger["insurance_fund_side"]["lost"] == 0.0
    assert ledger["unknown"] == []


@FAST
@given(seeds)
def test_a_liquidation_at_a_false_price_costs_the_planted_slippage(seed: int) -> None:
    b = histgen.clean_history(seed, trades=20)
    planted = harmgen.plant_unintended_liquidation_at_false_price(b)
    ledger = ledger_of(b)
    victim = row(ledger, planted["account"])
    assert victim["unintended_liquidation"] == cents(planted["loss"])
    assert victim["total"] == victim["owed"] == cents(planted["loss"])
    assert ledger["affected_accounts"] == 1
    fund = ledger["insurance_fund_side"]
    assert fund["won"] == cents(planted["fund_won"]) and fund["lost"] == 0.0
    assert row(ledger, 0)["unintended_liquidation"] == -cents(planted["fund_won"])
    assert ledger["totals"]["unintended_liquidation"] == cents(planted["loss"])  # fund excluded
    worst = ledger["items"][0]
    assert worst["kind"] == "unintended_liquidation" and worst["account"] == planted["account"]
    assert worst["seq"] == planted["seq"] and worst["made_whole_by"] is None


def test_a_zeroed_funding_index_books_the_short_a_loss_of_the_whole_index() -> None:
    b = histgen.clean_history(5, trades=20)
    planted = harmgen.plant_zero_funding_liquidation(b)
    ledger = ledger_of(b)
    victim = row(ledger, planted["account"])
    assert victim["unintended_liquidation"] == cents(planted["loss"])
    assert planted["loss"] == pytest.approx(planted["funding"], abs=1.0)  # ~30,000
    item = next(i for i in ledger["items"] if i["account"] == planted["account"])
    assert item["funding_beyond_truth"] == pytest.approx(planted["funding"], rel=1e-9)
    assert item["mark_price_used"] is not None and item["why"]


@FAST
@given(seeds, st.floats(min_value=0.06, max_value=0.5))
def test_an_off_market_fill_costs_the_buyer_and_pays_the_seller(seed: int, off: float) -> None:
    b = histgen.clean_history(seed, trades=20)
    planted = harmgen.plant_off_market_fill(b, off=off)
    ledger = ledger_of(b)
    assert row(ledger, planted["buyer"])["off_market_fill"] == cents(planted["loss"])
    assert row(ledger, planted["seller"])["off_market_fill"] == -cents(planted["loss"])
    assert ledger["affected_accounts"] == 1
    assert ledger["totals"]["off_market_fill"] == cents(planted["loss"])  # what was lost
    assert ledger["totals"]["won"] == cents(planted["loss"])  # ... and won by the other side


def test_the_off_market_tolerance_is_stated_and_applied() -> None:
    b = histgen.clean_history(2, trades=20)
    harmgen.plant_off_market_fill(b, off=0.03)  # 300 bps
    assert ledger_of(b)["affected_accounts"] == 0
    strict = ledger_of(b, CheckParams(harm_off_market_bps=200.0))
    assert strict["affected_accounts"] == 1
    assert strict["tolerances"]["off_market_bps"] == 200.0


def test_a_duplicate_execution_costs_what_the_unwanted_exposure_made_by_the_end() -> None:
    b = histgen.clean_history(9, trades=20)
    planted = harmgen.plant_duplicate_execution(b)
    ledger = ledger_of(b)
    expected = harmgen.end_loss_of_duplicate(b, planted)
    assert row(ledger, planted["account"])["duplicate_execution"] == cents(expected)
    item = next(i for i in ledger["items"] if i["kind"] == "duplicate_execution")
    assert item["seq"] == planted["seq"] and "second acceptance" in item["why"]


def test_an_acknowledged_order_that_no_log_holds_is_a_lost_order() -> None:
    b = histgen.clean_history(4, trades=20)
    histgen.plant_acked_order_missing(b)  # account 3, 0.2 ETH at 3000
    ledger = ledger_of(b)
    assert row(ledger, 3)["lost_orders"] == 1
    assert row(ledger, 3)["lost_notional"] == 600.0
    assert ledger["affected_accounts"] == 1 and ledger["totals"]["lost_orders"] == 1


def test_without_an_insurance_fund_account_the_ledger_says_so() -> None:
    ledger = ledger_of(histgen.clean_history(1, trades=10), insurance_fund=None)
    assert ledger["insurance_fund"] is None and ledger["insurance_fund_side"] is None
    assert any("insurance_fund" in why for why in ledger["unknown"])


def test_a_rollback_makes_the_harm_after_the_snapshot_whole_and_the_rest_stays_owed() -> None:
    b = histgen.clean_history(6, trades=20)
    before = harmgen.plant_off_market_fill(b, buyer=65, seller=66)  # kept: still owed
    snap = harmgen.snapshot(b)
    planted = harmgen.plant_unintended_liquidation_at_false_price(b, account=67)
    harmgen.rollback(b, snap)
    b.trade(1, 2, "BTC-PERP", 0.0)  # trading goes on with the seqs after the snapshot
    b.build_chain()
    ledger = ledger_of(b)
    victim = row(ledger, 67)
    assert victim["unintended_liquidation"] == cents(planted["loss"])
    assert victim["made_whole"] == cents(planted["loss"]) and victim["owed"] == 0.0
    kept = row(ledger, 65)
    assert kept["off_market_fill"] == cents(before["loss"]) and kept["made_whole"] == 0.0
    (made_whole,) = ledger["rollbacks"]
    assert made_whole["to_seq"] == snap["seq"] and made_whole["snapshot"] == "pre"
    assert made_whole["made_whole_by_account"] == {"67": cents(planted["loss"])}
    assert ledger["totals"]["owed"] == cents(before["loss"])  # to 65 (66 won it)
    assert row(ledger, 66)["owed"] == -cents(before["loss"])
    assert ledger["unknown"] == []


def test_acknowledged_orders_a_rollback_removed_are_reported_as_reverted_not_lost() -> None:
    b = histgen.clean_history(8, trades=10)
    snap = harmgen.snapshot(b)
    b.order(5, "ETH-PERP", "buy", 2900.0, 0.1)  # acknowledged, then rolled back
    harmgen.rollback(b, snap)
    b.build_chain()
    ledger = ledger_of(b)
    assert ledger["rollbacks"][0]["reverted_orders"] == {"5": 1}
    assert ledger["totals"]["lost_orders"] == 0


def test_a_rollback_without_its_rolled_back_events_is_reported_unknown() -> None:
    b = histgen.clean_history(8, trades=10)
    snap = harmgen.snapshot(b)
    harmgen.plant_off_market_fill(b)
    harmgen.rollback(b, snap)
    b.rolled_back = []
    b.build_chain()
    ledger = ledger_of(b)
    assert any("rolled_back.jsonl" in why for why in ledger["unknown"])


def test_csv_rows_have_every_account_and_a_total(tmp_path: Path) -> None:
    from chaos.report.harm import write_harm_csv

    b = histgen.clean_history(3, trades=20)
    planted = harmgen.plant_off_market_fill(b)
    journal = {"harm": ledger_of(b)}
    path = write_harm_csv(tmp_path, journal)
    assert path is not None
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["account"] for r in rows] == [
        "0",
        str(planted["buyer"]),
        str(planted["seller"]),
        "total",
    ]
    assert float(rows[1]["off_market_fill"]) == cents(planted["loss"])


def test_the_runner_puts_the_ledger_in_the_journal_and_a_failure_changes_no_verdict(
    tmp_path: Path,
) -> None:
    import dataclasses

    from test_runner_lifecycle import Events, make_deps, run

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    result = run(tmp_path / "a", make_deps(Events()))
    harm = result.journal["harm"]
    assert result.exit_code == 0 and harm["insurance_fund"] == 0  # from run.json
    assert any("no events.jsonl" in why for why in harm["unknown"])

    def broken(run_dir: Path, params: Any) -> dict[str, Any]:
        raise ValueError("boom")

    deps = dataclasses.replace(make_deps(Events()), harm=broken)
    result = run(tmp_path / "b", deps)
    assert result.exit_code == 0 and result.journal["status"] == "passed"
    assert result.journal["harm"] == {"error": "ValueError: boom"}
