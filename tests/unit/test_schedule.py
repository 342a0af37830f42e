"""The schedule: steps start on time in their own threads, ``after`` chains, ``for`` heals,
skipped steps keep the timeline, heal_all heals everything once in reverse start order."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from chaos.experiment.model import Step
from chaos.runner.schedule import Clock, Schedule, StepRun


def step(
    step_id: str, at: float = 0.0, after: str | None = None, for_s: float | None = None
) -> Step:
    return Step(id=step_id, index=0, action="latency", target="x", params={}, at_s=at,
                after=after, for_s=for_s)  # fmt: skip


class Recorded:
    def __init__(
        self,
        name: str,
        log: list[str],
        block: bool = False,
        fail: bool = False,
        seconds: float = 0.0,
    ) -> None:
        self.name, self.log, self.block, self.fail, self.seconds = name, log, block, fail, seconds
        self.healed = threading.Event()

    def inject(self) -> None:
        self.log.append(f"inject {self.name}")
        if self.fail:
            raise RuntimeError("boom")
        if self.block:
            self.healed.wait(5)
        if self.seconds:
            threading.Event().wait(self.seconds)  # a procedure that takes this long

    def heal(self) -> None:
        self.log.append(f"heal {self.name}")
        self.healed.set()

    def describe(self) -> str:
        return self.name


def schedule(runs: list[StepRun], log: list[str], **flags: Any) -> Schedule:
    return Schedule(runs, lambda s: Recorded(s.id, log, **flags.get(s.id, {})), Clock())


def test_steps_start_at_their_offsets_and_for_heals() -> None:
    log: list[str] = []
    runs = [
        StepRun(step("a", at=0.05, for_s=0.1), True, False),
        StepRun(step("b", at=0.2), True, False),
    ]
    sched = schedule(runs, log)
    t0 = sched.clock.mono()
    sched.run(t0, 0.4)
    assert sched.heal_all() == []
    a = runs[0]
    assert a.lateness_ms is not None and 0 <= a.lateness_ms < 50
    assert a.started is not None and a.scheduled is not None and a.ended is not None
    assert a.scheduled - sched.clock.wall(t0) == pytest.approx(0.05, abs=0.005)
    assert a.ended - a.started == pytest.approx(0.1, abs=0.05)
    assert log.index("heal a") < log.index("inject b")  # a healed at 0.15s, b starts at 0.2s
    assert log.count("heal a") == 1 and log.count("heal b") == 1


def test_after_starts_relative_to_the_leaders_end() -> None:
    log: list[str] = []
    runs = [StepRun(step("a", at=0.0, for_s=0.15), True, False),
            StepRun(step("b", after="a", at=0.05), True, False)]  # fmt: skip
    sched = schedule(runs, log)
    sched.run(sched.clock.mono(), 0.5)
    sched.heal_all()
    a, b = runs
    assert a.ended is not None and b.started is not None
    assert b.started - a.ended == pytest.approx(0.05, abs=0.03)
    assert b.lateness_ms is not None and b.lateness_ms < 30


def test_skipped_step_keeps_the_timeline_and_is_not_built() -> None:
    log: list[str] = []
    built: list[str] = []

    def build(s: Step) -> Recorded:
        built.append(s.id)
        return Recorded(s.id, log)

    runs = [StepRun(step("a", at=0.0, for_s=0.1), True, True),
            StepRun(step("b", after="a", at=0.0), False, False)]  # fmt: skip
    sched = Schedule(runs, build, Clock())
    sched.run(sched.clock.mono(), 0.3)
    sched.heal_all()
    assert built == ["b"] and "inject a" not in log
    a, b = runs
    assert a.started is None and a.ended is not None and b.started is not None
    assert b.started - a.ended == pytest.approx(0.0, abs=0.03)


def test_heal_all_heals_in_reverse_start_order_and_unblocks() -> None:
    log: list[str] = []
    runs = [StepRun(step("a", at=0.0), True, False), StepRun(step("b", at=0.05), True, False)]
    sched = schedule(runs, log, a={"block": True})
    sched.run(sched.clock.mono(), 0.1, overrun_s=0.1)
    assert sched.active == ["a", "b"] or sched.active == ["a"]
    assert sched.heal_all() == []
    assert [e for e in log if e.startswith("heal")] == ["heal b", "heal a"]
    assert sched.heal_all() == [] and log.count("heal a") == 1  # idempotent
    assert sched.active == []


def test_a_failing_step_is_recorded_and_pending_steps_are_marked() -> None:
    log: list[str] = []
    runs = [StepRun(step("a", at=0.0), True, False), StepRun(step("b", at=5.0), True, False)]
    sched = schedule(runs, log, a={"fail": True})
    sched.run(sched.clock.mono(), 0.1, overrun_s=0.2)
    sched.heal_all()
    a, b = runs
    assert a.error is not None and "boom" in a.error
    assert b.started is None and b.error is not None and "overran its duration" in b.error
    assert [r.step.id for r in sched.errors] == ["a", "b"]


def test_a_slow_step_delays_the_end_instead_of_skipping_its_followers() -> None:
    log: list[str] = []
    runs = [StepRun(step("slow", at=0.0), True, False),
            StepRun(step("next", after="slow", at=0.0), False, False)]  # fmt: skip
    sched = schedule(runs, log, slow={"seconds": 0.4})
    t0 = sched.clock.mono()
    sched.run(t0, 0.1)
    sched.heal_all()
    assert sched.clock.mono() - t0 >= 0.4
    slow, follower = runs
    assert follower.started is not None and follower.error is None
    assert slow.ended is not None and follower.started >= slow.ended


def test_stop_ends_the_method_early() -> None:
    runs = [StepRun(step("a", at=3.0), True, False)]
    sched = schedule(runs, [])
    threading.Timer(0.05, sched.stop).start()
    t0 = sched.clock.mono()
    sched.run(t0, 10.0)
    assert sched.clock.mono() - t0 < 1.0
    assert runs[0].started is None


class SlowHeal(Recorded):
    """A fault whose heal takes a while (e.g. restarting a service)."""

    def heal(self) -> None:
        self.log.append(f"heal {self.name}")
        threading.Event().wait(0.3)
        self.healed.set()


def test_a_heal_under_way_is_not_started_again_by_heal_all() -> None:
    """The step's own ``for`` heal and the end-of-run heal_all race: one heal only."""
    log: list[str] = []
    runs = [StepRun(step("a", at=0.0, for_s=0.05), True, False)]
    sched = Schedule(runs, lambda s: SlowHeal(s.id, log), Clock())
    sched.run(sched.clock.mono(), 0.12, overrun_s=0.0)  # ends while a's heal is under way
    assert sched.heal_all() == []
    assert log.count("heal a") == 1, log
