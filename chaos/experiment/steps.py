"""Reading the ``method`` list: common step fields here, each action's own parameters by
``chaos.experiment.actions.validate_step``, against the stack of every variant the step
runs in (its services, links and sites, and the bindings the action requires)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from chaos.bindings.http import template_fields
from chaos.experiment.actions import ACTIONS, StepError, validate_step
from chaos.experiment.model import Step, Variant
from chaos.experiment.params import KnownNames
from chaos.experiment.runbook import check_runbook
from chaos.files.fields import Reader
from chaos.files.yamlsource import LineDict, LineList
from chaos.stackfile.definition import StackDefinition

COMMON = ("id", "at", "after", "for", "action", "target", "variants")
STEP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def names_of(definition: StackDefinition) -> KnownNames:
    """The names a step may target on this stack."""
    return KnownNames.of(definition.service_names, definition.link_names, definition.sites)


def read_method(
    r: Reader,
    top: LineDict,
    definitions: Mapping[str, StackDefinition],
    variants: tuple[Variant, ...],
    duration: float,
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
        step = _step(r, item, index, field, definitions, variants, steps)
        if step is not None:
            steps.append(step)
    _check_timing(r, steps, variants, duration)
    check_runbook(r, items, steps, variants, planned_times(steps))
    return tuple(steps)


def _step(
    r: Reader,
    item: LineDict,
    index: int,
    field: str,
    definitions: Mapping[str, StackDefinition],
    variants: tuple[Variant, ...],
    earlier: list[Step],
) -> Step | None:
    bad_keys = [k for k in item if not isinstance(k, str)]
    for key in bad_keys:
        r.fail(item.line_of(key), field, f"field names must be text, got {key!r}")
    if not r.required(item, "action", f"{field}.action"):
        return None
    action = r.choice(item, "action", f"{field}.action", sorted(ACTIONS), "action", "known")
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
    target = _target(r, item, field)
    params = {
        str(k): r.plain(v, item.line_of(k), f"{field}.{k}", depth=1)
        for k, v in item.items()
        if k not in COMMON and isinstance(k, str)
    }
    if "target" not in item or target is not None:
        runs = [v.name for v in variants if runs_in is None or v.name in runs_in]
        _validate(r, item, field, action, params, target, {v: definitions[v] for v in runs})
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
        fault=ACTIONS[action].is_fault,
    )
    _check_after_variants(r, item, field, step, earlier, variants)
    return step


def _target(r: Reader, item: LineDict, field: str) -> str | tuple[str, ...] | None:
    """The target's shape (a name or a list of names); its names are checked per variant."""
    tfield = f"{field}.target"
    if "target" not in item:
        return None
    value = item["target"]
    if isinstance(value, str):
        return value
    if isinstance(value, LineList) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    r.fail(item.line_of("target"), tfield, "expected a name or a non-empty list of names")
    return None


def _validate(
    r: Reader,
    item: LineDict,
    field: str,
    action: str,
    params: dict[str, Any],
    target: str | tuple[str, ...] | None,
    definitions: Mapping[str, StackDefinition],
) -> None:
    """The action's parameters and target on the stack of each variant it runs in, and the
    bindings it requires; each problem once, naming the variant where it differs."""
    seen: set[str] = set()
    for variant, definition in definitions.items():
        problem = _problem(action, params, target, definition)
        if problem is None or problem[1] in seen:
            continue
        seen.add(problem[1])
        key, text = problem
        top_key = key.split(".", 1)[0]
        line = item.line_of(top_key) if top_key in item else item.line
        where = "" if len(definitions) == 1 else f" (variant {variant})"
        r.fail(line, f"{field}.{key}" if key else field, text + where)


def _problem(
    action: str,
    params: dict[str, Any],
    target: str | tuple[str, ...] | None,
    definition: StackDefinition,
) -> tuple[str, str] | None:
    missing = missing_requirement(action, definition)
    if missing is not None:
        return "action", missing
    try:
        validate_step(
            action, params, names_of(definition), list(_as_tuple(target)) or None,
            check_target=True,
        )  # fmt: skip
    except StepError as err:
        return str(err.field), str(err.problem)
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        return "", f"parameters of {action!r} rejected: {err}"
    world = _world_problem(action, params, target, definition)
    if world is not None:
        return world
    orders = definition.bindings.orders
    if (
        action == "trigger_orders"
        and orders is not None
        and orders.python is None
        and (orders.submit is None or "trigger_price" not in template_fields(orders.submit))
    ):
        return "action", (f"trigger_orders needs bindings.orders.submit to send "
                          f"{{trigger_price}}; stack {definition.name}'s does not")  # fmt: skip
    binding = definition.bindings.trading_mode
    if action == "trading_mode" and binding is not None and params.get("mode") not in binding.modes:
        modes = ", ".join(binding.modes)
        return "mode", (f"stack {definition.name} has no trading mode {params.get('mode')!r} "
                        f"(bindings.trading_mode.modes: {modes})")  # fmt: skip
    return None


def _world_problem(
    action: str,
    params: dict[str, Any],
    target: str | tuple[str, ...] | None,
    definition: StackDefinition,
) -> tuple[str, str] | None:
    """Names and values of the world the stack declares: markets, venues, scales."""
    markets = [m.name for m in definition.markets]
    market = params.get("market")
    ordering = ("aggressive_orders", "trigger_orders")
    if action in ("feed_fault", "price_move", *ordering) and market is not None:
        allowed = markets if action in ordering else ["*", *markets]
        if market not in allowed:
            return "market", f"unknown market {market!r} (markets: {', '.join(allowed)})"
    if action == "cancel_all" and isinstance(params.get("markets"), list):
        for i, name in enumerate(params["markets"]):
            if name not in markets:
                return f"markets[{i}]", f"unknown market {name!r} (markets: {', '.join(markets)})"
    if action != "feed_fault":
        return None
    venue = params.get("venue")
    services = list(_as_tuple(target)) or list(definition.builtins("venues"))
    for service in services:
        if not definition.has_service(service):
            continue
        count = definition.service(service).venues
        if isinstance(venue, int) and not isinstance(venue, bool) and not 0 <= venue < count:
            return "venue", f"venue {venue} is out of range: {service} has venues 0..{count - 1}"
    value = params.get("value")
    if params.get("kind") == "scale" and isinstance(value, int | float) and value <= 0:
        return "value", f"a scale factor must be > 0, got {value}"
    return None


def missing_requirement(action: str, definition: StackDefinition) -> str | None:
    """Why ``definition`` cannot do ``action`` (a binding or part it lacks), or None."""
    for need in ACTIONS[action].requires:
        if need == "venues":
            if not definition.builtins("venues"):
                return (f"{action} needs a builtin venues service, which stack "
                        f"{definition.name} does not have")  # fmt: skip
            continue
        binding_name, _, request = need.partition(".")  # e.g. response.rollback
        binding = getattr(definition.bindings, binding_name)
        if binding is None or (request and getattr(binding, request) is None):
            return (f"{action} needs bindings.{need}, which stack {definition.name}'s file "
                    f"({definition.source}) does not declare")  # fmt: skip
    return None


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
