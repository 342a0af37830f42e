"""What the process and docker backends do the same way, written once.

``SharedBackend`` holds the parts of the Backend protocol that do not depend on how a
service runs: links through the proxy, endpoints, logs, kill/restart in terms of
stop/launch, the setup commands (in the background or at launch), adding a service, and
what follows a service's start (health, ``after_healthy``, timings). A backend subclass
calls ``SharedBackend.__init__`` (the state both keep alike), provides ``_services`` (name
-> a record with ``.spec``, ``.endpoint``, ``.set_up`` and ``.initialised``) and the
methods declared at the bottom.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from chaos.backends.base import Endpoint
from chaos.backends.ordering import reverse_deps, run_in_order
from chaos.backends.placeholders import Placeholders, name_tables
from chaos.backends.proxyadmin import ProxyAdmin
from chaos.errors import BadInput, StackError
from chaos.host import ports
from chaos.host.processes import log_tail
from chaos.host.runs import RunFolder
from chaos.stackfile.definition import ServiceSpec, StackDefinition

HOST = ports.HOST
P = TypeVar("P", bound=Placeholders)


def needs_proxy(spec: ServiceSpec) -> bool:
    """Whether a setup command of ``spec`` needs a link or the proxy URL (so it can only
    run once the proxy is up)."""
    return any("{link:" in arg or "{toxiproxy_url}" in arg for cmd in spec.setup for arg in cmd)


class SharedBackend:
    definition: StackDefinition
    run: RunFolder
    _services: dict[str, Any]
    _links: dict[str, Endpoint]
    _proxy: ProxyAdmin | None
    _setup_futures: dict[str, Future[None]]
    _setup_times: dict[str, dict[str, float]]
    _lock: threading.RLock | threading.Lock
    _started: list[str]
    _closing: bool
    timings: dict[str, dict[str, float]]
    _thread_prefix = "tradechaos"

    def __init__(
        self,
        definition: StackDefinition,
        run: RunFolder,
        params: Mapping[str, str] | None,
        toxiproxy_url: str | None,
    ) -> None:
        """The state both backends keep the same way (a subclass adds ``_services``)."""
        self.definition = definition
        self.run = run
        self._params = dict(params or {})
        self._lock = threading.RLock()
        self._databases, self._venue_counts = name_tables(definition)
        self._started = []  # launch order, for a reverse-order stop
        self._links = {}
        self._proxy = ProxyAdmin(toxiproxy_url) if toxiproxy_url is not None else None
        self._stopped = False
        self._closing = False
        # seconds per phase of each service's latest start: setup, healthy, after_healthy
        self.timings = {}
        self._setup_times = {}
        self._setup_futures = {}

    def _placeholders_as(self, kind: type[P], svc: Any, python: str) -> P:
        """A service's placeholders of ``kind`` (the backend's own ``python``)."""
        return kind(
            python=python,
            port=svc.endpoint.port,
            run_dir=self.run.path,
            data_dir=self.run.data_dir(svc.spec.name),
            params={"run_id": self.run.run_id, **self._params},
            toxiproxy_url=self._proxy.url if self._proxy is not None else "",
            links=dict(self._links),
            services={name: s.endpoint for name, s in self._services.items()},
            stack_dir=self.definition.stack_dir,
            databases=self._databases,
            venue_counts=self._venue_counts,
        )

    def __enter__(self) -> Self:
        self.start_stack()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_stack()

    def start_stack(self) -> None:
        """Proxy and links, then every non-optional service once its dependencies are
        healthy; setup commands (e.g. initdb) run in the background meanwhile. On any
        failure everything started is stopped again before the error propagates."""
        self._closing = False
        started = time.monotonic()
        setups = ThreadPoolExecutor(4, thread_name_prefix=f"{self._thread_prefix}-setup")
        try:
            for link in self.definition.links:
                if link.server not in self._services:
                    raise StackError(
                        f"link {link.name} points at {link.server!r}, which is not a service"
                    )
            self._before_setups()
            self._begin_setups(setups)  # e.g. initdb, while the proxy starts
            self._ready_proxy()
            for link in self.definition.links:
                self._create_link(link.name, self._services[link.server].endpoint)
            self.timings["proxy"] = {"ready": time.monotonic() - started}
            self._start_services()  # a service's launch waits for its own setup
        except BaseException:
            self._abort()  # the one-shots end, so the setup threads end at once
            setups.shutdown(wait=True)
            self.stop_stack()
            raise
        finally:
            setups.shutdown(wait=True)
            self._setup_futures.clear()

    def _start_services(self) -> None:
        """Launch every non-optional service as soon as its dependencies are healthy
        (independent services start concurrently); raise the first failure."""
        names = [name for name, svc in self._services.items() if not svc.spec.optional]
        deps = {name: self._services[name].spec.depends_on for name in names}
        try:
            self.definition.start_order()
        except ValueError as err:
            raise StackError(f"stack {self.definition.name}: {err}") from None
        run_in_order(
            names,
            deps,
            lambda name: self._launch(name, self._services[name].spec.health.timeout_s),
            self._abort,  # ends the other launches' health waits at once
            f"{self._thread_prefix}-start",
        )

    def _stop_in_reverse_order(self, failures: list[str]) -> None:
        """Stop every started service after everything that depends on it (services added
        with ``add_service``, e.g. a migrated database, last); independent ones concurrently.
        A failure to stop one is added to ``failures`` and the others are still stopped."""
        names = [name for name in self._started if name in self._services]
        added = [name for name in names if self._services[name].extra]
        deps = {
            name: tuple(self._services[name].spec.depends_on)
            + (tuple(added) if name not in added else ())
            for name in names
        }

        def stop(name: str) -> None:
            try:
                self.stop(name)
            except Exception as err:  # keep stopping the others
                failures.append(f"{name}: {err}")

        run_in_order(names, reverse_deps(names, deps), stop, None, f"{self._thread_prefix}-stop")

    def _begin_setups(self, pool: ThreadPoolExecutor) -> None:
        """Start the setup commands of every service to be started, in the background;
        commands that need a link or the proxy URL run in ``_launch`` instead."""
        for name, svc in self._services.items():
            if not svc.spec.optional and svc.spec.setup and not needs_proxy(svc.spec):
                self._setup_futures[name] = pool.submit(self._run_setup, name)

    def add_service(self, spec: ServiceSpec, timeout_s: float = 30.0) -> Endpoint:
        with self._lock:
            if spec.name in self._services:
                raise BadInput(f"cannot add service {spec.name!r}: a service of that name exists")
            svc = self._new_service(spec)
            self._services[spec.name] = svc
        try:
            self._launch(spec.name, timeout_s)
        except BaseException:
            with self._lock:  # not added after all: the name may be tried again
                self._services.pop(spec.name, None)
                if spec.name in self._started:
                    self._started.remove(spec.name)
            self._remove_data_dir(self.run.data_dir(spec.name))
            raise
        return svc.endpoint  # type: ignore[no-any-return]

    def _set_up(self, service: str) -> dict[str, float]:
        """Make sure ``service``'s setup ran (wait for the background run, or run it now);
        the launch's phase timings so far."""
        future = self._setup_futures.get(service)
        if future is not None:
            future.result()
        else:
            self._run_setup(service)
        return self._setup_times.pop(service, {})

    def _run_setup(self, service: str) -> None:
        """Run ``service``'s setup commands once (a data dir is made and recorded first)."""
        svc = self._get(service)
        data_dir = self.run.data_dir(service)
        if not data_dir.exists():
            data_dir.mkdir(parents=True)
            self.run.record_data_dir(data_dir)
        if svc.set_up:
            return
        started = time.monotonic()
        fill = self._placeholders(svc)
        env = self._service_env(svc, fill)
        for command in svc.spec.setup:
            self._run_once(service, fill.argv(command), env, "setup")
        svc.set_up = True
        if svc.spec.setup:
            self._setup_times[service] = {"setup": time.monotonic() - started}

    def _after_start(
        self,
        service: str,
        fill: Placeholders,
        env: Mapping[str, str],
        phases: dict[str, float],
        started: float,
        timeout_s: float,
    ) -> None:
        """Once ``service`` is started (since monotonic ``started``): wait until healthy, run
        ``after_healthy`` the first time, record the timings; on any failure stop it again
        and re-raise."""
        svc = self._get(service)
        mark = started
        try:
            self.wait_healthy(service, timeout_s)
            phases["healthy"] = time.monotonic() - mark
            mark = time.monotonic()
            if not svc.initialised:
                for command in svc.spec.after_healthy:
                    self._run_once(service, fill.argv(command), env, "after_healthy")
                svc.initialised = True
                if svc.spec.after_healthy:
                    phases["after_healthy"] = time.monotonic() - mark
            self.timings[service] = phases
        except BaseException:
            self.stop(service, grace_s=1.0)
            raise

    def kill(self, service: str) -> None:
        self.stop(service, grace_s=0.0)

    def restart(self, service: str, downtime_s: float = 0.0, timeout_s: float = 30.0) -> None:
        self.stop(service)
        if downtime_s > 0:
            time.sleep(downtime_s)  # the requested downtime, not a readiness wait
        self._launch(service, timeout_s)

    def endpoint(self, service: str) -> Endpoint:
        return self._get(service).endpoint  # type: ignore[no-any-return]

    def link_endpoint(self, link: str) -> Endpoint:
        try:
            return self._links[link]
        except KeyError:
            known = ", ".join(sorted(self._links)) or "none"
            raise BadInput(f"unknown link {link!r} (known: {known})") from None

    def set_link_upstream(self, link: str, upstream: Endpoint) -> None:
        self.link_endpoint(link)
        self._proxy_admin().update(link, upstream=str(upstream))

    def logs(self, service: str, tail: int = 50) -> str:
        self._get(service)
        return log_tail(self.run.log_path(service), tail)

    @property
    def toxiproxy_url(self) -> str:
        return self._proxy_admin().url

    @property
    def link_names(self) -> tuple[str, ...]:
        return tuple(self._links)

    def _proxy_admin(self) -> ProxyAdmin:
        if self._proxy is None:
            raise StackError("this stack runs without a proxy (no links can be managed)")
        return self._proxy

    def _create_link(self, name: str, upstream: Endpoint) -> None:
        admin = self._proxy_admin()
        self.run.record_proxy_name(name)
        self._links[name] = admin.create(name, listen=f"{HOST}:0", upstream=str(upstream))

    def _remove_data_dir(self, data_dir: Path) -> None:
        if data_dir.exists():
            shutil.rmtree(data_dir, ignore_errors=True)
        self.run.forget_data_dir(data_dir)

    # -- provided by each backend --------------------------------------------------------
    def stop_stack(self) -> None:
        raise NotImplementedError

    def stop(self, service: str, grace_s: float | None = None) -> None:
        raise NotImplementedError

    def _launch(self, service: str, timeout_s: float) -> None:
        raise NotImplementedError

    def _get(self, service: str) -> Any:
        raise NotImplementedError

    def wait_healthy(self, service: str, timeout_s: float = 30.0) -> None:
        raise NotImplementedError

    def _before_setups(self) -> None:
        """What must happen before any setup command runs (an image, a proxy process)."""
        raise NotImplementedError

    def _ready_proxy(self) -> None:
        """Make ``_proxy`` usable (connect to it, or start a proxy container)."""
        raise NotImplementedError

    def _abort(self) -> None:
        """Kill everything this backend started, now (a start failed)."""
        raise NotImplementedError

    def _new_service(self, spec: ServiceSpec) -> Any:
        """A record for a service added while the stack runs (its port chosen now)."""
        raise NotImplementedError

    def _placeholders(self, svc: Any) -> Placeholders:
        raise NotImplementedError

    def _service_env(self, svc: Any, fill: Placeholders) -> dict[str, str]:
        raise NotImplementedError

    def _run_once(
        self, service: str, argv: Sequence[str], env: Mapping[str, str], kind: str
    ) -> None:
        raise NotImplementedError
