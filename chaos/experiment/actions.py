"""Every action an experiment step may name: its parameters, target kind, and builder.

Contract (docs/contracts.md §6)
- ``ACTIONS[name]`` is an ``ActionInfo``: ``is_fault`` (``--no-faults`` skips it; False
  for maintenance ``trading_mode`` and the world event ``price_move``), ``target_kind``
  and ``params`` (``ParamSpec`` per parameter).
- ``target_kind``: ``service`` one service; ``services`` a service or a list of them;
  ``link`` one link; ``links`` a link, a service (all of its links) or a list of those;
  ``site`` one site label; ``none`` no target. ``target_required`` says whether a step
  must give one (else ``default_target`` or the whole stack applies).
- ``validate_step(action, params, names, target=...)`` raises ``StepError(field, problem)``
  naming the allowed values; it never touches processes or the network.
- ``requires`` names what the stack must provide for the action: a binding of its stack
  file (``orders``, ``trading_mode``, ``db_upgrade``, ``accounts``), one request of a
  binding (``response.rollback``) or a built-in part (``venues``); the experiment loader
  refuses a step whose stack lacks it.
- The ``response`` family is the operator's runbook (issue 21): not faults, so
  ``--no-faults`` keeps them, as it keeps ``trading_mode``.
- Faults are built from steps by ``chaos.faults.build.build(step, ctx)``; this module is
  the catalogue only (pure data and validation, cheap to import).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, cast

from chaos.experiment.actions_response import ENTRIES as RUNBOOK_ENTRIES
from chaos.experiment.actions_response import check_rules as check_runbook_rules
from chaos.experiment.params import KnownNames, ParamSpec, StepError, check_params

__all__ = [
    "ACTIONS",
    "ActionInfo",
    "KnownNames",
    "ParamSpec",
    "StepError",
    "StepLike",
    "parse_params",
    "validate_step",
]

TargetKind = Literal["service", "link", "site", "services", "links", "none"]
Family = Literal["network", "process", "node", "maintenance", "data", "market", "response"]


class StepLike(Protocol):
    """What ``build`` needs of an experiment step (``chaos.experiment.model.Step``)."""

    @property
    def id(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def target(self) -> str | Sequence[str] | None: ...
    @property
    def params(self) -> Mapping[str, object]: ...


@dataclass(frozen=True)
class ActionInfo:
    name: str
    family: Family
    is_fault: bool
    target_kind: TargetKind
    params: Mapping[str, ParamSpec]
    summary: str
    target_required: bool = True
    requires: tuple[str, ...] = ()


def _d(
    default: float | None = None, required: bool = False, help: str = "", min: float = 0.0
) -> ParamSpec:
    return ParamSpec("duration", required=required, default=default, min=min, help=help)


DIRECTION = ParamSpec(
    "enum",
    default="both",
    choices=("upstream", "downstream", "both"),
    help="upstream: client->server bytes; downstream: server->client; both",
)
TOXICITY = ParamSpec(
    "float", default=1.0, min=0.0, max=1.0, help="probability that a new connection is affected"
)
_NET = {"direction": DIRECTION, "toxicity": TOXICITY}
_TIMEOUT = _d(30.0, help="how long to wait for a service to become healthy", min=0.1)

NETWORK_TOXICS: dict[str, dict[str, ParamSpec]] = {
    "latency": {
        "latency": _d(required=True, help="added delay"),
        "jitter": _d(0.0, help="+- random delay"),
    },
    "bandwidth": {"rate": ParamSpec("int", required=True, min=0, help="KB/s")},
    "timeout": {"timeout": _d(0.0, help="close after this; 0 = hold data forever (blackhole)")},
    "reset_peer": {"timeout": _d(0.0, help="reset (TCP RST) after this")},
    "slicer": {
        "average_size": ParamSpec("int", default=64, min=1, help="bytes per slice"),
        "size_variation": ParamSpec("int", default=0, min=0),
        "delay": _d(0.0, help="between slices"),
    },
    "limit_data": {
        "bytes": ParamSpec("int", required=True, min=0, help="close after this many bytes")
    },
    "slow_close": {"delay": _d(required=True, help="delay before the close is passed on")},
}


def _info(
    name: str,
    family: Family,
    target_kind: TargetKind,
    summary: str,
    params: Mapping[str, ParamSpec] | None = None,
    *,
    is_fault: bool = True,
    target_required: bool = True,
    requires: tuple[str, ...] = (),
) -> ActionInfo:
    return ActionInfo(
        name,
        family,
        is_fault,
        target_kind,
        dict(params or {}),
        summary,
        target_required,
        requires,
    )


def _actions() -> dict[str, ActionInfo]:
    acts: list[ActionInfo] = []
    for toxic, own in NETWORK_TOXICS.items():
        acts.append(
            _info(
                toxic,
                "network",
                "links",
                f"{toxic} toxic on a link or every link of a service",
                {**own, **_NET},
            )
        )
    acts += [
        _info("down", "network", "links", "links disabled: connections refused and cut"),
        _info(
            "partition",
            "network",
            "none",
            "every link between two sets of services down",
            {
                "between": ParamSpec("list", required=True, names="services"),
                "and": ParamSpec("list", required=True, names="services"),
            },
            target_required=False,
        ),
        _info(
            "flap",
            "network",
            "links",
            "an inner network fault toggled on and off",
            {
                "fault": ParamSpec(
                    "mapping",
                    required=True,
                    help="the inner step: {action: latency, latency: 1s, ...}",
                ),
                "period": _d(required=True, min=0.05, help="one good+bad cycle"),
                "bad_fraction": ParamSpec("float", default=0.5, min=0.0, max=1.0),
            },
            target_required=False,
        ),
        _info("kill", "process", "services", "SIGKILL; heal starts it again"),
        _info(
            "terminate",
            "process",
            "services",
            "SIGTERM, grace, SIGKILL; heal starts it",
            {"grace": _d(None)},
        ),
        _info(
            "restart",
            "process",
            "services",
            "stop, wait downtime, start, wait healthy",
            {
                "downtime": _d(0.0),
                "start_delay": _d(0.0, help="between targets' starts"),
                "signal": ParamSpec("enum", default="term", choices=("term", "kill")),
                "timeout": _TIMEOUT,
            },
        ),
        _info("pause", "process", "services", "SIGSTOP the process group; heal SIGCONT"),
        _info("resume", "process", "services", "SIGCONT a paused service"),
        _info(
            "throttle",
            "process",
            "services",
            "limit to a share of one CPU",
            {"cpu": ParamSpec("float", required=True, min=0.0, max=1.0, exclusive_min=True)},
        ),
        _info(
            "stop",
            "process",
            "services",
            "stop services on purpose; heal starts them",
            {"grace": _d(None)},
        ),
        _info(
            "start",
            "process",
            "services",
            "start stopped services in order with delays",
            {
                "delays": ParamSpec(
                    "mapping",
                    default={},
                    names="services",
                    values="duration",
                    help="service -> delay after the step began",
                ),
                "gap": _d(0.0, help="between successive starts"),
                "timeout": _TIMEOUT,
            },
        ),
        _info(
            "full_restart",
            "process",
            "none",
            "stop all, start in an order with delays",
            {
                "order": ParamSpec("list", names="services", help="start order (default: stack's)"),
                "delays": ParamSpec("mapping", default={}, names="services", values="duration"),
                "gap": _d(0.0),
                "downtime": _d(0.0),
                "timeout": _TIMEOUT,
            },
            target_required=False,
        ),
        _info(
            "rolling_restart",
            "process",
            "services",
            "restart one service at a time",
            {"gap": _d(1.0), "downtime": _d(0.0), "timeout": _TIMEOUT},
            target_required=False,
        ),
        _info(
            "node_loss",
            "node",
            "site",
            "cooling-style: degrade over a ramp, then lose a site",
            {
                "ramp": _d(10.0),
                "max_latency": _d(0.5),
                "min_cpu": ParamSpec("float", default=0.25, min=0.0, max=1.0, exclusive_min=True),
                "steps": ParamSpec("int", default=5, min=1),
                "hold": _d(0.0, help="time at full degradation before the loss"),
                "recover_after": _d(None, help="bring the site back after this (default: at heal)"),
            },
        ),
        _info(
            "trading_mode",
            "maintenance",
            "services",
            "set the trading mode (bindings.trading_mode; default: every service it names)",
            {
                "mode": ParamSpec(
                    "enum", required=True, choices=("normal", "post_only", "cancel_only", "halt")
                )
            },
            is_fault=False,
            target_required=False,
            requires=("trading_mode",),
        ),
        _info(
            "db_upgrade",
            "maintenance",
            "service",
            "upgrade the database in place or migrate",
            {
                "strategy": ParamSpec(
                    "enum", required=True, choices=("in_place", "migrate", "command")
                ),
                "downtime": _d(1.0, help="in_place: time the server is down"),
                "copy_delay": _d(0.0, help="migrate: pause between tables"),
                "switch": ParamSpec(
                    "enum", default="before_copy", choices=("before_copy", "after_copy")
                ),
                "new_name": ParamSpec("str", help="migrate: the new instance (default <db>2)"),
                "tables": ParamSpec("list", help="migrate: copy order (default: copier's)"),
                "early": ParamSpec(
                    "list",
                    help=(
                        "migrate: services moved to the new instance before the copy (their "
                        "links switched, and restarted when listed in restart)"
                    ),
                ),
                "restart": ParamSpec(
                    "list",
                    names="services",
                    help=(
                        "migrate: services the procedure restarts once the endpoint is "
                        "switched (while the copy runs when switch is before_copy)"
                    ),
                ),
                "stack": ParamSpec(
                    "enum",
                    default="running",
                    choices=("running", "halted"),
                    help="halted: stop every other service during the upgrade",
                ),
                "timeout": _TIMEOUT,
            },
            target_required=False,
            requires=("db_upgrade",),
        ),
        _info(
            "feed_fault",
            "data",
            "none",
            "a data fault on the built-in venues",
            {
                "kind": ParamSpec(
                    "enum", required=True, choices=("freeze", "zero", "scale", "offset", "drop")
                ),
                "venue": ParamSpec("int", min=0, help="venue index (default: every venue)"),
                "market": ParamSpec("str", default="*"),
                "value": ParamSpec("float", help="scale factor or offset"),
            },
            target_required=False,
            requires=("venues",),
        ),
        _info(
            "price_move",
            "market",
            "none",
            "the true price moves (world event)",
            {
                "pct": ParamSpec("float", required=True, min=-99.0),
                "market": ParamSpec("str", default="*"),
                "over": _d(None, help="the move ramps linearly over this"),
                "duration": _d(None, help="same as over"),
                "start": _d(0.0, help="delay from the step's start"),
            },
            is_fault=False,
            target_required=False,
            requires=("venues",),
        ),
        _info(
            "aggressive_orders",
            "market",
            "none",
            "adversarial post-only limits off the price (bindings.orders)",
            {
                "accounts": ParamSpec(
                    "list", items="int", help="default: bindings.accounts.adversaries"
                ),
                "count": ParamSpec("int", default=10, min=1),
                "offset_pct": ParamSpec(
                    "list",
                    default=[5.0],
                    items="float",
                    min=0.0,
                    help="percent off the oracle price, or [low, high]",
                ),
                "side": ParamSpec("enum", default="both", choices=("buy", "sell", "both")),
                "market": ParamSpec("str"),
                "qty": ParamSpec("float", default=0.1, min=0.0, exclusive_min=True),
                "interval": _d(0.0, help="between orders"),
            },
            target_required=False,
            requires=("orders",),
        ),
    ]
    acts += _runbook()
    return {a.name: a for a in acts}


def _runbook() -> list[ActionInfo]:
    """The response family and trigger_orders (``chaos.experiment.actions_response``)."""
    return [
        _info(name, cast(Family, e.family), "none", e.summary, e.params, is_fault=False,
              target_required=False, requires=e.requires)
        for name, e in RUNBOOK_ENTRIES.items()
    ]  # fmt: skip


ACTIONS: dict[str, ActionInfo] = _actions()
NETWORK_ACTIONS = frozenset(a.name for a in ACTIONS.values() if a.family == "network")


def _target_names(target: object) -> list[str] | None:
    if target is None:
        return None
    if isinstance(target, str):
        return [target]
    if isinstance(target, list | tuple) and all(isinstance(t, str) for t in target):
        return list(target)
    raise StepError("target", f"expected a name or a list of names, got {target!r}")


def validate_target(action: str, target: object, names: KnownNames) -> None:
    """``StepError("target", ...)`` when ``target`` does not fit ``action``'s target kind."""
    info = ACTIONS[action]
    given = _target_names(target)
    kind = info.target_kind
    if given is None or not given:
        if info.target_required and kind != "none":
            raise StepError("target", f"action {action!r} needs a target ({_kind_hint(kind)})")
        return
    if kind == "none":
        raise StepError("target", f"action {action!r} takes no target")
    if kind in ("service", "link", "site") and len(given) != 1:
        raise StepError("target", f"action {action!r} takes exactly one {kind}")
    allowed = {
        "service": names.services,
        "services": names.services,
        "link": names.links,
        "links": names.links | names.services,
        "site": names.sites,
    }[kind]
    for name in given:
        if allowed and name not in allowed:
            listing = ", ".join(sorted(allowed))
            raise StepError("target", f"unknown {_kind_hint(kind)} {name!r} (allowed: {listing})")


