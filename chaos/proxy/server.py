"""Proxies and their collection: listeners, open links, toxics and counters.

Every method runs on the event loop thread. Mutating collection methods are serialised by
``ProxyCollection.lock`` (the API awaits while binding sockets). Errors a client can cause
are raised as ``ApiError`` with Toxiproxy's status code and message.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from typing import Any

from chaos.proxy.link import DOWNSTREAM, UPSTREAM, Link
from chaos.proxy.toxics import (
    STREAMS,
    InvalidStream,
    Toxic,
    ToxicInputError,
    parse_attributes,
    parse_toxic,
    parse_toxicity,
)

LISTEN_BACKLOG = 4096


class ApiError(Exception):
    """A request failed; ``status`` and ``message`` become ``{"error", "status"}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_address(text: object, what: str, *, port_zero: bool) -> tuple[str, int]:
    """``"host:port"`` (``[v6]:port`` too) as ``(host, port)``; ApiError 400 when malformed."""
    if not isinstance(text, str) or not text:
        raise ApiError(400, f"missing required field: {what}")
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]") if host.startswith("[") else host
    if not sep or not host or not port_text.isdigit():
        raise ApiError(400, f"{what} {text!r} must have the form host:port")
    port = int(port_text)
    if port > 65535 or (port == 0 and not port_zero):
        raise ApiError(400, f"{what} {text!r} has an invalid port")
    if host == "localhost":
        host = "127.0.0.1"
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Proxy:
    """One named proxy: a listener, its open links and its toxics on both streams."""

    def __init__(self, name: str, listen: str, upstream: str) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.upstream_addr = parse_address(upstream, "upstream", port_zero=False)
        self.enabled = False
        self.chains: list[Sequence[Toxic]] = [(), ()]
        self.byte_counts = [0, 0]
        self.links: set[Link] = set()
        self.connections_total = 0
        self.refused = 0
        self.resets = 0
        self.retired_counts: dict[str, int] = {}
        self._server: asyncio.AbstractServer | None = None

    # -- listener --------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on ``listen`` (port 0: a free port, then reported in ``listen``)."""
        if self._server is not None:
            self.enabled = True
            return
        host, port = parse_address(self.listen, "listen", port_zero=True)
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(
                lambda: Link(self).client,
                host,
                port,
                family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                reuse_address=True,
                backlog=LISTEN_BACKLOG,
            )
        except OSError as err:
            raise ApiError(500, f"cannot listen on {self.listen}: {err.strerror or err}") from err
        bound = server.sockets[0].getsockname()
        self.listen = _format_address(host, int(bound[1]))
        self._server = server
        self.enabled = True

    def stop(self) -> None:
        """Stop listening (new connections are refused) and drop every open link."""
        self.enabled = False
        if self._server is not None:
            self._server.close()
            self._server = None
        self.drop_links()

    def drop_links(self) -> None:
        for link in list(self.links):
            link.close(graceful=False)

    # -- links (LinkOwner) -----------------------------------------------------------------

    def link_opened(self, link: Link) -> None:
        self.connections_total += 1
        self.links.add(link)
        if not self.enabled:
            link.close(graceful=False, refused=True)

    def link_closed(self, link: Link, *, refused: bool, reset: bool) -> None:
        self.links.discard(link)
        self.refused += refused
        self.resets += reset

    # -- toxics ----------------------------------------------------------------------------

    def toxics(self) -> list[Toxic]:
        return [*self.chains[UPSTREAM], *self.chains[DOWNSTREAM]]

    def find_toxic(self, name: str) -> Toxic:
        for toxic in self.toxics():
            if toxic.name == name:
                return toxic
        raise ApiError(404, "toxic not found")

    def add_toxic(self, body: object) -> Toxic:
        try:
            toxic = parse_toxic(body)
        except ToxicInputError as err:
            raise ApiError(400, str(err)) from err
        if any(t.name == toxic.name for t in self.toxics()):
            raise ApiError(409, "toxic already exists")
        toxic.removed = asyncio.get_running_loop().create_future()
        index = STREAMS.index(toxic.stream)
        self.chains[index] = (*self.chains[index], toxic)
        for link in list(self.links):
            link.toxic_added(toxic)
        return toxic

    def update_toxic(self, name: str, body: object) -> Toxic:
        """Replace a toxic's attributes and toxicity; open connections re-roll toxicity."""
        old = self.find_toxic(name)
        if not isinstance(body, dict):
            raise ApiError(400, "bad request body: a toxic must be a JSON object")
        try:
            if "stream" in body and body["stream"] != old.stream:
                raise InvalidStream("the stream of an existing toxic cannot be changed")
            attributes = parse_attributes(old.type, body.get("attributes"), old.attributes)
            toxicity = parse_toxicity(body.get("toxicity", old.toxicity))
        except ToxicInputError as err:
            raise ApiError(400, str(err)) from err
        new = Toxic(old.name, old.type, old.stream, toxicity, attributes)
        new.times_applied = old.times_applied
        new.removed = asyncio.get_running_loop().create_future()
        index = STREAMS.index(old.stream)
        self.chains[index] = tuple(new if t is old else t for t in self.chains[index])
        old.mark_removed()
        for link in list(self.links):
            link.toxic_removed(old)
            link.toxic_added(new)
        return new

    def remove_toxic(self, name: str) -> None:
        toxic = self.find_toxic(name)
        index = STREAMS.index(toxic.stream)
        self.chains[index] = tuple(t for t in self.chains[index] if t is not toxic)
        toxic.mark_removed()
        self.retired_counts[name] = self.retired_counts.get(name, 0) + toxic.times_applied
        for link in list(self.links):
            link.toxic_removed(toxic)

    def remove_all_toxics(self) -> None:
        for toxic in self.toxics():
            self.remove_toxic(toxic.name)

    # -- JSON ------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in self.toxics()],
        }

    def stats_json(self) -> dict[str, Any]:
        counts = dict(self.retired_counts)
        for toxic in self.toxics():
            counts[toxic.name] = counts.get(toxic.name, 0) + toxic.times_applied
        return {
            "connections_total": self.connections_total,
            "connections_active": len(self.links),
            "bytes_upstream": self.byte_counts[UPSTREAM],
            "bytes_downstream": self.byte_counts[DOWNSTREAM],
            "refused": self.refused,
            "resets": self.resets,
            "toxics": counts,
        }


