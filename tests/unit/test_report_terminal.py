"""The end-of-run summary (render_summary)."""

from __future__ import annotations

import json
from pathlib import Path

from chaos.report.terminal import render_summary

RECORDED = Path(__file__).resolve().parents[1] / "data" / "recorded_run"


def test_summary_shows_cases_first_counterexample_and_paths() -> None:
    journal = json.loads((RECORDED / "journal.json").read_text())
    text = render_summary([journal])
    lines = text.splitlines()
    assert lines[0] == "== paradex-funding-restore / vulnerable: EXPECTATION NOT MET"
    row = next(line for line in lines if line.strip().startswith("no_unintended_liquidations "))
    assert row.split() == [
        "no_unintended_liquidations",
        "violated",
        "violated",
        "2/3",
        "liquidations",
        "PASS",
    ]
    row = next(line for line in lines if line.strip().startswith("recovery_within_rto "))
    assert row.split() == [
        "recovery_within_rto",
        "-",
        "unknown",
        "0/0",
        "node",
        "losses",
        "UNKNOWN",
    ]
    assert "   recovery_within_rto: unknown: no evidence: no node loss or sequencer kill in " in (
        text
    )
    row = next(line for line in lines if line.strip().startswith("fills_within_band "))
    assert row.split()[-1] == "FAIL"
    assert any(
        line.strip().startswith("fills_within_band: #1: fill 6.5% above the true price")
        for line in lines
    )
    run_dir = Path(journal["run_dir"])
    for name in ("journal.json", "junit.xml", "report.html"):
        assert f"{name}: {run_dir / name}" in text
    assert lines[-1] == "tradechaos: 0/1 variant(s) met their expectation"
    assert max(len(line) for line in lines) <= 140


def test_summary_counts_met_variants() -> None:
    met = {"experiment": "x", "variant": "mitigated", "expectation_met": True, "verdicts": []}
    assert render_summary([met, met]).splitlines()[-1] == (
        "tradechaos: 2/2 variant(s) met their expectation"
    )
