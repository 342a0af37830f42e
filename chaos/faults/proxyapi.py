"""The Toxiproxy HTTP API client faults use: ``chaos.proxy.client.ToxiproxyClient`` when it
is there, else this module's small ``HttpProxyControl`` (same calls, same API).

Both speak Toxiproxy's HTTP API, so the embedded proxy and a real Toxiproxy
(``--toxiproxy-url``) are interchangeable. Every request has a timeout; failures raise
``ProxyError`` naming the URL.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, cast

from chaos.errors import ProxyError
from chaos.faults.base import ProxyControl

TIMEOUT_S = 5.0


class HttpProxyControl:
    def __init__(self, url: str, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: object = None) -> Any:
        import requests  # lazy: heavy import

        try:
            response = requests.request(method, self.url + path, json=body, timeout=self.timeout_s)
        except requests.RequestException as err:
            raise ProxyError(f"the proxy at {self.url} is unreachable ({err})") from None
        if response.status_code >= 400:
            raise ProxyError(
                f"the proxy at {self.url} refused {method} {path}: HTTP "
                f"{response.status_code} {response.text.strip()[:200]}"
            )
        return response.json() if response.content else None

    def get(self, proxy: str) -> Mapping[str, Any]:
        return cast(Mapping[str, Any], self._call("GET", f"/proxies/{proxy}"))

    def update(self, proxy: str, **fields: Any) -> Any:
        return self._call("POST", f"/proxies/{proxy}", dict(fields))

    def add_toxic(
        self,
        proxy: str,
        name: str,
        type: str,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, int] | None = None,
    ) -> Any:
        body = {
            "name": name,
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        return self._call("POST", f"/proxies/{proxy}/toxics", body)

    def remove_toxic(self, proxy: str, name: str) -> Any:
        return self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def toxics(self, proxy: str) -> Sequence[Mapping[str, Any]]:
        return cast(Sequence[Mapping[str, Any]], self._call("GET", f"/proxies/{proxy}/toxics"))

    def stats(self, proxy: str) -> Mapping[str, Any]:
        return cast(Mapping[str, Any], self._call("GET", f"/proxies/{proxy}/stats"))

    def proxies(self) -> Mapping[str, Any]:
        return cast(Mapping[str, Any], self._call("GET", "/proxies"))


def proxy_control(url: str) -> ProxyControl:
    """The project's Toxiproxy client for ``url`` (falls back to ``HttpProxyControl``)."""
    try:
        module = importlib.import_module("chaos.proxy.client")
    except ModuleNotFoundError:
        return HttpProxyControl(url)
    return cast(ProxyControl, module.ToxiproxyClient(url))
