"""Reports of a run: junit.xml and report.html from journal.json and the history.

``write_reports`` is the call point (docs/contracts.md section 6); ``terminal.render_summary``
is the end-of-run table. matplotlib is imported only while drawing the HTML plots.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

JUNIT_FILE = "junit.xml"
HTML_FILE = "report.html"


def write_reports(run_dir: Path, journal: Mapping[str, Any]) -> dict[str, Path]:
    """Write ``junit.xml`` and ``report.html`` (and ``harm.csv`` when the journal has a harm
    ledger) into ``run_dir``; return them by file name (``{"junit.xml": path,
    "report.html": path, "harm.csv": path}``).

    ``run_dir`` is where the history is read (``run_dir/history``), whatever
    ``journal["run_dir"]`` says, so a moved run folder still reports. Each file is replaced
    atomically. Missing or partial history files make emptier plots, not errors.
    """
    from chaos.report.harm import CSV_FILE, write_harm_csv
    from chaos.report.html import write_html
    from chaos.report.junit import write_junit

    run_dir = Path(run_dir)
    junit_path = write_junit(run_dir / JUNIT_FILE, journal)
    html_path = write_html(run_dir, journal)
    written = {JUNIT_FILE: junit_path, HTML_FILE: html_path}
    harm_path = write_harm_csv(run_dir, journal)
    if harm_path is not None:
        written[CSV_FILE] = harm_path
    return written
