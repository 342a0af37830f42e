"""Filling the ``{placeholders}`` of a service's command templates (see ``chaos.stackdef``).

Only the documented names are replaced; any other ``{text}`` (e.g. inside a ``python -c``
snippet) is left alone. ``{link:NAME}`` and ``{service:NAME}`` with an unknown NAME raise
``StackError`` naming it, because a typo there would otherwise surface as a confusing
connection error much later.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from chaos.backends.base import Endpoint
from chaos.errors import StackError

HOST = "127.0.0.1"
_SIMPLE = (
    "python",
    "port",
    "host",
    "run_dir",
    "data_dir",
    "seed",
    "epoch",
    "mitigations",
    "toxiproxy_url",
    "pg_bin",
    "run_id",
)
_PATTERN = re.compile(r"\{(" + "|".join(_SIMPLE) + r"|link|service)(?::([A-Za-z0-9_.-]+))?\}")
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

    def _simple(self, name: str) -> str:
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

    def _replace(self, match: re.Match[str]) -> str:
        name, arg = match.group(1), match.group(2)
        if name in ("link", "service"):
            table = self.links if name == "link" else self.services
            if arg is None or arg not in table:
                known = ", ".join(sorted(table)) or "none"
                raise StackError(f"unknown {name} {arg!r} in {{{name}:{arg}}} (known: {known})")
            return str(table[arg])
        if arg is not None:
            return match.group(0)
        return self._simple(name)

    def fill(self, template: str) -> str:
        return _PATTERN.sub(self._replace, template)

    def argv(self, command: Sequence[str]) -> list[str]:
        return [self.fill(item) for item in command]
