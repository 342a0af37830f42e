"""Network faults -> NetworkChaos (docs/kubernetes.md: the step table)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from chaos.experiment import actions as registry
from chaos.experiment.model import Step
from chaos.faults.network import links_between, resolve_links
from chaos.k8s import names
from chaos.k8s.templates import (
    _DIRECTIONS,
    BANDWIDTH_BUFFER,
    BANDWIDTH_LIMIT,
    CannotExpress,
    Compiled,
    Node,
    Obj,
    Plan,
    chaos,
    group,
    parsed,
    pods,
    seconds,
    span,
    template_name,
)


def link_spec(plan: Plan, step: Step, action: str, params: Mapping[str, object], link: str) -> Obj:
    """The NetworkChaos spec of one toxic on one link (client pods -> target server pods)."""
    if seconds(params.get("toxicity"), 1.0) != 1.0:
        raise CannotExpress(
            step,
            plan.path,
            "toxicity below 1 (a share of connections) has no Chaos Mesh equivalent",
        )
    spec_link = plan.stack.link(link)
    spec: Obj = {
        "selector": pods(plan, [spec_link.client]),
        "mode": "all",
        "direction": _DIRECTIONS[str(params.get("direction", "both"))],
        "target": {"selector": pods(plan, [spec_link.server]), "mode": "all"},
    }
    if action == "latency":
        delay = {"latency": names.go_duration(seconds(params["latency"]))}
        if seconds(params.get("jitter")) > 0:
            delay["jitter"] = names.go_duration(seconds(params["jitter"]))
        return {"action": "delay", "delay": delay, **spec}
    if action == "bandwidth":
        rate = max(1, int(seconds(params["rate"]) * 8))
        bandwidth = {"rate": f"{rate}kbps", "limit": BANDWIDTH_LIMIT, "buffer": BANDWIDTH_BUFFER}
        return {"action": "bandwidth", "bandwidth": bandwidth, **spec}
    if action in ("timeout", "reset_peer", "down"):
        return {"action": "partition", **spec}
    raise CannotExpress(
        step,
        plan.path,
        f"the {action} toxic has no Chaos Mesh equivalent "
        "(NetworkChaos has delay, loss, duplicate, corrupt, partition, bandwidth)",
    )


def network(
    step: Step,
    plan: Plan,
    action: str,
    params: Mapping[str, object],
    targets: Sequence[str],
    deadline: float,
    name: str,
) -> Node:
    links = resolve_links(plan.stack.definition, list(targets))
    leaves = [
        chaos(
            "NetworkChaos",
            f"{name}-{i}" if len(links) > 1 else name,
            link_spec(plan, step, action, params, link),
            deadline,
        )
        for i, link in enumerate(links)
    ]
    return group("Parallel", f"{name}-links", leaves)


def _network_step(step: Step, plan: Plan) -> Compiled:
    params = parsed(step, plan)
    node = network(
        step, plan, step.action, params, step.targets, span(step, plan), template_name(step)
    )
    kind = "partition" if step.action in ("timeout", "reset_peer", "down") else step.action
    kind = {"latency": "delay"}.get(kind, kind)
    return Compiled(node, (f"NetworkChaos {kind}",), lasting=step.for_s is not None)


def _partition(step: Step, plan: Plan) -> Compiled:
    params = parsed(step, plan)
    left = [str(s) for s in params["between"]]  # type: ignore[attr-defined]
    right = [str(s) for s in params["and"]]  # type: ignore[attr-defined]
    if not links_between(plan.stack.definition, left, right):
        raise CannotExpress(step, plan.path, "no link joins the two sides")
    spec = {
        "action": "partition",
        "selector": pods(plan, left),
        "mode": "all",
        "direction": "both",
        "target": {"selector": pods(plan, right), "mode": "all"},
    }
    node = chaos("NetworkChaos", template_name(step), spec, span(step, plan))
    return Compiled(node, ("NetworkChaos partition",), lasting=step.for_s is not None)


def _flap(step: Step, plan: Plan) -> Compiled:
    params = parsed(step, plan)
    inner = dict(params["fault"])  # type: ignore[call-overload]
    action = str(inner.pop("action"))
    inner_target = inner.pop("target", None)
    targets = list(step.targets) or (
        [inner_target] if isinstance(inner_target, str) else list(inner_target or [])
    )
    inner_params = registry.parse_params(action, inner)
    period, bad_fraction = seconds(params["period"]), seconds(params["bad_fraction"], 0.5)
    total = span(step, plan)
    bad, good = period * bad_fraction, period * (1 - bad_fraction)
    if bad < 0.001:
        raise CannotExpress(step, plan.path, "a flap with no bad time does nothing")
    cycles = max(1, math.ceil(total / period - 1e-9))
    children: list[Node] = []
    name = template_name(step)
    for cycle in range(cycles):
        left = total - cycle * period
        if action == "partition":
            sub = _partition(
                Step(step.id, step.index, action, None, inner, line=step.line), plan
            ).node
            assert sub is not None
            sub.name, sub.deadline = f"{name}-bad{cycle}", min(bad, left)
        else:
            sub = network(
                step, plan, action, inner_params, targets, min(bad, left), f"{name}-bad{cycle}"
            )
        children.append(sub)
        if left - bad > 0.001 and good > 0.001:
            children.append(Node("Suspend", f"{name}-good{cycle}", deadline=min(good, left - bad)))
    kind = (
        "partition"
        if action in ("timeout", "reset_peer", "down", "partition")
        else {"latency": "delay"}.get(action, action)
    )
    return Compiled(
        Node("Serial", name, children=children),
        (f"NetworkChaos {kind} x{cycles} (Serial, Suspend between)",),
        lasting=True,
    )
