"""The method's timeline: each step's inject started on time in its own thread.

Contract
- ``at`` steps start ``at_s`` after ``t0`` (the end of the steady-state check); ``after``
  steps start ``at_s`` after the named step ended. A step ends when its inject returned, or,
  with ``for``, when it was healed ``for_s`` after it started.
- Each step's inject runs in a worker thread started at its due time, so a blocking step
  (a database upgrade) never delays later ones. ``scheduled``/``started``/``ended`` are
  wall-clock seconds; ``lateness_ms`` is started - scheduled.
- A skipped step (a fault under ``--no-faults``) is not built or run; it "ends" at its
  scheduled time plus ``for`` so that the rest of the timeline is unchanged.
- The method ends at its duration, or later when a step is still pending or running
  (at most ``OVERRUN_S`` later), so a slow procedure never skips the steps after it.
- ``heal_all()`` heals every built fault in reverse start order; idempotent; it is what the
  runner's ExitStack calls on every way out, and what ends the method.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chaos.experiment.model import Step

HEAL_JOIN_S = 30.0
OVERRUN_S = 120.0  # how long the method may run past its duration for slow steps


class FaultLike(Protocol):
    def inject(self) -> None: ...
    def heal(self) -> None: ...
    def describe(self) -> str: ...


@dataclass
class StepRun:
    """One step's record in the journal timeline (docs/contracts.md section 3)."""

    step: Step
    fault: bool
    skipped: bool
    scheduled: float | None = None
    started: float | None = None
    ended: float | None = None
    lateness_ms: float | None = None
    error: str | None = None
    healed: bool = False
    _end_mono: float | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": self.step.id,
            "action": self.step.action,
            "target": self.step.target
            if not isinstance(self.step.target, tuple)
            else list(self.step.target),
            "scheduled": self.scheduled,
            "started": self.started,
            "ended": self.ended,
            "lateness_ms": self.lateness_ms,
            "fault": self.fault,
            "skipped": self.skipped,
        }
        if self.error is not None:
            entry["error"] = self.error
        return entry


class Clock:
    """Monotonic time for waiting, converted to wall-clock seconds for the records."""

    def __init__(self) -> None:
        self._wall0 = time.time()
        self._mono0 = time.monotonic()

    def mono(self) -> float:
        return time.monotonic()

    def wall(self, mono: float | None = None) -> float:
        return self._wall0 + ((time.monotonic() if mono is None else mono) - self._mono0)


