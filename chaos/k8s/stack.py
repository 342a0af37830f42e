"""THE adapter between the engine's stack description and the Kubernetes exporter.

Everything the exporter (and ``tradechaos step`` in a pod) knows about a stack comes from
``k8s_stack(experiment, ...)``: today it reads ``chaos.stackdef.StackDefinition`` (from
``chaos.runner.wiring.definition``, i.e. the reference stack) plus the few facts that
description does not carry yet; when the stack file (issue 14) lands, only this module is
re-pointed at it. The facts supplied here, each a field the stack file should grow:

- ``image``: one image for every service (``tradechaos/stack:latest``, running
  ``python -m chaos.stack.<service>``); a stack file gives each service its ``image``.
- ``stateful``: a service whose health check is ``pg`` is a database (StatefulSet with a
  volume for ``{data_dir}``).
- ``listen_args``: the reference services listen on 127.0.0.1 unless given ``--host``; in a
  pod they must listen on every interface, so ``--host 0.0.0.0`` is appended to services
  run as ``-m chaos.stack.<module>`` that take it (all but ``chaos.stack.db``, whose
  PostgreSQL listens on 127.0.0.1 only: a gap reported in docs/kubernetes.md).
- ports: every HTTP service listens on ``HTTP_PORT`` in its pod, a database on ``PG_PORT``.
- ``load_links``: the links the load drives (``clients-sequencer`` and, with a standby,
  ``clients-sequencer_b``); ``stack_flags``: how ``tradechaos step`` rebuilds the same
  description inside a pod (``--standby``, ``--venues N``).
- ``allowed_namespaces`` / ``allowed_contexts`` (safety of ``tradechaos k8s apply``): the
  stack file's ``kubernetes: {contexts: [...], namespaces: [...]}``; until it exists they
  are empty here and come from ``tradechaos k8s apply --allow-namespace/--allow-context``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chaos.errors import BadInput
from chaos.k8s.names import dns_label
from chaos.stackdef import HealthCheck, StackDefinition

IMAGE = "tradechaos/stack:latest"
PYTHON = "/opt/tradechaos/bin/python"  # the interpreter inside IMAGE
TRADECHAOS = "/opt/tradechaos/bin/tradechaos"
PG_BIN = "/opt/tradechaos/lib/python3.11/site-packages/pgserver/pginstall/bin"
LOCUSTFILE = "/opt/tradechaos/lib/python3.11/site-packages/chaos/load/locustfile.py"
HTTP_PORT = 8080
PG_PORT = 5432
RUN_DIR = "/var/lib/tradechaos/run"
DATA_DIR = "/var/lib/tradechaos/data"
CLIENTS = "clients"  # the client end of links driven by the load (not a service)
_NO_HOST_FLAG = {"chaos.stack.db"}


@dataclass(frozen=True)
class K8sService:
    """One service as the exporter sees it; ``command`` still holds ``{placeholders}``."""

    name: str
    k8s_name: str
    image: str
    command: tuple[str, ...]
    env: Mapping[str, str]
    health: HealthCheck
    port: int
    depends_on: tuple[str, ...]
    site: str
    setup: tuple[tuple[str, ...], ...]
    after_healthy: tuple[tuple[str, ...], ...]
    stop_grace_s: float
    stateful: bool
    optional: bool = False


@dataclass(frozen=True)
class K8sLink:
    """A link ``client -> server``; on Kubernetes its own Service selecting the server's
    pods (``k8s_name``), so a database migration can switch one client's link."""

    name: str
    k8s_name: str
    client: str
    server: str


@dataclass(frozen=True)
class K8sStack:
    name: str
    services: tuple[K8sService, ...]
    links: tuple[K8sLink, ...]
    definition: StackDefinition
    load_links: tuple[str, ...]
    stack_flags: tuple[str, ...]
    allowed_namespaces: tuple[str, ...] = ()
    allowed_contexts: tuple[str, ...] = ()
    python: str = PYTHON
    tradechaos: str = TRADECHAOS
    pg_bin: str = PG_BIN
    image: str = IMAGE
    locustfile: str = LOCUSTFILE

    def service(self, name: str) -> K8sService:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def link(self, name: str) -> K8sLink:
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(name)

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    def site_services(self, site: str) -> tuple[str, ...]:
        return tuple(s.name for s in self.services if s.site == site)


def _listen_args(command: Sequence[str]) -> tuple[str, ...]:
    """``--host 0.0.0.0`` for a reference service that takes it (see the module doc)."""
    for index, item in enumerate(command[:-1]):
        module = command[index + 1]
        if item == "-m" and module.startswith("chaos.stack.") and module not in _NO_HOST_FLAG:
            return ("--host", "0.0.0.0")
    return ()


def from_definition(
    definition: StackDefinition,
    *,
    standby: bool,
    venues: int,
    image: str | None = None,
) -> K8sStack:
    """The ``K8sStack`` of ``definition``; ``BadInput`` when two names collide on Kubernetes."""
    services = tuple(
        K8sService(
            name=spec.name,
            k8s_name=dns_label(spec.name),
            image=image or IMAGE,
            command=tuple(spec.command) + _listen_args(spec.command),
            env=dict(spec.env),
            health=spec.health,
            port=PG_PORT if spec.health.kind == "pg" else HTTP_PORT,
            depends_on=tuple(spec.depends_on),
            site=spec.site,
            setup=tuple(tuple(c) for c in spec.setup),
            after_healthy=tuple(tuple(c) for c in spec.after_healthy),
            stop_grace_s=spec.stop_grace_s,
            stateful=spec.health.kind == "pg",
            optional=spec.optional,
        )
        for spec in definition.services
    )
    links = tuple(
        K8sLink(lk.name, dns_label(f"link-{lk.name}"), lk.client, lk.server)
        for lk in definition.links
    )
    seen: dict[str, str] = {}
    for name, k8s_name in [(s.name, s.k8s_name) for s in services] + [
        (lk.name, lk.k8s_name) for lk in links
    ]:
        if k8s_name in seen:
            raise BadInput(
                f"{seen[k8s_name]!r} and {name!r} have the same Kubernetes name {k8s_name!r}"
            )
        seen[k8s_name] = name
    load_links = ("clients-sequencer",) + (("clients-sequencer_b",) if standby else ())
    flags = (("--standby",) if standby else ()) + ("--venues", str(venues))
    return K8sStack(
        name=definition.name,
        services=services,
        links=links,
        definition=definition,
        load_links=tuple(lk for lk in load_links if any(x.name == lk for x in links)),
        stack_flags=flags,
        image=image or IMAGE,
    )


def definition_for(standby: bool, venues: int) -> StackDefinition:
    """The engine's stack description (the reference stack today)."""
    from chaos.runner import wiring

    definition: StackDefinition = wiring.definition(standby, venues)
    return definition


def k8s_stack(standby: bool, venues: int, image: str | None = None) -> K8sStack:
    """The stack an experiment runs against, as the exporter sees it."""
    return from_definition(
        definition_for(standby, venues), standby=standby, venues=venues, image=image
    )
