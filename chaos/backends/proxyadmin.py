"""The few Toxiproxy HTTP API calls the backends make (create, update, delete a proxy).

Speaks the Toxiproxy API, so it works against the embedded ``chaos.proxy`` and a real
Toxiproxy alike. Every request has a timeout; failures raise ``ProxyError`` (an
infrastructure error) in one sentence naming the URL.
"""

from __future__ import annotations

import time
from typing import Any

from chaos.backends.base import Endpoint
from chaos.errors import ProxyError

REQUEST_TIMEOUT_S = 5.0


def _endpoint(listen: str) -> Endpoint:
    host, _, port = listen.rpartition(":")
    return Endpoint(host.strip("[]") or "127.0.0.1", int(port))


class ProxyAdmin:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import requests  # lazy: heavy import

        try:
            response = requests.request(
                method, self.url + path, json=body, timeout=REQUEST_TIMEOUT_S
            )
        except requests.RequestException as err:
            raise ProxyError(f"the proxy at {self.url} is unreachable ({err})") from None
        if response.status_code >= 400:
            raise ProxyError(
                f"the proxy at {self.url} refused {method} {path}: HTTP "
                f"{response.status_code} {response.text.strip()[:200]}"
            )
        return response.json() if response.content else None

    def wait_ready(self, timeout_s: float) -> None:
        """Poll ``GET /proxies`` until it answers; ProxyError at the timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._call("GET", "/proxies")
                return
            except ProxyError:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(0.02)

    def create(self, name: str, listen: str, upstream: str) -> Endpoint:
        """Create proxy ``name`` (replacing a leftover of that name); return where it listens."""
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": True}
        try:
            created = self._call("POST", "/proxies", body)
        except ProxyError as err:
            if "HTTP 409" not in str(err):
                raise
            self.delete(name)
            created = self._call("POST", "/proxies", body)
        endpoint = _endpoint(str(created["listen"]))
        if endpoint.port == 0:
            endpoint = _endpoint(str(self._call("GET", f"/proxies/{name}")["listen"]))
        return endpoint

    def update(self, name: str, **fields: Any) -> None:
        self._call("POST", f"/proxies/{name}", dict(fields))

    def delete(self, name: str) -> None:
        """Delete proxy ``name``; a proxy that does not exist is not an error."""
        try:
            self._call("DELETE", f"/proxies/{name}")
        except ProxyError as err:
            if "HTTP 404" not in str(err):
                raise
