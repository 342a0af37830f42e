"""Proxies and their collection: listeners, open links, toxics and counters.

Every method runs on the event loop thread. Mutating collection methods are serialised by
``ProxyCollection.lock`` (the API awaits while binding sockets). Errors a client can cause
are raised as ``ApiError`` with Toxiproxy 2.12.0's status code and, where Toxiproxy has a
fixed text, that text (``proxy not found``, ``missing required field: name``, ...).

Request semantics follow the real server (docs/proxy.md lists the deliberate
differences): create checks the name, the upstream, then uniqueness (409), then binds
(500 with Go's text, e.g. ``listen tcp 127.0.0.1:80: bind: address already in use``);
``/populate`` checks every entry's name and upstream first (400, nothing created), then
creates or replaces entries in order and stops at the first failure, keeping those before
it; an update with a different ``listen`` or ``upstream`` drops open connections.
tradechaos adds its policy: ``upstream`` must be a ``host:port`` and, without
``--allow-remote``, ``upstream`` and ``listen`` must be loopback; an empty ``listen`` is
``127.0.0.1:0`` (Toxiproxy: every interface).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence
from typing import Any

from chaos.proxy import addresses
from chaos.proxy.addresses import AddressError
from chaos.proxy.body import BodyError, JsonObject, as_object, bool_field, string_field
from chaos.proxy.link import DOWNSTREAM, UPSTREAM, Link
from chaos.proxy.toxic_input import ToxicInputError, parse_toxic, parse_update
from chaos.proxy.toxics import Toxic

LISTEN_BACKLOG = 4096
DEFAULT_LISTEN = "127.0.0.1:0"


class ApiError(Exception):
    """A request failed; ``status`` and ``message`` become ``{"error", "status"}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_body(err: BodyError) -> ApiError:
    return ApiError(400, f"bad request body: {err}")


def upstream_address(text: str) -> tuple[str, int]:
    """Where to connect for ``upstream``; ApiError 400 unless it is a usable host:port."""
    try:
        address = addresses.parse(text)
    except AddressError as err:
        raise ApiError(400, f"upstream {text!r} is not a host:port address ({err})") from None
    if address.port == 0:
        raise ApiError(400, f"upstream {text!r} has no port")
    host = address.host or "127.0.0.1"  # as Go dials ":port": this machine
    return ("127.0.0.1" if host.lower() == "localhost" else host), address.port


def _listen_socket(address: addresses.Address) -> socket.socket:
    """A bound, listening socket for ``address`` (host ``""``: every interface, both IPs)."""
    host = address.host or "::"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == "::" else 1)
        try:
            sock.bind((host, address.port))
        except OSError as err:
            why = os.strerror(err.errno) if err.errno else str(err)
            raise ApiError(500, f"listen tcp {address}: bind: {why[:1].lower()}{why[1:]}") from err
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Proxy:
    """One named proxy: a listener, its open links and its toxics on both streams."""

    def __init__(self, name: str, listen: str, upstream: str) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.upstream_addr = upstream_address(upstream)
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
        try:
            address = addresses.resolve(self.listen)
        except AddressError as err:
            raise ApiError(500, f"listen tcp: {err}") from None
        sock = _listen_socket(address)
        loop = asyncio.get_running_loop()
        try:
            # the loop listens again on the socket: with its default backlog unless told
            server = await loop.create_server(
                lambda: Link(self).client, sock=sock, backlog=LISTEN_BACKLOG
            )
        except BaseException:
            sock.close()
            raise
        bound = int(server.sockets[0].getsockname()[1])
        self.listen = str(addresses.Address(address.host or "::", bound))
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

    def differs(self, listen: str, upstream: str) -> bool:
        """Whether ``listen``/``upstream`` name another proxy than this one (as Toxiproxy:
        the listen address resolved, so port 0 always differs); ApiError 500 if unresolvable."""
        try:
            wanted = str(addresses.resolve(listen))
        except AddressError as err:
            raise ApiError(500, str(err)) from None
        return wanted != self.listen or upstream != self.upstream

    def set_upstream(self, upstream: str) -> None:
        self.upstream_addr = upstream_address(upstream)
        self.upstream = upstream

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
            toxic = parse_toxic(body, {t.name for t in self.toxics()})
        except BodyError as err:
            raise bad_body(err) from None
        except ToxicInputError as err:
            raise ApiError(err.status, str(err)) from None
        toxic.removed = asyncio.get_running_loop().create_future()
        self.chains[toxic.direction] = (*self.chains[toxic.direction], toxic)
        for link in list(self.links):
            link.toxic_added(toxic)
        return toxic

    def update_toxic(self, name: str, body: object) -> Toxic:
        """Replace a toxic's attributes and toxicity; open connections re-roll toxicity."""
        old = self.find_toxic(name)
        try:
            toxicity, attributes = parse_update(old, body)
        except BodyError as err:
            raise bad_body(err) from None
        except ToxicInputError as err:
            raise ApiError(err.status, str(err)) from None
        new = Toxic(old.name, old.type, old.stream, old.direction, toxicity, attributes)
        new.times_applied = old.times_applied
        new.removed = asyncio.get_running_loop().create_future()
        chain = self.chains[old.direction]
        self.chains[old.direction] = tuple(new if t is old else t for t in chain)
        old.mark_removed()
        for link in list(self.links):
            link.toxic_removed(old)
            link.toxic_added(new)
        return new

    def remove_toxic(self, name: str) -> None:
        toxic = self.find_toxic(name)
        chain = self.chains[toxic.direction]
        self.chains[toxic.direction] = tuple(t for t in chain if t is not toxic)
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


