"""Process faults through the Backend protocol: kill, terminate, stop/start, restart,
pause/resume, throttle, full and rolling restarts.

Heal brings back what the fault took away: a killed, terminated or stopped service is
started again (in the stack's start order), a paused one continued, a throttle lifted.
``start`` and ``resume`` are recoveries themselves; their heal has nothing to undo. A
service a fault did not stop is never started by its heal.

Evidence: pids before and after (a restart changes the pid), the process state seen in
``/proc`` (``T`` for a paused process), and whether the backend reports it running.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chaos.errors import FaultError
from chaos.experiment.actions import ActionInfo, StepLike
from chaos.faults.base import FaultContext, RecordedFault, step_target


def _proc_state(pid: int | None) -> str | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            raw = stat.read()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2]


def _seconds(value: object, default: float = 0.0) -> float:
    if value is None:
        return default
    assert isinstance(value, int | float)
    return float(value)


class ProcessFault(RecordedFault):
    """Shared helpers: pids, ordered starts, and the set of services this fault stopped."""

    def __init__(
        self,
        ctx: FaultContext,
        step_id: str,
        action: str,
        target: Sequence[str] | None,
        params: Mapping[str, object],
    ) -> None:
        super().__init__(ctx, step_id, action, target, params)
        self.stopped: list[str] = []  # services this fault took down, to bring back on heal

    @property
    def services(self) -> list[str]:
        return list(self.target or [])

    def pids(self, services: Iterable[str]) -> dict[str, int | None]:
        return {s: self.ctx.backend.pid(s) for s in services}

    def in_start_order(self, services: Iterable[str]) -> list[str]:
        wanted = set(services)
        ordered = [s for s in self.ctx.definition.start_order() if s in wanted]
        return ordered + sorted(wanted - set(ordered))

    def take_down(self, service: str, how: str, grace: float | None = None) -> None:
        backend = self.ctx.backend
        if not backend.is_running(service):
            return
        if service not in self.stopped:
            self.stopped.append(service)
        if how == "kill":
            backend.kill(service)
        else:
            backend.stop(service, grace)

    def start_in_order(
        self,
        services: Sequence[str],
        delays: Mapping[str, object] | None = None,
        gap: float = 0.0,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Start ``services`` in the given order; one with a delay starts no earlier than that
        many seconds after this call; each next one ``gap`` after the previous is healthy."""
        began = time.monotonic()
        started: dict[str, Any] = {}
        for i, service in enumerate(services):
            delay = _seconds((delays or {}).get(service), 0.0)
            self.wait(max(0.0, began + delay - time.monotonic()))
            if i and gap:
                self.wait(gap)
            if not self.ctx.backend.is_running(service):
                self.ctx.backend.start(service, timeout_s=timeout)
            if service in self.stopped:
                self.stopped.remove(service)
            started[service] = {
                "pid": self.ctx.backend.pid(service),
                "after_s": round(time.monotonic() - began, 3),
            }
        return started

    def take_down_all(self, services: Sequence[str]) -> None:
        """Stop ``services`` at once (SIGTERM each, in parallel): a halt of the stack."""
        with ThreadPoolExecutor(max_workers=max(1, len(services))) as pool:
            for future in [pool.submit(self.take_down, s, "term") for s in services]:
                future.result()

    def start_in_waves(self, services: Sequence[str], timeout: float = 30.0) -> dict[str, Any]:
        """Start ``services`` (those not running) in dependency waves: every service whose
        dependencies among them are up starts at once, like the backend's stack start.
        Every service is attempted; ``FaultError`` names those that did not come up."""
        pending = self.in_start_order(services)
        started: dict[str, Any] = {}
        failures: list[str] = []
        spec_of = {spec.name: spec for spec in self.ctx.definition.services}
        while pending:
            wave = [
                s
                for s in pending
                if not any(d in pending for d in (spec_of[s].depends_on if s in spec_of else ()))
            ] or pending[:1]
            with ThreadPoolExecutor(max_workers=len(wave)) as pool:
                futures = {s: pool.submit(self._start_one, s, timeout) for s in wave}
            for service, future in futures.items():
                error = future.exception()
                if error is not None:
                    failures.append(f"{service}: {error}")
                else:
                    started[service] = self.ctx.backend.pid(service)
                    if service in self.stopped:
                        self.stopped.remove(service)
            pending = [s for s in pending if s not in wave]
        if failures:
            raise FaultError(f"{self.action} could not start {'; '.join(failures)}")
        return started

    def _start_one(self, service: str, timeout: float) -> None:
        if not self.ctx.backend.is_running(service):
            self.ctx.backend.start(service, timeout_s=timeout)

    def bring_back(self) -> dict[str, Any]:
        """Start every service this fault stopped that is not running (dependency waves)."""
        timeout = _seconds(self.params.get("timeout"), 30.0)
        return {"started": self.start_in_waves(list(self.stopped), timeout)}


class DownFault(ProcessFault):
    """kill / terminate / stop: the services go down until heal starts them again."""

    def _inject(self) -> None:
        before = self.pids(self.services)
        how = "kill" if self.action == "kill" else "term"
        grace = self.params.get("grace")
        for service in self.services:
            self.take_down(service, how, None if grace is None else _seconds(grace))
        self.evidence(
            pids_before=before,
            running_after={s: self.ctx.backend.is_running(s) for s in self.services},
            signal="SIGKILL" if how == "kill" else "SIGTERM",
        )

    def _heal(self) -> dict[str, Any]:
        return self.bring_back()


