"""The on-disk recorder: ``run.json`` and append-only ``<stream>.jsonl`` files.

Contract (docs/contracts.md section 6): ``record(stream, obj)`` is thread-safe; each record
is one JSON line, written and flushed before ``record`` returns, so a crash loses at most
the record being written. A record without ``time`` gets the current wall-clock time.
After ``close()`` further records are dropped (faults healing late must not crash). A
stream file replaced under the recorder (the load's merge of its workers' client files,
``chaos.load.merge``) is reopened, so a later record lands in the file that is there.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from chaos.files.atomic import replace_json

_STREAM = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class Recorder:
    def __init__(self, history_dir: Path | str) -> None:
        self.history_dir = Path(history_dir)
        self.history_dir.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, IO[str]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def write_run(self, run: dict[str, Any]) -> Path:
        """Write ``run.json`` (replacing it) and return its path."""
        return replace_json(self.history_dir / "run.json", run, sort_keys=True)

    def record(self, stream: str, obj: dict[str, Any]) -> None:
        if not _STREAM.match(stream):
            raise ValueError(f"bad history stream name {stream!r}")
        line = json.dumps({"time": time.time(), **obj}, default=str, allow_nan=False)
        with self._lock:
            if self._closed:
                return
            path = self.history_dir / f"{stream}.jsonl"
            handle = self._files.get(stream)
            if handle is not None and _replaced(handle, path):
                handle.close()
                handle = None
            if handle is None:
                handle = open(path, "a", encoding="utf-8")  # noqa: SIM115
                self._files[stream] = handle
            handle.write(line + "\n")
            handle.flush()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for handle in self._files.values():
                handle.close()
            self._files.clear()


def _replaced(handle: IO[str], path: Path) -> bool:
    """True when ``path`` is no longer the file ``handle`` writes to."""
    try:
        return os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return True
