"""The action catalogue's entries for the operator's response (issue 21) and the traders'
protective orders, as data: ``ENTRIES[name] = Entry(family, summary, params, requires)``,
and the rules that span their parameters (``check_rules``). ``chaos.experiment.actions``
makes them ``ActionInfo``s: none is a fault (``--no-faults`` keeps the runbook, as it keeps
``trading_mode``), none takes a target (the binding says where each request goes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chaos.experiment.params import ParamSpec, StepError

ORDER_TYPES = ("limit", "market", "take_profit", "stop_loss")  # tradechaos's order types
TRIGGER_TYPES = ("take_profit", "stop_loss")


@dataclass(frozen=True)
class Entry:
    family: str  # "response" | "market"
    summary: str
    params: Mapping[str, ParamSpec]
    requires: tuple[str, ...]


def _d(default: float | None = None, help: str = "") -> ParamSpec:
    return ParamSpec("duration", default=default, min=0.0, help=help)


ENTRIES: dict[str, Entry] = {
    "trigger_orders": Entry(
        "market",
        "traders' take-profit / stop-loss orders that wait for the mark (bindings.orders)",
        {
            "accounts": ParamSpec("list", items="int", help="default: bindings.accounts.traders"),
            "count": ParamSpec("int", default=6, min=1),
            "types": ParamSpec("list", default=list(TRIGGER_TYPES), help="take_profit, stop_loss"),
            "distance_pct": ParamSpec(
                "float",
                default=20.0,
                min=0.0,
                exclusive_min=True,
                help="the trigger this far from the mark, on the side where it waits",
            ),
            "market": ParamSpec("str"),
            "qty": ParamSpec("float", default=0.01, min=0.0, exclusive_min=True),
        },
        ("orders",),
    ),
    "snapshot": Entry(
        "response",
        "mark the log, the chain head and the market state (bindings.response.snapshot)",
        {"label": ParamSpec("str", help="the snapshot's name (default: the step's id)")},
        ("response.snapshot",),
    ),
    "chain_rollback": Entry(
        "response",
        "roll the log and the chain back to a snapshot or a seq/height",
        {
            "to": ParamSpec("str", help="the label of an earlier snapshot step"),
            "seq": ParamSpec("int", min=0, help="or: the last event kept"),
            "chain_height": ParamSpec("int", min=0, help="or: the last block kept"),
            "wait": _d(10.0, help="how long the stack may wait for the chain's part"),
        },
        ("response.rollback",),
    ),
    "cancel_all": Entry(
        "response",
        "cancel every open order but those of the excepted types",
        {
            "except": ParamSpec("list", default=[], help="order types kept, e.g. stop_loss"),
            "accounts": ParamSpec("list", items="int", help="only these accounts' orders"),
            "markets": ParamSpec("list", help="only these markets' orders"),
        },
        ("response.cancel_all",),
    ),
    "disable_access": Entry(
        "response",
        "refuse traders' orders and cancels (they record fail)",
        {"reason": ParamSpec("str", help="what traders are told")},
        ("response.disable_access",),
    ),
    "enable_access": Entry("response", "let traders in again", {}, ("response.enable_access",)),
    "replay": Entry(
        "response",
        "apply again rolled-back events the operator keeps",
        {
            "seqs": ParamSpec("list", items="int", help="the rolled-back seqs to keep"),
            "kinds": ParamSpec("list", help="or: the event kinds to keep, e.g. deposit"),
            "rollback": ParamSpec(
                "str", help="the id of an earlier chain_rollback step (default: the latest)"
            ),
        },
        ("response.replay",),
    ),
}


def check_rules(action: str, parsed: Mapping[str, object]) -> None:
    """``StepError`` when parameters of ``action`` (one of ``ENTRIES``) do not fit together."""
    if action in ("cancel_all", "trigger_orders"):
        key = "except" if action == "cancel_all" else "types"
        kinds = ORDER_TYPES if action == "cancel_all" else TRIGGER_TYPES
        given = parsed[key]
        names = list(given) if isinstance(given, list | tuple) else [given]
        for i, name in enumerate(names):
            if name not in kinds:
                raise StepError(f"{key}[{i}]", f"unknown order type {name!r} (allowed: "
                                f"{', '.join(kinds)})")  # fmt: skip
        if action == "trigger_orders" and not names:
            raise StepError(key, "give at least one order type")
    elif action == "chain_rollback":
        points = [k for k in ("seq", "chain_height") if parsed[k] is not None]
        if parsed["to"] is None and not points:
            raise StepError("to", "required: a snapshot's label, or give seq and/or chain_height")
        if parsed["to"] is not None and points:
            raise StepError(points[0], "give either to (a snapshot) or seq/chain_height, not both")
    elif action == "replay" and parsed["seqs"] is None and parsed["kinds"] is None:
        raise StepError("kinds", "a replay needs seqs and/or kinds: the events to keep")
