"""Typed parameters of experiment steps: their specs, validation and parsing.

``ParamSpec`` describes one parameter of one action; ``check_params`` validates a step's
parameter mapping against the specs (raising ``StepError(field, problem)`` whose message
names the allowed values) and returns the parsed values with defaults filled in, so the
loader (validation) and the fault builders (parsing) share one definition.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from chaos.files.durations import ALLOWED as DURATION_ALLOWED
from chaos.files.durations import parse_duration

ParamType = Literal["duration", "float", "int", "str", "enum", "list", "mapping"]
NameKind = Literal["services", "links", "sites"]


class StepError(ValueError):
    """A step's field is wrong. ``field`` is the step key (``target``, ``latency``,
    ``fault.period``); ``problem`` is one sentence, with the allowed values where finite."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class KnownNames:
    """The names a step may refer to: services, links and site labels of the stack."""

    services: frozenset[str] = frozenset()
    links: frozenset[str] = frozenset()
    sites: frozenset[str] = frozenset()

    @classmethod
    def of(cls, services: Iterable[str], links: Iterable[str], sites: Iterable[str]) -> KnownNames:
        return cls(frozenset(services), frozenset(links), frozenset(sites))

    def of_kind(self, kind: NameKind) -> frozenset[str]:
        return {"services": self.services, "links": self.links, "sites": self.sites}[kind]


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of an action.

    ``type``: duration (seconds, from ``250ms``/``5s``/number), float, int, str, enum (one of
    ``choices``), list (of str/int; of ``names`` when set), mapping (str keys; values are
    durations when ``values`` is ``"duration"``). ``min``/``max`` bound numbers and durations.
    ``names`` checks str values or list items against the stack's known names.
    """

    type: ParamType
    required: bool = False
    default: object = None
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    names: NameKind | None = None
    items: Literal["str", "int", "float"] = "str"
    values: Literal["any", "duration"] = "any"
    help: str = ""
    exclusive_min: bool = field(default=False)


def _allowed(values: Iterable[str]) -> str:
    return ", ".join(sorted(values)) or "none"


def _check_bounds(name: str, spec: ParamSpec, number: float) -> None:
    if spec.min is not None and (number < spec.min or (spec.exclusive_min and number <= spec.min)):
        op = ">" if spec.exclusive_min else ">="
        raise StepError(name, f"must be {op} {spec.min:g}, got {number:g}")
    if spec.max is not None and number > spec.max:
        raise StepError(name, f"must be <= {spec.max:g}, got {number:g}")


def _check_name(name: str, spec: ParamSpec, value: str, known: KnownNames) -> None:
    if spec.names is None:
        return
    allowed = known.of_kind(spec.names)
    if allowed and value not in allowed:
        kind = spec.names[:-1]
        raise StepError(name, f"unknown {kind} {value!r} (allowed: {_allowed(allowed)})")


def check_value(name: str, spec: ParamSpec, value: object, known: KnownNames) -> object:
    """The parsed value of parameter ``name``; ``StepError`` if it does not fit ``spec``."""
    if spec.type == "duration":
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise StepError(name, f"expected {DURATION_ALLOWED}, got {value!r}") from None
        _check_bounds(name, spec, seconds)
        return seconds
    if spec.type in ("float", "int"):
        ok_types: tuple[type, ...] = (int,) if spec.type == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok_types):
            raise StepError(
                name, f"expected a{'n integer' if spec.type == 'int' else ' number'}, got {value!r}"
            )
        assert isinstance(value, int | float)
        if not math.isfinite(value):
            raise StepError(name, f"expected a finite number, got {value!r}")
        _check_bounds(name, spec, float(value))
        return int(value) if spec.type == "int" else float(value)
    if spec.type in ("str", "enum"):
        if not isinstance(value, str):
            hint = f" (allowed: {_allowed(spec.choices)})" if spec.choices else ""
            raise StepError(name, f"expected a string, got {value!r}{hint}")
        if spec.type == "enum" and value not in spec.choices:
            raise StepError(name, f"{value!r} is not allowed (allowed: {_allowed(spec.choices)})")
        _check_name(name, spec, value, known)
        return value
    if spec.type == "list":
        return _check_list(name, spec, value, known)
    return _check_mapping(name, spec, value, known)


def _check_list(name: str, spec: ParamSpec, value: object, known: KnownNames) -> list[object]:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list | tuple):
        raise StepError(name, f"expected a list, got {value!r}")
    parsed: list[object] = []
    for i, item in enumerate(value):
        where = f"{name}[{i}]"
        if spec.items in ("int", "float"):
            number_types: tuple[type, ...] = (int,) if spec.items == "int" else (int, float)
            if isinstance(item, bool) or not isinstance(item, number_types):
                raise StepError(
                    where,
                    f"expected a{'n integer' if spec.items == 'int' else ' number'}, got {item!r}",
                )
            assert isinstance(item, int | float)
            _check_bounds(where, spec, float(item))
            item = float(item) if spec.items == "float" else item
        elif not isinstance(item, str):
            raise StepError(where, f"expected a string, got {item!r}")
        else:
            _check_name(where, spec, item, known)
        parsed.append(item)
    return parsed


def _check_mapping(
    name: str, spec: ParamSpec, value: object, known: KnownNames
) -> dict[str, object]:
    if not isinstance(value, Mapping):
        raise StepError(name, f"expected a mapping, got {value!r}")
    parsed: dict[str, object] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise StepError(name, f"keys must be strings, got {key!r}")
        where = f"{name}.{key}"
        _check_name(where, spec, key, known)
        if spec.values == "duration":
            parsed[key] = check_value(where, ParamSpec("duration", min=0.0), item, known)
        else:
            parsed[key] = item
    return parsed


def check_params(
    action: str,
    specs: Mapping[str, ParamSpec],
    params: Mapping[str, object],
    known: KnownNames,
) -> dict[str, object]:
    """Parsed parameters of one step (every spec'd key present, defaults filled in)."""
    for key in params:
        if key not in specs:
            raise StepError(
                str(key),
                f"unknown parameter for action {action!r} (allowed: {_allowed(specs)})",
            )
    parsed: dict[str, object] = {}
    for name, spec in specs.items():
        if name in params and params[name] is not None:
            parsed[name] = check_value(name, spec, params[name], known)
        elif spec.required:
            raise StepError(name, f"required by action {action!r}")
        else:
            parsed[name] = spec.default
    return parsed