def _kind_hint(kind: str) -> str:
    return {"links": "link or service", "services": "service"}.get(kind, kind)


def parse_params(
    action: str, params: Mapping[str, object], names: KnownNames | None = None
) -> dict[str, object]:
    """The step's parameters parsed (durations in seconds) with defaults filled in."""
    if action not in ACTIONS:
        raise StepError(
            "action", f"unknown action {action!r} (allowed: {', '.join(sorted(ACTIONS))})"
        )
    known = names or KnownNames()
    parsed = check_params(action, ACTIONS[action].params, params, known)
    _check_action_rules(action, parsed, known)
    return parsed


def _check_action_rules(action: str, parsed: dict[str, object], names: KnownNames) -> None:
    """Rules that span parameters."""
    if action == "flap":
        inner = parsed["fault"]
        assert isinstance(inner, Mapping)
        inner_action = inner.get("action")
        if inner_action not in NETWORK_ACTIONS or inner_action == "flap":
            allowed = ", ".join(sorted(NETWORK_ACTIONS - {"flap"}))
            raise StepError("fault.action", f"{inner_action!r} cannot flap (allowed: {allowed})")
        rest = {k: v for k, v in inner.items() if k not in ("action", "target")}
        try:
            parse_params(str(inner_action), rest, names)
            if "target" in inner:
                validate_target(str(inner_action), inner["target"], names)
        except StepError as err:
            raise StepError(f"fault.{err.field}", err.problem) from None
    elif (
        action == "feed_fault"
        and parsed["kind"] in ("scale", "offset")
        and (parsed["value"] is None)
    ):
        raise StepError("value", f"required by feed_fault kind {parsed['kind']!r}")
    elif action == "aggressive_orders" and not 1 <= len(_as_list(parsed["offset_pct"])) <= 2:
        raise StepError("offset_pct", "expected a number or [low, high]")
    elif action in RUNBOOK_ENTRIES:
        check_runbook_rules(action, parsed)
    elif action == "partition":
        left, right = parsed["between"], parsed["and"]
        assert isinstance(left, list) and isinstance(right, list)
        if set(left) & set(right):
            raise StepError("and", "a service cannot be on both sides of a partition")


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else [value]


def validate_step(
    action: str,
    params: Mapping[str, object],
    names: KnownNames,
    target: object = None,
    *,
    check_target: bool = False,
) -> None:
    """Raise ``StepError`` unless ``action`` with ``params`` (and ``target``, when given or
    ``check_target``) is a valid step for a stack with ``names``."""
    if action not in ACTIONS:
        raise StepError(
            "action", f"unknown action {action!r} (allowed: {', '.join(sorted(ACTIONS))})"
        )
    parse_params(action, params, names)
    if target is not None or check_target:
        validate_target(action, target, names)
    if action == "flap" and target is None and check_target:
        inner = params.get("fault")
        if (
            isinstance(inner, Mapping)
            and "target" not in inner
            and inner.get("action") != "partition"
        ):
            raise StepError("target", "flap needs a target (on the step or in its fault)")
