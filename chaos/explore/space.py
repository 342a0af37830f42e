"""The space of fault schedules the explorer searches (docs/explore.md).

A ``Space`` says which fault actions may act on which targets, each parameter's range, how
many fault steps a schedule has, the window in which they may start, and which steps of the
method stay fixed (the backbone). It is read from an experiment's ``explore:`` section or a
SPACE.yaml (``chaos.explore.spaceload``), or derived from the stack's names
(``chaos.explore.defaults``).

Ranges are written weakest first: a ``Span`` goes from ``weak`` to ``strong`` and a
``OneOf`` lists its values simplest first. Shrinking moves values toward the weak end, the
search samples the whole range. Every value a range can produce was validated with
``chaos.experiment.actions.validate_step`` when the space was read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from chaos.experiment.writer import duration_text

SpanKind = Literal["duration", "float", "int"]
Target = str | tuple[str, ...] | None

__all__ = ["Choice", "FaultOption", "Fixed", "OneOf", "Space", "Span", "Target", "duration_text"]


@dataclass(frozen=True)
class Fixed:
    """A parameter that is not searched: always ``value`` (as written)."""

    value: Any

    def pick(self, fraction: float) -> Any:
        return self.value

    def fraction(self, value: Any) -> float:
        return 0.0

    def extremes(self) -> tuple[Any, ...]:
        return (self.value,)


@dataclass(frozen=True)
class Span:
    """A number or duration from ``weak`` to ``strong`` (either may be the larger)."""

    weak: float
    strong: float
    kind: SpanKind

    def value_at(self, fraction: float) -> float:
        """The number at ``fraction`` (0 = weak, 1 = strong), rounded: ints to whole
        numbers, durations to 0.1 s from a second up (to the millisecond below), other
        numbers to three significant digits. The ends themselves are kept exactly."""
        fraction = min(1.0, max(0.0, fraction))
        if fraction in (0.0, 1.0):
            raw = self.weak if fraction == 0.0 else self.strong
            return float(round(raw)) if self.kind == "int" else raw
        raw = self.weak + (self.strong - self.weak) * fraction
        if self.kind == "int":
            return float(round(raw))
        if self.kind == "duration":
            return round(raw, 1) if raw >= 1.0 else round(raw, 3)
        if raw == 0:
            return 0.0
        return round(raw, max(0, 2 - math.floor(math.log10(abs(raw)))))

    def pick(self, fraction: float) -> Any:
        """The value as a step writes it: a duration text, an int or a float."""
        return self.render(self.value_at(fraction))

    def render(self, number: float) -> Any:
        if self.kind == "duration":
            return duration_text(number)
        if self.kind == "int":
            return round(number)
        return number

    def fraction(self, value: Any) -> float:
        """Where ``value`` (as written or a number of seconds) lies, 0 = weak, 1 = strong."""
        number = parse_number(value)
        if self.strong == self.weak:
            return 0.0
        return min(1.0, max(0.0, (number - self.weak) / (self.strong - self.weak)))

    def extremes(self) -> tuple[Any, ...]:
        return (self.pick(0.0), self.pick(1.0))


@dataclass(frozen=True)
class OneOf:
    """One of ``values`` (simplest first)."""

    values: tuple[Any, ...]

    def pick(self, fraction: float) -> Any:
        index = min(len(self.values) - 1, max(0, int(fraction * len(self.values))))
        return self.values[index]

    def fraction(self, value: Any) -> float:
        if len(self.values) < 2 or value not in self.values:
            return 0.0
        return self.values.index(value) / (len(self.values) - 1)

    def extremes(self) -> tuple[Any, ...]:
        return self.values


Choice = Fixed | Span | OneOf


def parse_number(value: Any) -> float:
    """A parameter value as a number: durations as written (``250ms``) become seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    from chaos.files.durations import parse_duration

    return parse_duration(value)


@dataclass(frozen=True)
class FaultOption:
    """One entry of the space's ``faults``: an action, the targets it may take (``(None,)``
    when it takes none), its ``for`` (None: the fault lasts to the end of the method) and
    its parameters."""

    action: str
    targets: tuple[Target, ...]
    duration: Span | None
    params: tuple[tuple[str, Choice], ...]
    line: int = 0

    @property
    def param_map(self) -> Mapping[str, Choice]:
        return dict(self.params)

    def weakest_params(self) -> dict[str, Any]:
        return {name: choice.pick(0.0) for name, choice in self.params}

    def describe(self) -> str:
        """``action [k=v ...] on a, b`` with ranges as ``weak..strong``, choices as ``a|b``."""
        shown = []
        for name, choice in self.params:
            if isinstance(choice, Span):
                weak, strong = choice.extremes()
                shown.append(f"{name}={weak}..{strong}")
            elif isinstance(choice, OneOf):
                shown.append(f"{name}={'|'.join(map(str, choice.values))}")
            else:
                shown.append(f"{name}={choice.value}")
        if self.duration is not None:
            weak, strong = self.duration.extremes()
            shown.append(f"for {weak}..{strong}")
        head = " ".join([self.action, *shown])
        targets = ", ".join(target_text(t) for t in self.targets)
        return f"{head} on {targets}" if self.targets != (None,) else head


def target_text(target: Target) -> str:
    if target is None:
        return "-"
    return target if isinstance(target, str) else "+".join(target)


@dataclass(frozen=True)
class Space:
    """The searched space of one experiment variant.

    ``fixed``: ids of the method's steps kept in every trial (the backbone), in method
    order. ``min_steps``..``max_steps`` fault steps per schedule, each starting within
    ``window`` (seconds from the start of the method). ``invariant``: the one invariant
    searched for, or None for any of the experiment's. ``confirm``: re-runs of a find;
    ``shrink_budget``: at most this many trials while shrinking. ``origin`` says where the
    space came from, for the report."""

    faults: tuple[FaultOption, ...]
    fixed: tuple[str, ...]
    min_steps: int
    max_steps: int
    window: tuple[float, float]
    invariant: str | None = None
    confirm: int = 2
    shrink_budget: int = 40
    origin: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The space as plain data (explore.json)."""
        return {
            "origin": self.origin,
            "fixed": list(self.fixed),
            "steps": {"min": self.min_steps, "max": self.max_steps},
            "window": [self.window[0], self.window[1]],
            "invariant": self.invariant,
            "confirm": self.confirm,
            "shrink": self.shrink_budget,
            "faults": [_option_dict(option) for option in self.faults],
        }


def _option_dict(option: FaultOption) -> dict[str, Any]:
    entry: dict[str, Any] = {"action": option.action}
    if option.targets != (None,):
        entry["target"] = [
            t if isinstance(t, str) or t is None else list(t) for t in option.targets
        ]
    if option.duration is not None:
        entry["for"] = list(option.duration.extremes())
    for name, choice in option.params:
        if isinstance(choice, Fixed):
            entry[name] = choice.value
        elif isinstance(choice, Span):
            entry[name] = list(choice.extremes())
        else:
            entry[name] = {"one_of": list(choice.values)}
    return entry
