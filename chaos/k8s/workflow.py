"""The method's timeline -> one Chaos Mesh Workflow (docs/kubernetes.md).

Contract
- ``build_workflow(...)`` returns the Workflow object and one ``Row`` per step (what it
  became). The entry is Serial: a steady-state Task (``tradechaos step wait_healthy`` on
  every service) then the method, a Parallel of one branch per step that has no ``after``,
  a Suspend lasting the method's duration (so the Workflow ends when the method does) and,
  for each ``health`` abort condition, a Continuous StatusCheck per HTTP service that
  aborts the Workflow (Chaos Mesh then recovers every chaos of it).
- A branch is Serial: a Suspend for the step's ``at`` (its gap), the step's node, then its
  ``after`` followers (each a branch) in Parallel. A step whose effect lasts beyond its
  start without ``for`` (a fault healed at the end of the method) runs beside its
  followers instead, as the local runner starts them when its inject returned.
- Template names are unique DNS-1123 labels; deadlines are Go durations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from chaos.experiment.model import AbortCondition, Experiment, Step, Variant
from chaos.experiment.steps import planned_times
from chaos.k8s import names
from chaos.k8s.chaosmap import (
    CHAOS_FIELDS,
    Compiled,
    Node,
    Plan,
    TaskFactory,
    compile_step,
    pair_downs,
    template_name,
)
from chaos.k8s.stack import K8sStack

Obj = dict[str, object]
STEADY_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Row:
    """One line of the table: which step became which resource."""

    step: str
    action: str
    line: int
    resources: str
    template: str


def branch(
    step: Step, compiled: dict[str, Compiled], followers: dict[str, list[Step]]
) -> Node | None:
    name = template_name(step, "branch")
    kids = [n for n in (branch(f, compiled, followers) for f in followers.get(step.id, [])) if n]
    own = compiled[step.id]
    if own.node is None and not kids:
        return None  # done by another step's node (a start ending a stop's PodChaos)
    parts: list[Node] = []
    if step.at_s > 0:
        parts.append(Node("Suspend", template_name(step, "at"), deadline=step.at_s))
    after = (
        Node("Parallel", template_name(step, "then"), children=kids)
        if len(kids) > 1
        else (kids[0] if kids else None)
    )
    if own.node is None:
        parts += [after] if after else []
    elif own.lasting or after is None:
        parts += [own.node] + ([after] if after else [])
    else:
        parts.append(Node("Parallel", template_name(step, "with"), children=[own.node, *kids]))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else Node("Serial", name, children=parts)


def abort_checks(
    conditions: Sequence[AbortCondition], stack: K8sStack, urls: dict[str, str], deadline: float
) -> tuple[list[Node], list[str]]:
    """Continuous StatusChecks for ``health`` abort conditions; the others are listed back
    (they are evaluated by ``tradechaos k8s watch``, not in the cluster)."""
    nodes: list[Node] = []
    outside: list[str] = []
    for index, condition in enumerate(conditions):
        if condition.kind != "health":
            outside.append(condition.describe())
            continue
        for service in stack.services:
            if service.health.kind != "http" or service.optional:
                continue
            check = {
                "mode": "Continuous",
                "type": "HTTP",
                "intervalSeconds": 1,
                "timeoutSeconds": 1,
                "failureThreshold": max(1, math.ceil(condition.for_s)),
                "http": {
                    "url": urls[service.name],
                    "method": "GET",
                    "criteria": {"statusCode": "200"},
                },
            }
            name = names.dns_label(f"abort{index}-{service.k8s_name}", 50)
            nodes.append(Node("StatusCheck", name, deadline=deadline, body=check))
    return nodes, outside


def _template(node: Node) -> Obj:
    out: Obj = {"name": node.name, "templateType": node.kind}
    if node.deadline is not None:
        out["deadline"] = names.go_duration(max(node.deadline, 0.001))
    if node.kind in ("Serial", "Parallel"):
        out["children"] = [child.name for child in node.children]
    elif node.kind == "Task":
        out["task"] = node.body
    elif node.kind == "StatusCheck":
        out["statusCheck"] = node.body
        out["abortWithStatusCheck"] = True
    elif node.kind in CHAOS_FIELDS:
        out[CHAOS_FIELDS[node.kind]] = node.body
    return out


def flatten(entry: Node) -> list[Obj]:
    """Every template under ``entry`` (entry first, then depth first), names made unique."""
    used: set[str] = set()
    order: list[Node] = []

    def rename(node: Node) -> None:
        base, n = node.name, 1
        while node.name in used:
            n += 1
            node.name = names.dns_label(f"{base}-{n}", 60)
        used.add(node.name)
        order.append(node)
        for child in node.children:
            rename(child)

    rename(entry)
    return [_template(node) for node in order]


def build_workflow(
    experiment: Experiment,
    variant: Variant,
    stack: K8sStack,
    plan: Plan,
    name: str,
    metadata: Obj,
    health_urls: dict[str, str],
) -> tuple[Obj, list[Row], list[str]]:
    """(the Workflow, the table rows, abort conditions left to ``tradechaos k8s watch``)."""
    steps = experiment.steps_for(variant.name)
    plan.times = planned_times(steps)
    pair_downs(steps, plan)
    compiled = {step.id: compile_step(step, plan) for step in steps}
    followers: dict[str, list[Step]] = {}
    for step in steps:
        if step.after is not None:
            followers.setdefault(step.after, []).append(step)
    method: list[Node] = [
        n for n in (branch(s, compiled, followers) for s in steps if s.after is None) if n
    ]
    method.append(Node("Suspend", "method-duration", deadline=experiment.duration_s))
    checks, outside = abort_checks(experiment.abort_when, stack, health_urls, experiment.duration_s)
    steady = Node(
        "Task",
        "steady-state",
        body=plan.task.body("steady-state", ["wait_healthy", "--timeout", f"{STEADY_TIMEOUT_S:g}"]),
    )
    entry = Node(
        "Serial", "run", children=[steady, Node("Parallel", "method", children=method + checks)]
    )
    templates = flatten(entry)  # names made unique first: the rows show the final ones
    rows = []
    for step in steps:
        node = compiled[step.id].node
        resources = "; ".join(compiled[step.id].resources)
        rows.append(Row(step.id, step.action, step.line, resources, node.name if node else "-"))
    workflow: Obj = {
        "apiVersion": "chaos-mesh.org/v1alpha1",
        "kind": "Workflow",
        "metadata": {**metadata, "name": name},
        "spec": {"entry": "run", "templates": templates},
    }
    return workflow, rows, outside


def task_factory(
    stack: K8sStack,
    namespace: str,
    run_id: str,
    seed: int,
    service_urls: dict[str, str],
    link_urls: dict[str, str],
    labels: dict[str, str],
) -> TaskFactory:
    prefix = [
        stack.tradechaos,
        "step",
        "--namespace",
        namespace,
        "--run-id",
        run_id,
        "--seed",
        str(seed),
        *stack.stack_flags,
    ]
    for service, url in service_urls.items():
        prefix += ["--service-url", f"{service}={url}"]
    for link, url in link_urls.items():
        prefix += ["--link-url", f"{link}={url}"]
    return TaskFactory(stack.image, prefix, labels)
