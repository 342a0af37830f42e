"""THE adapter between the engine's stack description and the Kubernetes exporter.

Everything the exporter (and ``tradechaos step`` in a pod) knows about a stack comes from
``k8s_stack(experiment, variant, ...)``: the experiment's stack file resolved for the
variant (``chaos.runner.wiring.definition``), seen as Kubernetes sees it:

- ``image``: each service's own image from the stack file, or the tradechaos image for the
  built-in parts and ``build: tradechaos`` services (``chaos.backends.images``);
- ``stateful``: a built-in postgres (or a service with a ``pg`` health check) is a
  database: a StatefulSet with a volume for ``{data_dir}``;
- services listen on ``{host}``, which is ``0.0.0.0`` in a pod; ports: every HTTP service
  listens on ``HTTP_PORT`` in its pod, a database on ``PG_PORT``;
- ``load_links``: the links the traders drive (``bindings.orders.via`` and its failover);
  ``stack_flags``: how ``tradechaos step`` rebuilds the same description inside a pod
  (``--stack`` when it is not the reference stack, ``--option NAME=VALUE``);
- ``allowed_namespaces`` / ``allowed_contexts`` (safety of ``tradechaos k8s apply``): the
  stack file's ``kubernetes: {contexts: [...], namespaces: [...]}``, extended by
  ``tradechaos k8s apply --allow-namespace/--allow-context``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chaos.backends.images import uses_tradechaos_image
from chaos.errors import BadInput
from chaos.k8s.names import dns_label
from chaos.stackfile.definition import HealthCheck, ServiceSpec, StackDefinition

if TYPE_CHECKING:
    from chaos.experiment.model import Experiment, Variant

IMAGE = "tradechaos/stack:latest"
PYTHON = "/opt/tradechaos/bin/python"  # the interpreter inside IMAGE
TRADECHAOS = "/opt/tradechaos/bin/tradechaos"
PG_BIN = "/opt/tradechaos/lib/python3.11/site-packages/pgserver/pginstall/bin"
HTTP_PORT = 8080
PG_PORT = 5432
RUN_DIR = "/var/lib/tradechaos/run"
DATA_DIR = "/var/lib/tradechaos/data"
CLIENTS = "clients"  # the client end of links driven by the load (not a service)


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


def from_definition(definition: StackDefinition, image: str | None = None) -> K8sStack:
    """The ``K8sStack`` of ``definition``; ``BadInput`` when two names collide on Kubernetes."""
    services = tuple(
        K8sService(
            name=spec.name,
            k8s_name=dns_label(spec.name),
            image=(image or IMAGE) if uses_tradechaos_image(spec) else str(spec.image),
            command=tuple(spec.docker_command or spec.command),
            env={**spec.env, **(spec.docker_env or {})},
            health=spec.health,
            port=PG_PORT if _database(spec) else HTTP_PORT,
            depends_on=tuple(spec.depends_on),
            site=spec.site,
            setup=tuple(tuple(c) for c in spec.setup),
            after_healthy=tuple(tuple(c) for c in spec.after_healthy),
            stop_grace_s=spec.stop_grace_s,
            stateful=_database(spec),
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
    orders = definition.bindings.orders
    load_links = (orders.via, orders.failover) if orders is not None else ()
    flags: tuple[str, ...] = ()
    if definition.source is not None and not _is_reference(definition.source):
        flags += ("--stack", str(definition.source))
    for name, value in sorted(definition.options.items()):
        flags += ("--option", f"{name}={json.dumps(value)}")
    return K8sStack(
        name=definition.name,
        services=services,
        links=links,
        definition=definition,
        load_links=tuple(lk for lk in load_links if lk and any(x.name == lk for x in links)),
        stack_flags=flags,
        allowed_namespaces=definition.kubernetes.namespaces,
        allowed_contexts=definition.kubernetes.contexts,
        image=image or IMAGE,
    )


def _database(spec: ServiceSpec) -> bool:
    return spec.builtin == "postgres" or spec.health.kind == "pg"


def _is_reference(path: object) -> bool:
    from pathlib import Path

    from chaos.stackfile import reference_stack_path

    return Path(str(path)).resolve() == reference_stack_path()


def definition_for(experiment: Experiment, variant: Variant) -> StackDefinition:
    """The stack ``variant`` of ``experiment`` runs on (its stack file, resolved)."""
    from chaos.runner import wiring

    return wiring.definition(experiment, variant)


def k8s_stack(experiment: Experiment, variant: Variant, image: str | None = None) -> K8sStack:
    """The stack an experiment's variant runs against, as the exporter sees it."""
    return from_definition(definition_for(experiment, variant), image=image)
