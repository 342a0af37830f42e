"""Filling the per-run ``{placeholders}`` of a service's templates (the grammar is
``chaos.stackfile.placeholders``; ``{option:...}`` was filled when the stack was resolved).

Only the documented names are replaced; any other ``{text}`` (e.g. inside a ``python -c``
snippet of a test) is left alone, and ``{{``/``}}`` become literal braces. A name that does
not exist (``{link:NAME}``, ``{service:NAME}``, ...) raises ``StackError`` naming it,
because a typo there would otherwise surface as a confusing connection error much later.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from chaos.backends.base import Endpoint
from chaos.errors import StackError
from chaos.stackfile.definition import StackDefinition
from chaos.stackfile.placeholders import substitute, unescape

HOST = "127.0.0.1"
DEFAULTS = {"seed": "0", "epoch": "1", "mitigations": "all"}


@lru_cache(maxsize=1)
def pg_bin() -> str:
    """The directory of the PostgreSQL binaries shipped by the ``pgserver`` wheel ('' if absent)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        return ""
    return str(Path(spec.origin).parent / "pginstall" / "bin")


@dataclass(frozen=True)
class Placeholders:
    python: str
    port: int
    run_dir: Path
    data_dir: Path
    params: Mapping[str, str] = field(default_factory=dict)
    toxiproxy_url: str = ""
    links: Mapping[str, Endpoint] = field(default_factory=dict)
    services: Mapping[str, Endpoint] = field(default_factory=dict)
    stack_dir: Path | None = None
    databases: Mapping[str, str] = field(default_factory=dict)  # link/service -> db name
    venue_counts: Mapping[str, int] = field(default_factory=dict)  # link -> its venues

    def _simple(self, name: str) -> str:
        if name == "stack_dir":
            return str(self.stack_dir or "")
        if name == "python":
            return self.python
        if name == "port":
            return str(self.port)
        if name == "host":
            return HOST
        if name == "run_dir":
            return str(self.run_dir)
        if name == "data_dir":
            return str(self.data_dir)
        if name == "toxiproxy_url":
            return self.toxiproxy_url
        if name == "pg_bin":
            return pg_bin()
        return str(self.params.get(name, DEFAULTS.get(name, "")))

    def _endpoint(self, kind: str, name: str) -> Endpoint:
        table = self.links if kind == "link" else self.services
        if name in table:
            return table[name]
        if kind in ("url", "dsn") and name in self.links:
            return self.links[name]
        if kind in ("url", "dsn") and name in self.services:
            return self.services[name]
        known = ", ".join(sorted({**self.links, **self.services} if kind != "link" else table))
        raise StackError(f"unknown {kind} {name!r} in {{{kind}:{name}}} (known: {known or 'none'})")

    def _replace(self, name: str, arg: str | None) -> str | None:
        if arg is None:
            return self._simple(name) if name in _SIMPLE else None
        if name in ("link", "service"):
            return str(self._endpoint(name, arg))
        if name == "url":
            return self._endpoint("url", arg).url
        if name == "dsn":
            endpoint = self._endpoint("dsn", arg)
            database = self.databases.get(arg)
            if database is None:
                raise StackError(f"{{dsn:{arg}}}: {arg!r} does not lead to a builtin postgres")
            return f"postgresql://postgres@{endpoint}/{database}"
        if name == "venue_urls":
            count = self.venue_counts.get(arg)
            if count is None:
                raise StackError(f"{{venue_urls:{arg}}}: {arg!r} is not a link to builtin venues")
            base = self._endpoint("link", arg).url
            return ",".join(f"{base}/v/{i}" for i in range(count))
        return None

    def fill(self, template: str) -> str:
        return unescape(substitute(template, self._replace))

    def argv(self, command: Sequence[str]) -> list[str]:
        return [self.fill(item) for item in command]


_SIMPLE = (
    "python", "port", "host", "run_dir", "data_dir", "stack_dir", "seed", "epoch",
    "mitigations", "toxiproxy_url", "pg_bin", "run_id",
)  # fmt: skip


def name_tables(definition: StackDefinition) -> tuple[dict[str, str], dict[str, int]]:
    """(database name of every link to a builtin postgres and of each such service,
    venue count of every link to builtin venues): what ``{dsn:}``/``{venue_urls:}`` need."""
    databases: dict[str, str] = {}
    venues: dict[str, int] = {}
    for spec in definition.services:
        if spec.builtin == "postgres":
            databases[spec.name] = spec.database or "postgres"
    for link in definition.links:
        server = definition.service(link.server)
        if server.builtin == "postgres":
            databases[link.name] = server.database or "postgres"
        if server.builtin == "venues":
            venues[link.name] = server.venues
    return databases, venues
