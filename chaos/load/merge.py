"""One client history from many load workers.

Each worker appends its client operations to its own ``client.<worker>.jsonl`` (it is that
file's only writer); ``merge_client_history`` then makes ``client.jsonl`` (docs/history.md)
from them.

Contract
- ``client.jsonl`` after a merge holds every record it held that has no ``worker`` field
  (what the runner wrote there itself: the adversarial-orders fault's operations) and
  every record of every worker file, interleaved by ``time`` with ``heapq.merge``: the
  records of any one file keep their order, so each invoke is still followed by its one
  completion whatever the clocks did, and the whole file is in time order when each
  worker's file is (a worker whose clock stepped back keeps its own order instead). A
  record of a worker file without ``worker`` gets it.
- The merge is idempotent (records with ``worker`` already in ``client.jsonl`` are dropped
  and taken again from the worker files, which are kept) and atomic (a temporary file and
  ``chaos.files.atomic``: a crash leaves the old ``client.jsonl`` and the worker files, never half
  of one).
- A last line without its newline (a worker killed mid-write) is dropped.
- ``count_ops`` counts the load's operations (invokes; not the adversaries') in
  ``client.jsonl``: in all, and per worker.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.experiment.partition import FAULT_PROCESSES
from chaos.files.atomic import replace_jsonl

CLIENT_FILE = "client.jsonl"


def worker_client_file(history_dir: Path, worker: int) -> Path:
    """Where worker ``worker`` writes its client operations."""
    return Path(history_dir) / f"client.{worker}.jsonl"


def records(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON-lines records of ``path`` in file order (none when it does not exist)."""
    if not path.exists():
        return
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break  # the writer was killed mid-line
            if raw.strip():
                yield json.loads(raw)


def _tagged(path: Path, worker: int) -> Iterator[dict[str, Any]]:
    for record in records(path):
        record.setdefault("worker", worker)
        yield record


def _time(record: dict[str, Any]) -> float:
    value = record.get("time")
    return float(value) if isinstance(value, int | float) else 0.0


def merge_client_history(history_dir: Path | str, workers: Sequence[int]) -> Path:
    """Rewrite ``client.jsonl`` as the merge of its own records and ``workers``' files."""
    history = Path(history_dir)
    target = history / CLIENT_FILE
    own = (r for r in records(target) if "worker" not in r)
    streams = [own, *(_tagged(worker_client_file(history, w), w) for w in workers)]
    replace_jsonl(target, heapq.merge(*streams, key=_time), durable=True)
    return target


def is_adversary(op: dict[str, Any]) -> bool:
    """An operation of a fault's traders (adversarial orders, trigger_orders), not of the
    load's."""
    process = op.get("process")
    return bool(op.get("adversary")) or (isinstance(process, int) and process >= FAULT_PROCESSES)


@dataclass(frozen=True)
class OpCounts:
    ops: int = 0
    per_worker: dict[str, int] = field(default_factory=dict)  # JSON keys: "0", "1", ...


def count_ops(history_dir: Path | str) -> OpCounts:
    """The load's operations in ``client.jsonl`` (see the module doc)."""
    total = 0
    per_worker: Counter[str] = Counter()
    for op in records(Path(history_dir) / CLIENT_FILE):
        if op.get("type") != "invoke" or is_adversary(op):
            continue
        total += 1
        if "worker" in op:
            per_worker[str(op["worker"])] += 1
    ordered = dict(sorted(per_worker.items(), key=lambda kv: int(kv[0])))
    return OpCounts(total, ordered)
