"""The run's ``health`` abort condition, judged from workload readiness on the API server.

``HealthAbort(for_s).update(ready, now)`` takes each workload's readiness (name -> bool)
and returns a reason once some workload has been not ready for ``for_s`` seconds
continuously, else None. It is armed only after every workload was ready once (the stack
starting is not an abort), as the local runner arms its watcher after the steady state.
"""

from __future__ import annotations

from collections.abc import Mapping


class HealthAbort:
    def __init__(self, for_s: float) -> None:
        self.for_s = for_s
        self.armed = False
        self.since: float | None = None

    def update(self, ready: Mapping[str, bool], now: float) -> str | None:
        down = sorted(name for name, ok in ready.items() if not ok)
        if not self.armed:
            self.armed = bool(ready) and not down
            return None
        if not down:
            self.since = None
            return None
        if self.since is None:
            self.since = now
        if now - self.since >= self.for_s:
            return f"not ready for {self.for_s:g}s: {', '.join(down)}"
        return None
