"""The docker backend: one container per service, host networking, every link a proxy.

Contract (beyond ``chaos.backends.base``)
- ``start_stack`` makes the stack image current (``chaos.backends.images``; a rebuild
  after a source change takes seconds), starts the proxy (the embedded
  ``python -m chaos.proxy`` in a container, or the external Toxiproxy at
  ``toxiproxy_url``), one proxy per link, then each non-optional service in
  ``definition.start_order()``: setup commands once (one-shot containers), the service
  container, a wait until healthy, ``after_healthy`` commands once. Any failure stops
  everything started so far and raises ``StackError`` with the log tail.
- Every container runs with ``network_mode=host`` (services listen on 127.0.0.1 only),
  under ``docker-init`` (signals reach the service), is labelled ``tradechaos.run=<run_id>``
  and ``tradechaos.service=<name>``, and is recorded in ``state.json`` before it starts.
  The run folder is bind-mounted at the same path, so ``{run_dir}``/``{data_dir}``, port
  files and ``logs/<service>.log`` (written by the container, live) mean the same inside
  and outside. ``data/.tmp`` is every container's ``/tmp``, shared within the run.
- Ports are chosen on the host at construction, below the kernel's ephemeral range (a
  container takes a while to bind its port), and kept across restarts.
- ``stop`` = docker stop (SIGTERM, grace, SIGKILL) then remove; ``kill`` = SIGKILL then
  remove; ``pause``/``resume`` = the cgroup freezer; ``throttle`` = CFS quota
  (``cpu_quota``/``cpu_period``). ``pid`` is the host pid of the container's init.
- ``stop_stack`` is idempotent; afterwards no container labelled with the run id is left.
- ``sweep_containers(run_id)`` (from ``chaos.backends.containers``, re-exported here)
  removes the leftovers of a run (or of every run) by label.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.backends import images
from chaos.backends.base import Endpoint, ServiceStatus
from chaos.backends.containers import (
    ROLE_LABEL,
    RUN_LABEL,
    SERVICE_LABEL,
    call,
    container_state,
    docker_errors,
    remove_container,
    service_port,
    start_container,
    sweep_containers,
)
from chaos.backends.health import NotReady, WaitStrategy, strategy_for, wait_ready
from chaos.backends.images import uses_tradechaos_image
from chaos.backends.placeholders import Placeholders
from chaos.backends.proxyadmin import ProxyAdmin
from chaos.backends.shared import SharedBackend
from chaos.errors import BadInput, InfrastructureError, ProxyError, StackError
from chaos.host import ports
from chaos.host.processes import log_tail
from chaos.host.runs import RunFolder
from chaos.stackfile.definition import ServiceSpec, StackDefinition

HOST = ports.HOST
SETUP_TIMEOUT_S = 120.0
PROXY_START_TIMEOUT_S = 30.0
CPU_PERIOD_US = 100_000
PROXY = "proxy"
TMP_DIR = ".tmp"  # under the run's data/: mounted as /tmp in every container of the run


__all__ = ["RUN_LABEL", "SERVICE_LABEL", "DockerBackend", "sweep_containers"]


class _ContainerPlaceholders(Placeholders):
    """Placeholders as seen inside a container: the tradechaos image has its own Python and
    pgserver binaries; another image's Python is its ``python3``."""

    def _simple(self, name: str) -> str:
        if name == "pg_bin":
            return images.CONTAINER_PG_BIN
        return super()._simple(name)


@dataclass
class _Service:
    spec: ServiceSpec
    endpoint: Endpoint
    container: Any = None  # docker.models.containers.Container
    launches: int = 0
    set_up: bool = False
    initialised: bool = False
    extra: bool = False  # added with add_service
    log_offset: int = 0  # where the latest start began writing to the log (log health)


@dataclass(frozen=True)
class _ExecWait:
    """Ready when ``argv`` exits 0 inside the service's container (``docker exec``)."""

    container: Any
    argv: Sequence[str]

    @property
    def description(self) -> str:
        return f"`{' '.join(self.argv)}` to exit 0 in {self.container.name}"

    def probe(self) -> str | None:
        try:
            code, output = self.container.exec_run(list(self.argv))
        except docker_errors() as err:
            return f"docker exec failed: {err}"
        if code == 0:
            return None
        return f"exit {code} {output.decode(errors='replace').strip()[-120:]}".strip()