class ProxyFields:
    """The fields of a proxy in a create, populate or update body."""

    def __init__(self, obj: JsonObject, *, listen: str, upstream: str, enabled: bool) -> None:
        self.name = string_field(obj, "name", "")
        self.listen = string_field(obj, "listen", listen) or DEFAULT_LISTEN
        self.upstream = string_field(obj, "upstream", upstream)
        self.enabled = bool_field(obj, "enabled", enabled)

    def missing(self) -> str | None:
        """The first required field that is empty (Toxiproxy's order), if any."""
        return "name" if not self.name else "upstream" if not self.upstream else None


def _fields(body: object, what: str) -> ProxyFields:
    try:
        return ProxyFields(as_object(body, what), listen="", upstream="", enabled=True)
    except BodyError as err:
        raise bad_body(err) from None


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

    def check_policy(self, listen: str, upstream: str) -> None:
        """tradechaos's own checks: a usable upstream; loopback unless ``allow_remote``."""
        up_host = upstream_address(upstream)[0]
        try:
            listen_host: str | None = addresses.parse(listen).host
        except AddressError:
            listen_host = None  # malformed: refused with Toxiproxy's text when it binds
        if self.allow_remote:
            return
        if not addresses.is_loopback(up_host):
            raise ApiError(
                400,
                f"upstream {upstream!r} is not a loopback address; "
                "start the proxy with --allow-remote to proxy to other hosts",
            )
        if listen_host is not None and not addresses.is_loopback(listen_host):
            raise ApiError(
                400,
                f"listen {listen!r} is not a loopback address; "
                "start the proxy with --allow-remote to listen on other interfaces",
            )

    async def create(self, body: object) -> Proxy:
        fields = _fields(body, "a proxy")
        missing = fields.missing()
        if missing:
            raise ApiError(400, f"missing required field: {missing}")
        if fields.name in self.proxies:
            raise ApiError(409, "proxy already exists")
        self.check_policy(fields.listen, fields.upstream)
        proxy = Proxy(fields.name, fields.listen, fields.upstream)
        if fields.enabled:
            await proxy.start()
        self.proxies[fields.name] = proxy
        return proxy

    async def populate(self, body: object) -> tuple[list[Proxy], ApiError | None]:
        """Create or replace each listed proxy in order (kept when listen/upstream are the
        same); the proxies done and the error that stopped it, if one did."""
        if body is not None and not isinstance(body, list):
            raise bad_body(BodyError("populate takes a JSON array of proxies"))
        wanted = [_fields(item, f"proxy {i}") for i, item in enumerate(body or (), start=1)]
        for i, fields in enumerate(wanted, start=1):
            missing = fields.missing()
            if missing:
                raise ApiError(400, f"missing required field: {missing} at proxy {i}")
        for i, fields in enumerate(wanted, start=1):
            try:
                self.check_policy(fields.listen, fields.upstream)
            except ApiError as err:
                raise ApiError(err.status, f"{err.message} at proxy {i}") from None
        done: list[Proxy] = []
        for fields in wanted:
            try:
                done.append(await self._add_or_replace(fields))
            except ApiError as err:
                return done, err
        return done, None

    async def _add_or_replace(self, fields: ProxyFields) -> Proxy:
        existing = self.proxies.get(fields.name)
        if existing is not None:
            if not existing.differs(fields.listen, fields.upstream):
                return existing
            existing.stop()
        proxy = Proxy(fields.name, fields.listen, fields.upstream)
        if fields.enabled:
            await proxy.start()
        self.proxies[fields.name] = proxy
        return proxy

    async def update(self, name: str, body: object) -> Proxy:
        proxy = self.get(name)
        try:
            obj = as_object(body, "a proxy update")
            fields = ProxyFields(
                obj, listen=proxy.listen, upstream=proxy.upstream, enabled=proxy.enabled
            )
        except BodyError as err:
            raise bad_body(err) from None
        if not fields.upstream:
            raise ApiError(400, "missing required field: upstream")
        self.check_policy(fields.listen, fields.upstream)
        if proxy.differs(fields.listen, fields.upstream):
            same_listen = str(addresses.resolve(fields.listen)) == proxy.listen
            if same_listen:  # only the upstream changes: keep listening, drop connections
                proxy.drop_links()
            else:
                proxy.stop()
                proxy.listen = fields.listen
            proxy.set_upstream(fields.upstream)
        if fields.enabled and not proxy.enabled:
            await proxy.start()
        elif not fields.enabled and proxy.enabled:
            proxy.stop()
        return proxy

    async def delete(self, name: str) -> None:
        proxy = self.get(name)
        proxy.stop()
        del self.proxies[name]

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic (Toxiproxy's ``POST /reset``)."""
        for proxy in self.proxies.values():
            if not proxy.enabled:
                await proxy.start()
            proxy.remove_all_toxics()

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()
