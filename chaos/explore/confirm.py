"""Confirming a find: re-run a violating schedule and measure how often it reproduces.

A find is *solid* when every run of it (the first and each re-run) violated the target
invariant, *flaky* when only some did. Flaky finds are kept and reported as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from chaos.explore.schedule import Candidate
from chaos.explore.trial import Purpose, TrialOutcome


class Runs(Protocol):
    """Runs candidates as trials (numbering, files, records: ``chaos.explore.engine``)."""

    def run(self, candidates: Sequence[Candidate], purpose: Purpose) -> list[TrialOutcome]:
        """One outcome per candidate run, in order; fewer when the exploration stopped."""
        ...

    @property
    def stopped(self) -> bool:
        """No more trials may run (a signal, the time limit, the stack failing)."""
        ...


@dataclass(frozen=True)
class Find:
    """A violating schedule and every run of it."""

    candidate: Candidate
    outcomes: tuple[TrialOutcome, ...]

    @property
    def trials(self) -> tuple[int, ...]:
        return tuple(o.trial for o in self.outcomes)

    def rate(self, invariant: str | None) -> float:
        """The share of completed runs that violated ``invariant`` (any when None)."""
        done = [o for o in self.outcomes if o.completed]
        if not done:
            return 0.0
        return sum(1 for o in done if o.violates(invariant)) / len(done)

    def runs(self) -> int:
        return sum(1 for o in self.outcomes if o.completed)

    def always(self) -> tuple[str, ...]:
        """Invariants violated in every completed run."""
        done = [o for o in self.outcomes if o.completed]
        if not done:
            return ()
        first = done[0].violated
        return tuple(name for name in first if all(name in o.violated for o in done))

    def stable(self) -> tuple[str, ...]:
        """Invariants with the same verdict (True or False) in every completed run."""
        done = [o for o in self.outcomes if o.completed]
        if not done:
            return ()
        names = done[0].verdicts
        return tuple(
            name
            for name, valid in names.items()
            if isinstance(valid, bool) and all(o.verdicts.get(name) is valid for o in done)
        )

    def target(self, wanted: str | None, order: Sequence[str]) -> str | None:
        """The invariant to shrink for: ``wanted`` if given, else the most reproducible
        violated one (ties: the experiment's order)."""
        if wanted is not None:
            return wanted if self.rate(wanted) > 0 else None
        violated = {name for o in self.outcomes for name in o.violated}
        ranked = sorted((n for n in order if n in violated), key=lambda n: -self.rate(n))
        return ranked[0] if ranked else None

    def solid(self, invariant: str | None) -> bool:
        return self.runs() > 0 and self.rate(invariant) == 1.0


def confirm(
    runs: Runs, candidate: Candidate, first: TrialOutcome, reruns: int, purpose: Purpose
) -> Find:
    """``candidate`` (whose run gave ``first``) re-run ``reruns`` times, side by side when
    the runner allows."""
    outcomes = runs.run([candidate] * reruns, purpose) if reruns > 0 else []
    return Find(candidate, (first, *outcomes))
