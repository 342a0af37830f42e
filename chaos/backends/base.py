"""The Backend protocol: how the engine starts, stops and disturbs the services of a stack.

Two implementations: ``process`` (default; each service a local process group) and
``docker`` (one container per service, host networking). Faults and the runner use only
this protocol, never a backend's internals.

Contract
- ``start_stack`` starts every non-optional service in ``definition.start_order()``, each
  only after its dependencies are healthy, and returns when all are healthy; on failure it
  stops what it started and raises ``StackError`` naming the service and carrying its log
  tail. The proxy (embedded or external) and every link exist before any service starts.
- Every method that waits has a timeout and raises ``StackError`` when it expires.
- ``stop``: SIGTERM (docker: stop), grace, then SIGKILL; always reaped. Idempotent.
- ``kill``: SIGKILL now and reap. Idempotent.
- ``pause``/``resume``: SIGSTOP/SIGCONT of the whole process group (docker: freezer).
- ``throttle(service, cpu_fraction)``: limit to that share of one CPU (0 < f <= 1);
  ``None`` removes the limit. Process backend: a stop/continue duty cycle.
- ``start``: start a stopped service again and wait until healthy.
- ``add_service``: start a service that is not part of the definition (e.g. a new database
  instance for a migration), owned and cleaned up like the others.
- ``set_link_upstream``: point a link at another server (e.g. after a database migration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chaos.stackfile.definition import ServiceSpec, StackDefinition


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    healthy: bool
    pid: int | None
    endpoint: Endpoint | None
    site: str


class Backend(Protocol):
    name: str
    definition: StackDefinition

    def start_stack(self) -> None: ...
    def stop_stack(self) -> None: ...

    def start(self, service: str, timeout_s: float = 30.0) -> None: ...
    def stop(self, service: str, grace_s: float | None = None) -> None: ...
    def kill(self, service: str) -> None: ...
    def signal(self, service: str, signum: int) -> None: ...
    def pause(self, service: str) -> None: ...
    def resume(self, service: str) -> None: ...
    def throttle(self, service: str, cpu_fraction: float | None) -> None: ...
    def restart(self, service: str, downtime_s: float = 0.0, timeout_s: float = 30.0) -> None: ...
    def wait_healthy(self, service: str, timeout_s: float = 30.0) -> None: ...
    def add_service(self, spec: ServiceSpec, timeout_s: float = 30.0) -> Endpoint: ...

    def is_running(self, service: str) -> bool: ...
    def pid(self, service: str) -> int | None: ...
    def endpoint(self, service: str) -> Endpoint: ...
    def link_endpoint(self, link: str) -> Endpoint: ...
    def set_link_upstream(self, link: str, upstream: Endpoint) -> None: ...
    def status(self) -> list[ServiceStatus]: ...
    def logs(self, service: str, tail: int = 50) -> str: ...

    @property
    def toxiproxy_url(self) -> str: ...
