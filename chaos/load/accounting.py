"""Locust's request counts against the client history: did every request the load made
become exactly one operation (an invoke and its one completion) in ``client.jsonl``?"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.load.merge import CLIENT_FILE, is_adversary, records


@dataclass(frozen=True)
class LoadAccounting:
    """Locust's request counts against the client history (order and cancel requests)."""

    locust_requests: dict[str, int]
    invokes: dict[str, int]
    completions: dict[str, int] = field(default_factory=dict)
    unmatched_invokes: int = 0
    interrupted: int = 0

    @property
    def matches(self) -> bool:
        names = set(self.locust_requests) | set(self.invokes)
        counted = all(
            self.locust_requests.get(n, 0) == self.invokes.get(n, 0) - self._interrupted_of(n)
            for n in names
        )
        return counted and self.unmatched_invokes == 0

    def _interrupted_of(self, name: str) -> int:
        return self.completions.get(f"{name}:interrupted", 0)

    def describe(self) -> str:
        return (
            f"locust requests {self.locust_requests}, history invokes {self.invokes}, "
            f"completions {self.completions}, invokes without completion {self.unmatched_invokes}"
        )


def account(by_name: Mapping[str, Mapping[str, Any]], history_dir: Path) -> LoadAccounting:
    """``by_name`` (Locust's ``{name: {"requests", "failures"}}``) against the load's
    operations in ``history_dir/client.jsonl`` (the adversaries' are not the load's)."""
    locust = {n: int(by_name[n]["requests"]) for n in ("order", "cancel") if n in by_name}
    invokes: Counter[str] = Counter()
    completions: Counter[str] = Counter()
    open_ops: Counter[tuple[int, str]] = Counter()
    for op in records(Path(history_dir) / CLIENT_FILE):
        if is_adversary(op):
            continue
        key = (int(op.get("process", 0)), str(op.get("client_order_id")))
        if op["type"] == "invoke":
            invokes[op["f"]] += 1
            open_ops[key] += 1
            continue
        open_ops[key] -= 1
        completions[op["type"]] += 1
        if str(op.get("error", "")).startswith("interrupted"):
            completions[f"{op['f']}:interrupted"] += 1
    return LoadAccounting(
        locust_requests=locust,
        invokes=dict(invokes),
        completions=dict(completions),
        unmatched_invokes=sum(v for v in open_ops.values() if v != 0),
        interrupted=sum(v for k, v in completions.items() if k.endswith(":interrupted")),
    )
