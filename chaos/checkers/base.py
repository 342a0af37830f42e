"""What a checker is and what it returns (docs/contracts.md section 5).

A checker is a pure function of a History and CheckParams: it reads the recorded sources
and the truth recomputed from run.json and world events, never a service, never the clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from chaos.checkers.params import CheckParams
from chaos.history.reader import History

Validity = bool | Literal["unknown"]
Counterexample = dict[str, object]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one invariant on one History.

    ``valid`` is True (held), False (violated: ``count`` > 0 and counterexamples say where)
    or "unknown" (the history cannot tell: a source is missing, nothing to check...).
    ``checked`` is how many things were examined (events, blocks, liquidations...).
    """

    invariant: str
    valid: Validity
    count: int
    checked: int
    counterexamples: list[Counterexample]
    message: str

    def to_dict(self) -> dict[str, object]:
        return {
            "invariant": self.invariant,
            "valid": self.valid,
            "count": self.count,
            "checked": self.checked,
            "counterexamples": self.counterexamples,
            "message": self.message,
        }


class Checker(Protocol):
    @property
    def name(self) -> str: ...

    def check(self, history: History, params: CheckParams) -> Verdict: ...


@dataclass(frozen=True)
class FunctionChecker:
    """A checker made of a name and a pure function (the form every built-in takes)."""

    name: str
    function: Callable[[History, CheckParams], Verdict]
    summary: str = ""

    def check(self, history: History, params: CheckParams) -> Verdict:
        return self.function(history, params)


@dataclass
class Findings:
    """Collects violations: counts all, keeps the first ``limit`` as counterexamples."""

    invariant: str
    limit: int
    count: int = 0
    checked: int = 0
    examples: list[Counterexample] = field(default_factory=list)

    def add(self, example: Counterexample) -> None:
        self.count += 1
        if len(self.examples) < self.limit:
            self.examples.append(example)

    def verdict(self, what: str, unknown: str | None = None) -> Verdict:
        """The verdict: False if anything was found, else "unknown" if ``unknown`` (a
        reason) is given, else True. ``what`` names what ``checked`` counts."""
        if self.count:
            valid: Validity = False
            first = self.examples[0].get("problem", "") if self.examples else ""
            message = f"{self.count} violation(s) in {self.checked} {what}; first: {first}"
        elif unknown is not None:
            valid = "unknown"
            message = f"cannot tell: {unknown} ({self.checked} {what} checked)"
        else:
            valid = True
            message = f"held over {self.checked} {what}"
        return Verdict(self.invariant, valid, self.count, self.checked, self.examples, message)


def unknown(invariant: str, reason: str, checked: int = 0) -> Verdict:
    return Verdict(invariant, "unknown", 0, checked, [], f"cannot tell: {reason}")


def rounded(x: float | None, digits: int = 6) -> float | None:
    """A float fit for a counterexample: ``digits`` significant digits, None kept."""
    if x is None or not math.isfinite(x) or x == 0.0:
        return x
    return round(x, max(0, digits - 1 - math.floor(math.log10(abs(x)))))


def since_epoch(history: History, t: object) -> str:
    """``t`` (wall-clock s) as the run's relative time, e.g. ``t=+12.345s``."""
    if not isinstance(t, int | float):
        return "t=?"
    return f"t={t - history.run.epoch:+.3f}s"


def bps(price: float, truth: float) -> float:
    """How far ``price`` is from ``truth``, in basis points (signed)."""
    return (price / truth - 1.0) * 10_000.0


class ModeTracker:
    """The trading mode in force, from ``mode`` events in the log (seq-exact) when the log
    has any, else from ``modes.jsonl`` by time. Starts in ``normal``.

    Feed it every event in log order (``observe``) and ask ``at(time)``.
    """

    def __init__(self, history: History) -> None:
        self._from_log = False
        self._current = "normal"
        self._timeline = sorted(((m.time, m.mode) for m in history.modes()), key=lambda x: x[0])
        self._next = 0

    def observe_mode_event(self, mode: str) -> None:
        self._from_log = True
        self._current = mode

    def at(self, time: float) -> str:
        if self._from_log:
            return self._current
        timeline = self._timeline
        while self._next < len(timeline) and timeline[self._next][0] <= time:
            self._current = timeline[self._next][1]
            self._next += 1
        return self._current
