"""The process backend (default): every service a local process group, every link a proxy.

Contract (beyond ``chaos.backends.base``)
- ``start_stack``: the proxy first (the embedded ``python -m chaos.proxy`` unless a
  ``toxiproxy_url`` is given) and one proxy per link (listening on 127.0.0.1, port chosen
  by the proxy); setup commands (e.g. initdb) run meanwhile, in the background. Then every
  non-optional service starts as soon as its dependencies are healthy (independent ones
  concurrently): its command, a wait until healthy, its ``after_healthy`` commands once.
  Any failure kills what is in flight, stops everything started so far and raises
  ``StackError`` naming the service, what it waited for, and its log tail.
- Ports: every service (optional ones too) gets a free port at construction, kept across
  restarts, so links and ``{service:NAME}`` stay valid.
- Ownership: every process (one-shot commands too) is spawned by ``chaos.host.processes``
  (own group, killed with the runner) and recorded in the run's ``state.json`` at once.
- ``stop_stack``: throttles end, paused groups continue, services stop in reverse
  dependency order (added services last), the embedded proxy stops (or our proxies are
  deleted from an external Toxiproxy), ``data/`` is removed, the run is marked finished.
  Idempotent; afterwards no process, listener or data dir of the stack is left.
- ``signal`` goes to the service's main process only (like ``docker kill --signal``);
  ``pause``/``resume``/``stop``/``kill`` act on the whole process group.
- ``timings``: seconds per phase (setup, healthy, after_healthy) of each service's latest
  start, and ``proxy.ready``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from chaos.backends.base import Endpoint, ServiceStatus
from chaos.backends.health import NotReady, WaitStrategy, strategy_for, wait_ready
from chaos.backends.placeholders import Placeholders
from chaos.backends.proxyadmin import EmbeddedProxy
from chaos.backends.service import ServiceProcess
from chaos.backends.shared import SharedBackend
from chaos.errors import BadInput, ProxyError, StackError
from chaos.host import ports, processes
from chaos.host.processes import log_tail as log_tail  # re-exported (docker backend)
from chaos.host.runs import RunFolder
from chaos.stackfile.definition import ServiceSpec, StackDefinition

HOST = ports.HOST
SETUP_TIMEOUT_S = 120.0
PROXY_START_TIMEOUT_S = 15.0


class ProcessBackend(SharedBackend):
    """Starts and disturbs a ``StackDefinition`` as local processes; see the module doc."""

    name = "process"

    def __init__(
        self,
        definition: StackDefinition,
        run: RunFolder,
        params: Mapping[str, str] | None = None,
        toxiproxy_url: str | None = None,
        *,
        embedded_proxy: bool = True,
        python: str = sys.executable,
    ) -> None:
        super().__init__(definition, run, params, toxiproxy_url)
        self._external_proxy_url = toxiproxy_url
        self._embedded_wanted = embedded_proxy and toxiproxy_url is None
        self._python = python
        self._services: dict[str, ServiceProcess] = {
            spec.name: ServiceProcess(spec, Endpoint(HOST, ports.free_port()))
            for spec in definition.services
        }
        self._embedded: EmbeddedProxy | None = None
        self._oneshots: set[subprocess.Popen[bytes]] = set()

    # ------------------------------------------------------------------ lifecycle
    def _before_setups(self) -> None:
        if self._embedded_wanted:
            self._spawn_embedded_proxy()

    def _abort(self) -> None:
        """SIGKILL every process this backend started, now (used when a start fails)."""
        with self._lock:
            self._closing = True
            procs = [svc.proc for svc in self._services.values() if svc.proc is not None]
            procs += list(self._oneshots)
        for proc in procs:
            if proc.poll() is None:
                processes.signal_group(proc.pid, signal.SIGKILL)

    def stop_stack(self) -> None:
        """Stop everything (see the module doc). Carries on past a service that fails to
        stop, and raises ``StackError`` naming it only after everything else is done."""
        failures: list[str] = []
        with self._lock:
            for svc in self._services.values():
                svc.stop_duty_cycle()
            for svc in self._services.values():
                svc.continue_group()
            self._stop_in_reverse_order(failures)
            self._started.clear()
            self._stop_proxy()
            for recorded in self.run.state().data_dirs:
                self._remove_data_dir(Path(recorded))
            with contextlib.suppress(OSError):  # absent, or holds something not ours
                self.run.data.rmdir()
            if not self._stopped:
                self.run.mark("finished")
            self._stopped = True
            self._closing = False
        if failures:
            raise StackError("could not stop cleanly: " + "; ".join(failures))

    # ------------------------------------------------------------------ services
    def start(self, service: str, timeout_s: float = 30.0) -> None:
        if self.is_running(service):
            return
        self._launch(service, timeout_s)

    def stop(self, service: str, grace_s: float | None = None) -> None:
        if self._get(service).stop(grace_s):
            self.run.forget_process(service)

    def signal(self, service: str, signum: int) -> None:
        self._get(service).send(signum)

    def pause(self, service: str) -> None:
        self._get(service).pause()

    def resume(self, service: str) -> None:
        self._get(service).resume()

    def throttle(self, service: str, cpu_fraction: float | None) -> None:
        self._get(service).throttle(cpu_fraction)

    def _strategy(self, svc: ServiceProcess) -> WaitStrategy:
        fill = self._placeholders(svc)
        return strategy_for(
            svc.spec.health,
            svc.endpoint,
            self.run.log_path(svc.name),
            svc.log_offset,
            fill.argv(svc.spec.health.command),
            self._service_env(svc, fill),
        )

    def wait_healthy(self, service: str, timeout_s: float = 30.0) -> None:
        svc = self._get(service)
        strategy = self._strategy(svc)
        proc = svc.proc
        try:
            wait_ready(
                strategy,
                timeout_s,
                svc.spec.health.interval_s,
                alive=lambda: proc is not None and proc.poll() is None,
            )
        except NotReady as err:
            raise self._not_healthy(service, err) from None

    def _new_service(self, spec: ServiceSpec) -> ServiceProcess:
        return ServiceProcess(spec, Endpoint(HOST, ports.free_port()), extra=True)

    # ------------------------------------------------------------------ queries
    def is_running(self, service: str) -> bool:
        return self._get(service).running

    def pid(self, service: str) -> int | None:
        return self._get(service).pid

    def status(self) -> list[ServiceStatus]:
        result = []
        for name, svc in list(self._services.items()):
            pid = svc.pid
            healthy = pid is not None and not svc.paused and self._strategy(svc).probe() is None
            result.append(
                ServiceStatus(name, pid is not None, healthy, pid, svc.endpoint, svc.spec.site)
            )
        return result

    def pid_history(self, service: str) -> list[int]:
        """Every pid the service has had in this run, oldest first."""
        return list(self._get(service).history)

    # ------------------------------------------------------------------ internals
    def _get(self, service: str) -> ServiceProcess:
        try:
            return self._services[service]
        except KeyError:
            known = ", ".join(self._services)
            raise BadInput(f"unknown service {service!r} (known: {known})") from None

    def _placeholders(self, svc: ServiceProcess) -> Placeholders:
        return self._placeholders_as(Placeholders, svc, self._python)

    def _service_env(self, svc: ServiceProcess, fill: Placeholders) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env["TRADECHAOS_RUN_ID"] = self.run.run_id
        env.update({key: fill.fill(value) for key, value in svc.spec.env.items()})
        return env

    def _launch(self, service: str, timeout_s: float) -> None:
        svc = self._get(service)
        fill = self._placeholders(svc)
        env = self._service_env(svc, fill)
        phases = self._set_up(service)  # once; done early by start_stack for most services
        started = time.monotonic()
        argv = fill.argv(svc.spec.command)
        cwd = Path(fill.fill(svc.spec.cwd)) if svc.spec.cwd else self.run.path
        log = self.run.log_path(service)
        with self._lock:
            self._refuse_if_closing(service)
            svc.log_offset = log.stat().st_size if log.exists() else 0
            try:
                proc = processes.spawn(argv, log, env, cwd=cwd)
            except OSError as err:
                raise StackError(
                    f"service {service} could not be started ({argv[0]}: {err})"
                ) from None
            svc.attach(proc)
            if service not in self._started:
                self._started.append(service)
            self._stopped = False
        self.run.record_process(service, proc.pid, proc.pid, processes.start_time(proc.pid))
        self._after_start(service, fill, env, phases, started, timeout_s)

    def _run_once(
        self, service: str, argv: Sequence[str], env: Mapping[str, str], kind: str
    ) -> None:
        """Run a one-shot command (setup / after_healthy) with its output in the service log."""
        log = self.run.log_path(service)
        with self._lock:
            self._refuse_if_closing(service)
            try:
                proc = processes.spawn(argv, log, env, cwd=self.run.path)
            except OSError as err:
                raise StackError(
                    f"{kind} command of {service} could not run ({argv[0]}: {err})"
                ) from None
            self._oneshots.add(proc)
        record = f"{service}.{kind}"  # so that a crash during e.g. initdb is swept too
        self.run.record_process(record, proc.pid, proc.pid, processes.start_time(proc.pid))
        try:
            code = proc.wait(timeout=SETUP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            processes.kill(proc)
            self.run.forget_process(record)
            with self._lock:
                self._oneshots.discard(proc)
        if code != 0:
            outcome = f"exited with {code}" if code is not None else "timed out"
            raise StackError(
                f"{kind} command of {service} ({' '.join(argv[:3])} ...) {outcome}; "
                f"last lines of {log}:\n{log_tail(log, 30)}"
            )

    def _refuse_if_closing(self, service: str) -> None:
        if self._closing:
            raise StackError(f"service {service} was not started: the stack is being stopped")

    def _not_healthy(self, service: str, err: NotReady) -> StackError:
        log = self.run.log_path(service)
        return StackError(
            f"service {service} did not become healthy: {err}; last lines of {log}:\n"
            f"{log_tail(log, 30)}"
        )

    def _spawn_embedded_proxy(self) -> None:
        self._embedded = EmbeddedProxy(self._python, self.run.path, self.run.log_path("proxy"))
        proc = self._embedded.spawn()
        self.run.record_proxy(
            "", embedded=True, pid=proc.pid, start_time=processes.start_time(proc.pid)
        )

    def _ready_proxy(self) -> None:
        if self._embedded is not None:
            self._proxy = self._embedded.connect(PROXY_START_TIMEOUT_S)
            proc = self._embedded.proc
            assert proc is not None
            self.run.record_proxy(
                self._proxy.url, True, pid=proc.pid, start_time=processes.start_time(proc.pid)
            )
        elif self._proxy is not None:
            self._proxy.wait_ready(PROXY_START_TIMEOUT_S)
            self.run.record_proxy(self._proxy.url, embedded=False)

    def _stop_proxy(self) -> None:
        if self._proxy is not None and self._embedded is None:
            for name in list(self._links):  # an external Toxiproxy outlives us: tidy it
                with contextlib.suppress(ProxyError):
                    self._proxy.delete(name)
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None
            self._proxy = None
        self._links.clear()
        if self.run.state().proxy is not None:
            self.run.forget_proxy()
