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

import json
from collections.abc import Mapping, Sequence

from chaos.experiment import actions as registry
from chaos.experiment.model import Step
from chaos.k8s.netchaos import _flap, _network_step, _partition
from chaos.k8s.podchaos import _down, _full_restart, _node_loss, _restart, _rolling, _throttle
from chaos.k8s.templates import (
    CHAOS_FIELDS,
    DOWN_ACTIONS,
    HOLD_TO_END,
    TASK_ACTIONS,
    CannotExpress,
    Compiled,
    Node,
    Plan,
    TaskFactory,
    remaining,
    seconds,
    template_name,
)

__all__ = [
    "CHAOS_FIELDS",
    "CannotExpress",
    "Compiled",
    "Node",
    "Plan",
    "TaskFactory",
    "compile_step",
    "pair_downs",
    "template_name",
]


# --- steps Chaos Mesh cannot do: Tasks running `tradechaos step` ----------------------


def task_argv(step: Step, hold: float) -> list[str]:
    argv = [step.action, "--id", step.id]
    for target in step.targets:
        argv += ["--target", target]
    for key, value in step.params.items():
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
        gap = seconds(_seconds_of(later.params.get("gap")))
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
    from chaos.files.durations import parse_duration

    return float(parse_duration(str(value)))


def compile_step(step: Step, plan: Plan) -> Compiled:
    compiler = _COMPILERS.get(step.action)
    if compiler is None:
        raise CannotExpress(step, plan.path, "no Kubernetes mapping for this action")
    try:
        return compiler(step, plan)
    except registry.StepError as err:
        raise CannotExpress(step, plan.path, f"{err.field}: {err.problem}") from None
