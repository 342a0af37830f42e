"""What the process and docker backends do the same way, written once.

``SharedBackend`` holds the parts of the Backend protocol that do not depend on how a
service runs: links through the proxy, endpoints, logs, kill/restart in terms of
stop/launch, and the background setup commands. A backend subclass provides
``_services`` (name -> a record with ``.spec`` and ``.endpoint``), ``_links``, ``_proxy``,
``_setup_futures``, ``run`` and the methods declared at the bottom.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from chaos.backends import ports
from chaos.backends.base import Endpoint
from chaos.backends.proxyadmin import ProxyAdmin
from chaos.errors import BadInput, StackError
from chaos.runner.procutil import log_tail
from chaos.runner.state import RunFolder
from chaos.stackdef import ServiceSpec

HOST = ports.HOST


def needs_proxy(spec: ServiceSpec) -> bool:
    """Whether a setup command of ``spec`` needs a link or the proxy URL (so it can only
    run once the proxy is up)."""
    return any("{link:" in arg or "{toxiproxy_url}" in arg for cmd in spec.setup for arg in cmd)


class SharedBackend:
    run: RunFolder
    _services: Mapping[str, Any]
    _links: dict[str, Endpoint]
    _proxy: ProxyAdmin | None
    _setup_futures: dict[str, Future[None]]

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_stack()

    def _begin_setups(self, pool: ThreadPoolExecutor) -> None:
        """Start the setup commands of every service to be started, in the background;
        commands that need a link or the proxy URL run in ``_launch`` instead."""
        for name, svc in self._services.items():
            if not svc.spec.optional and svc.spec.setup and not needs_proxy(svc.spec):
                self._setup_futures[name] = pool.submit(self._run_setup, name)

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

    def _run_setup(self, service: str) -> None:
        raise NotImplementedError
