"""A small experiment with an explore: section, and fake trial functions for the explorer's
unit tests (no stack: a trial's verdicts are a function of its schedule)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypedDict, Unpack

from chaos.experiment.loader import load
from chaos.experiment.model import Experiment
from chaos.explore.engine import Exploration, ExploreResult
from chaos.explore.names import stack_names
from chaos.explore.schedule import Candidate, FaultStep, Plan
from chaos.explore.signals import Signal
from chaos.explore.space import parse_number
from chaos.explore.spaceload import load_space
from chaos.explore.state import Settings
from chaos.explore.trial import TrialFunction, TrialOutcome, TrialRequest


class SettingsArgs(TypedDict, total=False):
    """The explorer ``Settings`` a test names (the rest keep their defaults)."""

    budget: int | None
    time_s: float | None
    jobs: int
    seed: int
    confirm: int
    shrink_budget: int


STALE = "no_stale_price_execution"
LIQ = "no_unintended_liquidations"

EXPERIMENT = """\
name: explore-unit
seed: 5
duration: 20s
load: {users: 8, spawn_rate: 8}
steady_state:
  probes:
    - {probe: health}
variants:
  vulnerable: {mitigations: none}
  mitigated: {mitigations: all}
method:
  - {id: cancel, at: 2s, action: trading_mode, mode: cancel_only}
  - {id: move, at: 3s, action: price_move, pct: 5, over: 1s}
  - {id: incident-fault, at: 4s, action: stop, target: oracle, for: 5s}
  - {id: normal, at: 8s, action: trading_mode, mode: normal}
invariants: [no_stale_price_execution, no_unintended_liquidations]
explore:
  steps: {min: 3, max: 5}
  window: [0s, 14s]
  shrink: 80
  confirm: 1
  faults:
    - {action: pause, target: [oracle, risk, writer], for: [1s, 6s]}
    - {action: latency, target: [oracle-db, risk-db, writer-chain], latency: [50ms, 2s],
       for: [1s, 6s]}
    - {action: kill, target: [writer, chain], for: [1s, 4s]}
    - {action: feed_fault, kind: [freeze, drop], venue: {one_of: [0, 1, 2]}, for: [1s, 5s]}
"""


def write_experiment(tmp_path: Path, text: str = EXPERIMENT, name: str = "unit.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def plan_for(path: Path, variant: str = "vulnerable", space: str | None = None) -> Plan:
    experiment = load(path)
    return Plan.of(
        experiment, variant, load_space(experiment, variant, space), stack_names(experiment)
    )


def param(step: FaultStep, name: str) -> float:
    return parse_number(dict(step.params)[name])


def planted_cause(candidate: Candidate) -> tuple[bool, bool]:
    """The planted minimal cause: the oracle paused for >= 3 s AND >= 500 ms of latency on
    the oracle's database link; either alone is harmless."""
    paused = any(
        s.action == "pause" and s.target == "oracle" and (s.for_s or 0) >= 3.0
        for s in candidate.steps
    )
    slow = any(
        s.action == "latency" and s.target == "oracle-db" and param(s, "latency") >= 0.5
        for s in candidate.steps
    )
    return paused, slow


class PlantedTrials:
    """A trial function whose verdict is ``planted_cause``; it records every request."""

    def __init__(self, check: Callable[[TrialRequest], None] | None = None) -> None:
        self.requests: list[TrialRequest] = []
        self.check = check

    def __call__(self, requests: Sequence[TrialRequest]) -> list[TrialOutcome]:
        outcomes = []
        for request in requests:
            if self.check is not None:
                self.check(request)
            self.requests.append(request)
            paused, slow = planted_cause(request.candidate)
            violated = paused and slow
            pressure = 0.45 * paused + 0.45 * slow
            outcomes.append(
                TrialOutcome(
                    "failed" if violated else "passed",
                    {STALE: not violated, LIQ: True},
                    {"oracle_age": Signal("oracle_age", 5.0 * pressure, pressure, "s")},
                    wall_s=request.candidate.duration_s + 2.0,
                    evidence={STALE: "fill used an oracle price 6.00s old"} if violated else {},
                )
            )
        return outcomes


def explore(
    plan: Plan,
    folder: Path,
    trials: TrialFunction,
    **settings: Unpack[SettingsArgs],
) -> tuple[Exploration, ExploreResult]:
    exploration = Exploration(plan, Settings(**settings), trials, folder)
    return exploration, exploration.explore()


def reload(path: Path) -> Experiment:
    return load(path)
