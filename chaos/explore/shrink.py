"""Shrinking a find to a minimal schedule that still violates the same invariant.

Passes, in order: remove steps, shorten ``for`` durations, weaken parameters, move steps
earlier, shorten the whole method, reduce the load's users. A pass proposes smaller
candidates (``chaos.explore.schedule.size``: strictly smaller, valid for the plan, never
tried before); each is confirmed by a real trial, up to ``jobs`` side by side, and the
first one of a batch (in proposal order) that violates the invariant becomes the current
schedule; the pass is applied again until it finds nothing, then the next pass runs. The
passes repeat until a whole round changes nothing (a local minimum: no candidate a pass can
propose still violates) or the budget of trials is spent.

Numbers move toward their weak end: first the weak end itself, then 1/2, 3/4, 7/8 and
15/16 of the way back (on a grain of 0.1 s for times), so every acceptance is at most five
trials and repeated acceptances close in on the threshold; choices move toward the first
value listed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from chaos.explore.confirm import Runs
from chaos.explore.schedule import Candidate, FaultStep, Plan, size
from chaos.explore.space import OneOf, Span
from chaos.explore.trial import TrialOutcome

GRAIN_S = 0.1
HALVINGS = 4  # how close to the current value a pass tries: 1/16 of the way to the floor

Pass = Callable[[Plan, Candidate], list[Candidate]]


@dataclass(frozen=True)
class ShrinkStep:
    """One schedule on the path from the find to the minimal one."""

    trial: int
    reason: str
    candidate: Candidate


@dataclass
class ShrinkResult:
    minimal: Candidate
    outcome: TrialOutcome
    path: list[ShrinkStep]
    trials: int
    complete: bool  # True: no pass could go further; False: the budget or a stop ended it


def shrink(
    plan: Plan,
    found: Candidate,
    outcome: TrialOutcome,
    invariant: str,
    runs: Runs,
    budget: int,
    jobs: int = 1,
) -> ShrinkResult:
    """Shrink ``found`` (whose run gave ``outcome``, violating ``invariant``)."""
    result = ShrinkResult(found, outcome, [ShrinkStep(outcome.trial, "found", found)], 0, False)
    tried = {found.key}
    while True:
        improved = False
        for reason, make in PASSES:
            while True:
                current = result.minimal
                candidates = _fresh(plan, current, make(plan, current), tried)
                accepted = _first_violating(
                    candidates, invariant, runs, budget, jobs, result, tried
                )
                if accepted is None:
                    break
                result.minimal, result.outcome = accepted
                result.path.append(ShrinkStep(accepted[1].trial, reason, accepted[0]))
                improved = True
            if result.trials >= budget or runs.stopped:
                return result
        if not improved:
            result.complete = True
            return result


def _fresh(
    plan: Plan, current: Candidate, candidates: Sequence[Candidate], tried: set[str]
) -> list[Candidate]:
    limit = size(plan, current)
    fresh: dict[str, Candidate] = {}
    for candidate in candidates:
        key = candidate.key
        if key in tried or key in fresh or plan.problem(candidate) is not None:
            continue
        if size(plan, candidate) < limit:
            fresh[key] = candidate
    return list(fresh.values())


def _first_violating(
    candidates: list[Candidate],
    invariant: str,
    runs: Runs,
    budget: int,
    jobs: int,
    result: ShrinkResult,
    tried: set[str],
) -> tuple[Candidate, TrialOutcome] | None:
    for start in range(0, len(candidates), max(1, jobs)):
        room = budget - result.trials
        if room <= 0 or runs.stopped:
            return None
        batch = candidates[start : start + min(jobs, room)]
        outcomes = runs.run(batch, "shrink")
        result.trials += len(outcomes)
        found = None
        for candidate, trial in zip(batch, outcomes, strict=False):
            tried.add(candidate.key)
            if found is None and trial.violates(invariant):
                found = (candidate, trial)
        if found is not None or len(outcomes) < len(batch):
            return found
    return None


# -- passes ----------------------------------------------------------------------------


def remove_steps(plan: Plan, current: Candidate) -> list[Candidate]:
    steps = current.steps
    found = []
    if len(steps) >= 4:
        half = len(steps) // 2
        found += [current.with_steps(steps[half:]), current.with_steps(steps[:half])]
    found += [current.with_steps(steps[:i] + steps[i + 1 :]) for i in range(len(steps))]
    return found


def shorten_durations(plan: Plan, current: Candidate) -> list[Candidate]:
    found = []
    for index, step in enumerate(current.steps):
        span = plan.space.faults[step.option].duration
        if span is None or step.for_s is None:
            continue
        floor = max(GRAIN_S, min(span.weak, step.for_s))
        for value in _toward(step.for_s, floor):
            found.append(_with(current, index, replace(step, for_s=value)))
    return found


def weaken_params(plan: Plan, current: Candidate) -> list[Candidate]:
    found = []
    for index, step in enumerate(current.steps):
        values = dict(step.params)
        for name, choice in plan.space.faults[step.option].params:
            if name not in values:
                continue
            weaker: list[object] = []
            if isinstance(choice, Span):
                place = choice.fraction(values[name])
                if place > 0:
                    weaker = [choice.pick(0.0)]
                    weaker += [choice.pick(place * (1 - 0.5**k)) for k in range(1, HALVINGS + 1)]
            elif isinstance(choice, OneOf) and values[name] in choice.values:
                place_index = choice.values.index(values[name])
                if place_index > 0:
                    weaker = [choice.values[0], choice.values[place_index - 1]]
            for value in weaker:
                if value != values[name]:
                    params = tuple(sorted({**values, name: value}.items()))
                    found.append(_with(current, index, replace(step, params=params)))
    return found


def move_earlier(plan: Plan, current: Candidate) -> list[Candidate]:
    low = plan.space.window[0]
    return [
        _with(current, index, replace(step, at_s=value))
        for index, step in enumerate(current.steps)
        for value in _toward(step.at_s, low)
    ]


def shorten_run(plan: Plan, current: Candidate) -> list[Candidate]:
    ends = [step.at_s + (step.for_s or 0.0) for step in current.steps]
    floor = _up(max([plan.backbone_end(), GRAIN_S, *ends]))
    return [replace(current, duration_s=value) for value in _toward(current.duration_s, floor)]


def reduce_users(plan: Plan, current: Candidate) -> list[Candidate]:
    users = current.users
    return [replace(current, users=n) for n in dict.fromkeys((1, users // 2)) if 1 <= n < users]


PASSES: tuple[tuple[str, Pass], ...] = (
    ("removed a step", remove_steps),
    ("shortened a fault", shorten_durations),
    ("weakened a parameter", weaken_params),
    ("moved a step earlier", move_earlier),
    ("shortened the method", shorten_run),
    ("fewer users", reduce_users),
)


def _toward(value: float, floor: float) -> list[float]:
    """``floor``, then 1/2, 3/4, 7/8... of the way from it back to ``value`` (on the grain,
    ``HALVINGS`` of them): the smallest first, each below ``value``."""
    candidates = [round(floor, 3)]
    candidates += [_down(value - (value - floor) / 2**k) for k in range(1, HALVINGS + 1)]
    return [c for c in dict.fromkeys(candidates) if c < value - 1e-9 and c >= floor - 1e-9]


def _down(seconds: float) -> float:
    return round(int(seconds / GRAIN_S + 1e-9) * GRAIN_S, 3)


def _up(seconds: float) -> float:
    steps = seconds / GRAIN_S
    whole = int(steps)
    return round((whole if abs(steps - whole) < 1e-9 else whole + 1) * GRAIN_S, 3)


def _with(current: Candidate, index: int, step: FaultStep) -> Candidate:
    steps = list(current.steps)
    steps[index] = step
    return current.with_steps(steps)
