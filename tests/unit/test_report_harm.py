"""The harm ledger in the reports: harm.csv, and the report page's section (a table sortable
by every column without a script, a chart of loss per account, the rollback's split)."""

from __future__ import annotations

import base64
import csv
import html
import re
from pathlib import Path
from typing import Any

import harmgen
import histgen

from chaos.harm import harm_ledger
from chaos.history.reader import History
from chaos.report import HTML_FILE, write_reports
from chaos.report.harm import COLUMNS

IMG = re.compile(r'<img alt="Loss per account" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


def run_with_harm(tmp_path: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    b = histgen.clean_history(12, trades=20)
    off = harmgen.plant_off_market_fill(b, buyer=61, seller=62)
    snap = harmgen.snapshot(b)
    liq = harmgen.plant_unintended_liquidation_at_false_price(b, account=60)
    harmgen.rollback(b, snap)
    b.trade(1, 2, "BTC-PERP", 0.0)
    b.build_chain()
    run_dir = harmgen.write(b, tmp_path / "run")
    harm = harm_ledger(History.open(run_dir)).to_dict()
    journal = {"experiment": "harm", "variant": "v", "status": "passed", "verdicts": [],
               "timeline": [], "harm": harm}  # fmt: skip
    return run_dir, journal, {"off": off, "liq": liq}


def test_reports_write_harm_csv_and_a_sortable_section(tmp_path: Path) -> None:
    run_dir, journal, planted = run_with_harm(tmp_path)
    written = write_reports(run_dir, journal)
    assert written["harm.csv"] == run_dir / "harm.csv"
    with written["harm.csv"].open() as fh:
        rows = {r["account"]: r for r in csv.DictReader(fh)}
    assert float(rows["60"]["unintended_liquidation"]) == round(planted["liq"]["loss"], 2)
    assert float(rows["60"]["made_whole"]) == round(planted["liq"]["loss"], 2)
    assert float(rows["61"]["owed"]) == round(planted["off"]["loss"], 2)
    assert rows["0"]["insurance_fund"] == "True" and "total" in rows

    page = written[HTML_FILE].read_text(encoding="utf-8")
    section = page[page.index('<section id="harm">') :]
    section = section[: section.index("</section>")]
    assert page.index('id="verdict-table"') < page.index('id="harm"') < page.index('id="plots"')
    assert "<script" not in page
    for key, title in COLUMNS:  # one radio, one header label and one sorted body per column
        assert f'<input type="radio" name="harm-sort" id="harm-sort-{key}"' in section
        assert f'<label for="harm-sort-{key}">{html.escape(title)}</label>' in section
        assert f'<tbody class="by-{key}">' in section
    assert 'id="harm-sort-total" checked' in section
    by_total = section[section.index('<tbody class="by-total">') :]
    by_total = by_total[: by_total.index("</tbody>")]
    order = re.findall(r"<tr[^>]*><td[^>]*>(\d+)", by_total)
    assert order[:2] == ["60", "61"]  # the largest losses first
    by_account = section[section.index('<tbody class="by-account">') :]
    accounts = re.findall(r"<tr[^>]*><td[^>]*>(\d+)", by_account[: by_account.index("</tbody>")])
    assert accounts == sorted(accounts, key=int)
    (chart,) = IMG.findall(section)
    assert base64.b64decode(chart).startswith(b"\x89PNG")
    assert "Rollback 1 (step rollback) to seq" in section and "snapshot pre" in section
    assert "Insurance fund (account 0)" in section


def test_a_journal_without_harm_has_no_section_and_no_csv(tmp_path: Path) -> None:
    run_dir, journal, _ = run_with_harm(tmp_path)
    del journal["harm"]
    written = write_reports(run_dir, journal)
    assert "harm.csv" not in written
    assert 'id="harm"' not in written[HTML_FILE].read_text(encoding="utf-8")


def test_a_ledger_error_is_shown_not_raised(tmp_path: Path) -> None:
    run_dir, journal, _ = run_with_harm(tmp_path)
    journal["harm"] = {"error": "ValueError: boom"}
    page = write_reports(run_dir, journal)[HTML_FILE].read_text(encoding="utf-8")
    assert "could not be computed: ValueError: boom" in page
