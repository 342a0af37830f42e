"""Read a run's History from its folder, streaming (docs/contracts.md section 2).

``History.open(run_dir)`` reads ``run.json`` only. Every other source is read lazily: each
call of ``events()``, ``blocks()``, ``client_ops()``, ``oracle()``, ``modes()``,
``faults()`` or ``load_samples()`` opens the file again and yields its records one by one in
the order they were written, so a source can be read any number of times and memory stays
bounded by one record. A missing source file reads as empty (``has(source)`` tells them
apart). A last line without its newline that does not parse (the recorder was killed
mid-write) is skipped and noted in ``problems``; any other line that does not parse raises
``HistoryError`` naming the file and line.

JSON is decoded with orjson when it is installed (about 3x faster), else with the stdlib.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from chaos.errors import BadInput
from chaos.history.events import (
    Block,
    ClientOp,
    Event,
    FaultRecord,
    ModeChange,
    OraclePublication,
    RunInfo,
)

if TYPE_CHECKING:
    from chaos.history.truth import RunTruth


def _optional(module: str) -> Any:
    """``module`` if installed, else None (imported by name: mypy needs no stubs for it)."""
    try:
        return importlib.import_module(module)
    except ImportError:  # pragma: no cover - depends on the environment
        return None


orjson: Any = _optional("orjson")
loads: Callable[[bytes], Any] = orjson.loads if orjson is not None else json.loads

SOURCES: dict[str, str] = {
    "events": "events.jsonl",
    "chain": "chain.jsonl",
    "client": "client.jsonl",
    "oracle": "oracle.jsonl",
    "modes": "modes.jsonl",
    "faults": "faults.jsonl",
    "load": "load.jsonl",
    "rolled_back": "rolled_back.jsonl",
    "checks": "checks.jsonl",  # results of the run's SQL checks (chaos.bindings.checks)
}
_READ_BUFFER = 1 << 20


class HistoryError(BadInput):
    """The run folder has no usable History (no run.json, or a corrupt line)."""


class History:
    """A run's recorded History: ``run`` (run.json) and one lazy reader per source.

    Pure data: no method writes to the folder or contacts a service.
    """

    def __init__(self, history_dir: Path, run: RunInfo) -> None:
        self.dir = history_dir
        self.run = run
        self.problems: list[str] = []
        self._truth: RunTruth | None = None

    @classmethod
    def open(cls, run_dir: str | Path) -> History:
        """Open ``run_dir`` (a run folder holding ``history/``, or the history folder itself).

        Raises ``HistoryError`` when there is no readable ``run.json``.
        """
        root = Path(run_dir)
        candidates = [root / "history", root]
        for history_dir in candidates:
            for run_json in (history_dir / "run.json", root / "run.json"):
                if run_json.is_file():
                    return cls(history_dir, _read_run(run_json))
        raise HistoryError(f"{root}: no history/run.json (is this a tradechaos run folder?)")

    # -- sources ---------------------------------------------------------------------------

    def path(self, source: str) -> Path:
        """The file of ``source`` (one of ``SOURCES``)."""
        try:
            return self.dir / SOURCES[source]
        except KeyError:
            known = ", ".join(SOURCES)
            raise ValueError(f"unknown history source {source!r} (known: {known})") from None

    def has(self, source: str) -> bool:
        """True when the source's file exists (it may still be empty)."""
        return self.path(source).is_file()

    def records(self, source: str) -> Iterator[Any]:
        """Decoded JSON objects of ``source`` in file order (empty if the file is absent)."""
        return self._iter_jsonl(self.path(source))

    def open_lines(self, source: str) -> BinaryIO | None:
        """The raw file of ``source`` opened for reading lines (None when absent); the
        caller closes it. For hot loops: decode ranges with ``decode_lines``."""
        path = self.path(source)
        return path.open("rb", buffering=_READ_BUFFER) if path.is_file() else None

    def decode_lines(self, source: str, lines: list[bytes], first_lineno: int) -> list[Any]:
        """The records of consecutive ``lines`` of ``source`` (the first being line
        ``first_lineno``), decoded in one C-level pass when they are all plain JSON; same
        records and error handling as ``records``."""
        try:
            return list(map(loads, lines))
        except ValueError:
            pass
        path = self.path(source)
        records = []
        for lineno, line in enumerate(lines, first_lineno):
            record = self._decode_line(path, lineno, line)
            if record is _STOP:
                break
            if record is not _SKIP:
                records.append(record)
        return records

    def events(self) -> Iterator[Event]:
        """The db event log, in the order written (seq order for a correct stack)."""
        return cast(Iterator[Event], self.records("events"))

    def rolled_back(self) -> Iterator[Event]:
        """The events rollbacks removed from the log (each with ``rollback``: the id of the
        rollback that removed it), in rollback then seq order; empty without rollbacks."""
        return cast(Iterator[Event], self.records("rolled_back"))

    def blocks(self) -> Iterator[Block]:
        """Chain blocks as exported from the chain node, in file (height) order."""
        return cast(Iterator[Block], self.records("chain"))

    def client_ops(self) -> Iterator[ClientOp]:
        """Client operations (invoke, then one ok/fail/info per invoke), in time order."""
        return cast(Iterator[ClientOp], self.records("client"))

    def oracle(self) -> Iterator[OraclePublication]:
        """Oracle publications, in the order published."""
        return cast(Iterator[OraclePublication], self.records("oracle"))

    def modes(self) -> Iterator[ModeChange]:
        """Trading-mode changes as the runner/operators recorded them."""
        for obj in self.records("modes"):
            yield ModeChange(
                time=float(obj.get("time", 0.0)),
                mode=str(obj.get("mode", "")),
                source=str(obj.get("source", "")),
            )

    def faults(self) -> Iterator[FaultRecord]:
        """Fault begin/end/evidence records and world events (price moves)."""
        for obj in self.records("faults"):
            yield FaultRecord.from_json(obj)

    def load_samples(self) -> Iterator[dict[str, Any]]:
        """Load generator samples and its final summary (``{"final": true, ...}``)."""
        return cast(Iterator[dict[str, Any]], self.records("load"))

    # -- truth -----------------------------------------------------------------------------

    def truth(self) -> RunTruth:
        """The run's ground truth (``chaos.history.truth.RunTruth``), built once."""
        if self._truth is None:
            from chaos.history.truth import RunTruth

            self._truth = RunTruth.of_run(self.run, self.faults())
        return self._truth

    # -- internals -------------------------------------------------------------------------

    def _iter_jsonl(self, path: Path) -> Iterator[Any]:
        # One line decoded and released at a time: decoding chunks into lists is slower
        # (the garbage collector scans every retained dict).
        if not path.is_file():
            return
        with path.open("rb", buffering=_READ_BUFFER) as fh:
            for lineno, line in enumerate(fh, 1):
                try:
                    record = loads(line)
                except ValueError:
                    record = self._decode_line(path, lineno, line)
                    if record is _SKIP:
                        continue
                    if record is _STOP:
                        return
                yield record

    def _decode_line(self, path: Path, lineno: int, line: bytes) -> Any:
        """One line's record, ``_SKIP`` for a blank line or ``_STOP`` for a torn last line.
        NaN/Infinity, which the fast decoder refuses, are read by the stdlib's (a NaN price
        is exactly what checkers look for)."""
        try:
            return loads(line)
        except ValueError:
            pass
        if not line.strip():
            return _SKIP
        try:
            return json.loads(line)
        except ValueError:
            pass
        if not line.endswith(b"\n"):
            self.problems.append(f"{path}:{lineno}: partial last line skipped")
            return _STOP
        raise HistoryError(f"{path}:{lineno}: not a JSON object")


_SKIP = object()
_STOP = object()


def _read_run(path: Path) -> RunInfo:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise HistoryError(f"{path}: unreadable run.json ({err})") from None
    if not isinstance(obj, dict):
        raise HistoryError(f"{path}: run.json is not a JSON object")
    try:
        return RunInfo.from_json(obj)
    except (TypeError, ValueError) as err:
        raise HistoryError(f"{path}: {err}") from None
