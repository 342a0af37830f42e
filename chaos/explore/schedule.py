"""Candidate schedules and the experiments they become.

A ``Candidate`` is what the explorer searches and shrinks: the fault steps drawn from the
space (``FaultStep``), the method's duration and the number of load users. ``Plan`` holds
what stays the same for every trial of one exploration: the experiment, the variant, the
backbone (the fixed steps) and the space; ``Plan.experiment_for(candidate)`` is the
ordinary ``Experiment`` a trial runs, every searched step checked with the loader's rules
(``chaos.experiment.actions.validate_step``) and the timing rule (every step ends within the
method).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from chaos.errors import InvalidExperiment
from chaos.experiment import actions as registry
from chaos.experiment.model import Experiment, Step, Variant
from chaos.experiment.steps import planned_times
from chaos.explore.names import StackNames
from chaos.explore.space import Space, Target, parse_number, target_text


@dataclass(frozen=True)
class FaultStep:
    """One searched fault step: ``option`` is its entry in ``Space.faults``; ``params`` the
    action's parameters as an experiment file writes them (sorted by name)."""

    at_s: float
    option: int
    action: str
    target: Target
    for_s: float | None
    params: tuple[tuple[str, Any], ...]

    def describe(self) -> str:
        where = f" {target_text(self.target)}" if self.target is not None else ""
        extra = "".join(f" {k}={v}" for k, v in self.params)
        span = f" for {self.for_s:g}s" if self.for_s is not None else ""
        return f"+{self.at_s:g}s {self.action}{where}{extra}{span}"

    def to_dict(self) -> dict[str, Any]:
        target: Any = list(self.target) if isinstance(self.target, tuple) else self.target
        return {
            "at": self.at_s,
            "action": self.action,
            "target": target,
            "for": self.for_s,
            "params": dict(self.params),
        }


@dataclass(frozen=True)
class Candidate:
    """A schedule to try: fault steps in start order, the method's duration, the users."""

    steps: tuple[FaultStep, ...]
    duration_s: float
    users: int

    def with_steps(self, steps: Sequence[FaultStep]) -> Candidate:
        return replace(self, steps=in_order(steps))

    def describe(self) -> str:
        faults = "; ".join(step.describe() for step in self.steps) or "no faults"
        return f"{faults} (method {self.duration_s:g}s, {self.users} users)"

    @property
    def key(self) -> str:
        """Equal for equal schedules (steps may hold lists, so the dataclass is not hashed)."""
        return json.dumps(self.to_dict(), sort_keys=True, default=str)

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": [step.to_dict() for step in self.steps],
            "duration": self.duration_s,
            "users": self.users,
        }


