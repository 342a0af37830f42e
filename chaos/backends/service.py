"""One service of the process backend: its current process group and what can be done to it.

Contract
- ``proc`` is the group leader of the service's current process (None before the first
  start); ``history`` lists every pid it has had, oldest first.
- ``stop`` stops the duty cycle, then SIGTERM/grace/SIGKILL the group and reaps it (a paused
  group is continued so it can act on SIGTERM). Idempotent.
- ``pause``/``resume`` SIGSTOP/SIGCONT the group and return once the leader is in (out of)
  the stopped state. A throttle's duty cycle never continues a group paused on purpose.
- Operations that need a running process raise ``StackError`` naming the service.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from dataclasses import dataclass, field

from chaos.backends.base import Endpoint
from chaos.errors import BadInput, StackError
from chaos.host import processes
from chaos.host.processes import DutyCycle
from chaos.stackfile.definition import ServiceSpec


@dataclass
class ServiceProcess:
    spec: ServiceSpec
    endpoint: Endpoint
    extra: bool = False  # added with add_service, not part of the definition
    proc: subprocess.Popen[bytes] | None = None
    set_up: bool = False  # setup commands have run
    initialised: bool = False  # after_healthy commands have run
    paused: bool = False
    duty_cycle: DutyCycle | None = None
    history: list[int] = field(default_factory=list)
    log_offset: int = 0  # where the latest start began writing to the log (log health)
    _signal_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def attach(self, proc: subprocess.Popen[bytes]) -> None:
        """``proc`` is now the service's process."""
        self.proc = proc
        self.paused = False
        self.history.append(proc.pid)

    def _leader(self, verb: str) -> int:
        if self.proc is None or self.proc.poll() is not None:
            raise StackError(f"cannot {verb} {self.name}: it is not running")
        return self.proc.pid

    def stop(self, grace_s: float | None = None) -> bool:
        """Stop the group (see module doc); True if there was a process to stop."""
        self.stop_duty_cycle()
        self.paused = False
        if self.proc is None:
            return False
        grace = self.spec.stop_grace_s if grace_s is None else grace_s
        stop_signal = getattr(signal, f"SIG{self.spec.stop_signal}", signal.SIGTERM)
        processes.terminate(self.proc, grace, stop_signal=stop_signal)
        return True

    def send(self, signum: int) -> None:
        """Send ``signum`` to the main process only (like ``docker kill --signal``)."""
        os.kill(self._leader(f"send signal {signum} to"), signum)

    def pause(self) -> None:
        leader = self._leader("pause")
        with self._signal_lock:
            self.paused = True
            processes.signal_group(leader, signal.SIGSTOP)
        if not processes.wait_stopped(leader, stopped=True):
            raise StackError(f"{self.name} did not stop on SIGSTOP within 2 s")

    def resume(self) -> None:
        with self._signal_lock:
            self.paused = False
            leader = self.pid
            if leader is not None:
                processes.signal_group(leader, signal.SIGCONT)
        if leader is not None and self.duty_cycle is None:
            processes.wait_stopped(leader, stopped=False)

    def continue_group(self) -> None:
        """SIGCONT the group and forget a pause (before a stop)."""
        with self._signal_lock:
            self.paused = False
            if self.pid is not None:
                processes.signal_group(self.pid, signal.SIGCONT)

    def throttle(self, cpu_fraction: float | None) -> None:
        """Limit the group to ``cpu_fraction`` of a CPU (0 < f <= 1); None or 1 lifts it."""
        if cpu_fraction is not None and not 0.0 < cpu_fraction <= 1.0:
            raise BadInput(
                f"throttle {self.name}: cpu_fraction must be in (0, 1], got {cpu_fraction}"
            )
        self.stop_duty_cycle()
        if cpu_fraction is None or cpu_fraction == 1.0:
            return
        leader = self._leader("throttle")
        self.duty_cycle = DutyCycle(leader, cpu_fraction, self._signal_lock, lambda: self.paused)
        self.duty_cycle.start()

    def stop_duty_cycle(self) -> None:
        """End a throttle; the group runs again unless it is paused on purpose."""
        if self.duty_cycle is not None:
            self.duty_cycle.stop()
            self.duty_cycle = None
            leader = self.pid
            if not self.paused and leader is not None:
                processes.wait_stopped(leader, stopped=False)
