"""A stack as the engine runs it: a stack file resolved for one set of option values.

``chaos.stackfile.resolve`` turns a loaded ``StackFile`` plus option values and the
mitigations that are on into a ``StackDefinition``: conditional services, links and
arguments are decided, ``{option:...}`` is filled in, built-in parts are expanded into
ordinary services and each mitigation's env values and arguments are applied. Backends,
faults, the load and the exporter only ever see this. What is left in the templates is
per-run (``{port}``, ``{link:NAME}``, ``{seed}``...): see ``chaos.stackfile.placeholders``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from chaos.stackfile.bindings import Bindings, SqlCheck
from chaos.world import MARKETS, MarketSpec

HealthKind = Literal["http", "tcp", "pg", "log", "command"]
BuiltinKind = Literal["postgres", "venues"]


@dataclass(frozen=True)
class HealthCheck:
    """How to tell a service is ready. ``http``: GET ``path`` answers ``status``; ``tcp``:
    the port accepts; ``pg``: a PostgreSQL connection runs ``SELECT 1``; ``log``: the
    service's log shows a line matching ``pattern`` since its latest start; ``command``:
    ``command`` exits 0."""

    kind: HealthKind = "http"
    path: str = "/health"
    timeout_s: float = 20.0
    interval_s: float = 0.05
    status: int = 200
    pattern: str = ""
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildSpec:
    """How the docker backend makes a service's image. ``tradechaos``: the tradechaos
    runtime image (``chaos.backends.images``); else ``docker build`` of ``context`` with
    ``dockerfile`` and ``args``, after ``wheelhouse`` requirements are built on the host."""

    tradechaos: bool = False
    context: Path | None = None
    dockerfile: str = "Dockerfile"
    args: Mapping[str, str] = field(default_factory=dict)
    wheelhouse: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the stack. ``setup`` commands run once before its first start (e.g.
    initdb); ``after_healthy`` commands run once after it is first healthy (e.g. the schema).
    ``docker_command``/``docker_env`` replace ``command``/``env`` inside a container when
    given. ``builtin`` names the part tradechaos provides (its own image and admin API);
    ``database`` is a built-in postgres's database, ``venues`` a built-in venues' count.
    """

    name: str
    command: tuple[str, ...]
    health: HealthCheck = HealthCheck()
    depends_on: tuple[str, ...] = ()
    site: str = "core"
    env: Mapping[str, str] = field(default_factory=dict)
    setup: tuple[tuple[str, ...], ...] = ()
    after_healthy: tuple[tuple[str, ...], ...] = ()
    stop_grace_s: float = 5.0
    stop_signal: str = "TERM"
    optional: bool = False  # started only when a step starts it (e.g. a cold standby)
    image: str | None = None
    build: BuildSpec | None = None
    docker_command: tuple[str, ...] | None = None
    docker_env: Mapping[str, str] | None = None
    cwd: str | None = None
    builtin: BuiltinKind | None = None
    database: str | None = None
    venues: int = 0


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
class KubernetesAllow:
    """Where ``tradechaos k8s apply`` may act (the stack file's ``kubernetes:``; empty:
    the file allows nothing by itself, ``--allow-namespace/--allow-context`` must)."""

    contexts: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class StackDefinition:
    """Services (in file order), links, the world's markets and the bindings."""

    name: str
    services: tuple[ServiceSpec, ...]
    links: tuple[LinkSpec, ...]
    markets: tuple[MarketSpec, ...] = MARKETS
    bindings: Bindings = field(default_factory=Bindings)
    mitigations: tuple[str, ...] = ()  # every switch the stack declares
    source: Path | None = None  # the stack file
    options: Mapping[str, object] = field(default_factory=dict)  # the values in force
    kubernetes: KubernetesAllow = field(default_factory=KubernetesAllow)
    checks: tuple[SqlCheck, ...] = ()  # the stack's own invariants (``checks:``)

    def service(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def has_service(self, name: str) -> bool:
        return any(spec.name == name for spec in self.services)

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    @property
    def link_names(self) -> tuple[str, ...]:
        return tuple(lk.name for lk in self.links)

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.site for s in self.services))

    @property
    def stack_dir(self) -> Path | None:
        return self.source.parent if self.source is not None else None

    def link(self, name: str) -> LinkSpec:
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(name)

    def links_of(self, service: str) -> tuple[LinkSpec, ...]:
        """Every link that has ``service`` at either end."""
        return tuple(lk for lk in self.links if service in (lk.client, lk.server))

    def site_services(self, site: str) -> tuple[str, ...]:
        return tuple(s.name for s in self.services if s.site == site)

    def builtins(self, kind: BuiltinKind) -> tuple[str, ...]:
        """The services that are the built-in part ``kind``."""
        return tuple(s.name for s in self.services if s.builtin == kind)

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
