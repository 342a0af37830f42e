"""Replacing a file whole, so that a reader sees the old content or the new, never part.

Every writer goes to a temporary file beside the target (``.NAME.PID.THREAD.tmp``: two
processes or threads never share one), then renames it over the target; a failure while
writing removes the temporary file and leaves the target as it was. ``durable=True`` also
fsyncs the file before the rename (for records another process relies on after a crash:
run folders, the chain).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def replacing(
    path: str | Path, *, binary: bool = False, durable: bool = False, newline: str | None = None
) -> Iterator[IO[Any]]:
    """A handle to write the new content of ``path`` to; it replaces ``path`` on exit
    without an exception (and is discarded with one)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        if binary:
            handle: IO[Any] = tmp.open("wb")
        else:
            handle = tmp.open("w", encoding="utf-8", newline=newline)
        with handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def replace_text(path: str | Path, text: str, *, durable: bool = False) -> Path:
    """``path`` now holds ``text``."""
    with replacing(path, durable=durable) as handle:
        handle.write(text)
    return Path(path)


def replace_json(
    path: str | Path,
    content: Any,
    *,
    indent: int | None = 2,
    sort_keys: bool = False,
    default: Callable[[Any], Any] | None = str,
    durable: bool = False,
) -> Path:
    """``path`` now holds ``content`` as JSON and a final newline (values JSON cannot hold
    are written as ``default`` makes them: their ``str`` unless told otherwise)."""
    text = json.dumps(content, indent=indent, sort_keys=sort_keys, default=default)
    return replace_text(path, text + "\n", durable=durable)


def replace_jsonl(path: str | Path, records: Iterable[Any], *, durable: bool = False) -> int:
    """``path`` now holds one compact JSON line per record; the number of records. Records
    are written as they come (an iterator is never held in memory whole); one that raises
    leaves ``path`` as it was."""
    count = 0
    with replacing(path, durable=durable) as handle:
        for record in records:
            handle.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
            count += 1
    return count
