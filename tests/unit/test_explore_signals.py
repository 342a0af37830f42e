"""Near-miss signals from generated histories: measured from the History and truth alone,
scaled so that pressure 1 is the checkers' threshold."""

from __future__ import annotations

from pathlib import Path

import histgen
import pytest

from chaos.checkers import run_all
from chaos.checkers.params import CheckParams
from chaos.explore.signals import measure
from chaos.history.reader import History


def signals_of(builder: histgen.Builder, tmp_path: Path) -> dict[str, float]:
    history = History.open(builder.write(tmp_path))
    return {name: s.pressure for name, s in measure(history, CheckParams()).items()}


def test_a_clean_history_is_below_every_threshold(tmp_path: Path) -> None:
    builder = histgen.clean_history(3)
    pressures = signals_of(builder, tmp_path)
    assert set(pressures) >= {"oracle_age", "mark_error", "funding_error", "margin_cushion"}
    thresholds = {k: p for k, p in pressures.items() if k != "margin_cushion"}
    assert all(p < 1.0 for p in thresholds.values()), pressures
    assert pressures["mark_error"] < 0.1  # the oracle publishes the truth
    # the history's thin account trades down to its maintenance margin (and is liquidated,
    # as it should be): the closest an account came, 1 being the requirement itself
    assert 0.9 < pressures["margin_cushion"] < 1.1


@pytest.mark.parametrize("age", [3.0, 7.5, 12.0])
def test_oracle_age_is_the_oldest_price_executed_on(tmp_path: Path, age: float) -> None:
    builder = histgen.clean_history(4)
    histgen.plant_stale_fill(builder, age=age)
    history = History.open(builder.write(tmp_path))
    signal = measure(history, CheckParams())["oracle_age"]
    assert signal.value == pytest.approx(age, abs=0.01)
    assert signal.pressure == pytest.approx(age / CheckParams().stale_after_s, abs=0.01)
    (verdict,) = run_all(history, ["no_stale_price_execution"])
    assert (verdict.valid is False) == (signal.pressure > 1.0)  # same threshold as the checker


def test_a_published_price_off_the_truth_raises_mark_error(tmp_path: Path) -> None:
    builder = histgen.clean_history(5)
    builder.oracle[3]["mark_price"] *= 1.04  # 4 % off; the tolerance is 5 %
    pressure = signals_of(builder, tmp_path)["mark_error"]
    assert 0.75 < pressure < 0.85


def test_missing_sources_give_no_signal_not_an_error(tmp_path: Path) -> None:
    builder = histgen.clean_history(6)
    builder.write(tmp_path)
    for name in ("events", "oracle", "client"):
        (tmp_path / "history" / f"{name}.jsonl").unlink()
    assert measure(History.open(tmp_path), CheckParams()) == {}
