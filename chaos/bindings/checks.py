"""The SQL checks at work: once a run is over (with the history export, the stack still
up), each check's query runs against its database and its rows are written to
``history/checks.jsonl`` for the pure checker (``chaos.checkers.user.SqlChecker``).

One record per check, in the order given: ``{"time", "check", "database", "query",
"count", "rows"}`` with at most ``MAX_ROWS`` rows kept (``count`` says how many there
were), or ``{"time", "check", "database", "query", "error"}`` when the query could not run
(the verdict is then ``unknown``, naming the error). The file is replaced whole.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from chaos.bindings import sql
from chaos.bindings.places import Places
from chaos.files.atomic import replace_jsonl
from chaos.history.reader import SOURCES
from chaos.stackfile.bindings import SqlCheck, SqlSource

MAX_ROWS = 100


def run_check(check: SqlCheck, places: Places) -> dict[str, Any]:
    """The record of one check (its rows, or the error that stopped its query)."""
    record: dict[str, Any] = {"time": time.time(), "check": check.name,
                              "database": check.database, "query": check.query}  # fmt: skip
    rows: list[dict[str, Any]] = []
    count = 0
    try:
        for row in sql.records(places, SqlSource(check.database, check.query)):
            count += 1
            if len(rows) < MAX_ROWS:
                rows.append(row)
    except Exception as err:  # psycopg's errors, a refused connection: the verdict says it
        record["error"] = f"{type(err).__name__}: {str(err).strip()[:300]}"
        return record
    record.update(count=count, rows=rows)
    return record


def export_checks(checks: Iterable[SqlCheck], run_dir: Path, places: Places) -> int:
    """Run every check into ``history/checks.jsonl``; the number run (0: no file)."""
    chosen = list(checks)
    if not chosen:
        return 0

    def records() -> Iterator[dict[str, Any]]:
        for check in chosen:
            yield run_check(check, places)

    history = Path(run_dir) / "history"
    history.mkdir(parents=True, exist_ok=True)
    return replace_jsonl(history / SOURCES["checks"], records())
