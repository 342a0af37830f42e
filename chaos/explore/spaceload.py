"""Reading a search space: an experiment's ``explore:`` section or a SPACE.yaml.

``load_space(experiment, variant, space_path=None)`` returns a ``Space`` or raises
``InvalidExperiment`` whose message is ``FILE:LINE: FIELD: problem``: the first problem
of the file, by line. Without a section and without ``space_path`` the space is derived
from the stack's names (``chaos.explore.defaults``). Every range end and every choice of
every fault entry is checked with ``chaos.experiment.actions.validate_step`` against the
stack's names, so a schedule drawn from the space is always a valid experiment step.

A SPACE.yaml holds the same fields as the section, at its top level (or under
``explore:``); its field names in errors have no ``explore.`` prefix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaos.errors import InvalidExperiment
from chaos.experiment.model import Experiment
from chaos.explore.defaults import default_faults, default_fixed
from chaos.explore.names import StackNames, stack_names
from chaos.explore.space import FaultOption, Space
from chaos.explore.spaceoptions import OptionReader
from chaos.files.fields import Reader, printable
from chaos.files.yamlsource import LineDict, YamlSyntaxError, parse

FIELDS = ("fixed", "steps", "window", "invariant", "confirm", "shrink", "faults")
MAX_STEPS = 12


def load_space(experiment: Experiment, variant: str, space_path: str | None = None) -> Space:
    """The space to search for ``variant`` of ``experiment`` (see the module doc)."""
    names = stack_names(experiment, variant)
    if space_path is not None:
        document = _parse(space_path)
        if isinstance(document, LineDict) and set(document) == {"explore"}:
            return _checked(
                space_path,
                document["explore"],
                document.line_of("explore"),
                "",
                experiment,
                variant,
                names,
                f"{space_path}",
            )
        return _checked(space_path, document, 1, "", experiment, variant, names, space_path)
    document = _parse(experiment.path)
    if isinstance(document, LineDict) and "explore" in document:
        origin = f"the explore: section of {experiment.path}"
        line = document.line_of("explore")
        return _checked(
            experiment.path,
            document["explore"],
            line,
            "explore",
            experiment,
            variant,
            names,
            origin,
        )
    return default_space(experiment, variant, names)


def default_space(experiment: Experiment, variant: str, names: StackNames) -> Space:
    """Every fault family on every name of the stack, the non-fault steps as backbone."""
    return Space(
        faults=default_faults(names, experiment.duration_s),
        fixed=default_fixed(experiment.steps_for(variant)),
        min_steps=1,
        max_steps=3,
        window=(0.0, experiment.duration_s),
        origin="the default space (every link, service and venue of the stack)",
    )


def _parse(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidExperiment(path, None, "", f"cannot read the space: {err}") from None
    try:
        return parse(text)
    except YamlSyntaxError as err:
        raise InvalidExperiment(path, err.line, "", printable(err.problem)) from None


def _checked(
    path: str,
    value: Any,
    line: int,
    prefix: str,
    experiment: Experiment,
    variant: str,
    names: StackNames,
    origin: str,
) -> Space:
    reader = Reader(path)
    space = SpaceReader(reader, prefix, experiment, variant, names).read(value, line, origin)
    if reader.problems:
        raise sorted(reader.problems, key=lambda p: p.line or 0)[0]
    assert space is not None
    return space


class SpaceReader:
    """Reads one space; every problem goes to ``reader`` as ``FILE:LINE: FIELD: problem``."""

    def __init__(
        self, reader: Reader, prefix: str, experiment: Experiment, variant: str, names: StackNames
    ) -> None:
        self.r = reader
        self.prefix = prefix
        self.experiment = experiment
        self.variant = variant
        self.names = names

    def field(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def read(self, value: Any, line: int, origin: str) -> Space | None:
        section = self.r.mapping(value, line, self.prefix or "space", FIELDS)
        if section is None:
            return None
        duration = self.experiment.duration_s
        fixed = self._fixed(section)
        low, high = self._steps(section)
        window = self._window(section, duration)
        invariant = None
        if "invariant" in section:
            invariant = self.r.choice(
                section,
                "invariant",
                self.field("invariant"),
                self.experiment.invariants,
                "invariant",
                "checked by this experiment",
            )
        confirm = self._count(section, "confirm", 0, 10, 2)
        shrink = self._count(section, "shrink", 0, 1000, 40)
        if "faults" in section:
            faults = self._faults(section, duration)
        else:
            faults = default_faults(self.names, duration)
        return Space(faults, fixed, low, high, window, invariant, confirm, shrink, origin)

    def _count(self, section: LineDict, key: str, low: int, high: int, default: int) -> int:
        if key not in section:
            return default
        value = self.r.integer(section, key, self.field(key), low, high)
        return default if value is None else value

    def _fixed(self, section: LineDict) -> tuple[str, ...]:
        steps = self.experiment.steps_for(self.variant)
        if "fixed" not in section:
            return default_fixed(steps)
        if section["fixed"] in ("none", None) or section["fixed"] == []:
            return ()
        ids = [step.id for step in steps]
        picked = self.r.names(section, "fixed", self.field("fixed"), ids, "step") or ()
        chosen = set(picked)
        for step in steps:
            if step.id in chosen and step.after is not None and step.after not in chosen:
                self.r.fail(
                    section.line_of("fixed"),
                    self.field("fixed"),
                    f"step {step.id!r} follows step {step.after!r} (after), which is not fixed",
                )
        return tuple(step.id for step in steps if step.id in chosen)

    def _steps(self, section: LineDict) -> tuple[int, int]:
        if "steps" not in section:
            return 1, 3
        value = section["steps"]
        if isinstance(value, int) and not isinstance(value, bool):
            top = self.r.integer(section, "steps", self.field("steps"), 1, MAX_STEPS)
            return (1, top) if top is not None else (1, 3)
        body = self.r.mapping(value, section.line_of("steps"), self.field("steps"), ("min", "max"))
        if body is None:
            return 1, 3
        low: int | None = 1
        if "min" in body:
            low = self.r.integer(body, "min", self.field("steps.min"), 0, MAX_STEPS)
        high: int | None = max(3, low or 1)
        if "max" in body:
            high = self.r.integer(body, "max", self.field("steps.max"), 1, MAX_STEPS)
        if low is not None and high is not None and low > high:
            self.r.fail(body.line, self.field("steps"), f"min {low} is more than max {high}")
        return (low if low is not None else 1), (high if high is not None else 3)

    def _window(self, section: LineDict, duration: float) -> tuple[float, float]:
        if "window" not in section:
            return 0.0, duration
        field = self.field("window")
        line = section.line_of("window")
        items = self.r.sequence(section["window"], line, field)
        if items is None:
            return 0.0, duration
        if len(items) != 2:
            self.r.fail(line, field, "expected [start, end], two durations")
            return 0.0, duration
        holder = _holder({"start": items[0], "end": items[1]}, items.line_of(0))
        start = self.r.duration(holder, "start", f"{field}[0]")
        end = self.r.duration(holder, "end", f"{field}[1]")
        if start is None or end is None:
            return 0.0, duration
        if start > end:
            self.r.fail(line, field, f"starts at {start:g}s, after it ends ({end:g}s)")
        elif end > duration:
            self.r.fail(line, field, f"ends at {end:g}s, after the method (duration {duration:g}s)")
        return start, min(end, duration)

    def _faults(self, section: LineDict, duration: float) -> tuple[FaultOption, ...]:
        field = self.field("faults")
        items = self.r.sequence(section["faults"], section.line_of("faults"), field)
        if items is None:
            return ()
        if not items:
            self.r.fail(section.line_of("faults"), field, "empty: list at least one fault")
        options = []
        for index, item in enumerate(items):
            where = f"{field}[{index}]"
            if not isinstance(item, LineDict):
                self.r.fail(
                    items.line_of(index),
                    where,
                    "expected a mapping like {action: pause, target: X}",
                )
                continue
            option = OptionReader(self.r, self.names.registry_names, item, where, duration).read()
            if option is not None:
                options.append(option)
        return tuple(options)


def _holder(values: dict[str, Any], line: int) -> LineDict:
    holder = LineDict()
    holder.line = line
    for key, value in values.items():
        holder[key] = value
        holder.key_lines[key] = line
    return holder
