"""Schedule lateness: how late each step's inject starts versus its scheduled time.

No-op steps at fixed offsets (baseline: a bare ``threading.Event.wait`` to the same
instants, measured in the same run). Prints p50/p99/max lateness in ms; the target is
p99 <= 20 ms on an idle machine.
"""

from __future__ import annotations

import statistics
import threading
import time

from chaos.experiment.model import Step
from chaos.runner.schedule import Clock, Schedule, StepRun

STEPS = 200
SPACING_S = 0.01


class NoOp:
    def inject(self) -> None:
        return None

    def heal(self) -> None:
        return None

    def describe(self) -> str:
        return "no-op"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _schedule_lateness(concurrent: int) -> list[float]:
    steps = [
        Step(
            id=f"s{i}-{k}",
            index=i,
            action="noop",
            target=None,
            params={},
            at_s=0.05 + i * SPACING_S,
        )
        for i in range(STEPS)
        for k in range(concurrent)
    ]
    runs = [StepRun(s, True, False) for s in steps]
    schedule = Schedule(runs, lambda s: NoOp(), Clock())
    schedule.run(schedule.clock.mono(), 0.1 + STEPS * SPACING_S)
    schedule.heal_all()
    return [r.lateness_ms for r in runs if r.lateness_ms is not None]


def _baseline_lateness() -> list[float]:
    event = threading.Event()
    t0 = time.monotonic()
    late: list[float] = []
    for i in range(STEPS):
        due = t0 + 0.05 + i * SPACING_S
        event.wait(max(0.0, due - time.monotonic()))
        late.append((time.monotonic() - due) * 1000.0)
    return late


def _line(label: str, values: list[float]) -> str:
    return (
        f"{label:<28} n={len(values):4d}  p50 {statistics.median(values):6.2f} ms  "
        f"p99 {_percentile(values, 0.99):6.2f} ms  max {max(values):6.2f} ms"
    )


def main() -> None:
    baseline = _baseline_lateness()
    print(_line("baseline Event.wait", baseline))
    for concurrent in (1, 4):
        lateness = _schedule_lateness(concurrent)
        print(_line(f"schedule, {concurrent} step(s) per instant", lateness))
        ratio = statistics.median(lateness) / max(statistics.median(baseline), 1e-6)
        print(f"{'':28} p50 vs baseline: x{ratio:.1f}; p99 target <= 20 ms: "
              f"{'met' if _percentile(lateness, 0.99) <= 20 else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
