"""Process and node faults -> PodChaos, StressChaos, NetworkChaos (docs/kubernetes.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from chaos.experiment.model import Step
from chaos.k8s import names
from chaos.k8s.templates import (
    INSTANT_S,
    CannotExpress,
    Compiled,
    Node,
    Obj,
    Plan,
    chaos,
    group,
    others,
    parsed,
    pods,
    seconds,
    site_pods,
    span,
    template_name,
)


def pod_chaos(
    plan: Plan,
    action: str,
    services: Sequence[str],
    name: str,
    deadline: float,
    grace: int | None = None,
    containers: bool = False,
) -> Node:
    spec: Obj = {"action": action, "mode": "all", "selector": pods(plan, services)}
    if grace is not None:
        spec["gracePeriod"] = grace
    if containers:
        spec["containerNames"] = ["service"]
    return chaos("PodChaos", name, spec, deadline)


def _down(step: Step, plan: Plan) -> Compiled:
    """stop/kill/terminate (and pause): down until ``for``, the matching start, or the end."""
    ends = plan.ends.get(step.id, {})
    default_end = span(step, plan)
    start = plan.times[step.id][0]
    by_end: dict[float, list[str]] = {}
    for service in step.targets:
        end = ends.get(service)
        length = (
            default_end if end is None or step.for_s is not None else max(INSTANT_S, end - start)
        )
        by_end.setdefault(round(length, 3), []).append(service)
    name = template_name(step)
    leaves = []
    for i, (length, services) in enumerate(sorted(by_end.items())):
        leaf_name = f"{name}-{i}" if len(by_end) > 1 else name
        if step.action == "pause":
            spec = {
                "action": "partition",
                "mode": "all",
                "selector": pods(plan, services),
                "direction": "both",
                "target": {"selector": others(plan, services), "mode": "all"},
            }
            leaves.append(chaos("NetworkChaos", leaf_name, spec, length))
        else:
            leaves.append(pod_chaos(plan, "pod-failure", services, leaf_name, length))
    node = group("Parallel", name, leaves)
    what = (
        "NetworkChaos partition (isolated, not frozen)"
        if step.action == "pause"
        else "PodChaos pod-failure"
    )
    lasting = step.for_s is not None
    return Compiled(node, (what,), lasting=lasting)


def _restart_one(
    plan: Plan, params: Mapping[str, object], services: Sequence[str], name: str, downtime: float
) -> tuple[Node, str]:
    if downtime > 0:
        return pod_chaos(plan, "pod-failure", services, name, downtime), "PodChaos pod-failure"
    if params.get("signal") == "kill":
        return pod_chaos(
            plan, "container-kill", services, name, INSTANT_S, containers=True
        ), "PodChaos container-kill"
    grace = max(math.ceil(plan.stack.service(s).stop_grace_s) for s in services)
    return pod_chaos(plan, "pod-kill", services, name, INSTANT_S, grace=grace), "PodChaos pod-kill"


def _restart(step: Step, plan: Plan) -> Compiled:
    params = parsed(step, plan)
    downtime, gap = seconds(params.get("downtime")), seconds(params.get("start_delay"))
    name = template_name(step)
    if gap <= 0 or len(step.targets) == 1:
        node, what = _restart_one(plan, params, step.targets, name, downtime)
        return Compiled(node, (what,), lasting=True)
    leaves = []
    for i, service in enumerate(step.targets):
        leaf, what = _restart_one(plan, params, [service], f"{name}-{i}", downtime + gap * i)
        leaves.append(leaf)
    return Compiled(Node("Parallel", name, children=leaves), (what,), lasting=True)


def _rolling(step: Step, plan: Plan) -> Compiled:
    params = parsed(step, plan)
    services = list(step.targets) or list(plan.stack.definition.start_order())
    downtime, gap = seconds(params.get("downtime")), seconds(params.get("gap"))
    name = template_name(step)
    children: list[Node] = []
    what = ""
    for i, service in enumerate(services):
        if i and gap > 0:
            children.append(Node("Suspend", f"{name}-gap{i}", deadline=gap))
        leaf, what = _restart_one(plan, {"signal": "term"}, [service], f"{name}-{i}", downtime)
        children.append(leaf)
    return Compiled(
        group("Serial", name, children),
        (f"{what} per service (Serial, Suspend between)",),
        lasting=True,
    )


def _full_restart(step: Step, plan: Plan) -> Compiled:
    params = parsed(step, plan)
    order = [str(s) for s in params.get("order") or ()] or list(plan.stack.definition.start_order())  # type: ignore[attr-defined]
    order += [s for s in plan.stack.definition.start_order() if s not in order]
    delays = params.get("delays") or {}
    assert isinstance(delays, Mapping)
    downtime, gap = seconds(params.get("downtime")), seconds(params.get("gap"))
    name = template_name(step)
    leaves = [
        pod_chaos(
            plan,
            "pod-failure",
            [s],
            f"{name}-{i}",
            max(INSTANT_S, downtime + max(seconds(delays.get(s)), gap * i)),
        )
        for i, s in enumerate(order)
    ]
    return Compiled(
        Node("Parallel", name, children=leaves),
        ("PodChaos pod-failure per service (Parallel)",),
        lasting=True,
    )


def _throttle(step: Step, plan: Plan) -> Compiled:
    params = parsed(step, plan)
    load = round((1.0 - seconds(params["cpu"])) * 100)
    name = template_name(step)
    if load <= 0:
        return Compiled(
            Node("Suspend", name, deadline=span(step, plan)),
            ("nothing (cpu 1.0 is no throttle)",),
            lasting=step.for_s is not None,
        )
    return Compiled(
        stress(plan, pods(plan, step.targets), load, name, span(step, plan)),
        (f"StressChaos cpu load {load}%",),
        lasting=step.for_s is not None,
    )


def stress(plan: Plan, select: Obj, load: int, name: str, deadline: float) -> Node:
    spec = {"mode": "all", "selector": select, "stressors": {"cpu": {"workers": 1, "load": load}}}
    return chaos("StressChaos", name, spec, deadline)


def _node_loss(step: Step, plan: Plan) -> Compiled:
    params = parsed(step, plan)
    site = step.targets[0]
    if not plan.stack.site_services(site):
        raise CannotExpress(step, plan.path, f"site {site!r} has no service")
    steps = max(1, int(seconds(params["steps"], 5)))
    ramp, hold = seconds(params["ramp"]), seconds(params.get("hold"))
    max_latency, min_cpu = seconds(params["max_latency"]), seconds(params["min_cpu"], 1.0)
    name = template_name(step)
    children: list[Node] = []

    def degraded(level: float, label: str, deadline: float) -> Node:
        delay = {
            "action": "delay",
            "mode": "all",
            "selector": site_pods(plan, site),
            "direction": "to",
        }
        delay["delay"] = {"latency": names.go_duration(max_latency * level)}
        parts = [chaos("NetworkChaos", f"{name}-{label}-net", delay, deadline)]
        load = round((1.0 - min_cpu) * level * 100)
        if load > 0:
            parts.append(stress(plan, site_pods(plan, site), load, f"{name}-{label}-cpu", deadline))
        return group("Parallel", f"{name}-{label}", parts)

    for k in range(1, steps + 1):
        children.append(degraded(k / steps, f"ramp{k}", max(0.001, ramp / steps)))
    if hold > 0:
        children.append(degraded(1.0, "hold", hold))
    loss_start = plan.times[step.id][0] + ramp + hold
    down = seconds(params.get("recover_after"), 0.0) or max(INSTANT_S, plan.duration_s - loss_start)
    loss = pod_chaos(plan, "pod-failure", plan.stack.site_services(site), f"{name}-loss", down)
    loss.body["selector"] = site_pods(plan, site)
    children.append(loss)
    what = (
        "NetworkChaos delay + StressChaos cpu per ramp step (Serial)",
        "PodChaos pod-failure of the site",
    )
    return Compiled(Node("Serial", name, children=children), what, lasting=True)
