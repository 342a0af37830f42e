"""The explorer's progress lines on stderr: one after every batch of trials, one per find.

A line: ``[explore dydx/vulnerable] search 5/20 | finds 1 | best oracle_age 13.3s (2.66)
| 24.1 s/trial | ETA 2m10s``. The ETA is what is left of the phase at the rate trials have
finished so far (with ``--time``: the time left). Nothing is printed when ``quiet``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from chaos.explore.signals import Signal

if TYPE_CHECKING:
    from chaos.explore.confirm import Find
    from chaos.explore.state import ExplorationView
    from chaos.explore.trial import TrialOutcome


def clock_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def best_signal(exploration: ExplorationView) -> Signal | None:
    """The signal with the highest pressure any trial measured."""
    best: Signal | None = None
    for record in exploration.records:
        if record.outcome is None:
            continue
        for signal in record.outcome.signals.values():
            if best is None or signal.pressure > best.pressure:
                best = signal
    return best


class ExploreProgress:
    def __init__(self, label: str = "explore", quiet: bool = False, stream: TextIO | None = None):
        self.label = label
        self.quiet = quiet
        self.stream = stream

    def start(self, exploration: ExplorationView) -> None:
        plan, settings = exploration.plan, exploration.settings
        limit = []
        if settings.budget is not None:
            limit.append(f"budget {settings.budget} trials")
        if settings.time_s is not None:
            limit.append(f"time {clock_text(settings.time_s)}")
        self._write(
            f"search seed {settings.seed} (replay with --seed {settings.seed}); "
            f"{', '.join(limit)}; {len(plan.space.faults)} fault entries, "
            f"{plan.space.min_steps}-{plan.space.max_steps} steps, {len(plan.backbone)} fixed "
            f"step(s); --jobs {settings.jobs}"
        )

    def trials(self, exploration: ExplorationView, outcomes: Sequence[TrialOutcome]) -> None:
        if outcomes:
            self._write(self.status_line(exploration))

    def found(self, exploration: ExplorationView, find: Find) -> None:
        invariant = exploration.settings.invariant
        runs = find.runs()
        hits = round(find.rate(invariant) * runs)
        kind = "solid" if find.solid(invariant) else "flaky"
        violated = ", ".join(sorted({v for o in find.outcomes for v in o.violated}))
        self._write(
            f"found ({kind}, reproduced {hits}/{runs}) in trial {find.trials[0]}: {violated}: "
            f"{find.candidate.describe()}"
        )

    def finish(self, exploration: ExplorationView) -> None:
        trials = len(exploration.records)
        self._write(
            f"{exploration.status}: {trials} trial(s) in {clock_text(exploration.elapsed())}"
            + (f"; {exploration.message}" if exploration.message else "")
        )

    def status_line(self, exploration: ExplorationView) -> str:
        settings = exploration.settings
        records = [r for r in exploration.records if r.outcome is not None]
        phase = records[-1].purpose if records else "search"
        if phase == "search":
            total = "" if settings.budget is None else f"/{settings.budget}"
            count = f"search {exploration.search_trials}{total}"
        elif phase == "shrink":
            done = sum(1 for r in records if r.purpose == "shrink")
            count = f"shrink {done}/{settings.shrink_budget}"
        else:
            count = phase
        parts = [count, f"finds {len(exploration.finds)}"]
        signal = best_signal(exploration)
        parts.append(f"best {signal.describe()}" if signal is not None else "best -")
        elapsed = exploration.elapsed()
        if records:
            parts.append(f"{elapsed / len(records):.1f} s/trial")
        eta = self._eta(exploration, phase, len(records), elapsed)
        if eta is not None:
            parts.append(f"ETA {clock_text(eta)}")
        return " | ".join(parts)

    def _eta(
        self, exploration: ExplorationView, phase: str, done: int, elapsed: float
    ) -> float | None:
        left = exploration.time_left()
        if done == 0:
            return left
        per_trial = elapsed / done
        settings = exploration.settings
        remaining: float | None = None
        if phase == "search" and settings.budget is not None:
            remaining = (settings.budget - exploration.search_trials) * per_trial
        elif phase == "shrink":
            used = sum(1 for r in exploration.records if r.purpose == "shrink")
            remaining = (settings.shrink_budget - used) * per_trial
        if left is not None:
            return left if remaining is None else min(left, remaining)
        return remaining

    def _write(self, line: str) -> None:
        if self.quiet:
            return
        stream = self.stream if self.stream is not None else sys.stderr
        try:
            stream.write(f"[{self.label}] {line}\n")
            stream.flush()
        except (OSError, ValueError):
            pass
