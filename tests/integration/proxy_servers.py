"""Both Toxiproxy servers for side-by-side tests: ours (``python -m chaos.proxy``) and the
real Toxiproxy 2.12.0 (``real_toxiproxy``; found through ``$TRADECHAOS_REAL_TOXIPROXY``
or the standard build path).

A test module imports the fixtures it uses::

    from proxy_servers import toxiproxy_server  # noqa: F401  (a fixture)

``toxiproxy_server`` is module-scoped and parametrised ``[ours]``/``[real]``: each test of
the module runs against both, one server started per module and kind. Without a real
server the ``[real]`` tests are skipped with the reason, except in CI (``CI=true``), where
a missing server is a failure (.ci/run builds it).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
import real_toxiproxy as real
import requests
from tcp_servers import ProxyProcess

KINDS = ("ours", "real")
HEADERS = {"User-Agent": "tradechaos-tests"}


class ToxiproxyServer(Protocol):
    """What the tests use of ``ProxyProcess`` and ``RealToxiproxy``."""

    kind: str

    @property
    def url(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def pid(self) -> int: ...

    def open_fds(self) -> int: ...


def real_server_path() -> Path:
    """The real server's path; skips the test without one (fails it in CI)."""
    path = real.find_server()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {real.missing_reason()} (.ci/run should have built it)")
        pytest.skip(real.missing_reason())
    return path


@contextlib.contextmanager
def started(kind: str) -> Iterator[ToxiproxyServer]:
    """A server of ``kind`` (``ours`` or ``real``), ready; stopped and reaped on exit."""
    server: ProxyProcess | real.RealToxiproxy
    server = ProxyProcess() if kind == "ours" else real.RealToxiproxy(real_server_path())
    with server:
        if kind == "ours":
            wait_version(server.url)
        yield server


def wait_version(url: str, timeout_s: float = 15.0) -> None:
    from chaos.proxy.client import ToxiproxyClient

    with ToxiproxyClient(url) as api:
        api.wait_ready(timeout_s)


def clean(url: str) -> None:
    """Delete every proxy of the server at ``url`` (toxics go with them)."""
    listed = requests.get(f"{url}/proxies", headers=HEADERS, timeout=5).json()
    for name in listed:
        requests.delete(f"{url}/proxies/{name}", headers=HEADERS, timeout=5)


@pytest.fixture(scope="module", params=KINDS)
def toxiproxy_server(request: pytest.FixtureRequest) -> Iterator[ToxiproxyServer]:
    with started(request.param) as server:
        yield server


@pytest.fixture
def is_real(toxiproxy_server: ToxiproxyServer) -> bool:
    return toxiproxy_server.kind == "real"
