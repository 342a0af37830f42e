"""One experiment step -> the Chaos Mesh Workflow node that does it (docs/kubernetes.md).

Contract
- ``compile_step(step, plan)`` returns a ``Compiled``: the ``Node`` (a chaos template, a
  Task, a Suspend or a Serial/Parallel group of them; None when the step is done by another
  step's node, e.g. a ``start`` that ends an earlier ``stop``'s PodChaos), what it became
  (``resources``, for the table), and ``lasting``: True when the node ends when the step
  ends (so ``after`` steps follow it), False when the step ends as it starts and its
  effect lasts on (its followers run beside it).
- A step that Chaos Mesh cannot express raises ``CannotExpress`` naming the step and why.
- Every selector names the run's namespace and its run label: no chaos reaches another
  run's pods.
- Durations: a fault with ``for`` lasts that long; without, until the method ends
  (``plan.duration_s`` minus the step's planned start); a stop/kill/terminate (pause)
  lasts until the ``start`` (``resume``) that brings the service back, when one follows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos.errors import BadInput
from chaos.experiment.model import Step
from chaos.faults import registry
from chaos.faults.network import links_between, resolve_links
from chaos.k8s import names
from chaos.k8s.manifests import Target, selector
from chaos.k8s.stack import K8sStack

Obj = dict[str, Any]
CHAOS_FIELDS = {
    "NetworkChaos": "networkChaos",
    "PodChaos": "podChaos",
    "StressChaos": "stressChaos",
}
TASK_ACTIONS = ("trading_mode", "db_upgrade", "feed_fault", "price_move", "aggressive_orders")
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


def _parsed(step: Step, plan: Plan) -> dict[str, object]:
    from chaos.faults.base import known_names

    return registry.parse_params(step.action, step.params, known_names(plan.stack.definition))


def _seconds(value: object, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) else default


# --- network ----------------------------------------------------------------------


def link_spec(plan: Plan, step: Step, action: str, params: Mapping[str, object], link: str) -> Obj:
    """The NetworkChaos spec of one toxic on one link (client pods -> target server pods)."""
    if _seconds(params.get("toxicity"), 1.0) != 1.0:
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
        delay = {"latency": names.go_duration(_seconds(params["latency"]))}
        if _seconds(params.get("jitter")) > 0:
            delay["jitter"] = names.go_duration(_seconds(params["jitter"]))
        return {"action": "delay", "delay": delay, **spec}
    if action == "bandwidth":
        rate = max(1, int(_seconds(params["rate"]) * 8))
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
    params = _parsed(step, plan)
    node = network(
        step, plan, step.action, params, step.targets, span(step, plan), template_name(step)
    )
    kind = "partition" if step.action in ("timeout", "reset_peer", "down") else step.action
    kind = {"latency": "delay"}.get(kind, kind)
    return Compiled(node, (f"NetworkChaos {kind}",), lasting=step.for_s is not None)


def _partition(step: Step, plan: Plan) -> Compiled:
    params = _parsed(step, plan)
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
    params = _parsed(step, plan)
    inner = dict(params["fault"])  # type: ignore[call-overload]
    action = str(inner.pop("action"))
    inner_target = inner.pop("target", None)
    targets = list(step.targets) or (
        [inner_target] if isinstance(inner_target, str) else list(inner_target or [])
    )
    inner_params = registry.parse_params(action, inner)
    period, bad_fraction = _seconds(params["period"]), _seconds(params["bad_fraction"], 0.5)
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


# --- processes ---------------------------------------------------------------------


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
    params = _parsed(step, plan)
    downtime, gap = _seconds(params.get("downtime")), _seconds(params.get("start_delay"))
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
    params = _parsed(step, plan)
    services = list(step.targets) or list(plan.stack.definition.start_order())
    downtime, gap = _seconds(params.get("downtime")), _seconds(params.get("gap"))
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
    params = _parsed(step, plan)
    order = [str(s) for s in params.get("order") or ()] or list(plan.stack.definition.start_order())  # type: ignore[attr-defined]
    order += [s for s in plan.stack.definition.start_order() if s not in order]
    delays = params.get("delays") or {}
    assert isinstance(delays, Mapping)
    downtime, gap = _seconds(params.get("downtime")), _seconds(params.get("gap"))
    name = template_name(step)
    leaves = [
        pod_chaos(
            plan,
            "pod-failure",
            [s],
            f"{name}-{i}",
            max(INSTANT_S, downtime + max(_seconds(delays.get(s)), gap * i)),
        )
        for i, s in enumerate(order)
    ]
    return Compiled(
        Node("Parallel", name, children=leaves),
        ("PodChaos pod-failure per service (Parallel)",),
        lasting=True,
    )


def _throttle(step: Step, plan: Plan) -> Compiled:
    params = _parsed(step, plan)
    load = round((1.0 - _seconds(params["cpu"])) * 100)
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
    params = _parsed(step, plan)
    site = step.targets[0]
    if not plan.stack.site_services(site):
        raise CannotExpress(step, plan.path, f"site {site!r} has no service")
    steps = max(1, int(_seconds(params["steps"], 5)))
    ramp, hold = _seconds(params["ramp"]), _seconds(params.get("hold"))
    max_latency, min_cpu = _seconds(params["max_latency"]), _seconds(params["min_cpu"], 1.0)
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
    down = _seconds(params.get("recover_after"), 0.0) or max(
        INSTANT_S, plan.duration_s - loss_start
    )
    loss = pod_chaos(plan, "pod-failure", plan.stack.site_services(site), f"{name}-loss", down)
    loss.body["selector"] = site_pods(plan, site)
    children.append(loss)
    what = (
        "NetworkChaos delay + StressChaos cpu per ramp step (Serial)",
        "PodChaos pod-failure of the site",
    )
    return Compiled(Node("Serial", name, children=children), what, lasting=True)


# --- steps Chaos Mesh cannot do: Tasks running `tradechaos step` ----------------------


def task_argv(step: Step, hold: float) -> list[str]:
    argv = [step.action, "--id", step.id]
    for target in step.targets:
        argv += ["--target", target]
    for key, value in step.params.items():
        import json

        argv += ["--param", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    if hold > 0:
        argv += ["--hold", f"{hold:g}"]
    return argv


def _task(step: Step, plan: Plan) -> Compiled:
    hold = (
        step.for_s
        if step.for_s is not None
        else (remaining(step, plan) if step.action in HOLD_TO_END else 0.0)
    )
    name = template_name(step)
    node = Node("Task", name, body=plan.task.body(name, task_argv(step, hold)))
    lasting = step.for_s is not None or step.action not in HOLD_TO_END
    return Compiled(node, ("Task: tradechaos step " + step.action,), lasting=lasting)


def _ended_elsewhere(step: Step, plan: Plan) -> Compiled:
    if step.id not in plan.ended_by:
        what = "stopped" if step.action == "start" else "paused"
        raise CannotExpress(
            step,
            plan.path,
            f"{step.action} of a service no earlier step {what}: "
            "on Kubernetes every service runs from the start",
        )
    leader = plan.ended_by[step.id]
    return Compiled(None, (f"ends {leader}'s chaos (its deadline)",), lasting=True)


_COMPILERS = {
    "latency": _network_step,
    "bandwidth": _network_step,
    "timeout": _network_step,
    "reset_peer": _network_step,
    "slicer": _network_step,
    "limit_data": _network_step,
    "slow_close": _network_step,
    "down": _network_step,
    "partition": _partition,
    "flap": _flap,
    "kill": _down,
    "terminate": _down,
    "stop": _down,
    "pause": _down,
    "restart": _restart,
    "rolling_restart": _rolling,
    "full_restart": _full_restart,
    "throttle": _throttle,
    "start": _ended_elsewhere,
    "resume": _ended_elsewhere,
    "node_loss": _node_loss,
    **{action: _task for action in TASK_ACTIONS},
}


def pair_downs(steps: Sequence[Step], plan: Plan) -> None:
    """Record in ``plan`` which ``start`` (``resume``) ends which earlier down (pause) step,
    and each service's planned end."""
    for later in steps:
        if later.action not in ("start", "resume"):
            continue
        wanted = ("pause",) if later.action == "resume" else DOWN_ACTIONS
        params = later.params.get("delays") or {}
        gap = _seconds(_seconds_of(later.params.get("gap")))
        begin = plan.times[later.id][0]
        for i, service in enumerate(later.targets):
            leader = next(
                (
                    s
                    for s in reversed(steps[: steps.index(later)])
                    if s.action in wanted and service in s.targets and s.for_s is None
                ),
                None,
            )
            if leader is None:
                continue
            delay = _seconds_of(params.get(service)) if isinstance(params, Mapping) else 0.0
            plan.ends.setdefault(leader.id, {})[service] = begin + max(delay, gap * i)
            plan.ended_by[later.id] = leader.id


def _seconds_of(value: object) -> float:
    """A duration as written in a step (``3s``, ``700ms``, a number) in seconds."""
    if value is None:
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    from chaos.experiment.durations import parse_duration

    return float(parse_duration(str(value)))


def compile_step(step: Step, plan: Plan) -> Compiled:
    compiler = _COMPILERS.get(step.action)
    if compiler is None:
        raise CannotExpress(step, plan.path, "no Kubernetes mapping for this action")
    try:
        return compiler(step, plan)
    except registry.StepError as err:
        raise CannotExpress(step, plan.path, f"{err.field}: {err.problem}") from None
