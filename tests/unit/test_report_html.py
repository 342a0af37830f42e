"""report.html of a recorded run: order, red/green verdicts, plots, self-containment, and
graceful degradation when history files are missing, empty or truncated."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chaos.cli import main
from chaos.report import HTML_FILE, JUNIT_FILE, write_reports
from chaos.report.rundata import load_run

RECORDED = Path(__file__).resolve().parents[1] / "data" / "recorded_run"
IMG = re.compile(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


def copy_recorded(tmp: Path) -> tuple[Path, dict[str, Any]]:
    run_dir = tmp / "run"
    shutil.copytree(RECORDED, run_dir)
    return run_dir, json.loads((run_dir / "journal.json").read_text())


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    run_dir, journal = copy_recorded(tmp_path_factory.mktemp("html"))
    written = write_reports(run_dir, journal)
    assert set(written) == {JUNIT_FILE, HTML_FILE}
    assert written[HTML_FILE] == run_dir / "report.html"
    return written[HTML_FILE].read_text(encoding="utf-8")


def test_verdict_table_comes_first_with_red_and_green_rows(report: str) -> None:
    order = [report.index(f'id="{anchor}"') for anchor in ("verdict", "verdict-table")]
    order += [report.index(f'id="{anchor}"') for anchor in ("timeline", "plots")]
    assert order == sorted(order)
    assert '<div id="verdict" class="banner fail">EXPECTATION NOT MET</div>' in report
    rows = {
        name: status
        for status, name in re.findall(
            r'<tr class="(pass|fail|unknown)">.*?<strong>([a-z_]+)</strong>', report
        )
    }
    assert rows == {
        "steady_state_hypothesis": "pass",
        "no_unintended_liquidations": "pass",
        "no_corrupt_chain_writes": "pass",
        "fills_within_band": "fail",
        "sequence_integrity": "fail",
        "recovery_within_rto": "unknown",
    }
    assert '<td class="outcome">UNKNOWN</td><td><strong>recovery_within_rto' in report
    assert "unknown: no evidence: no node loss" in report
    assert "#1: fill 6.5% above the true price while post_only" in report
    assert "the experiment caught it" in report


def test_every_plot_is_an_inline_png(report: str) -> None:
    images = IMG.findall(report)
    assert [alt for alt, _ in images] == [
        "Fault and maintenance timeline",
        "Price per market",
        "Funding index per market",
        "Order latency and error rate",
        "Chain against the event log",
    ]
    for _, encoded in images:
        png = base64.b64decode(encoded)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert "No data" not in report and "plot failed" not in report


def test_page_is_self_contained(report: str) -> None:
    text = IMG.sub("", report)
    assert not re.search(r"https?:|ftp:|//[a-z0-9]", text, re.IGNORECASE)
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert re.findall(r'(?:src|href)="([^"]*)"', text) == []


def test_times_are_seconds_from_the_method_t0_with_the_wall_clock_on_hover(report: str) -> None:
    """The method starts 1 s after the price epoch: the upgrade at epoch + 10 s is +9 s."""
    table = report[report.index('id="timeline-table"') :]
    wall = '<td title="wall clock 2026-09-21 14:13:30.000 UTC">+9.00s</td>'
    assert f"<td>upgrade</td><td>db_upgrade</td><td>db</td>{wall}{wall}" in table
    assert "times: <code>seconds from the method&#x27;s t=0 (2026-09-21 14:13:21.000 UTC)" in (
        report
    )
    liquidation = re.search(r'<li title="wall clock ([^"]+)">#1: liquidated on a funding', report)
    assert liquidation is not None and liquidation.group(1).endswith(" UTC")
    assert "wall_time=" not in report  # the wall clock is a detail (hover), not the text
    assert "seconds from the method's t=0" in report


def test_liquidations_listed_by_the_checker_are_unintended() -> None:
    data = load_run(RECORDED, json.loads((RECORDED / "journal.json").read_text()))
    marked = sorted((liq.market, liq.intended) for liq in data.liquidations)
    assert marked == [("BTC-PERP", False), ("BTC-PERP", False), ("ETH-PERP", True)]
    assert len(data.windows) == 5 and sum(w.fault for w in data.windows) == 2


def test_missing_empty_and_truncated_history_still_reports(tmp_path: Path) -> None:
    run_dir, journal = copy_recorded(tmp_path)
    history = run_dir / "history"
    for name in ("oracle.jsonl", "client.jsonl", "load.jsonl"):
        (history / name).unlink()
    (history / "chain.jsonl").write_text("")
    (history / "events.jsonl").write_text('{"seq": 1, "time": 1790000001.0, "kind": "dep')
    html = write_reports(run_dir, journal)[HTML_FILE].read_text()
    assert len(IMG.findall(html)) == 5
    assert "No data: history/oracle.jsonl missing or empty." in html
    assert "No data: history/client.jsonl and history/load.jsonl missing or empty." in html
    assert "No data: history/events.jsonl and history/chain.jsonl missing or empty." in html
    assert "plot failed" not in html


def test_run_folder_without_history_reports(tmp_path: Path) -> None:
    journal = {"experiment": "x", "variant": "v", "status": "error", "error": "db did not start"}
    html = write_reports(tmp_path, journal)[HTML_FILE].read_text()
    assert "error: db did not start" in html
    assert html.count("No data") == 5


def test_cli_regenerates_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, _ = copy_recorded(tmp_path)
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").stat().st_size > 50_000
    assert (run_dir / "junit.xml").read_text().startswith("<?xml")
    out = capsys.readouterr().out
    assert f"report.html: {run_dir / 'report.html'}" in out


def test_cli_names_a_folder_without_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"tradechaos: {tmp_path / 'journal.json'}: missing; is {tmp_path} a run folder?"
    )


def test_importing_the_reports_does_not_import_matplotlib() -> None:
    code = (
        "import sys, chaos.report, chaos.report.terminal, chaos.report.junit, "
        "chaos.commands.report; sys.exit('matplotlib' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
