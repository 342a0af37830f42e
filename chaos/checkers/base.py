"""What a checker is and what it returns (docs/contracts.md section 5).

A checker is a pure function of a History and CheckParams: it reads the recorded sources
and the truth recomputed from run.json and world events, never a service, never the clock.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from chaos.checkers.params import CheckParams
from chaos.history.events import FillEvent
from chaos.history.reader import History

Validity = bool | Literal["unknown"]
Counterexample = dict[str, object]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one invariant on one History.

    ``valid`` is True (held), False (violated) or "unknown" (the history cannot tell).
    ``checked`` counts the things examined and ``count`` the violated ones, in one unit
    (``unit``: blocks, liquidations, fills...), so ``0 <= count <= checked`` always; a
    violated verdict has ``count`` >= 1 and counterexamples say where.
    ``no_evidence`` is True for an "unknown" that says there was nothing to check (no
    liquidation, no node loss...): the history is fine, it just holds no evidence either
    way. An "unknown" with ``no_evidence`` False means the history could not be judged (a
    source is missing or malformed, the run ended too soon).
    """

    invariant: str
    valid: Validity
    count: int
    checked: int
    counterexamples: list[Counterexample]
    message: str
    unit: str = ""
    no_evidence: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "invariant": self.invariant,
            "valid": self.valid,
            "count": self.count,
            "checked": self.checked,
            "unit": self.unit,
            "no_evidence": self.no_evidence,
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
    """Collects the problems of one invariant, in the unit the invariant counts.

    ``add(example, unit=key)`` records one problem; problems with the same ``unit`` key
    (one block, one event, one order) count as one violated unit, so ``count`` never
    exceeds ``checked`` when ``checked`` counts those units. Without a key every problem is
    its own unit. Counterexamples: the first ``limit`` problems, or, when problems carry a
    ``severity``, the ``limit`` most severe ones, worst first.
    """

    invariant: str
    limit: int
    count: int = 0
    checked: int = 0
    problems: int = 0
    examples: list[Counterexample] = field(default_factory=list)
    _units: set[Hashable] = field(default_factory=set, repr=False)
    _worst: list[tuple[float, int, Counterexample]] = field(default_factory=list, repr=False)

    def add(
        self,
        example: Counterexample,
        unit: Hashable | None = None,
        severity: float | None = None,
    ) -> None:
        self.problems += 1
        if unit is None:
            self.count += 1
        elif unit not in self._units:
            self._units.add(unit)
            self.count += 1
        if severity is not None:
            item = (severity, -self.problems, example)
            if len(self._worst) < self.limit:
                heapq.heappush(self._worst, item)
            elif item > self._worst[0]:
                heapq.heapreplace(self._worst, item)
        elif len(self.examples) < self.limit:
            self.examples.append(example)

    def counterexamples(self) -> list[Counterexample]:
        """The kept counterexamples: severity-ranked ones worst first, then the others."""
        ranked = [example for _, _, example in sorted(self._worst, reverse=True)]
        return (ranked + self.examples)[: self.limit]

    def verdict(self, what: str, unknown: str | None = None, nothing: str | None = None) -> Verdict:
        """The verdict, counting ``checked`` in ``what`` (a plural noun: "blocks").

        False if anything was found; else "unknown" if ``unknown`` (a reason the history
        cannot be judged) is given; else, when nothing was checked, "unknown" with no
        evidence, saying ``nothing`` (default: "no <what> to check"); else True.
        """
        examples = self.counterexamples()
        if self.count:
            valid: Validity = False
            first = examples[0].get("problem", "") if examples else ""
            extra = f" ({self.problems} problems)" if self.problems != self.count else ""
            message = f"{self.count} of {self.checked} {what} violated{extra}; first: {first}"
            no_evidence = False
        elif unknown is not None:
            valid, no_evidence = "unknown", False
            message = f"cannot tell: {unknown} ({self.checked} {what} checked)"
        elif self.checked == 0:
            valid, no_evidence = "unknown", True
            message = f"no evidence: {nothing or f'no {what} to check'}"
        else:
            valid, no_evidence = True, False
            message = f"held over {self.checked} {what}"
        return Verdict(
            self.invariant,
            valid,
            self.count,
            self.checked,
            examples,
            message,
            unit=what,
            no_evidence=no_evidence,
        )


def unknown(invariant: str, reason: str, checked: int = 0) -> Verdict:
    """An "unknown" verdict for a history that cannot be judged (not a lack of evidence)."""
    return Verdict(invariant, "unknown", 0, checked, [], f"cannot tell: {reason}")


def rounded(x: float | None, digits: int = 6) -> float | None:
    """A float fit for a counterexample: ``digits`` significant digits, None kept."""
    if x is None or not math.isfinite(x) or x == 0.0:
        return x
    return round(x, max(0, digits - 1 - math.floor(math.log10(abs(x)))))


def rel(history: History, t: object) -> float | None:
    """``t`` (wall-clock s) as seconds from the method's t=0 (``RunInfo.t0``), to the ms;
    None for anything that is not a number."""
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        return None
    return round(float(t) - history.run.t0, 3)


def since_t0(history: History, t: object) -> str:
    """``t`` (wall-clock s) as the run's time in words, e.g. ``t=+12.345s`` (seconds from
    the method's t=0, the time base of every report)."""
    value = rel(history, t)
    return "t=?" if value is None else f"t={value:+.3f}s"


def when(history: History, t: object) -> Counterexample:
    """The time fields of a counterexample: ``t`` (s from the method's t=0, what reports
    show) and ``wall_time`` (wall-clock s, for logs; shown on hover in report.html)."""
    return {"t": rel(history, t), "wall_time": t if isinstance(t, int | float) else None}


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


def fills_with_modes(history: History) -> Iterator[tuple[FillEvent, str]]:
    """Every fill of the event log in log order, with the trading mode in force at it."""
    modes = ModeTracker(history)
    for event in history.events():
        if event["kind"] == "mode":
            modes.observe_mode_event(event["mode"])
        elif event["kind"] == "fill":
            yield event, modes.at(event["time"])


def fill_parties(event: Mapping[str, Any]) -> dict[str, Any]:
    """A fill's size, parties and kind, as counterexamples report them."""
    return {
        "qty": event.get("qty"),
        "taker_account": event.get("taker_account"),
        "maker_account": event.get("maker_account"),
        "taker_side": event.get("taker_side"),
        "liquidation": bool(event.get("liquidation")),
    }
