"""The small adapter that lets the existing faults (chaos/faults) run inside a pod.

``tradechaos step`` builds a ``FaultContext`` whose backend is a ``UrlBackend``: services
and links are the URLs it was given (``--service-url NAME=URL``, ``--link-url LINK=URL``),
so a fault that talks HTTP to a service (trading modes, venue data faults, price moves,
adversarial orders) runs unchanged. Operations on processes go to ``kube`` (a
``chaos.k8s.kubeops.KubeOps`` on the run's namespace) when given: stop/start scale a
workload to 0/1, ``add_service`` copies a database's StatefulSet and Service under a new
name, ``set_link_upstream`` re-points a link's Service at another service's pods. Without
``kube`` they raise ``FaultError`` saying that Chaos Mesh does that part.

Service URLs are health URLs: ``http://host:port/path``, ``tcp://host:port`` or
``pg://host:port``; ``endpoint(service)`` is their host:port.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol
from urllib.parse import urlsplit

from chaos.backends.base import Endpoint, ServiceStatus
from chaos.backends.health import NotReady, strategy_for, wait_ready
from chaos.errors import BadInput, FaultError, StackError
from chaos.stackfile.definition import HealthCheck, ServiceSpec, StackDefinition


def parse_url(text: str) -> tuple[str, Endpoint, HealthCheck]:
    """``NAME=URL`` -> (name, endpoint, health check); ``BadInput`` when malformed."""
    name, sep, url = text.partition("=")
    parts = urlsplit(url)
    if not sep or not name or parts.scheme not in ("http", "tcp", "pg") or not parts.hostname:
        raise BadInput(f"{text!r} is not NAME=URL with an http://, tcp:// or pg:// URL")
    port = parts.port or (80 if parts.scheme == "http" else 0)
    if port <= 0:
        raise BadInput(f"{text!r} has no port")
    check = HealthCheck(kind=parts.scheme, path=parts.path or "/health")  # type: ignore[arg-type]
    return name, Endpoint(parts.hostname, port), check


class KubeControl(Protocol):
    """What ``UrlBackend`` asks of the Kubernetes API (``chaos.k8s.kubeops.KubeOps``)."""

    def scale(self, service: str, replicas: int, timeout_s: float) -> None: ...
    def replicas(self, service: str) -> int: ...
    def copy_service(self, source: str, new_name: str, timeout_s: float) -> Endpoint: ...
    def point_link(self, link: str, server: str) -> None: ...
    def link_server(self, link: str) -> str | None: ...


class UrlBackend:
    """A ``chaos.backends.base.Backend`` over URLs (and ``kube``); see the module doc."""

    name = "kubernetes"

    def __init__(
        self,
        definition: StackDefinition,
        services: Mapping[str, str],
        links: Mapping[str, str],
        kube: KubeControl | None = None,
    ) -> None:
        self.definition = definition
        self._services: dict[str, tuple[Endpoint, HealthCheck]] = {}
        for text in services.values():
            name, endpoint, check = parse_url(text)
            self._services[name] = (endpoint, check)
        self._links: dict[str, Endpoint] = {}
        for text in links.values():
            name, endpoint, _ = parse_url(text)
            self._links[name] = endpoint
        self.kube = kube

    @classmethod
    def from_args(
        cls,
        definition: StackDefinition,
        services: Sequence[str],
        links: Sequence[str],
        kube: KubeControl | None = None,
    ) -> UrlBackend:
        return cls(definition, {s: s for s in services}, {lk: lk for lk in links}, kube)

    # -- what faults read ------------------------------------------------------------
    def endpoint(self, service: str) -> Endpoint:
        if service not in self._services:
            raise StackError(f"no URL for service {service!r} (give --service-url {service}=URL)")
        return self._services[service][0]

    def link_endpoint(self, link: str) -> Endpoint:
        if link in self._links:
            return self._links[link]
        server = next((lk.server for lk in self.definition.links if lk.name == link), None)
        if server is None:
            raise StackError(f"no URL for link {link!r} (give --link-url {link}=URL)")
        return self.endpoint(server)

    def is_running(self, service: str) -> bool:
        if self.kube is not None:
            return self.kube.replicas(service) > 0
        return service in self._services

    def pid(self, service: str) -> int | None:
        return None

    def wait_healthy(self, service: str, timeout_s: float = 30.0) -> None:
        endpoint, check = self._services.get(service) or (None, None)
        if endpoint is None or check is None:
            raise StackError(f"no URL for service {service!r}")
        try:
            wait_ready(strategy_for(check, endpoint), timeout_s, interval_s=0.2)
        except NotReady as err:
            raise StackError(f"{service} not healthy after {timeout_s:g}s: {err}") from None

    def status(self) -> list[ServiceStatus]:
        return [
            ServiceStatus(name, True, False, None, endpoint, "")
            for name, (endpoint, _check) in self._services.items()
        ]

    def logs(self, service: str, tail: int = 50) -> str:
        return ""

    # -- what only the Kubernetes API can do -------------------------------------------
    def _kube(self, what: str) -> KubeControl:
        if self.kube is None:
            raise FaultError(f"{what} needs the Kubernetes API (run the step with --namespace)")
        return self.kube

    def start(self, service: str, timeout_s: float = 30.0) -> None:
        self._kube(f"starting {service}").scale(service, 1, timeout_s)

    def stop(self, service: str, grace_s: float | None = None) -> None:
        self._kube(f"stopping {service}").scale(service, 0, 60.0)

    def kill(self, service: str) -> None:
        self.stop(service)

    def restart(self, service: str, downtime_s: float = 0.0, timeout_s: float = 30.0) -> None:
        self.stop(service)
        self.start(service, timeout_s)

    def add_service(self, spec: ServiceSpec, timeout_s: float = 30.0) -> Endpoint:
        source = next((s.name for s in self.definition.services if s.command == spec.command), None)
        if source is None:
            raise FaultError(f"cannot tell which service {spec.name!r} copies")
        endpoint = self._kube(f"adding {spec.name}").copy_service(source, spec.name, timeout_s)
        check = self.definition.service(source).health
        self._services[spec.name] = (endpoint, check)
        self.definition = replace(self.definition, services=(*self.definition.services, spec))
        return endpoint

    def set_link_upstream(self, link: str, upstream: Endpoint) -> None:
        server = next((n for n, (e, _c) in self._services.items() if e == upstream), None)
        if server is None:
            raise FaultError(f"no service listens at {upstream} to point link {link!r} at")
        self._kube(f"switching link {link}").point_link(link, server)

    def _chaos_mesh_does(self, what: str) -> FaultError:
        return FaultError(f"{what} is done by Chaos Mesh on Kubernetes, not by a step")

    def signal(self, service: str, signum: int) -> None:
        raise self._chaos_mesh_does("signalling a service")

    def pause(self, service: str) -> None:
        raise self._chaos_mesh_does("pausing a service")

    def resume(self, service: str) -> None:
        raise self._chaos_mesh_does("resuming a service")

    def throttle(self, service: str, cpu_fraction: float | None) -> None:
        raise self._chaos_mesh_does("throttling a service")

    def start_stack(self) -> None:
        raise self._chaos_mesh_does("starting the stack")

    def stop_stack(self) -> None:
        """Nothing to stop: the stack belongs to the cluster."""


class LinkTable:
    """The ``ProxyControl`` faults read a link's upstream from; on Kubernetes a link is a
    Service, so only ``get`` answers (the server its selector points at)."""

    def __init__(self, backend: UrlBackend) -> None:
        self.backend = backend

    def get(self, proxy: str, /) -> Mapping[str, Any]:
        kube = self.backend.kube
        server = kube.link_server(proxy) if kube is not None else None
        if server is None:
            server = next(
                (lk.server for lk in self.backend.definition.links if lk.name == proxy), None
            )
        return {"name": proxy, "upstream": server, "enabled": True}

    def _none(self, what: str) -> FaultError:
        return FaultError(
            f"{what}: on Kubernetes links have no proxy (network faults are NetworkChaos)"
        )

    def update(self, proxy: str, /, *, enabled: bool = True, upstream: str = "") -> Any:
        raise self._none("updating a link")

    def add_toxic(
        self,
        proxy: str,
        name: str,
        type: str,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, int] | None = None,
    ) -> Any:
        raise self._none("adding a toxic")

    def remove_toxic(self, proxy: str, name: str, /) -> Any:
        raise self._none("removing a toxic")

    def toxics(self, proxy: str, /) -> Sequence[Mapping[str, Any]]:
        return []

    def stats(self, proxy: str, /) -> Mapping[str, Any]:
        return {}
