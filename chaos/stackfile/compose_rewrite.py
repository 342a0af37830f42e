"""How ``tradechaos stack import`` rewrites a Compose service's strings into stack-file
templates, and its healthcheck into a stack-file health check.

An address of another service in an environment value, a command argument or a
healthcheck (``pg:5432``, ``http://api:8080/v1``, ``postgresql://user@pg/db``; in host
networking ``localhost:PORT`` of the service listening there) becomes a link from this
service to that one: ``{link:A-B}`` for ``host:port``, ``{url:A-B}`` for an ``http://`` URL,
``{dsn:A-B}`` for a PostgreSQL URL to a built-in postgres. The service's own port becomes
``{port}``, a bind-all or loopback host ``{host}``, a Python interpreter ``{python}``. In a
file ``tradechaos stack compose`` wrote, the run folder, data dirs, stack folder and
PostgreSQL binaries become ``{run_dir}``, ``{data_dir}``, ``{stack_dir}``, ``{pg_bin}``,
and the proxy's listeners the links they stand for. What cannot be rewritten is noted
(``Rewriter.notes``) for a ``# TODO`` in the draft.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from chaos.stackfile.compose_model import SENTINEL, ComposeService, Healthcheck, placeholder

LOCAL_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "::", "[::]", "::1", "[::1]")
DEFAULT_PORTS = {"http": 80, "https": 443, "postgres": 5432, "postgresql": 5432,
                 "redis": 6379, "amqp": 5672, "mysql": 3306, "nats": 4222}  # fmt: skip
GENERATED_RUN_DIR = "/var/lib/tradechaos/run"  # chaos.backends.compose_gen.RUN_DIR
GENERATED_STACK_DIR = "/var/lib/tradechaos/stack"  # chaos.backends.compose_gen.STACK_DIR
_ADDRESS = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)?"
    r"(?P<user>[^\s@/:,;'\"=]+(?::[^\s@/,;'\"]*)?@)?"
    r"(?<![\w.-])(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_][A-Za-z0-9_.-]*)"
    r"(?::(?P<port>\d{1,5}))?(?![\w.-])"
    r"(?P<path>[/?][^\s,;'\"]*)?"
)
_PYTHON = re.compile(r"^python3?(\.\d+)?$")
_OPTION_PORT = re.compile(r"^(--?[A-Za-z][\w.-]*=)(\d{1,5})$")


@dataclass
class Unit:
    """One service of the draft and what is known of it."""

    name: str  # the stack-file name
    compose: ComposeService
    kind: str | None = None  # postgres | venues | None
    port: int | None = None
    ports: set[int] = field(default_factory=set)
    database: str | None = None  # builtin postgres

    @property
    def hostnames(self) -> set[str]:
        return {self.compose.name, self.name, *self.compose.aliases}

    @property
    def host_network(self) -> bool:
        return self.compose.network_mode == "host"


@dataclass(frozen=True)
class Proxied:
    """A listener of tradechaos's proxy in a generated file: the link it stands for."""

    link: str
    client: str
    server: str