def _proxy_fields(body: object) -> tuple[str, str, str, bool]:
    if not isinstance(body, dict):
        raise ApiError(400, "bad request body: a proxy must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "missing required field: name")
    upstream = body.get("upstream")
    if not isinstance(upstream, str) or not upstream:
        raise ApiError(400, "missing required field: upstream")
    listen = body.get("listen") or "127.0.0.1:0"
    if not isinstance(listen, str):
        raise ApiError(400, "listen must be a string host:port")
    enabled = body.get("enabled", True)
    if enabled is None:
        enabled = True
    if not isinstance(enabled, bool):
        raise ApiError(400, "enabled must be true or false")
    return name, listen, upstream, enabled


class ProxyCollection:
    """All proxies of one server, by name."""

    def __init__(self, *, allow_remote: bool = False) -> None:
        self.allow_remote = allow_remote
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(404, "proxy not found")
        return proxy

    def _check_addresses(self, listen: str, upstream: str) -> None:
        up_host, _ = parse_address(upstream, "upstream", port_zero=False)
        listen_host, _ = parse_address(listen, "listen", port_zero=True)
        if self.allow_remote:
            return
        if not is_loopback(up_host):
            raise ApiError(
                400,
                f"upstream {upstream!r} is not a loopback address; "
                "start the proxy with --allow-remote to proxy to other hosts",
            )
        if not is_loopback(listen_host):
            raise ApiError(
                400,
                f"listen {listen!r} is not a loopback address; "
                "start the proxy with --allow-remote to listen on other interfaces",
            )

    async def create(self, body: object) -> Proxy:
        name, listen, upstream, enabled = _proxy_fields(body)
        self._check_addresses(listen, upstream)
        if name in self.proxies:
            raise ApiError(409, "proxy already exists")
        proxy = Proxy(name, listen, upstream)
        if enabled:
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def populate(self, body: object) -> list[Proxy]:
        """Create or replace each listed proxy (replaced only when listen/upstream differ)."""
        if not isinstance(body, list):
            raise ApiError(400, "bad request body: populate takes a JSON array of proxies")
        wanted = []
        for i, item in enumerate(body, start=1):
            try:
                fields = _proxy_fields(item)
                self._check_addresses(fields[1], fields[2])
            except ApiError as err:
                raise ApiError(err.status, f"{err.message} (at proxy {i})") from err
            wanted.append(fields)
        result = []
        for name, listen, upstream, enabled in wanted:
            existing = self.proxies.get(name)
            if existing is not None:
                if existing.upstream == upstream and _same_listen(existing.listen, listen):
                    result.append(existing)
                    continue
                existing.stop()
                del self.proxies[name]
            proxy = Proxy(name, listen, upstream)
            if enabled:
                await proxy.start()
            self.proxies[name] = proxy
            result.append(proxy)
        return result

    async def update(self, name: str, body: object) -> Proxy:
        proxy = self.get(name)
        if not isinstance(body, dict):
            raise ApiError(400, "bad request body: a proxy update must be a JSON object")
        merged = {
            "name": name,
            "listen": body.get("listen") or proxy.listen,
            "upstream": body.get("upstream") or proxy.upstream,
            "enabled": body.get("enabled", proxy.enabled),
        }
        _, listen, upstream, enabled = _proxy_fields(merged)
        self._check_addresses(listen, upstream)
        if upstream != proxy.upstream:
            proxy.upstream = upstream
            proxy.upstream_addr = parse_address(upstream, "upstream", port_zero=False)
            proxy.drop_links()
        if not _same_listen(proxy.listen, listen):
            was_enabled = proxy.enabled
            proxy.stop()
            proxy.listen = listen
            if was_enabled and enabled:
                await proxy.start()
        if enabled and not proxy.enabled:
            await proxy.start()
        elif not enabled and proxy.enabled:
            proxy.stop()
        return proxy

    async def delete(self, name: str) -> None:
        proxy = self.get(name)
        proxy.stop()
        del self.proxies[name]

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic (Toxiproxy's ``POST /reset``)."""
        for proxy in self.proxies.values():
            proxy.remove_all_toxics()
            if not proxy.enabled:
                await proxy.start()

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()


def _same_listen(current: str, wanted: str) -> bool:
    """Whether ``wanted`` names the listener ``current`` already is (port 0 never does)."""
    try:
        return parse_address(current, "listen", port_zero=True) == parse_address(
            wanted, "listen", port_zero=True
        )
    except ApiError:
        return False
