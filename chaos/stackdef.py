"""The declarative stack definition: what the engine knows about a system under test.

The engine (runner, backends, faults, checkers) reaches the stack only through a
``StackDefinition``: services with their commands, health checks, dependencies and site
labels, and the named links (each one a proxy) between them. Our reference stack provides
one in ``chaos.stack.definition.reference_stack()``; a user can supply another.

Command templates are argv lists whose items may contain ``{placeholders}``, filled by the
backend at start:
    {python}         the Python interpreter running tradechaos
    {port}           the port this service listens on (chosen free per run)
    {host}           127.0.0.1
    {link:NAME}      host:port of the proxy listener for link NAME (clients connect there)
    {service:NAME}   host:port where service NAME listens directly (no proxy)
    {run_dir}        the run folder; {data_dir} this service's own folder under it
    {seed} {epoch} {mitigations} {toxiproxy_url} {pg_bin} {run_id}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

HealthKind = Literal["http", "tcp", "pg"]


@dataclass(frozen=True)
class HealthCheck:
    """How to tell a service is ready. ``http``: GET ``path`` answers 200; ``tcp``: the port
    accepts; ``pg``: a PostgreSQL connection runs ``SELECT 1``."""

    kind: HealthKind = "http"
    path: str = "/health"
    timeout_s: float = 15.0
    interval_s: float = 0.05


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the stack. ``setup`` commands run once before its first start (e.g.
    initdb); ``after_healthy`` commands run once after it is first healthy (e.g. the schema).
    """

    name: str
    command: tuple[str, ...]
    health: HealthCheck = HealthCheck()
    depends_on: tuple[str, ...] = ()
    site: str = "a"
    env: Mapping[str, str] = field(default_factory=dict)
    setup: tuple[tuple[str, ...], ...] = ()
    after_healthy: tuple[tuple[str, ...], ...] = ()
    stop_grace_s: float = 5.0
    optional: bool = False  # started only when an experiment asks for it (e.g. a standby)


@dataclass(frozen=True)
class LinkSpec:
    """A named proxy between a client service and a server service.

    ``name`` is the Toxiproxy proxy name, e.g. ``sequencer-db``. ``client`` may be
    ``clients`` (the load generator and the runner's own requests).
    """

    name: str
    client: str
    server: str


@dataclass(frozen=True)
class StackDefinition:
    """Services in dependency order, links, and the module that exports the history."""

    name: str
    services: tuple[ServiceSpec, ...]
    links: tuple[LinkSpec, ...]
    history_exporter: str  # "module:function", called as f(run_dir, endpoints) -> None

    def service(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    def links_of(self, service: str) -> tuple[LinkSpec, ...]:
        """Every link that has ``service`` at either end."""
        return tuple(lk for lk in self.links if service in (lk.client, lk.server))

    def site_services(self, site: str) -> tuple[str, ...]:
        return tuple(s.name for s in self.services if s.site == site)

    def start_order(self) -> tuple[str, ...]:
        """Services sorted so that each comes after its dependencies (stable)."""
        done: list[str] = []
        pending = list(self.services)
        while pending:
            progressed = False
            for spec in list(pending):
                if all(dep in done for dep in spec.depends_on):
                    done.append(spec.name)
                    pending.remove(spec)
                    progressed = True
            if not progressed:
                cycle = ", ".join(s.name for s in pending)
                raise ValueError(f"dependency cycle or unknown dependency among: {cycle}")
        return tuple(done)
