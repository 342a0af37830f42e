"""Cooling-style node loss: a site degrades over a ramp, then is lost abruptly.

During the ramp (``steps`` steps over ``ramp`` seconds) every link of the site's services
gets a rising latency (up to ``max_latency``, both directions) and each of its processes is
throttled down to ``min_cpu`` of a CPU; it stays that degraded for ``hold``. Then every
process of the site is killed (SIGKILL) and every link of the site is disabled. With
``recover_after`` the site comes back that long after the loss (inject returns then);
otherwise at heal.

Evidence: the ramp's steps, the pids killed, that no process of the site runs after the
loss, and that every other service kept its pid (exactly the site's processes died).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaos.errors import FaultError
from chaos.experiment.actions import ActionInfo, StepLike
from chaos.faults.base import FaultContext, RecordedFault, step_target
from chaos.faults.network import LinkOp, resolve_links
from chaos.faults.process import ProcessFault, _seconds


class NodeLoss(ProcessFault):
    def __init__(
        self, ctx: FaultContext, step_id: str, site: str, params: Mapping[str, object]
    ) -> None:
        super().__init__(ctx, step_id, "node_loss", [site], params)
        self.site = site
        self.members = [s for s in ctx.definition.site_services(site)]
        self.links = resolve_links(ctx.definition, self.members) if self.members else []
        tag = f"tc-{step_id}"
        self.latency = LinkOp(
            ctx.proxy,
            self.links,
            "latency",
            {"latency": 0.0, "jitter": 0.0, "direction": "both"},
            tag,
        )
        self.down = LinkOp(ctx.proxy, self.links, "down", {}, tag)
        self.throttled: list[str] = []

    def _inject(self) -> None:
        backend = self.ctx.backend
        victims = [s for s in self.members if backend.is_running(s)]
        others = [s for s in self.ctx.definition.service_names if s not in self.members]
        others_before = self.pids(s for s in others if backend.is_running(s))
        steps = int(_seconds(self.params["steps"]))
        ramp = _seconds(self.params["ramp"])
        max_latency = _seconds(self.params["max_latency"])
        min_cpu = _seconds(self.params["min_cpu"])
        for k in range(1, steps + 1):
            level = k / steps
            self.latency.remove()
            self.latency.params["latency"] = max_latency * level
            self.latency.apply()
            cpu = 1.0 - (1.0 - min_cpu) * level
            for service in victims:
                if backend.is_running(service):
                    backend.throttle(service, cpu)
                    if service not in self.throttled:
                        self.throttled.append(service)
            self.evidence(
                ramp_step=k,
                latency_ms=round(max_latency * level * 1000),
                cpu_fraction=round(cpu, 3),
            )
            self.wait(ramp / steps)
        self.wait(_seconds(self.params.get("hold")))
        killed = self.pids(victims)
        for service in victims:
            self.take_down(service, "kill")
        self.down.apply()
        others_after = self.pids(others_before)
        self.evidence(
            lost=True,
            killed=killed,
            links_down=self.links,
            site_running=[s for s in self.members if backend.is_running(s)],
            others_unchanged=others_before == others_after,
        )
        recover_after = self.params.get("recover_after")
        if recover_after is not None:
            self.wait(_seconds(recover_after))
            self.evidence(recovered=self._recover())

    def _recover(self) -> dict[str, Any]:
        problems = self.latency.remove() + self.down.remove()
        started = self.bring_back()
        for service in list(self.throttled):
            try:
                if self.ctx.backend.is_running(service):
                    self.ctx.backend.throttle(service, None)
                self.throttled.remove(service)
            except Exception as err:
                problems.append(f"{service}: {err}")
        if problems:
            raise FaultError(f"heal of node_loss left the site dirty: {'; '.join(problems)}")
        return started

    def _heal(self) -> dict[str, Any]:
        return self._recover()


def build(
    step: StepLike, info: ActionInfo, params: dict[str, object], ctx: FaultContext
) -> RecordedFault:
    targets = step_target(step.target) or []
    return NodeLoss(ctx, step.id, targets[0], params)
