"""Proposing schedules: seeded random draws, guided by coverage and by near-miss signals.

Contract
- Proposal ``n`` (1-based) draws from its own generator, seeded by the search seed and
  ``n`` alone, so the same seed and budget give the same schedules whenever the trials'
  outcomes are the same (always, with a deterministic trial function). What kind a proposal
  is, and a random proposal itself, depend on the seed and ``n`` only; a coverage-guided one
  also on the proposals before it; a signal-guided one also on the signals trials measured.
- Coverage: the (fault, target, maintenance phase) combinations the proposals so far
  touched. A coverage-guided proposal is the one of ``COVERAGE_DRAWS`` random draws that
  touches the most new combinations.
- Signal-guided: the best schedule so far for one signal (highest pressure), mutated: a
  step moved, lengthened, strengthened, re-targeted, replaced, or one added.
- A proposal is always valid for the plan (``Plan.problem`` is None) and, while the space
  allows, not one already proposed.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from chaos.explore.schedule import Candidate, FaultStep, Plan
from chaos.explore.space import FaultOption, Span, target_text

Kind = Literal["random", "coverage", "guided"]
COVERAGE_DRAWS = 12
RANDOM_FIRST = 2  # the first proposals are plain random draws
REDRAWS = 30
TIME_GRAIN_S = 0.1


@dataclass(frozen=True)
class Proposal:
    number: int
    kind: Kind
    candidate: Candidate
    parent: int | None = None  # the trial a guided proposal mutated


@dataclass
class Searcher:
    plan: Plan
    seed: int
    proposed: list[Proposal] = field(default_factory=list)
    covered: set[tuple[str, str, str]] = field(default_factory=set)
    best: dict[str, tuple[float, int, Candidate]] = field(default_factory=dict)

    def propose(self) -> Proposal:
        """The next schedule (see the module doc)."""
        number = len(self.proposed) + 1
        rng = random.Random(f"tradechaos-explore:{self.seed}:{number}")
        seen = {p.candidate.key for p in self.proposed}
        proposal = self._draw(rng, number)
        for _ in range(REDRAWS):
            if proposal.candidate.key not in seen:
                break
            proposal = self._draw(rng, number)
        self.proposed.append(proposal)
        self.covered |= self.combinations(proposal.candidate)
        return proposal

    def observe(self, trial: int, candidate: Candidate, pressures: Mapping[str, float]) -> None:
        """Record the signals a trial of ``candidate`` measured (name -> pressure)."""
        for name, pressure in pressures.items():
            held = self.best.get(name)
            if held is None or pressure > held[0]:
                self.best[name] = (pressure, trial, candidate)

    def combinations(self, candidate: Candidate) -> set[tuple[str, str, str]]:
        return {
            (step.action, self._what(step), self.plan.phase(step.at_s)) for step in candidate.steps
        }

    def coverage_total(self) -> int:
        """How many (fault, target, phase) combinations the space has."""
        return len(self.rows()) * len(self.plan.phases())

    # -- drawing -----------------------------------------------------------------------

    def _draw(self, rng: random.Random, number: int) -> Proposal:
        roll = rng.random()
        if number <= RANDOM_FIRST or roll < 0.35:
            return Proposal(number, "random", self.random_candidate(rng))
        if roll < 0.65 or not self.best:
            draws = [self.random_candidate(rng) for _ in range(COVERAGE_DRAWS)]
            fresh = [len(self.combinations(c) - self.covered) for c in draws]
            return Proposal(number, "coverage", draws[fresh.index(max(fresh))])
        name = rng.choice(sorted(self.best))
        _, parent, candidate = self.best[name]
        return Proposal(number, "guided", self.mutate(rng, candidate), parent)

    def random_candidate(self, rng: random.Random) -> Candidate:
        space = self.plan.space
        count = rng.randint(space.min_steps, space.max_steps)
        steps = [self.random_step(rng) for _ in range(count)]
        return self._valid(self.plan.base.with_steps(steps), rng)

    def random_step(self, rng: random.Random, option_index: int | None = None) -> FaultStep:
        space = self.plan.space
        index = rng.randrange(len(space.faults)) if option_index is None else option_index
        option = space.faults[index]
        target = option.targets[rng.randrange(len(option.targets))]
        params = tuple(sorted((name, choice.pick(rng.random())) for name, choice in option.params))
        for_s = option.duration.value_at(rng.random()) if option.duration is not None else None
        at_s = self._start(rng.random(), for_s)
        return FaultStep(at_s, index, option.action, target, for_s, params)

    def _start(self, fraction: float, for_s: float | None) -> float:
        """A start in the window such that the step (with ``for``) ends within the method."""
        low, high = self.plan.space.window
        high = min(high, self.plan.experiment.duration_s - (for_s or 0.0))
        if high <= low:
            return round(low, 1)
        return _grain(low + (high - low) * fraction)

    def _valid(self, candidate: Candidate, rng: random.Random) -> Candidate:
        """``candidate`` with steps that cannot fit cut short (or dropped)."""
        duration = candidate.duration_s
        fitted = []
        for step in candidate.steps:
            if step.for_s is not None and step.at_s + step.for_s > duration:
                step = replace(step, for_s=round(max(0.1, duration - step.at_s), 3))
            fitted.append(step)
        fixed = candidate.with_steps(fitted)
        if self.plan.problem(fixed) is None:
            return fixed
        return candidate.with_steps([s for s in fitted if self._fits(s, duration)])

    def _fits(self, step: FaultStep, duration: float) -> bool:
        return self.plan.problem(Candidate((step,), duration, self.plan.base.users)) is None

    # -- mutation ----------------------------------------------------------------------

    def mutate(self, rng: random.Random, candidate: Candidate) -> Candidate:
        """One change to ``candidate`` (a step moved, stretched, strengthened, re-targeted,
        replaced, or a step added), kept valid."""
        steps = list(candidate.steps)
        space = self.plan.space
        moves = ["add"] if not steps else ["move", "stretch", "strengthen", "retarget", "replace"]
        if steps and len(steps) < space.max_steps:
            moves.append("add")
        move = rng.choice(moves)
        if move == "add":
            steps.append(self.random_step(rng))
            return self._valid(candidate.with_steps(steps), rng)
        index = rng.randrange(len(steps))
        step = steps[index]
        option = space.faults[step.option]
        if move == "move":
            shift = rng.uniform(-2.0, 2.0)
            low, high = space.window
            step = replace(step, at_s=_grain(min(high, max(low, step.at_s + shift))))
        elif move == "stretch" and option.duration is not None and step.for_s is not None:
            fraction = option.duration.fraction(step.for_s) + rng.uniform(0.1, 0.4)
            step = replace(step, for_s=option.duration.value_at(fraction))
        elif move == "strengthen" and option.params:
            step = self._strengthen(rng, step, option)
        elif move == "retarget" and len(option.targets) > 1:
            step = replace(step, target=option.targets[rng.randrange(len(option.targets))])
        else:
            step = self.random_step(rng)
        steps[index] = step
        return self._valid(candidate.with_steps(steps), rng)

    def _strengthen(self, rng: random.Random, step: FaultStep, option: FaultOption) -> FaultStep:
        choices = option.param_map
        name = rng.choice(sorted(choices))
        values = dict(step.params)
        choice = choices[name]
        if isinstance(choice, Span):
            fraction = choice.fraction(values.get(name, choice.pick(0.0)))
            values[name] = choice.pick(fraction + rng.uniform(0.1, 0.4))
        else:
            values[name] = choice.pick(rng.random())
        return replace(step, params=tuple(sorted(values.items())))

    # -- coverage keys -----------------------------------------------------------------

    def _what(self, step: FaultStep) -> str:
        """The target of a step for coverage; a step without one is told apart by its
        entry's parameters that are not ranges (e.g. which kind of data fault, which venue)."""
        if step.target is not None:
            return target_text(step.target)
        option = self.plan.space.faults[step.option]
        chosen = [n for n, c in option.params if not isinstance(c, Span)]
        values = dict(step.params)
        return " ".join(f"{n}={values.get(n)}" for n in chosen) or "-"

    def _whats(self, option: FaultOption) -> set[str]:
        """Every ``_what`` a step of ``option`` can have."""
        if option.targets != (None,):
            return {target_text(t) for t in option.targets}
        chosen = [(n, c.extremes()) for n, c in option.params if not isinstance(c, Span)]
        if not chosen:
            return {"-"}
        return {
            " ".join(f"{name}={value}" for (name, _), value in zip(chosen, values, strict=True))
            for values in itertools.product(*(choices for _, choices in chosen))
        }

    def rows(self) -> list[tuple[str, str]]:
        """Every (fault, target) of the space, for the coverage table."""
        found = {(o.action, what) for o in self.plan.space.faults for what in self._whats(o)}
        return sorted(found)


def _grain(seconds: float) -> float:
    return round(round(seconds / TIME_GRAIN_S) * TIME_GRAIN_S, 3)
