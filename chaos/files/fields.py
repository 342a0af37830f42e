"""Typed field readers for the loader: each reads one value out of a line-aware mapping,
records a ``file:line: field: problem`` error when it is unusable, and returns a value of
the promised type (or None) so that loading can go on and report every problem at once."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Any

from chaos.errors import InvalidExperiment, InvalidFile
from chaos.files.durations import parse_duration
from chaos.files.yamlsource import LineDict, LineList

_MAX_DEPTH = 4


def known(names: Iterable[str]) -> str:
    return ", ".join(names) or "none"


class Reader:
    """Collects the problems of one file."""

    def __init__(self, path: str, error: type[InvalidFile] = InvalidExperiment) -> None:
        self.path = path
        self.error = error
        self.problems: list[InvalidFile] = []

    def fail(self, line: int | None, field: str, problem: str) -> None:
        self.problems.append(self.error(self.path, line, printable(field), printable(problem)))

    def mapping(self, value: Any, line: int, field: str, allowed: Sequence[str]) -> LineDict | None:
        """``value`` as a mapping whose keys are all in ``allowed``; unknown keys are errors."""
        if not isinstance(value, LineDict):
            self.fail(line, field, f"expected a mapping, got {kind_of(value)}")
            return None
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                where = f"{field}.{key}" if field else str(key)
                self.fail(value.line_of(key), where, f"unknown field (allowed: {known(allowed)})")
        return value

    def sequence(self, value: Any, line: int, field: str) -> LineList | None:
        if not isinstance(value, LineList):
            self.fail(line, field, f"expected a list, got {kind_of(value)}")
            return None
        return value

    def required(self, mapping: LineDict, key: str, field: str) -> bool:
        if key not in mapping:
            self.fail(mapping.line, field, "missing (required)")
            return False
        return True

    def string(self, mapping: LineDict, key: str, field: str) -> str | None:
        value = mapping.get(key)
        if isinstance(value, dt.date):
            return value.isoformat()
        if not isinstance(value, str) or isinstance(value, bool):
            self.fail(mapping.line_of(key), field, f"expected text, got {kind_of(value)}")
            return None
        return value

    def choice(
        self,
        mapping: LineDict,
        key: str,
        field: str,
        allowed: Sequence[str],
        what: str = "value",
        label: str = "allowed",
    ) -> str | None:
        value = mapping.get(key)
        if not isinstance(value, str) or value not in allowed:
            self.fail(
                mapping.line_of(key), field, f"unknown {what} {value!r} ({label}: {known(allowed)})"
            )
            return None
        return value

    def integer(self, mapping: LineDict, key: str, field: str, low: int, high: int) -> int | None:
        value = mapping.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.fail(
                mapping.line_of(key),
                field,
                f"expected a whole number from {low} to {high}, got {value!r}",
            )
            return None
        return value

    def number(
        self, mapping: LineDict, key: str, field: str, low: float, high: float
    ) -> float | None:
        value = mapping.get(key)
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            self.fail(
                mapping.line_of(key),
                field,
                f"expected a number from {low:g} to {high:g}, got {value!r}",
            )
            return None
        return float(value)

    def boolean(self, mapping: LineDict, key: str, field: str) -> bool | None:
        value = mapping.get(key)
        if not isinstance(value, bool):
            self.fail(mapping.line_of(key), field, f"expected true or false, got {value!r}")
            return None
        return value

    def duration(
        self, mapping: LineDict, key: str, field: str, positive: bool = False
    ) -> float | None:
        try:
            seconds = parse_duration(mapping.get(key))
        except ValueError as err:
            self.fail(mapping.line_of(key), field, str(err))
            return None
        if positive and seconds <= 0:
            self.fail(mapping.line_of(key), field, "must be longer than 0s")
            return None
        return seconds

    def names(
        self,
        mapping: LineDict,
        key: str,
        field: str,
        allowed: Sequence[str],
        what: str,
        label: str = "known",
    ) -> tuple[str, ...] | None:
        """A list of names (a single name is accepted too), each one of ``allowed``."""
        value = mapping.get(key)
        if isinstance(value, str):
            value_list: list[Any] = [value]
            lines = [mapping.line_of(key)]
        elif isinstance(value, LineList):
            value_list = list(value)
            lines = [value.line_of(i) for i in range(len(value))]
        else:
            self.fail(
                mapping.line_of(key), field, f"expected a list of {what}s, got {kind_of(value)}"
            )
            return None
        result: list[str] = []
        for index, (name, line) in enumerate(zip(value_list, lines, strict=True)):
            item_field = f"{field}[{index}]" if isinstance(value, LineList) else field
            if not isinstance(name, str) or name not in allowed:
                self.fail(line, item_field, f"unknown {what} {name!r} ({label}: {known(allowed)})")
            elif name in result:
                self.fail(line, item_field, f"{what} {name!r} is listed twice")
            else:
                result.append(name)
        return tuple(result)

    def plain(self, value: Any, line: int, field: str, depth: int = 0) -> Any:
        """``value`` as plain JSON-like data (dicts, lists, text, numbers, booleans, null)."""
        if depth > _MAX_DEPTH:
            self.fail(line, field, f"nested more than {_MAX_DEPTH} levels deep")
            return None
        if isinstance(value, LineDict):
            result: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    self.fail(value.line_of(key), field, f"keys must be text, got {key!r}")
                    continue
                result[key] = self.plain(item, value.line_of(key), f"{field}.{key}", depth + 1)
            return result
        if isinstance(value, LineList):
            return [
                self.plain(item, value.line_of(i), f"{field}[{i}]", depth + 1)
                for i, item in enumerate(value)
            ]
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(line, field, f"expected a finite number, got {value!r}")
            return None
        if value is None or isinstance(value, str | int | float | bool):
            return value
        self.fail(line, field, f"unsupported value {kind_of(value)}")
        return None


def printable(text: str) -> str:
    """``text`` on one line: control and other unprintable characters escaped."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"{value!r}"
    if isinstance(value, int | float):
        return f"{value!r} (a number)"
    return type(value).__name__
