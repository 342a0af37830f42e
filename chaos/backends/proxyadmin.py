"""The proxy calls the backends make (create, update, delete a link's proxy), on top of the
typed ``chaos.proxy.client.ToxiproxyClient``: the embedded proxy and a real Toxiproxy alike.

Adds what a backend needs beyond the plain API: ``create`` replaces a leftover proxy of the
same name (a crashed run's, on an external Toxiproxy) and returns where the proxy really
listens (``listen: 127.0.0.1:0`` lets the proxy choose); ``delete`` of a missing proxy is not
an error. Every call has a timeout; failures raise ``ProxyError`` in one sentence.
"""

from __future__ import annotations

from typing import Any

from chaos.backends.base import Endpoint
from chaos.proxy.client import ToxiproxyClient, ToxiproxyError

REQUEST_TIMEOUT_S = 5.0


def _endpoint(listen: str) -> Endpoint:
    host, _, port = listen.rpartition(":")
    return Endpoint(host.strip("[]") or "127.0.0.1", int(port))


class ProxyAdmin:
    def __init__(self, url: str) -> None:
        self.client = ToxiproxyClient(url, timeout_s=REQUEST_TIMEOUT_S)
        self.url = self.client.url

    def wait_ready(self, timeout_s: float) -> None:
        """Poll the API until it answers; ProxyError at the timeout."""
        self.client.wait_ready(timeout_s)

    def create(self, name: str, listen: str, upstream: str) -> Endpoint:
        """Create proxy ``name`` (replacing a leftover of that name); return where it listens."""
        try:
            created = self.client.create(name, listen, upstream)
        except ToxiproxyError as err:
            if err.status != 409:
                raise
            self.delete(name)
            created = self.client.create(name, listen, upstream)
        endpoint = _endpoint(str(created["listen"]))
        if endpoint.port == 0:
            endpoint = _endpoint(str(self.client.get(name)["listen"]))
        return endpoint

    def update(self, name: str, **fields: Any) -> None:
        self.client.update(name, **fields)

    def delete(self, name: str) -> None:
        """Delete proxy ``name``; a proxy that does not exist is not an error."""
        try:
            self.client.delete(name)
        except ToxiproxyError as err:
            if err.status != 404:
                raise

    def close(self) -> None:
        self.client.close()
