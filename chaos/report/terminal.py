"""The end-of-run summary for the terminal: plain text, no colours, fits 100 columns.

Per run: a headline (experiment / variant / verdict), a table of cases (invariant,
expected, found, violated/checked in the invariant's unit, outcome PASS / FAIL / UNKNOWN),
the first counterexample of each failing or caught invariant, the reason of each UNKNOWN,
and the paths of journal.json, junit.xml and report.html. Times are seconds from the
method's t=0 (as the experiment file's ``at``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaos.report.outcomes import Case, cases, expectation_met

_WIDTH = 100


def render_summary(journals: list[dict[str, Any]]) -> str:
    """The summary of every run in ``journals`` followed by one overall line."""
    blocks = [_run_block(journal) for journal in journals]
    met = sum(1 for journal in journals if expectation_met(journal))
    total = len(journals)
    overall = (
        f"tradechaos: {met}/{total} variant(s) met their expectation"
        if total
        else "tradechaos: no runs"
    )
    return "\n\n".join([*blocks, overall]) + "\n"


def _run_block(journal: Mapping[str, Any]) -> str:
    name = journal.get("experiment") or "experiment"
    variant = journal.get("variant") or "default"
    verdict = "EXPECTATION MET" if expectation_met(journal) else "EXPECTATION NOT MET"
    extras = [f"seed {journal['seed']}"] if journal.get("seed") is not None else []
    if journal.get("no_faults"):
        extras.append("no faults (control run)")
    expected = ", ".join(str(x) for x in journal.get("expected_violations") or []) or "none"
    extras.append(f"expected violations: {expected}")
    required = ", ".join(str(x) for x in journal.get("require_evidence") or [])
    if required:
        extras.append(f"evidence required: {required}")
    lines = [f"== {name} / {variant}: {verdict}", "   " + "; ".join(extras)]
    run_cases = cases(journal)
    lines.extend(_table(run_cases))
    for case in run_cases:
        if case.outcome == "UNKNOWN":
            lines.append(_clip(f"   {case.name}: {case.summary}"))
        elif not case.passed or case.kind == "caught":
            first = case.examples[0] if case.examples else (case.details or (case.summary,))[0]
            lines.append(_clip(f"   {case.name}: {first}"))
    lines.extend(_paths(journal))
    return "\n".join(lines)


def _table(run_cases: list[Case]) -> list[str]:
    rows = [("case", "expected", "found", "violated/checked", "outcome")]
    for case in run_cases:
        expected = "violated" if case.expected_violation else "-"
        if case.evidence_required and not case.expected_violation:
            expected = "evidence"
        rows.append((case.name, expected, case.result_word, case.count_text, case.outcome))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for index, row in enumerate(rows):
        out.append("   " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            out.append("   " + "  ".join("-" * w for w in widths))
    return out


def _paths(journal: Mapping[str, Any]) -> list[str]:
    run_dir = journal.get("run_dir")
    if not run_dir:
        return []
    folder = Path(str(run_dir))
    return [
        f"   {label}: {folder / label}" for label in ("journal.json", "junit.xml", "report.html")
    ]


def _clip(text: str) -> str:
    return text if len(text) <= _WIDTH else text[: _WIDTH - 3] + "..."
