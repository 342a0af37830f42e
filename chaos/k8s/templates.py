"""The pieces every step compiler shares: Workflow nodes, the plan, selectors, durations.

See ``chaos.k8s.chaosmap`` for the contract of compiling a step; ``netchaos`` and
``podchaos`` hold the compilers of network and process/node faults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos.errors import BadInput
from chaos.experiment import actions as registry
from chaos.experiment.model import Step
from chaos.k8s import names
from chaos.k8s.manifests import Target, selector
from chaos.k8s.stack import K8sStack

Obj = dict[str, Any]
CHAOS_FIELDS = {
    "NetworkChaos": "networkChaos",
    "PodChaos": "podChaos",
    "StressChaos": "stressChaos",
}
TASK_ACTIONS = (
    "trading_mode",
    "db_upgrade",
    "feed_fault",
    "price_move",
    "aggressive_orders",
    "trigger_orders",
    "snapshot",
    "cancel_all",
    "disable_access",
    "enable_access",
    "chain_rollback",
    "replay",
)
HOLD_TO_END = ("feed_fault",)  # Task steps whose heal matters: the pod stays until then
DOWN_ACTIONS = ("stop", "kill", "terminate")
INSTANT_S = 1.0  # the deadline of an instantaneous chaos (a kill): it acts at creation
BANDWIDTH_LIMIT = 20_971_520  # tc tbf queue limit, bytes (Chaos Mesh's documented example)
BANDWIDTH_BUFFER = 10_000  # tc tbf bucket, bytes
_DIRECTIONS = {"upstream": "to", "downstream": "from", "both": "both"}


class CannotExpress(BadInput):
    """A step with no Chaos Mesh equivalent: exit 2, naming the step (file:line)."""

    def __init__(self, step: Step, path: str, why: str) -> None:
        super().__init__(
            f"{path}:{step.line}: method[{step.index}] ({step.id}, {step.action}): {why}"
        )


@dataclass
class Node:
    """One Workflow template: ``kind`` is Serial, Parallel, Suspend, Task, StatusCheck or a
    chaos kind; ``body`` the chaos spec, the Task or the status check."""

    kind: str
    name: str
    children: list[Node] = field(default_factory=list)
    deadline: float | None = None
    body: Obj = field(default_factory=dict)


@dataclass(frozen=True)
class Compiled:
    node: Node | None
    resources: tuple[str, ...]
    lasting: bool
    note: str = ""


@dataclass
class Plan:
    """What compiling one variant's method needs; ``ends`` maps a down/pause step's id to
    each service's planned end (set by the ``start``/``resume`` that ends it)."""

    stack: K8sStack
    target: Target
    path: str
    duration_s: float
    times: Mapping[str, tuple[float, float]]
    task: TaskFactory
    ends: dict[str, dict[str, float]] = field(default_factory=dict)
    ended_by: dict[str, str] = field(default_factory=dict)  # start/resume id -> down step id


class TaskFactory:
    """Builds the Task container that runs ``tradechaos step`` for a step (see
    chaos/commands/step.py); set up by the workflow module with every service's URL."""

    def __init__(self, image: str, argv_prefix: Sequence[str], labels: Mapping[str, str]) -> None:
        self.image = image
        self.argv_prefix = list(argv_prefix)
        self.labels = dict(labels)

    def body(self, name: str, argv: Sequence[str]) -> Obj:
        container = {
            "name": "step",
            "image": self.image,
            "command": [*self.argv_prefix[:2], *argv, *self.argv_prefix[2:]],
            "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}],
            "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}},
        }
        return {"container": container, "labels": {**self.labels, names.STEP_LABEL: name}}


def template_name(step: Step, suffix: str = "") -> str:
    base = f"s{step.index}-{names.dns_label(step.id, 30)}"
    return names.dns_label(f"{base}-{suffix}" if suffix else base, 50)


def pods(plan: Plan, services: Sequence[str]) -> Obj:
    """A Chaos Mesh selector for the pods of ``services`` in this run."""
    sel: Obj = {"namespaces": [plan.target.namespace]}
    if len(services) == 1:
        sel["labelSelectors"] = selector(plan.stack, plan.target, services[0])
        return sel
    sel["labelSelectors"] = {names.RUN_LABEL: plan.target.run_id}
    values = sorted({names.label_value(s) for s in services})
    sel["expressionSelectors"] = [{"key": names.NAME_LABEL, "operator": "In", "values": values}]
    return sel


def site_pods(plan: Plan, site: str) -> Obj:
    labels = {names.SITE_LABEL: names.label_value(site), names.RUN_LABEL: plan.target.run_id}
    return {"namespaces": [plan.target.namespace], "labelSelectors": labels}


def others(plan: Plan, services: Sequence[str]) -> Obj:
    """Every pod of this run except those of ``services``."""
    values = sorted({names.label_value(s) for s in services})
    return {
        "namespaces": [plan.target.namespace],
        "labelSelectors": {names.RUN_LABEL: plan.target.run_id},
        "expressionSelectors": [{"key": names.NAME_LABEL, "operator": "NotIn", "values": values}],
    }


def chaos(kind: str, name: str, spec: Obj, deadline: float | None) -> Node:
    return Node(kind, name, deadline=deadline, body=spec)


def group(kind: str, name: str, children: list[Node]) -> Node:
    """A Serial/Parallel of ``children``, or the one child itself."""
    if len(children) == 1:
        return children[0]
    return Node(kind, name, children=children)


def remaining(step: Step, plan: Plan) -> float:
    """Seconds from the step's planned start to the end of the method (at least 1 s)."""
    return max(INSTANT_S, plan.duration_s - plan.times[step.id][0])


def span(step: Step, plan: Plan) -> float:
    return step.for_s if step.for_s is not None else remaining(step, plan)


def parsed(step: Step, plan: Plan) -> dict[str, object]:
    from chaos.faults.base import known_names

    return registry.parse_params(step.action, step.params, known_names(plan.stack.definition))


def seconds(value: object, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) else default
