"""The records ``tradechaos step`` prints -> history streams.

A step in a pod records what a fault records locally (``faults``; ``client`` for
adversarial orders) as one line per record on stdout: ``{"stream": S, "record": {...}}``.
``python -m chaos.k8s.records LOGS HISTORY_DIR`` appends each record to
``HISTORY_DIR/<stream>.jsonl`` (other lines, e.g. log lines, are skipped) and prints the
counts; records are sorted by their ``time`` within each stream.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

STREAM = re.compile(r"^[a-z_]{1,32}$")


class StdoutRecorder:
    """A ``HistorySink`` writing each record as one JSON line to ``out``."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._lock = threading.Lock()

    def record(self, stream: str, obj: dict[str, Any]) -> None:
        line = json.dumps({"stream": stream, "record": obj}, default=str, separators=(",", ":"))
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()


def split(lines: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """stream -> records found in ``lines``."""
    found: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        text = line.strip()
        if not text.startswith("{"):
            continue
        try:
            item = json.loads(text)
        except ValueError:
            continue
        if not isinstance(item, dict) or not isinstance(item.get("record"), dict):
            continue
        stream = item.get("stream")
        if isinstance(stream, str) and STREAM.match(stream):
            found.setdefault(stream, []).append(item["record"])
    for records in found.values():
        records.sort(key=lambda r: float(r.get("time") or 0.0))
    return found


def _time(record: dict[str, Any]) -> float:
    value = record.get("time")
    return float(value) if isinstance(value, int | float) else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        sys.stderr.write("usage: python -m chaos.k8s.records LOGS HISTORY_DIR\n")
        return 2
    source, history = Path(args[0]), Path(args[1])
    try:
        found = split(source.read_text(encoding="utf-8", errors="replace").splitlines())
        history.mkdir(parents=True, exist_ok=True)
        for stream, records in sorted(found.items()):
            # pods' logs come one pod after another: each stream in time order (stable:
            # one pod's records keep their order at equal times)
            records.sort(key=_time)
            with (history / f"{stream}.jsonl").open("a", encoding="utf-8") as out:
                out.writelines(json.dumps(r, default=str) + "\n" for r in records)
            print(f"{stream}: {len(records)} records")
    except OSError as err:
        sys.stderr.write(f"chaos.k8s.records: {err}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
