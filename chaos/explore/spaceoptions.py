"""Reading one entry of a space's ``faults`` list (``chaos.explore.spaceload``): the action,
its targets, its ``for`` and its parameters as fixed values, ``[weak, strong]`` ranges or
choices; every target and every end of every range checked with the registry's rules."""

from __future__ import annotations

from typing import Any

from chaos.experiment import actions as registry
from chaos.experiment.params import KnownNames
from chaos.explore.space import Choice, FaultOption, Fixed, OneOf, Span, Target
from chaos.files.durations import parse_duration
from chaos.files.fields import Reader
from chaos.files.yamlsource import LineDict, LineList

OPTION_COMMON = ("action", "target", "for")
SPAN_TYPES = ("duration", "float", "int")


class OptionReader:
    """One entry of ``faults``."""

    def __init__(
        self, reader: Reader, names: KnownNames, item: LineDict, field: str, duration: float
    ) -> None:
        self.r = reader
        self.item = item
        self.field = field
        self.duration = duration
        self.names = names

    def read(self) -> FaultOption | None:
        item, r = self.item, self.r
        if not r.required(item, "action", f"{self.field}.action"):
            return None
        faults = sorted(name for name, info in registry.ACTIONS.items() if info.is_fault)
        where = f"{self.field}.action"
        action = r.choice(item, "action", where, faults, "fault action", "searchable")
        if action is None:
            return None
        info = registry.ACTIONS[action]
        r.mapping(item, item.line, self.field, (*OPTION_COMMON, *info.params))
        targets = self._targets(action)
        span = self._for()
        params = tuple(
            (key, choice)
            for key in info.params
            if key in item and (choice := self._param(key, info.params[key])) is not None
        )
        if targets is None:
            return None
        option = FaultOption(action, targets, span, params, item.line)
        self._validate(option)
        return option

    def _targets(self, action: str) -> tuple[Target, ...] | None:
        info = registry.ACTIONS[action]
        where = f"{self.field}.target"
        line = self.item.line_of("target")
        if "target" not in self.item:
            try:
                registry.validate_target(action, None, self.names)
            except registry.StepError as err:
                self.r.fail(self.item.line, where, err.problem)
                return None
            return (None,)
        value = self.item["target"]
        if value == "*":
            kind = info.target_kind
            every = {
                "service": self.names.services,
                "services": self.names.services,
                "link": self.names.links,
                "links": self.names.links,
                "site": self.names.sites,
            }.get(kind, frozenset())
            if not every:
                self.r.fail(line, where, f"action {action!r} takes no target")
                return None
            return tuple(sorted(every))
        raw = list(value) if isinstance(value, LineList) else [value]
        if not raw:
            self.r.fail(line, where, "empty list: name at least one target")
            return None
        targets: list[Target] = []
        for index, entry in enumerate(raw):
            item_where = f"{where}[{index}]" if isinstance(value, LineList) else where
            if isinstance(entry, str):
                target: Target = entry
            elif isinstance(entry, LineList) and entry and all(isinstance(t, str) for t in entry):
                target = tuple(entry)
            else:
                self.r.fail(line, item_where, f"expected a name or a list of names, got {entry!r}")
                continue
            try:
                registry.validate_target(action, target, self.names)
            except registry.StepError as err:
                self.r.fail(line, item_where, err.problem)
                continue
            targets.append(target)
        return tuple(targets) if targets else None

    def _for(self) -> Span | None:
        if "for" not in self.item:
            return Span(1.0, max(1.0, round(self.duration / 2, 3)), "duration")
        value = self.item["for"]
        if value is None or value == "none":
            return None
        span = self._span("for", value, "duration")
        if isinstance(span, Fixed):
            seconds = _seconds(span.value)
            if seconds is None or seconds <= 0:
                self.r.fail(self.item.line_of("for"), f"{self.field}.for", "must be longer than 0s")
                return None
            return Span(seconds, seconds, "duration")
        if isinstance(span, Span) and min(span.weak, span.strong) <= 0:
            self.r.fail(self.item.line_of("for"), f"{self.field}.for", "must be longer than 0s")
            return None
        return span if isinstance(span, Span) else None

    def _param(self, key: str, spec: registry.ParamSpec) -> Choice | None:
        value = self.item[key]
        line = self.item.line_of(key)
        where = f"{self.field}.{key}"
        if isinstance(value, LineDict):
            if (
                set(value) == {"one_of"}
                and isinstance(value["one_of"], LineList)
                and value["one_of"]
            ):
                return OneOf(tuple(self.r.plain(v, line, where, 1) for v in value["one_of"]))
            if spec.type != "mapping":
                self.r.fail(
                    line, where, "expected a value, a [weak, strong] range or {one_of: [...]}"
                )
                return None
        if isinstance(value, LineList) and spec.type in ("enum", "str"):
            if not value:
                self.r.fail(line, where, "empty list: give at least one value")
                return None
            return OneOf(tuple(self.r.plain(v, line, where, 1) for v in value))
        if spec.type in SPAN_TYPES:
            return self._span(key, value, spec.type)
        return Fixed(self.r.plain(value, line, where, 1))

    def _span(self, key: str, value: Any, kind: str) -> Choice | None:
        line = self.item.line_of(key)
        where = f"{self.field}.{key}"
        if not isinstance(value, LineList):
            if kind == "duration" and _seconds(value) is None:
                self.r.fail(
                    line, where, f"expected a duration or a [weak, strong] range, got {value!r}"
                )
                return None
            return Fixed(self.r.plain(value, line, where, 1))
        if len(value) != 2:
            self.r.fail(line, where, "a range is [weak, strong]: two values")
            return None
        ends = []
        for index, end in enumerate(value):
            number = _seconds(end) if kind == "duration" else _number(end, kind)
            if number is None:
                what = (
                    "a duration"
                    if kind == "duration"
                    else f"a{'n integer' if kind == 'int' else ' number'}"
                )
                self.r.fail(line, f"{where}[{index}]", f"expected {what}, got {end!r}")
                return None
            ends.append(number)
        return Span(ends[0], ends[1], kind)  # type: ignore[arg-type]

    def _validate(self, option: FaultOption) -> None:
        """Every target with the weakest values, then each value of each parameter's range
        with the others at their weakest: all must pass the registry's step rules."""
        weakest = option.weakest_params()
        checks: list[tuple[str, Target, dict[str, Any]]] = [
            ("target", target, weakest) for target in option.targets
        ]
        for key, choice in option.params:
            for value in choice.extremes():
                checks.append((key, option.targets[0], {**weakest, key: value}))
        seen: set[str] = set()
        for key, target, params in checks:
            try:
                registry.validate_step(
                    option.action,
                    params,
                    self.names,
                    list(target) if isinstance(target, tuple) else target,
                    check_target=True,
                )
            except registry.StepError as err:
                top = str(err.field).split(".", 1)[0].split("[", 1)[0]
                name = top if top in self.item else key
                if name in seen:
                    continue
                seen.add(name)
                line = self.item.line_of(name) if name in self.item else self.item.line
                self.r.fail(line, f"{self.field}.{err.field or name}", err.problem)


def _seconds(value: Any) -> float | None:
    try:
        return parse_duration(value)
    except ValueError:
        return None


def _number(value: Any, kind: str) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if kind == "int" and not isinstance(value, int):
        return None
    return float(value)
