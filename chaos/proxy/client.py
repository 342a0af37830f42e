"""A typed client for the Toxiproxy 2.x HTTP API: our embedded server or a real Toxiproxy.

Every call has a timeout (``timeout_s``). Every failure raises ``chaos.errors.ProxyError``
with one sentence naming the request and, when the server answered, its status and error
text; ``err.status`` holds the HTTP status (None when the server was unreachable).
``stats()`` is a tradechaos extension: against a real Toxiproxy it raises ``ProxyError``
saying it is not supported.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests

from chaos.errors import ProxyError


class ToxiproxyError(ProxyError):
    """The proxy API answered a request with an error status."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


def _segment(name: str) -> str:
    return quote(name, safe="")


class ToxiproxyClient:
    """Client of one proxy server at ``url`` (e.g. ``http://127.0.0.1:8474``)."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "tradechaos"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ToxiproxyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: object = None) -> requests.Response:
        what = f"{method} {path}"
        try:
            response = self._session.request(
                method, self.url + path, json=body, timeout=self.timeout_s
            )
        except requests.RequestException as err:
            raise ToxiproxyError(
                f"the proxy API at {self.url} did not answer {what}: {type(err).__name__}", None
            ) from err
        if response.status_code >= 400:
            raise ToxiproxyError(
                f"the proxy API refused {what}: {response.status_code} {_error_text(response)}",
                response.status_code,
            )
        return response

    def _json(self, method: str, path: str, body: object = None) -> Any:
        response = self._request(method, path, body)
        try:
            return response.json()
        except ValueError as err:
            raise ToxiproxyError(
                f"the proxy API answered {method} {path} with something that is not JSON",
                response.status_code,
            ) from err

    # -- API -------------------------------------------------------------------------------

    def version(self) -> str:
        """The server's version string (``"2.12.0"``-like; a real Toxiproxy's own)."""
        response = self._request("GET", "/version")
        try:
            return str(response.json()["version"])
        except (ValueError, KeyError, TypeError):
            return response.text.strip()

    def wait_ready(self, timeout_s: float) -> None:
        """Poll ``GET /version`` until it answers or ``timeout_s`` passes (then ProxyError)."""
        deadline = time.monotonic() + timeout_s
        last: ProxyError | None = None
        while True:
            try:
                self.version()
                return
            except ProxyError as err:
                last = err
            if time.monotonic() >= deadline:
                raise ProxyError(
                    f"the proxy API at {self.url} was not ready within {timeout_s:g} s ({last})"
                )
            time.sleep(0.05)

    def proxies(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = self._json("GET", "/proxies")
        return result

    def create(self, name: str, listen: str, upstream: str, enabled: bool = True) -> dict[str, Any]:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        result: dict[str, Any] = self._json("POST", "/proxies", body)
        return result

    def populate(self, proxies: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        answer = self._json("POST", "/populate", list(proxies))
        result: list[dict[str, Any]] = answer.get("proxies") or []  # Toxiproxy: none is null
        return result

    def get(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", f"/proxies/{_segment(name)}")
        return result

    def update(self, name: str, **fields: Any) -> dict[str, Any]:
        """Change ``listen``, ``upstream`` and/or ``enabled``; a new upstream drops connections."""
        result: dict[str, Any] = self._json("POST", f"/proxies/{_segment(name)}", fields)
        return result

    def delete(self, name: str) -> None:
        self._request("DELETE", f"/proxies/{_segment(name)}")

    def add_toxic(
        self,
        proxy: str,
        name: str,
        type: str,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, int] | None = None,
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        result: dict[str, Any] = self._json("POST", f"/proxies/{_segment(proxy)}/toxics", body)
        return result

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._request("DELETE", f"/proxies/{_segment(proxy)}/toxics/{_segment(name)}")

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json("GET", f"/proxies/{_segment(proxy)}/toxics")
        return result

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._request("POST", "/reset")

    def stats(self, proxy: str) -> dict[str, Any]:
        """Counters of one proxy (tradechaos extension; see docs/proxy.md)."""
        try:
            result: dict[str, Any] = self._json("GET", f"/proxies/{_segment(proxy)}/stats")
        except ToxiproxyError as err:
            if err.status in (404, 405) and "proxy not found" not in str(err):
                raise ToxiproxyError(
                    f"the proxy server at {self.url} does not support stats "
                    "(not supported by Toxiproxy; it is a tradechaos extension)",
                    err.status,
                ) from err
            raise
        return result


def _error_text(response: requests.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason
    if isinstance(payload, dict) and "error" in payload:
        return str(payload["error"])
    return response.text.strip()[:200]