class Schedule:
    """Runs ``runs`` (in file order) against faults built by ``build``."""

    def __init__(
        self,
        runs: Sequence[StepRun],
        build: Callable[[Step], FaultLike],
        clock: Clock | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.runs = list(runs)
        self.clock = clock or Clock()
        self._on_event = on_event or (lambda text: None)
        self._faults: dict[str, FaultLike] = {}
        self._order: list[str] = []  # step ids in start order
        self._threads: list[threading.Thread] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._heal_lock = threading.Lock()
        self._step_locks: dict[str, threading.Lock] = {}
        self._version = 0  # bumped (under _changed) whenever a step ends or stop() is called
        for run in self.runs:
            if not run.skipped:
                self._faults[run.step.id] = build(run.step)

    @property
    def active(self) -> list[str]:
        """Steps started and not yet ended (their ids)."""
        return [r.step.id for r in self.runs if r.started is not None and r.ended is None]

    def stop(self) -> None:
        """End the method early (abort, step failure); pending steps do not start."""
        self._stop.set()
        self._bump()

    def run(self, t0_mono: float, duration_s: float, overrun_s: float = OVERRUN_S) -> None:
        """Start steps on time. Returns ``duration_s`` after ``t0_mono`` once every step has
        started and ended (a slow step delays the end, never skips its followers), at the
        latest ``overrun_s`` later, or at once after ``stop()``."""
        end = t0_mono + duration_s
        by_id = {r.step.id: r for r in self.runs}
        pending = list(self.runs)
        while not self._stop.is_set():
            with self._changed:
                seen = self._version
            now = self.clock.mono()
            due_next: float | None = None
            for run in list(pending):
                due = self._due(run, by_id, t0_mono)
                if due is None:
                    continue
                if due <= now:
                    pending.remove(run)
                    self._launch(run, due)
                else:
                    due_next = due if due_next is None else min(due_next, due)
            if now >= end and ((not pending and not self.active) or now >= end + overrun_s):
                break
            wake = end if now < end else end + overrun_s
            wake = min(wake, due_next) if due_next is not None else wake
            self._wait_change(seen, max(0.0, min(wake - self.clock.mono(), 0.25)))
        for run in pending:
            if self._stop.is_set():
                run.error = run.error or "not started: the run was stopped first"
            else:
                run.error = run.error or (
                    f"not started: the method overran its duration by more than {overrun_s:g}s"
                )

    def _wait_change(self, seen: int, timeout: float) -> None:
        with self._changed:
            if self._version == seen:
                self._changed.wait(timeout)

    def _bump(self) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    def _due(self, run: StepRun, by_id: dict[str, StepRun], t0: float) -> float | None:
        step = run.step
        if step.after is None:
            return t0 + step.at_s
        leader = by_id.get(step.after)
        if leader is None or leader._end_mono is None:
            return None
        return leader._end_mono + step.at_s

    def _launch(self, run: StepRun, due: float) -> None:
        run.scheduled = self.clock.wall(due)
        if run.skipped:
            run._end_mono = due + (run.step.for_s or 0.0)
            run.ended = self.clock.wall(run._end_mono)
            self._on_event(f"skipped {run.step.id} ({run.step.describe()}): --no-faults")
            self._bump()
            return
        worker = threading.Thread(
            target=self._work, args=(run, due), name=f"step-{run.step.id}", daemon=True
        )
        self._threads.append(worker)
        worker.start()

    def _work(self, run: StepRun, due: float) -> None:
        fault = self._faults[run.step.id]
        started = self.clock.mono()
        run.started = self.clock.wall(started)
        run.lateness_ms = round((started - due) * 1000.0, 3)
        with self._heal_lock:
            self._order.append(run.step.id)
        self._on_event(f"start {run.step.id}: {run.step.describe()}")
        try:
            fault.inject()
            self._on_event(f"in effect: {run.step.id}")
            if run.step.for_s is not None:
                self._stop.wait(timeout=max(0.0, started + run.step.for_s - self.clock.mono()))
                self._heal(run.step.id)
        except Exception as err:  # a failed step is recorded; the runner decides what next
            run.error = f"{type(err).__name__}: {err}"
            self._on_event(f"step {run.step.id} failed: {run.error}")
        finally:
            run._end_mono = self.clock.mono()
            run.ended = self.clock.wall(run._end_mono)
            self._bump()

    def _heal(self, step_id: str) -> None:
        """Heal one step's fault once: the step's worker (after ``for``) and ``heal_all``
        may both get here; the second waits for the first and then finds it healed (a heal
        that failed is attempted again)."""
        run = next(r for r in self.runs if r.step.id == step_id)
        with self._heal_lock:
            step_lock = self._step_locks.setdefault(step_id, threading.Lock())
        with step_lock:
            if run.healed:
                return
            self._faults[step_id].heal()
            run.healed = True
        self._on_event(f"healed {step_id}")

    @property
    def errors(self) -> list[StepRun]:
        return [
            r for r in self.runs if r.error is not None and "the run was stopped" not in r.error
        ]

    def heal_all(self) -> list[str]:
        """Heal every fault (reverse start order, then the never-started ones), wait for the
        workers; returns the heal errors (every heal is attempted)."""
        self._stop.set()
        self._bump()
        problems: list[str] = []
        with self._heal_lock:
            started = list(self._order)
        order = list(reversed(started)) + [i for i in self._faults if i not in started]
        for step_id in order:
            try:
                self._heal(step_id)
            except Exception as err:
                problems.append(f"heal of {step_id} failed: {type(err).__name__}: {err}")
        deadline = self.clock.mono() + HEAL_JOIN_S
        for worker in self._threads:
            worker.join(timeout=max(0.0, deadline - self.clock.mono()))
            if worker.is_alive():
                problems.append(f"{worker.name} still running {HEAL_JOIN_S:g}s after heal")
        return problems