@dataclass(frozen=True)
class Plan:
    """What every trial of one exploration shares."""

    experiment: Experiment
    variant: Variant
    backbone: tuple[Step, ...]
    space: Space
    names: StackNames

    @classmethod
    def of(cls, experiment: Experiment, variant: str, space: Space, names: StackNames) -> Plan:
        fixed = set(space.fixed)
        backbone = tuple(s for s in experiment.steps_for(variant) if s.id in fixed)
        return cls(experiment, experiment.variant(variant), backbone, space, names)

    @property
    def base(self) -> Candidate:
        """No fault steps, the experiment's own duration and users."""
        return Candidate((), self.experiment.duration_s, self.experiment.load.users)

    @property
    def invariants(self) -> tuple[str, ...]:
        return self.experiment.invariants

    def backbone_end(self) -> float:
        """When the last backbone step is planned to end (0 without a backbone)."""
        times = planned_times(list(self.backbone))
        return max((end for _, end in times.values()), default=0.0)

    def phase(self, at_s: float) -> str:
        """The maintenance phase a fault starting at ``at_s`` falls in: after which backbone
        step (the latest one planned to start at or before it), or before the first."""
        times = planned_times(list(self.backbone))
        started = [(start, step.id) for step in self.backbone for start in [times[step.id][0]]]
        latest = [sid for start, sid in sorted(started) if start <= at_s]
        if latest:
            return f"after {latest[-1]}"
        return f"before {sorted(started)[0][1]}" if started else "method"

    def phases(self) -> tuple[str, ...]:
        """The phases (``phase``) a fault can start in: those overlapping the window."""
        times = planned_times(list(self.backbone))
        ordered = sorted((times[s.id][0], s.id) for s in self.backbone)
        if not ordered:
            return ("method",)
        low, high = self.space.window
        bounds = [(0.0, ordered[0][0], f"before {ordered[0][1]}")]
        for n, (start, step_id) in enumerate(ordered):
            end = ordered[n + 1][0] if n + 1 < len(ordered) else float("inf")
            bounds.append((start, end, f"after {step_id}"))
        found = [name for start, end, name in bounds if start <= high and end > low]
        return tuple(dict.fromkeys(found))

    def problem(self, candidate: Candidate) -> str | None:
        """Why ``candidate`` is not a valid schedule, or None when it is."""
        if candidate.users < 1:
            return "fewer than 1 user"
        if candidate.duration_s < self.backbone_end():
            return f"the backbone runs until {self.backbone_end():g}s"
        for step in candidate.steps:
            end = step.at_s + (step.for_s or 0.0)
            if step.at_s < 0 or end > candidate.duration_s + 1e-9:
                return f"{step.describe()} does not end within {candidate.duration_s:g}s"
            target = list(step.target) if isinstance(step.target, tuple) else step.target
            try:
                registry.validate_step(
                    step.action,
                    dict(step.params),
                    self.names.registry_names,
                    target,
                    check_target=True,
                )
            except registry.StepError as err:
                return f"{step.describe()}: {err}"
        return None

    def experiment_for(self, candidate: Candidate, expect: Sequence[str] = ()) -> Experiment:
        """The experiment a trial runs: one variant (``expect`` violated), the backbone
        and the candidate's steps in start order. Raises ``InvalidExperiment`` when the
        candidate is not valid (``problem``)."""
        problem = self.problem(candidate)
        if problem is not None:
            raise InvalidExperiment(self.experiment.path, None, "explore", problem)
        taken = {step.id for step in self.backbone}
        searched = []
        for number, step in enumerate(candidate.steps, 1):
            step_id = f"{step.action}-x{number}"
            while step_id in taken:
                step_id += "x"
            taken.add(step_id)
            searched.append(
                Step(
                    id=step_id,
                    index=0,
                    action=step.action,
                    target=step.target,
                    params=dict(step.params),
                    at_s=step.at_s,
                    for_s=step.for_s,
                )
            )
        method = _in_start_order([replace(s, variants=None) for s in self.backbone], searched)
        variant = Variant(self.variant.name, self.variant.mitigations, tuple(expect))
        load = replace(
            self.experiment.load,
            users=candidate.users,
            spawn_rate=min(self.experiment.load.spawn_rate, float(max(candidate.users, 1))),
        )
        return replace(
            self.experiment,
            duration_s=candidate.duration_s,
            variants=(variant,),
            method=method,
            load=load,
        )


def in_order(steps: Sequence[FaultStep]) -> tuple[FaultStep, ...]:
    """Searched steps in start order (ties: by space entry, then as described)."""
    return tuple(sorted(steps, key=lambda s: (s.at_s, s.option, s.describe())))


def _in_start_order(backbone: list[Step], searched: list[Step]) -> tuple[Step, ...]:
    """Backbone and searched steps by planned start, ties keeping the backbone first. A
    step that follows another (``after``) starts no earlier than it, so it stays after it."""
    times = planned_times(backbone + searched)
    order = {step.id: n for n, step in enumerate(backbone + searched)}
    ranked = sorted(backbone + searched, key=lambda s: (times[s.id][0], order[s.id]))
    return tuple(replace(step, index=n) for n, step in enumerate(ranked))


def strength(plan: Plan, step: FaultStep) -> float:
    """How strong a searched step is, 0 (every value at its weakest) to 1, from its
    parameters' places in their ranges."""
    option = plan.space.faults[step.option]
    choices = option.param_map
    parts = [choices[name].fraction(value) for name, value in step.params if name in choices]
    return sum(parts) / len(parts) if parts else 0.0


def size(plan: Plan, candidate: Candidate) -> tuple[float, ...]:
    """The order shrinking descends: fewer steps, then less fault time, weaker parameters,
    earlier starts, a shorter method, fewer users. Smaller is simpler."""
    return (
        float(len(candidate.steps)),
        round(sum(step.for_s or 0.0 for step in candidate.steps), 3),
        round(sum(strength(plan, step) for step in candidate.steps), 6),
        round(sum(step.at_s for step in candidate.steps), 3),
        candidate.duration_s,
        float(candidate.users),
    )


def param_seconds(value: Any) -> float:
    """A written parameter value (``250ms``, 3, 0.5) as a number."""
    return parse_number(value)
