"""The load's live figures: a sliding window of completed order/cancel requests and the
stats file the driver samples. Pure of locust (the worker feeds it), so it is unit-tested
directly.

Contract
- ``Window(seconds)`` holds the requests completed in the last ``seconds`` as
  ``(monotonic time, ms, failed)``; ``add`` takes one request (a local runner's request
  event), ``add_report`` one worker's report to a Locust master (a histogram of response
  times and a failure count for the requests it completed since its last report).
  ``figures()`` is ``{"rps", "error_rate", "p50_ms", "p99_ms"}`` over the window.
- ``write_atomic(path, payload)`` replaces ``path`` with the JSON ``payload`` (a reader
  never sees half a file).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chaos.files.atomic import replace_json

COUNTED = ("order", "cancel")  # the requests the figures count (not market data reads)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Window:
    """Requests completed in the last ``seconds``: (monotonic time, ms, failed)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.samples: deque[tuple[float, float, bool]] = deque()
        self.started = time.monotonic()

    def add(self, response_ms: float, failed: bool) -> None:
        self.samples.append((time.monotonic(), response_ms, failed))

    def add_report(self, response_times: Mapping[Any, int], failures: int) -> None:
        """One worker report: ``response_times`` maps a (rounded) ms to a request count;
        ``failures`` of those requests failed."""
        now = time.monotonic()
        left = max(0, int(failures))
        for ms, count in sorted(response_times.items(), key=lambda kv: float(kv[0])):
            for _ in range(int(count)):
                self.samples.append((now, float(ms), left > 0))
                left -= 1

    def figures(self) -> dict[str, float]:
        now = time.monotonic()
        while self.samples and self.samples[0][0] < now - self.seconds:
            self.samples.popleft()
        span = max(1e-3, min(self.seconds, now - self.started))
        latencies = [s[1] for s in self.samples]
        failures = sum(1 for s in self.samples if s[2])
        return {
            "rps": round(len(self.samples) / span, 2),
            "error_rate": round(failures / len(self.samples), 4) if self.samples else 0.0,
            "p50_ms": round(percentile(latencies, 0.50), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
        }


class Tally:
    """Requests and failures per request name since the start (a Locust worker's own stats
    are reset by every report it sends to its master, so it counts here)."""

    def __init__(self) -> None:
        self.by_name: dict[str, dict[str, int]] = {}

    def add(self, name: str, failed: bool) -> None:
        entry = self.by_name.setdefault(name, {"requests": 0, "failures": 0})
        entry["requests"] += 1
        entry["failures"] += int(failed)

    def totals(self) -> tuple[int, int]:
        entries = self.by_name.values()
        return sum(e["requests"] for e in entries), sum(e["failures"] for e in entries)


def write_atomic(path: Path, payload: dict[str, Any]) -> None:
    replace_json(path, payload, indent=None, default=None)


def load_sample(figures: Mapping[str, Any]) -> dict[str, Any]:
    """One ``load.jsonl`` sample (docs/contracts.md section 2) from a stats-file payload."""
    sample = {
        k: figures[k]
        for k in ("time", "rps", "p50_ms", "p99_ms", "error_rate", "users", "requests", "failures")
    }
    sample.update(p50=figures["p50_ms"], p99=figures["p99_ms"], errors=figures["failures"])
    return sample