class Links:
    """The links the draft declares, in the order first used."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[str, str]] = {}

    def add(self, client: str, server: str, name: str | None = None) -> str:
        link = name or f"{client}-{server}"
        self.items.setdefault(link, (client, server))
        return link


class Rewriter:
    """Rewrites the strings of one unit (see the module doc)."""

    def __init__(
        self,
        unit: Unit,
        units: Mapping[str, Unit],
        links: Links,
        proxied: Mapping[tuple[str, int], Proxied],
        generated: bool,
    ) -> None:
        self.unit = unit
        self.units = units
        self.links = links
        self.proxied = proxied
        self.generated = generated
        self.notes: list[str] = []

    # -- addresses -------------------------------------------------------------------------
    def target(self, host: str, port: int | None, scheme: str | None) -> Unit | Proxied | None:
        """The unit (or proxy listener) ``host:port`` reaches, or None."""
        wanted = port if port is not None else DEFAULT_PORTS.get((scheme or "").lower())
        if wanted is not None and (host, wanted) in self.proxied:
            return self.proxied[(host, wanted)]
        for unit in self.units.values():
            if host in unit.hostnames:
                if wanted is not None and unit.port is None and not unit.ports:
                    unit.port = wanted  # the first address of it we meet tells its port
                    unit.ports.add(wanted)
                return unit
        if host in LOCAL_HOSTS and wanted is not None:
            local = [u for u in self.units.values() if u.host_network and wanted in u.ports]
            if self.unit.host_network and local:
                return local[0]
            if wanted in self.unit.ports:
                return self.unit
        return None

    def _address(self, match: re.Match[str]) -> str:
        scheme, user, host, port_text, path = match.group("scheme", "user", "host", "port", "path")
        if port_text is None and scheme is None:
            return match.group(0)
        port = int(port_text) if port_text else None
        scheme_name = scheme[:-3].lower() if scheme else None
        found = self.target(host, port, scheme_name)
        if found is None:
            return match.group(0)
        rest = path or ""
        if isinstance(found, Proxied):
            link = found.link
            server = next((u for u in self.units.values() if u.name == found.server), None)
        elif found is self.unit:
            where = placeholder("host") + ":" + placeholder("port")
            if port is not None and port != self.unit.port:
                self.notes.append(f"{match.group(0)} is this service's own address on a port "
                                  f"other than its {self.unit.port}")  # fmt: skip
                where = placeholder("host") + f":{port}"
            return f"{scheme or ''}{user or ''}{where}{rest}"
        else:
            server = found
            link = self.links.add(self.unit.name, found.name)
            if port is not None and found.port is not None and port != found.port:
                self.notes.append(f"{match.group(0)} names {found.name} on port {port}, but "
                                  f"tradechaos gives it one port ({found.port})")  # fmt: skip
        if isinstance(found, Proxied):
            self.links.add(found.client, found.server, found.link)
        if (
            scheme_name in ("postgres", "postgresql")
            and server is not None
            and server.kind == "postgres"
        ):
            database, _, query = rest.lstrip("/").partition("?")
            if (database or server.database) == server.database:
                name = (user or "postgres@").rstrip("@").partition(":")[0]
                if name != "postgres" or (user and ":" in user):
                    self.notes.append(f"{{dsn:{link}}} stands for URLs of user {name}: the "
                                      "builtin postgres takes user postgres without a "
                                      "password")  # fmt: skip
                return placeholder("dsn", link) + (f"?{query}" if query else "")
        if scheme_name == "http" and not user:
            return placeholder("url", link) + rest
        return f"{scheme or ''}{user or ''}{placeholder('link', link)}{rest}"

    def text(self, raw: str) -> str:
        """``raw`` with every address, own port and local host rewritten."""
        if self.generated:
            raw = self._generated(raw)
        if raw in LOCAL_HOSTS:
            return placeholder("host")
        if self.unit.port is not None and raw == str(self.unit.port):
            return placeholder("port")
        option = _OPTION_PORT.match(raw)
        if option and self.unit.port is not None and int(option.group(2)) == self.unit.port:
            return option.group(1) + placeholder("port")
        rewritten = self._venue_urls(_ADDRESS.sub(self._address, raw))
        if rewritten == raw:
            for unit in self.units.values():
                if unit is not self.unit and raw in unit.hostnames:
                    self.notes.append(f"{raw!r} names service {unit.name} without a port: reach "
                                      f"it through a link as host:port, {{link:{self.unit.name}-"
                                      f"{unit.name}}}, and add {self.unit.name}->{unit.name} to "
                                      "links")  # fmt: skip
        return rewritten

    def _venue_urls(self, text: str) -> str:
        """``{url:L}/v/0,{url:L}/v/1,...`` (every venue of a builtin venues service, in
        order) -> ``{venue_urls:L}``."""
        parts = text.split(",")
        first = re.fullmatch(f"{SENTINEL}url:([^{SENTINEL}]+){SENTINEL}/v/0", parts[0])
        if first is None:
            return text
        link = first.group(1)
        server = self.links.items.get(link, ("", ""))[1]
        if not any(u.name == server and u.kind == "venues" for u in self.units.values()):
            return text
        expected = [f"{placeholder('url', link)}/v/{i}" for i in range(len(parts))]
        return placeholder("venue_urls", link) if parts == expected else text

    def _generated(self, raw: str) -> str:
        data_dir = f"{GENERATED_RUN_DIR}/data/{self.unit.compose.labels.get('tradechaos.service')}"
        if raw == data_dir or raw.startswith(data_dir + "/"):
            return placeholder("data_dir") + raw[len(data_dir) :]
        for prefix, name in ((GENERATED_RUN_DIR, "run_dir"), (GENERATED_STACK_DIR, "stack_dir")):
            if raw == prefix or raw.startswith(prefix + "/"):
                return placeholder(name) + raw[len(prefix) :]
        if raw.endswith("/pgserver/pginstall/bin"):
            return placeholder("pg_bin")
        return raw

    def argv(self, argv: tuple[str, ...]) -> list[str]:
        items = [self.text(a) for a in argv]
        if items and _PYTHON.match(PurePosixPath(argv[0]).name):
            items[0] = placeholder("python")
        return items


# -- health ------------------------------------------------------------------------------

_URL = re.compile(
    r"https?://(?P<host>[\w.-]+|\[[0-9a-fA-F:]+\])(?::(?P<port>\d+))?(?P<path>/[^\s'\"]*)?"
)


def health(unit: Unit, rewriter: Rewriter) -> tuple[dict[str, Any] | None, str]:
    """The stack-file health check for ``unit`` (None: the default, e.g. a builtin's) and
    a note for the draft."""
    check = unit.compose.healthcheck
    if unit.kind in ("postgres", "venues"):
        return None, ""
    if check is None:
        if unit.port is not None:
            return {"tcp": True}, "compose has no healthcheck: ready when its port accepts"
        return {"command": ["true"]}, ("TODO: compose has no healthcheck and no port is known: "
                                       "say how to tell it is ready")  # fmt: skip
    extra: dict[str, Any] = {}
    if check.start_period_s:
        total = check.start_period_s + check.interval_s * max(1, check.retries)
        extra["timeout"] = f"{total:g}s"
    text = check.text
    urls = [m for m in _URL.finditer(text) if m.group("host") in {*LOCAL_HOSTS, *unit.hostnames}]
    if len(urls) == 1:
        url = urls[0]
        note = ""
        port = int(url.group("port") or 80)
        if unit.port is not None and port != unit.port:
            note = f"TODO: compose probes port {port}, tradechaos probes the service's {{port}}"
        return {"http": url.group("path") or "/", **extra}, note
    if "pg_isready" in text:
        return {"pg": True, **extra}, ""
    if re.search(r"\bnc\b.*\s-z\b|/dev/tcp/", text):
        return {"tcp": True, **extra}, ""
    command = (
        rewriter.argv(check.test) if check.test is not None else ["sh", "-c", rewriter.text(text)]
    )
    return {"command": command, **extra}, "runs where tradechaos runs on the process backend"


def slow_start_note(check: Healthcheck | None, stack_check: Mapping[str, Any]) -> str:
    """A note when compose allows longer than tradechaos's default 20 s to become healthy."""
    if check is None or "timeout" in stack_check or not check.timed:
        return ""
    allowed = check.interval_s * max(1, check.retries)
    if allowed <= 20.0:
        return ""
    return (f"compose allows {allowed:g}s ({check.interval_s:g}s x {check.retries}); "
            "tradechaos waits 20s unless timeout: says more")  # fmt: skip
