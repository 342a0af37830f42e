"""Which Compose services become which stack services (``tradechaos stack import``), and
what each listens on.

Every service is a unit, except: in a file ``tradechaos stack compose`` wrote, its own
proxy and init containers (whose link table is read: ``Parts.proxied``) and the
``NAME-setup``/``NAME-init`` one-shots of a service (its setup and after_healthy
commands); in any other file, a one-shot job (what a service waits for with
``service_completed_successfully``), which becomes a setup command of the first service
that waits for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chaos.stackfile.compose_model import ComposeFile, ComposeService
from chaos.stackfile.compose_rewrite import Links, Proxied, Unit

_POSTGRES_IMAGE = re.compile(r"(^|/)postgres(ql)?(:|@|$)")
_HEALTH_PORTS = (
    r"https?://[\w.\[\]:-]*?:(\d{2,5})(?:/|\b)",
    r"\bnc\b.*-z\s+\S+\s+(\d{2,5})",
    r"pg_isready.*\s-p\s*(\d{2,5})\b",
)
_PORT_FLAGS = ("--port", "-p", "--listen", "--http-port")
MACHINERY = ("proxy", "init")  # the containers of a generated file that are tradechaos's own

Job = tuple[ComposeService, tuple[str, ...]]


def service_name(text: str) -> str:
    """A stack-file service name (a letter, then letters, digits, ``_`` or ``.``)."""
    name = re.sub(r"[^A-Za-z0-9_.]", "_", text)
    return (name if name[:1].isalpha() else f"s_{name}")[:63]


@dataclass
class Parts:
    """The units (by compose name) and what was folded into them."""

    units: dict[str, Unit] = field(default_factory=dict)
    setup: dict[str, list[Job]] = field(default_factory=dict)  # by compose name
    after: dict[str, list[Job]] = field(default_factory=dict)
    extra_deps: dict[str, list[str]] = field(default_factory=dict)
    proxied: dict[tuple[str, int], Proxied] = field(default_factory=dict)
    links: Links = field(default_factory=Links)


def find_units(compose: ComposeFile, venues: set[str]) -> Parts:
    parts = Parts()
    generated = compose.generated
    oneshots = {d.service for s in compose.services for d in s.depends_on
                if d.condition == "service_completed_successfully"}  # fmt: skip
    for svc in compose.services:
        owner = svc.labels.get("tradechaos.service") if generated else None
        if owner in MACHINERY:
            continue
        if owner is not None and owner != svc.name:
            table = parts.setup if "-setup" in svc.name else parts.after
            table.setdefault(owner, []).append((svc, svc.argv))
            continue
        if svc.name in oneshots and not generated:
            first = next(s for s in compose.services
                         if any(d.service == svc.name for d in s.depends_on))  # fmt: skip
            parts.setup.setdefault(first.name, []).append((svc, svc.argv))
            parts.extra_deps.setdefault(first.name, []).extend(
                d.service for d in svc.depends_on if d.condition != "service_started"
            )
            continue
        parts.units[svc.name] = Unit(service_name(svc.name), svc, _kind(svc, venues))
    for unit in parts.units.values():
        _ports(unit)
    if generated:
        _proxy_table(compose, parts)
    return parts


def _kind(svc: ComposeService, venues: set[str]) -> str | None:
    argv = " ".join(svc.argv)
    if svc.name in venues or "chaos.builtins.venues" in argv:
        return "venues"
    if _POSTGRES_IMAGE.search(svc.image or "") or "chaos.builtins.postgres serve" in argv:
        return "postgres"
    return None


def _ports(unit: Unit) -> None:
    """What the unit listens on, most telling first: its healthcheck's port, its published
    or exposed ports, a ``--port``/``--listen`` argument or a bind-all address
    (``0.0.0.0:N``), a ``PORT``-named variable."""
    svc = unit.compose
    found: list[int] = []
    check = svc.healthcheck.text if svc.healthcheck is not None else ""
    for pattern in _HEALTH_PORTS:
        found += [int(p) for p in re.findall(pattern, check)]
    found += [p.target for p in svc.ports] + list(svc.expose)
    argv = list(svc.argv)
    for index, arg in enumerate(argv):
        flag, _, value = arg.partition("=")
        if flag in (*_PORT_FLAGS, "--bind") and not value:
            value = argv[index + 1] if index + 1 < len(argv) else ""
        elif not value:
            value = arg
        bind = re.fullmatch(r"(?:0\.0\.0\.0|\[::\]|)?:(\d{2,5})", value)
        if bind or (flag in _PORT_FLAGS and value.isdigit()):
            found.append(int(bind.group(1) if bind else value))
    for key, value in svc.environment.items():
        bind = re.fullmatch(r"(?:0\.0\.0\.0|\[::\])?:(\d{2,5})", value)
        if bind or (re.fullmatch(r"(.*_)?(HTTP_|LISTEN_)?PORT", key) and value.isdigit()):
            found.append(int(bind.group(1) if bind else value))
    if unit.kind == "postgres" and not found:
        found.append(5432)
    found = list(dict.fromkeys(found))
    unit.ports = set(found)
    unit.port = found[0] if found else None


def _proxy_table(compose: ComposeFile, parts: Parts) -> None:
    """A generated file's init container: ``NAME=LISTEN=UPSTREAM`` per link."""
    init = next((s for s in compose.services
                 if s.labels.get("tradechaos.service") == "init"), None)  # fmt: skip
    by_port = {u.port: u for u in parts.units.values() if u.port is not None}
    for item in init.argv if init is not None else ():
        fields = item.split("=")
        if len(fields) != 3 or ":" not in fields[1] or ":" not in fields[2]:
            continue
        name, listen, upstream = fields
        host, _, port = listen.rpartition(":")
        server = by_port.get(int(upstream.rpartition(":")[2]))
        if server is None or not port.isdigit():
            continue
        client = name[: -len(server.name) - 1] if name.endswith("-" + server.name) else "clients"
        parts.proxied[(host, int(port))] = Proxied(name, client, server.name)
    for proxied in parts.proxied.values():
        parts.links.add(proxied.client, proxied.server, proxied.link)