class DockerBackend(SharedBackend):
    """Starts and disturbs a ``StackDefinition`` as containers; see the module doc."""

    name = "docker"
    _thread_prefix = "tradechaos-docker"

    def __init__(
        self,
        definition: StackDefinition,
        run: RunFolder,
        params: Mapping[str, str] | None = None,
        toxiproxy_url: str | None = None,
        *,
        image: str | None = None,
        client: Any = None,
    ) -> None:
        super().__init__(definition, run, params, toxiproxy_url)
        self._image = image
        self._client = client
        self._tmp_lock = threading.Lock()
        self._default_cmd: dict[str, list[str]] = {}
        self._services: dict[str, _Service] = {
            spec.name: _Service(spec, Endpoint(HOST, service_port()))
            for spec in definition.services
        }
        self._proxy_container: Any = None

    # ------------------------------------------------------------------ lifecycle
    def _before_setups(self) -> None:
        self._prepare_image()

    def _abort(self) -> None:
        """Remove every container of this run now (used when a start fails)."""
        with self._lock:
            self._closing = True
        if self._client is not None:
            sweep_containers(self.run.run_id, self._client)

    def stop_stack(self) -> None:
        with self._lock:
            self._stop_in_reverse_order([])  # failures show in stop's own errors
            self._started.clear()
            self._stop_proxy()
            if self._client is not None:
                sweep_containers(self.run.run_id, self._client)
            for recorded in self.run.state().data_dirs:
                self._remove_data_dir(Path(recorded))
            with contextlib.suppress(OSError):
                self.run.data.rmdir()
            if not self._stopped:
                self.run.mark("finished")
            self._stopped = True
            self._closing = False

    # ------------------------------------------------------------------ services
    def start(self, service: str, timeout_s: float = 30.0) -> None:
        if not self.is_running(service):
            self._launch(service, timeout_s)

    def stop(self, service: str, grace_s: float | None = None) -> None:
        svc = self._get(service)
        if svc.container is None:
            return
        grace = svc.spec.stop_grace_s if grace_s is None else grace_s
        self._remove(svc.container, grace)
        svc.container = None

    def signal(self, service: str, signum: int) -> None:
        container = self._running(service, f"send signal {signum} to")
        call(f"signal {service}", lambda: container.kill(signal=int(signum)))

    def pause(self, service: str) -> None:
        container = self._running(service, "pause")
        if container_state(container) != "paused":
            call(f"pause {service}", container.pause)

    def resume(self, service: str) -> None:
        container = self._get(service).container
        if container is not None and container_state(container) == "paused":
            call(f"resume {service}", container.unpause)

    def throttle(self, service: str, cpu_fraction: float | None) -> None:
        if cpu_fraction is not None and not 0.0 < cpu_fraction <= 1.0:
            raise BadInput(
                f"throttle {service}: cpu_fraction must be in (0, 1], got {cpu_fraction}"
            )
        container = self._running(service, "throttle")
        if cpu_fraction is None or cpu_fraction >= 1.0:
            quota = -1  # no limit
        else:
            quota = max(1000, int(CPU_PERIOD_US * cpu_fraction))  # the engine's minimum: 1 ms
        call(
            f"throttle {service}",
            lambda: container.update(cpu_period=CPU_PERIOD_US, cpu_quota=quota),
        )

    def _strategy(self, svc: _Service) -> WaitStrategy:
        if svc.spec.health.kind == "command" and svc.container is not None:
            return _ExecWait(svc.container, self._placeholders(svc).argv(svc.spec.health.command))
        return strategy_for(
            svc.spec.health, svc.endpoint, self.run.log_path(svc.spec.name), svc.log_offset
        )

    def wait_healthy(self, service: str, timeout_s: float = 30.0) -> None:
        svc = self._get(service)
        container = svc.container
        try:
            wait_ready(
                self._strategy(svc),
                timeout_s,
                svc.spec.health.interval_s,
                alive=lambda: container is not None and container_state(container) == "running",
            )
        except NotReady as err:
            log = self.run.log_path(service)
            raise StackError(
                f"service {service} did not become healthy: {err}; last lines of {log}:\n"
                f"{log_tail(log, 30)}"
            ) from None

    def _new_service(self, spec: ServiceSpec) -> _Service:
        return _Service(spec, Endpoint(HOST, service_port()), extra=True)

    # ------------------------------------------------------------------ queries
    def is_running(self, service: str) -> bool:
        container = self._get(service).container
        return container is not None and container_state(container) in ("running", "paused")

    def pid(self, service: str) -> int | None:
        container = self._get(service).container
        if container is None or container_state(container) not in ("running", "paused"):
            return None
        pid = int(container.attrs.get("State", {}).get("Pid") or 0)
        return pid or None

    def status(self) -> list[ServiceStatus]:
        result = []
        for name, svc in list(self._services.items()):
            state = container_state(svc.container) if svc.container is not None else "absent"
            running = state in ("running", "paused")
            healthy = state == "running" and self._strategy(svc).probe() is None
            pid = self.pid(name) if running else None
            result.append(ServiceStatus(name, running, healthy, pid, svc.endpoint, svc.spec.site))
        return result

    @property
    def image(self) -> str:
        return self._image or images.STACK_IMAGE

    # ------------------------------------------------------------------ internals
    def _docker(self) -> Any:
        if self._client is None:
            try:
                self._client = images.docker_client()
            except InfrastructureError as err:
                raise StackError(str(err)) from None
        return self._client

    def _get(self, service: str) -> _Service:
        try:
            return self._services[service]
        except KeyError:
            known = ", ".join(self._services)
            raise BadInput(f"unknown service {service!r} (known: {known})") from None

    def _running(self, service: str, verb: str) -> Any:
        container = self._get(service).container
        if container is None or container_state(container) not in ("running", "paused"):
            raise StackError(f"cannot {verb} {service}: it is not running")
        return container

    def _prepare_image(self) -> None:
        """The tradechaos image (the proxy and built-in parts run in it) and every
        service's own image, built when missing or out of date (``build:``)."""
        client = self._docker()
        log = self.run.log_path("images")

        def progress(line: str) -> None:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")

        if self._image is None:
            try:
                result = images.build(progress=progress, client=client)
                progress(result.summary())
            except InfrastructureError as err:
                if not images.has_image(client, images.STACK_IMAGE):
                    raise StackError(f"the stack image is unavailable: {err}") from None
                progress(f"using the existing {images.STACK_IMAGE}: {err}")
        for spec in self.definition.services:
            if uses_tradechaos_image(spec):
                continue
            assert spec.image is not None
            try:
                if spec.build is not None:
                    progress(images.build_service_image(spec.image, spec.build, client, progress))
                elif not images.has_image(client, spec.image):
                    raise InfrastructureError(
                        f"image {spec.image} of service {spec.name} is not on this engine "
                        "and the stack file gives no build: for it"
                    )
            except InfrastructureError as err:
                raise StackError(f"service {spec.name}: {err}") from None

    def _image_of(self, spec: ServiceSpec) -> str:
        if uses_tradechaos_image(spec):
            return self.image
        assert spec.image is not None
        return spec.image

    def _placeholders(self, svc: _Service) -> Placeholders:
        python = images.VENV_PYTHON if uses_tradechaos_image(svc.spec) else "python3"
        return self._placeholders_as(_ContainerPlaceholders, svc, python)

    def _run_container(
        self, service: str, argv: Sequence[str], env: Mapping[str, str], role: str, name: str
    ) -> Any:
        """Create and start one container of ``service`` (recorded before it starts)."""
        client = self._docker()
        with self._lock:
            if self._closing:
                raise StackError(f"not starting {service}: the stack is being stopped")
        run_dir = str(self.run.path)
        mounts = {run_dir: run_dir, str(self._shared_tmp()): "/tmp"}
        stack_dir = self.definition.stack_dir
        if stack_dir is not None:  # read-only: {stack_dir} means the same inside
            mounts[f"{stack_dir}:ro"] = str(stack_dir)
        spec = self._services[service].spec if service in self._services else None
        image = self._image_of(spec) if spec is not None else self.image
        return start_container(
            client,
            image,
            argv,
            name=name,
            labels={RUN_LABEL: self.run.run_id, SERVICE_LABEL: service, ROLE_LABEL: role},
            environment={**env, "TRADECHAOS_RUN_ID": self.run.run_id, "PYTHONUNBUFFERED": "1"},
            mounts=mounts,
            working_dir=run_dir,
            log_path=str(self.run.log_path(service)),
            on_created=lambda container: self.run.record_container(str(container.id)),
            stop_signal=spec.stop_signal if spec is not None else "TERM",
        )

    def _shared_tmp(self) -> Path:
        """The run's /tmp, shared by all its containers (a one-shot setup container may
        leave files there for the service, e.g. a database cluster); swept like data dirs."""
        path = self.run.data / TMP_DIR
        with self._tmp_lock:  # setup containers start from several threads at once
            if not path.exists():
                path.mkdir(parents=True)
                path.chmod(0o1777)
                self.run.record_data_dir(path)
        return path

    def _container_name(self, service: str, role: str, svc: _Service) -> str:
        svc.launches += 1
        return f"tc-{self.run.run_id}-{service}-{role}{svc.launches}"[:200]

    def _service_env(self, svc: _Service, fill: Placeholders) -> dict[str, str]:
        env = {**svc.spec.env, **(svc.spec.docker_env or {})}  # docker.env over env
        return {key: fill.fill(value) for key, value in env.items()}

    def _argv(self, svc: _Service, fill: Placeholders) -> list[str]:
        """The service's command inside its container: ``docker.command``, else
        ``command``, else the image's own entrypoint and command."""
        command = svc.spec.docker_command or svc.spec.command
        if command:
            return fill.argv(command)
        image = self._image_of(svc.spec)
        if image not in self._default_cmd:
            config = call(f"inspect image {image}", lambda: self._docker().images.get(image)).attrs
            config = config.get("Config") or {}
            self._default_cmd[image] = [
                *(config.get("Entrypoint") or []),
                *(config.get("Cmd") or []),
            ]
        if not self._default_cmd[image]:
            raise StackError(f"service {svc.spec.name}: no command, and image {image} has none")
        return list(self._default_cmd[image])

    def _launch(self, service: str, timeout_s: float) -> None:
        svc = self._get(service)
        phases = self._set_up(service)  # once; done early by start_stack for most services
        fill = self._placeholders(svc)
        env = self._service_env(svc, fill)
        started = time.monotonic()
        log = self.run.log_path(service)
        svc.log_offset = log.stat().st_size if log.exists() else 0
        container = self._run_container(
            service,
            self._argv(svc, fill),
            env,
            "service",
            self._container_name(service, "run", svc),
        )
        with self._lock:
            svc.container = container
            if service not in self._started:
                self._started.append(service)
            self._stopped = False
        self._after_start(service, fill, env, phases, started, timeout_s)

    def _run_once(
        self, service: str, argv: Sequence[str], env: Mapping[str, str], kind: str
    ) -> None:
        """Run a one-shot command in its own container; output goes to the service log."""
        svc = self._get(service)
        container = self._run_container(
            service, argv, env, kind, self._container_name(service, kind.replace("_", ""), svc)
        )
        try:
            code: int | None = int(container.wait(timeout=SETUP_TIMEOUT_S)["StatusCode"])
        except docker_errors():
            code = None
        finally:
            self._remove(container, 0.0)
        if code != 0:
            log = self.run.log_path(service)
            outcome = f"exited with {code}" if code is not None else "timed out"
            raise StackError(
                f"{kind} command of {service} ({' '.join(argv[:3])} ...) {outcome}; "
                f"last lines of {log}:\n{log_tail(log, 30)}"
            )

    def _remove(self, container: Any, grace_s: float) -> None:
        """Stop and remove ``container`` (see ``remove_container``), then forget it."""
        remove_container(container, grace_s)
        self.run.forget_container(str(container.id))

    def _ready_proxy(self) -> None:
        if self._proxy is not None:
            self._proxy.wait_ready(PROXY_START_TIMEOUT_S)
            self.run.record_proxy(self._proxy.url, embedded=False)
            return
        port_file = self.run.path / "proxy.port"
        port_file.unlink(missing_ok=True)
        self.run.record_proxy("", embedded=True)
        argv = [
            images.VENV_PYTHON,
            "-m",
            "chaos.proxy",
            "--host",
            HOST,
            "--port",
            "0",
            "--port-file",
            str(port_file),
        ]
        self._proxy_container = self._run_container(
            PROXY, argv, {}, PROXY, f"tc-{self.run.run_id}-proxy"
        )
        port = self._wait_port_file(port_file)
        self._proxy = ProxyAdmin(f"http://{HOST}:{port}")
        self.run.record_proxy(self._proxy.url, embedded=True)
        self._proxy.wait_ready(PROXY_START_TIMEOUT_S)

    def _wait_port_file(self, path: Path) -> int:
        deadline = time.monotonic() + PROXY_START_TIMEOUT_S
        while True:
            with contextlib.suppress(FileNotFoundError, ValueError):
                text = path.read_text().strip()
                if text:
                    return int(text)
            state = container_state(self._proxy_container)
            if state != "running" or time.monotonic() >= deadline:
                log = self.run.log_path(PROXY)
                what = f"its container is {state}" if state != "running" else "timed out"
                raise StackError(
                    f"the embedded proxy did not report its port in {path} ({what}); "
                    f"last lines of {log}:\n{log_tail(log, 30)}"
                )
            time.sleep(0.02)

    def _stop_proxy(self) -> None:
        if self._proxy is not None and self._proxy_container is None:
            for name in list(self._links):  # an external Toxiproxy outlives us: tidy it
                with contextlib.suppress(ProxyError):
                    self._proxy.delete(name)
        if self._proxy_container is not None:
            with contextlib.suppress(StackError):
                self._remove(self._proxy_container, 2.0)
            self._proxy_container = None
            self._proxy = None
        self._links.clear()
        if self.run.state().proxy is not None:
            self.run.forget_proxy()
