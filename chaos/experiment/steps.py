"""Reading the ``method`` list: common step fields here, each action's own parameters by
``chaos.faults.registry.validate_step`` (when that module exists)."""

from __future__ import annotations

import re
from typing import Any

from chaos.experiment import catalog
from chaos.experiment.fields import Reader, known
from chaos.experiment.model import KnownNames, Step, Variant
from chaos.experiment.yamlsource import LineDict, LineList

COMMON = ("id", "at", "after", "for", "action", "target", "variants")
STEP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def read_method(
    r: Reader, top: LineDict, names: KnownNames, variants: tuple[Variant, ...], duration: float
) -> tuple[Step, ...] | None:
    items = r.sequence(top["method"], top.line_of("method"), "method")
    if items is None:
        return None
    steps: list[Step] = []
    for index, item in enumerate(items):
        field = f"method[{index}]"
        if not isinstance(item, LineDict):
            r.fail(
                items.line_of(index),
                field,
                "expected a mapping like {at: 5s, action: restart, target: oracle}",
            )
            continue
        step = _step(r, item, index, field, names, variants, steps)
        if step is not None:
            steps.append(step)
    _check_timing(r, steps, variants, duration)
    return tuple(steps)


def _step(
    r: Reader,
    item: LineDict,
    index: int,
    field: str,
    names: KnownNames,
    variants: tuple[Variant, ...],
    earlier: list[Step],
) -> Step | None:
    bad_keys = [k for k in item if not isinstance(k, str)]
    for key in bad_keys:
        r.fail(item.line_of(key), field, f"field names must be text, got {key!r}")
    if not r.required(item, "action", f"{field}.action"):
        return None
    action = r.choice(item, "action", f"{field}.action", catalog.action_names(), "action", "known")
    step_id = f"{action}-{index}"
    if "id" in item:
        given = r.string(item, "id", f"{field}.id")
        if given is not None and not STEP_ID.match(given):
            r.fail(
                item.line_of("id"),
                f"{field}.id",
                f"{given!r} is not a usable id (letters, digits, '_', '-', '.')",
            )
        elif given is not None and any(s.id == given for s in earlier):
            r.fail(item.line_of("id"), f"{field}.id", f"id {given!r} is used by an earlier step")
        step_id = given or step_id
    after = None
    if "after" in item:
        ids = [s.id for s in earlier]
        after = (
            r.choice(item, "after", f"{field}.after", ids, "step", "earlier steps") if ids else None
        )
        if not ids:
            r.fail(
                item.line_of("after"),
                f"{field}.after",
                "no earlier step to follow (after names an earlier step's id)",
            )
    elif "at" not in item:
        r.fail(
            item.line, f"{field}.at", "missing: a step needs 'at' (offset) or 'after' (a step id)"
        )
    at_s = r.duration(item, "at", f"{field}.at") if "at" in item else 0.0
    for_s = r.duration(item, "for", f"{field}.for", positive=True) if "for" in item else None
    runs_in = (
        r.names(item, "variants", f"{field}.variants", [v.name for v in variants], "variant")
        if "variants" in item
        else None
    )
    if action is None:
        return None
    target = _target(r, item, field, action, names)
    params = {
        str(k): r.plain(v, item.line_of(k), f"{field}.{k}", depth=1)
        for k, v in item.items()
        if k not in COMMON and isinstance(k, str)
    }
    _validate_with_registry(r, item, field, action, params, target, names)
    step = Step(
        id=step_id or f"{action}-{index}",
        index=index,
        action=action,
        target=target,
        params=params,
        at_s=at_s or 0.0,
        after=after,
        for_s=for_s,
        variants=runs_in,
        line=item.line,
    )
    _check_after_variants(r, item, field, step, earlier, variants)
    return step


def _target(
    r: Reader, item: LineDict, field: str, action: str, names: KnownNames
) -> str | tuple[str, ...] | None:
    """The target's shape (a name or a list of names); its names are checked here only
    while the fault registry (which knows each action's target kind) is missing."""
    tfield = f"{field}.target"
    if "target" not in item:
        return None
    value = item["target"]
    registry_present = catalog.registry() is not None
    allowed = names.targets
    if isinstance(value, LineList) and not value:
        r.fail(item.line_of("target"), tfield, f"empty list (known: {known(allowed)})")
        return None
    if registry_present:
        if isinstance(value, str):
            return value
        if isinstance(value, LineList) and all(isinstance(v, str) for v in value):
            return tuple(value)
        r.fail(item.line_of("target"), tfield, "expected a name or a list of names")
        return None
    picked = r.names(item, "target", tfield, allowed, "target")
    if not picked:
        return None
    return picked if isinstance(value, LineList) else picked[0]


def _validate_with_registry(
    r: Reader,
    item: LineDict,
    field: str,
    action: str,
    params: dict[str, Any],
    target: str | tuple[str, ...] | None,
    names: KnownNames,
) -> None:
    """``chaos.faults.registry.validate_step`` on the action's parameters and target."""
    registry = catalog.registry()
    if registry is None:
        return
    if "target" in item and target is None:
        return  # its shape was already reported
    registry_names = registry.KnownNames.of(names.services, names.links, names.sites)
    try:
        registry.validate_step(
            action, params, registry_names, list(_as_tuple(target)) or None, check_target=True
        )
    except registry.StepError as err:
        key = str(err.field)
        top_key = key.split(".", 1)[0]
        line = item.line_of(top_key) if top_key in item else item.line
        r.fail(line, f"{field}.{key}" if key else field, str(err.problem))
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        r.fail(item.line, field, f"parameters of {action!r} rejected: {err}")


def _as_tuple(target: str | tuple[str, ...] | None) -> tuple[str, ...]:
    if target is None:
        return ()
    return (target,) if isinstance(target, str) else target


def _check_after_variants(
    r: Reader,
    item: LineDict,
    field: str,
    step: Step,
    earlier: list[Step],
    variants: tuple[Variant, ...],
) -> None:
    if step.after is None:
        return
    leader = next((s for s in earlier if s.id == step.after), None)
    if leader is None:
        return
    for variant in variants:
        if step.runs_in(variant.name) and not leader.runs_in(variant.name):
            r.fail(
                item.line_of("after"),
                f"{field}.after",
                f"step {leader.id!r} does not run in variant {variant.name!r} (this step does)",
            )
            return


def planned_times(steps: list[Step] | tuple[Step, ...]) -> dict[str, tuple[float, float]]:
    """Planned (start, end) offsets of each step, assuming each action takes no time itself;
    a step's end is its start plus ``for``. ``after`` refers to earlier steps only."""
    times: dict[str, tuple[float, float]] = {}
    for step in steps:
        base = times[step.after][1] if step.after in times else 0.0
        start = base + step.at_s
        times[step.id] = (start, start + (step.for_s or 0.0))
    return times


def _check_timing(
    r: Reader, steps: list[Step], variants: tuple[Variant, ...], duration: float
) -> None:
    times = planned_times(steps)
    for step in steps:
        start, end = times[step.id]
        if start > duration:
            r.fail(
                step.line,
                f"method[{step.index}].at",
                f"starts at {start:g}s, after the method ends (duration {duration:g}s)",
            )
        elif end > duration:
            r.fail(
                step.line,
                f"method[{step.index}].for",
                f"lasts until {end:g}s, after the method ends (duration {duration:g}s)",
            )