class RestartFault(ProcessFault):
    """Stop every target, wait ``downtime``, start them in order ``start_delay`` apart."""

    def _inject(self) -> None:
        before = self.pids(self.services)
        how = str(self.params.get("signal", "term"))
        for service in self.services:
            self.take_down(service, how)
        self.wait(_seconds(self.params.get("downtime")))
        started = self.start_in_order(
            self.services,
            gap=_seconds(self.params.get("start_delay")),
            timeout=_seconds(self.params.get("timeout"), 30.0),
        )
        after = self.pids(self.services)
        self.evidence(
            pids_before=before,
            pids_after=after,
            started=started,
            pid_changed={s: before[s] != after[s] for s in self.services},
        )

    def _heal(self) -> dict[str, Any]:
        return self.bring_back()


class PauseFault(ProcessFault):
    def _inject(self) -> None:
        for service in self.services:
            self.ctx.backend.pause(service)
            self.stopped.append(service)
        self.evidence(
            states={s: _proc_state(self.ctx.backend.pid(s)) for s in self.services},
            signal="SIGSTOP",
        )

    def _heal(self) -> dict[str, Any]:
        for service in list(self.stopped):
            self.ctx.backend.resume(service)
            self.stopped.remove(service)
        return {"states": {s: _proc_state(self.ctx.backend.pid(s)) for s in self.services}}


class ResumeFault(ProcessFault):
    def _inject(self) -> None:
        for service in self.services:
            self.ctx.backend.resume(service)
        self.evidence(
            states={s: _proc_state(self.ctx.backend.pid(s)) for s in self.services},
            signal="SIGCONT",
        )

    def _heal(self) -> dict[str, Any]:
        return {}


class ThrottleFault(ProcessFault):
    def _inject(self) -> None:
        fraction = _seconds(self.params["cpu"])
        for service in self.services:
            self.ctx.backend.throttle(service, fraction)
            self.stopped.append(service)
        self.evidence(cpu_fraction=fraction, pids=self.pids(self.services))

    def _heal(self) -> dict[str, Any]:
        for service in list(self.stopped):
            if self.ctx.backend.is_running(service):
                self.ctx.backend.throttle(service, None)
            self.stopped.remove(service)
        return {"unthrottled": self.services}


class StartFault(ProcessFault):
    """Bring stopped services back in the given order with per-service delays."""

    def _inject(self) -> None:
        delays = self.params.get("delays") or {}
        assert isinstance(delays, Mapping)
        started = self.start_in_order(
            self.services,
            delays,
            _seconds(self.params.get("gap")),
            _seconds(self.params.get("timeout"), 30.0),
        )
        self.evidence(started=started)

    def _heal(self) -> dict[str, Any]:
        return {}


class FullRestartFault(ProcessFault):
    """Stop every running service (reverse start order), wait, start in ``order``."""

    def _inject(self) -> None:
        running = [s for s in self.ctx.definition.start_order() if self.ctx.backend.is_running(s)]
        order_param = self.params.get("order")
        order = [str(s) for s in order_param] if isinstance(order_param, list) else running
        order += [s for s in running if s not in order]
        before = self.pids(running)
        for service in reversed(running):
            self.take_down(service, "term")
        self.evidence(stopped=list(reversed(running)), pids_before=before)
        self.wait(_seconds(self.params.get("downtime")))
        delays = self.params.get("delays") or {}
        assert isinstance(delays, Mapping)
        started = self.start_in_order(
            [s for s in order if s in running],
            delays,
            _seconds(self.params.get("gap")),
            _seconds(self.params.get("timeout"), 30.0),
        )
        self.evidence(started=started, pids_after=self.pids(running))

    def _heal(self) -> dict[str, Any]:
        return self.bring_back()


class RollingRestartFault(ProcessFault):
    """Restart one service at a time (start order unless a target list is given)."""

    def _inject(self) -> None:
        services = self.services or [
            s for s in self.ctx.definition.start_order() if self.ctx.backend.is_running(s)
        ]
        timeline: dict[str, Any] = {}
        for i, service in enumerate(services):
            if i:
                self.wait(_seconds(self.params.get("gap")))
            before = self.ctx.backend.pid(service)
            self.take_down(service, "term")
            self.wait(_seconds(self.params.get("downtime")))
            self.start_in_order([service], timeout=_seconds(self.params.get("timeout"), 30.0))
            timeline[service] = {"pid_before": before, "pid_after": self.ctx.backend.pid(service)}
        self.evidence(restarted=timeline)

    def _heal(self) -> dict[str, Any]:
        return self.bring_back()


_CLASSES: dict[str, type[ProcessFault]] = {
    "kill": DownFault,
    "terminate": DownFault,
    "stop": DownFault,
    "restart": RestartFault,
    "pause": PauseFault,
    "resume": ResumeFault,
    "throttle": ThrottleFault,
    "start": StartFault,
    "full_restart": FullRestartFault,
    "rolling_restart": RollingRestartFault,
}


def build(
    step: StepLike, info: ActionInfo, params: dict[str, object], ctx: FaultContext
) -> RecordedFault:
    return _CLASSES[info.name](ctx, step.id, info.name, step_target(step.target), params)
