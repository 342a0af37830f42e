"""``tradechaos stack import docker-compose.yml``: a Compose project -> a commented
stack-file draft (docs/your-stack.md, docs/stack-file.md).

Every Compose service becomes a stack service, except one-shot jobs (a service another one
waits for with ``service_completed_successfully``), which become ``setup`` commands of the
first service that waits for them. ``image: postgres:*`` becomes ``builtin: postgres`` with
its ``POSTGRES_DB`` (and ``schema:`` when one ``.sql`` file is mounted into
``/docker-entrypoint-initdb.d``); the services named by ``--venues`` (stand-ins for real
exchanges) become ``builtin: venues``. Health comes from each healthcheck
(``chaos.stackfile.compose_rewrite.health``), links and placeholders from the addresses in
environment values and arguments (``chaos.stackfile.compose_rewrite.Rewriter``), a
``depends_on`` from each ``service_healthy`` / ``service_completed_successfully``
dependency (``service_started``, and the short form, only order container starts, which
tradechaos does not: they are noted), ``when:`` options from ``profiles``. A file written
by ``tradechaos stack compose`` is read back to the stack file it came from (its proxy and
init containers are tradechaos's own; their link table gives the links).

What cannot be inferred is a ``# TODO`` comment: the bindings (orders, accounts,
trading_mode, db_upgrade, history), markets, mitigations, and each value the rewriting
could not place. The draft is a valid stack file as written (the TODO parts are comments);
``import_compose`` checks that with the stack-file loader before returning it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.errors import InvalidCompose
from chaos.stackfile import compose_builtins, compose_todos
from chaos.stackfile.compose_model import ComposeFile, ComposeService, placeholder
from chaos.stackfile.compose_read import read_compose
from chaos.stackfile.compose_rewrite import (
    Rewriter,
    Unit,
    health,
    slow_start_note,
)
from chaos.stackfile.compose_units import find_units
from chaos.stackfile.draft import Block, Entry, render

_DATABASE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_INITDB = "/docker-entrypoint-initdb.d"
_BASE_IMAGE = re.compile(r"^(docker\.io/(library/)?)?python:3[\w.-]*$")
SIGNALS = ("TERM", "INT", "QUIT", "HUP", "KILL")


@dataclass(frozen=True)
class Draft:
    text: str
    services: tuple[str, ...]
    links: tuple[str, ...]
    todos: int


def stack_name(text: str) -> str:
    """A slug for the stack's ``name``."""
    slug = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return (slug or "stack")[:63]


def import_compose(
    path: str | Path, venues: tuple[str, ...] = (), output: Path | None = None
) -> Draft:
    """The draft for the Compose file at ``path``, with relative paths as seen from
    ``output`` (the current folder when None); ``InvalidCompose`` for an unreadable file,
    ``ValueError`` for a ``--venues`` name the file lacks."""
    compose = read_compose(path)
    names = [s.name for s in compose.services]
    for name in venues:
        if name not in names:
            raise ValueError(f"--venues {name}: no such service in {path} (services: "
                             f"{', '.join(names)})")  # fmt: skip
    out_dir = (output.parent if output is not None else Path.cwd()).resolve()
    return _Importer(compose, set(venues), out_dir).draft()


class _Importer:
    def __init__(self, compose: ComposeFile, venues: set[str], out_dir: Path) -> None:
        self.compose = compose
        self.venue_names = venues
        self.out_dir = out_dir
        parts = find_units(compose, venues)
        self.links = parts.links
        self.proxied = parts.proxied
        self.units = parts.units
        self.setup = parts.setup
        self.after = parts.after
        self.extra_deps = parts.extra_deps
        self.markets: list[dict[str, Any]] | None = None
        self.options = Block()

    # -- the draft -------------------------------------------------------------------------
    def draft(self) -> Draft:
        services = Block()
        for unit in self.units.values():
            services.add(unit.name, self._service(unit), "", *([""] if services else []))
        doc = Block()
        rel = os.path.relpath(self.compose.path, self.out_dir)
        if rel.startswith("../../.."):
            rel = str(self.compose.path)
        doc.add(None, None, "",
                f"A stack-file draft made by `tradechaos stack import {rel}`.",
                "Every TODO below is a comment, so the draft validates as it is",
                "(`tradechaos validate`). Fill in the bindings, then check them with",
                "`tradechaos stack check --stack THIS_FILE` (docs/your-stack.md).")  # fmt: skip
        if self.compose.unset:
            doc.add(None, None, "", f"TODO: {', '.join(self.compose.unset)} had no value (no .env "
                    "beside the Compose file gives one; compose would take the shell's): they "
                    "are empty text below")  # fmt: skip
        doc.add("name", stack_name(self.compose.name or self.compose.path.parent.name))
        doc.add("description", f"Imported from {rel}.")
        if self.options:
            doc.add("options", self.options, "", "")
        self._markets(doc)
        doc.add("services", services, "", "")
        self._links(doc)
        self._todo_sections(doc)
        text = render(doc)
        return Draft(text, tuple(u.name for u in self.units.values()), tuple(self.links.items),
                     text.count("TODO"))  # fmt: skip

    def _service(self, unit: Unit) -> Block:
        svc = unit.compose
        rewriter = Rewriter(unit, self.units, self.links, self.proxied, self.compose.generated)
        body = Block()
        if unit.kind == "postgres":
            self._postgres(unit, body)
        elif unit.kind == "venues":
            self._venues(unit, body)
        else:
            self._process(unit, rewriter, body)
        check, note = health(unit, rewriter)
        if check is not None:
            body.add("health", check, note or slow_start_note(svc.healthcheck, check))
        deps = self._depends_on(unit, body)
        if deps:
            body.add("depends_on", deps)
        if svc.profiles:
            option = self._profile_option(svc.profiles[0])
            body.add("when", option, f"compose profile {svc.profiles[0]}")
        self._stop(svc, body)
        self._commands(unit, rewriter, body)
        if svc.unsupported:
            body.add(None, None, "", f"TODO: compose's {', '.join(svc.unsupported)} of this "
                     "service are not imported: carry over what it needs by hand")  # fmt: skip
        for note in dict.fromkeys(rewriter.notes):
            body.add(None, None, "", f"TODO: {note}")
        return body

    def _process(self, unit: Unit, rewriter: Rewriter, body: Block) -> None:
        svc = unit.compose
        argv = rewriter.argv(svc.argv)
        if argv:
            note = "" if not svc.entrypoint else "compose: entrypoint + command"
            body.add("command", argv, note)
        ours = svc.image is not None and svc.image.startswith("tradechaos/stack")
        if svc.image is not None and not ours:
            body.add("image", svc.image)
        if ours and self.compose.generated:
            body.add("build", "tradechaos")
        elif svc.build is not None:
            self._build(unit, body)
        env = {k: rewriter.text(v) for k, v in svc.environment.items()
               if not (self.compose.generated and k == "PYTHONUNBUFFERED")}  # fmt: skip
        if env:
            body.add("env", Block(_env_entries(env)))
        if svc.host_env:
            body.add(None, None, "", f"TODO: compose takes {', '.join(svc.host_env)} from the "
                     "shell's environment: give a value under env")  # fmt: skip
        if not argv:
            body.add(None, None, "", "TODO: no command: the process backend runs `command`; "
                     "give it (the docker backend runs the image's own)")  # fmt: skip
        elif not self.compose.generated and argv[0] == placeholder("python"):
            body.add(None, None, "", "TODO: the process backend runs this with tradechaos's "
                     'Python here: make the module importable (e.g. env PYTHONPATH: '
                     '"{stack_dir}/src") or use --backend docker')  # fmt: skip

    def _build(self, unit: Unit, body: Block) -> None:
        compose_builtins.build(unit, body, self.out_dir)

    def _postgres(self, unit: Unit, body: Block) -> None:
        jobs = self.setup.get(unit.compose.name, [])
        compose_builtins.postgres(unit, body, jobs, self.compose.generated, self.out_dir)

    def _venues(self, unit: Unit, body: Block) -> None:
        markets = compose_builtins.venues(unit, body, self.options, self.compose.generated)
        self.markets = markets if markets is not None else self.markets

    def _depends_on(self, unit: Unit, body: Block) -> list[str]:
        deps: list[str] = []
        loose: list[str] = []
        for dep in unit.compose.depends_on:
            target = self._unit_of(dep.service)
            folded = self._folded_into(dep.service) if not self.compose.generated else None
            if target is None and folded not in (None, unit.name):
                body.add(None, None, "", f"TODO: compose waits for the one-shot {dep.service}, "
                         f"which runs as setup of {folded} here")  # fmt: skip
            if target is None or target == unit.name:
                continue
            (loose if dep.condition == "service_started" else deps).append(target)
        for name in self.extra_deps.get(unit.compose.name, []):
            target = self._unit_of(name)
            if target is not None and target != unit.name:
                deps.append(target)
        deps = list(dict.fromkeys(deps))
        loose = [d for d in dict.fromkeys(loose) if d not in deps]
        if loose:
            body.add(None, None, "", f"compose starts it after {', '.join(loose)} has started; "
                     "tradechaos starts them together (add to depends_on to wait for "
                     "healthy)")  # fmt: skip
        return deps

    def _unit_of(self, compose_name: str) -> str | None:
        """The stack service a compose service became part of (None: tradechaos's own
        containers, or a one-shot job folded into another service's setup)."""
        if compose_name in self.units:
            return self.units[compose_name].name
        owner = self.compose.service(compose_name).labels.get("tradechaos.service")
        if self.compose.generated and owner in self.units:
            return self.units[owner].name
        return None

    def _folded_into(self, compose_name: str) -> str | None:
        for first, jobs in self.setup.items():
            if any(job.name == compose_name for job, _ in jobs) and first in self.units:
                return self.units[first].name
        return None

    def _profile_option(self, profile: str) -> str:
        name = re.sub(r"[^A-Za-z0-9_]", "_", profile)
        name = name if name[:1].isalpha() else f"profile_{name}"
        if not any(e.key == name for e in self.options):
            self.options.add(name, {"type": "bool", "default": False,
                                    "help": f"compose profile {profile}"})  # fmt: skip
        return name

    def _stop(self, svc: ComposeService, body: Block) -> None:
        stop: dict[str, Any] = {}
        signal = (svc.stop_signal or "").upper().removeprefix("SIG")
        if signal and signal != "TERM":
            if signal in SIGNALS:
                stop["signal"] = signal
            else:
                body.add(None, None, "", f"TODO: compose stops it with {svc.stop_signal}; "
                         f"tradechaos knows {', '.join(SIGNALS)}")  # fmt: skip
        default = 10.0 if self.units[svc.name].kind == "postgres" else 5.0
        if svc.stop_grace_s is not None and svc.stop_grace_s != default:
            stop["grace"] = f"{svc.stop_grace_s:g}s"
        if stop:
            body.add("stop", stop)

    def _commands(self, unit: Unit, rewriter: Rewriter, body: Block) -> None:
        name = unit.compose.name
        setup = [rewriter.argv(argv) for _svc, argv in self.setup.get(name, []) if argv]
        if unit.kind == "postgres" and self.compose.generated:
            setup = []  # the builtin's own setup
        if setup:
            jobs = ", ".join(job.name for job, _ in self.setup.get(name, []))
            note = "" if self.compose.generated else f"compose: one-shot {jobs}"
            body.add("setup", setup, note)
        after = [rewriter.argv(argv) for _svc, argv in self.after.get(name, []) if argv]
        if after:
            body.add("after_healthy", after)

    def _markets(self, doc: Block) -> None:
        if self.markets:
            markets = Block()
            for spec in self.markets:
                fields = {"initial_price": spec.get("initial_price"),
                          "volatility": spec.get("volatility"),
                          "funding_index": spec.get("initial_funding_index"),
                          "max_funding_rate": spec.get("max_funding_rate"),
                          "tick": spec.get("tick"),
                          "maintenance_margin": spec.get("maintenance_margin")}  # fmt: skip
                markets.add(
                    str(spec.get("name")), {k: v for k, v in fields.items() if v is not None}
                )
            doc.add("markets", markets, "", "")
            return
        doc.add(None, None, "", *compose_todos.lines(compose_todos.MARKETS))

    def _links(self, doc: Block) -> None:
        items = []
        for name, (client, server) in self.links.items.items():
            arrow = f"{client}->{server}"
            items.append(arrow if name == f"{client}-{server}" else {"name": name, "from": client,
                                                                     "to": server})  # fmt: skip
        candidates = [n for n in self._order_candidates() if f"clients-{n}" not in self.links.items]
        before = ["", "Each link is a proxy between two services that faults can delay, cut or",
                  "reset; found in the addresses services are given."]  # fmt: skip
        entry = doc.add("links", items, "", *before)
        if not items:
            entry.value = []
        if candidates:
            doc.add(None, None, "",
                    "TODO links: the service your traders (and tradechaos's probes) call, e.g.",
                    *[f"  - clients->{name}" for name in candidates],
                    "needed by bindings.orders.via")  # fmt: skip

    def _order_candidates(self) -> list[str]:
        """Services that may take the traders' orders: published ports, the likeliest
        names (engine, sequencer, exchange, gateway, api...) first."""
        ranked = ("engine", "sequencer", "exchange", "matcher", "gateway", "api", "order", "trad")
        found = [u for u in self.units.values()
                 if u.kind is None and any(p.published for p in u.compose.ports)]  # fmt: skip

        def rank(unit: Unit) -> int:
            return next((i for i, word in enumerate(ranked) if word in unit.name.lower()), 99)

        return [u.name for u in sorted(found, key=rank)]

    def _todo_sections(self, doc: Block) -> None:
        units = list(self.units.values())
        databases = [u.name for u in units if u.kind == "postgres"]
        plain = [u.name for u in units if u.kind is None]
        api = next((n for n in plain if f"clients-{n}" in self.links.items), None)
        api = api or (self._order_candidates() or ["engine"])[0]
        db_link = next((name for name, (c, s) in self.links.items.items()
                        if s in databases and c == api), None)  # fmt: skip
        db = databases[0] if databases else "db"
        takes_flag = placeholder("mitigations") in "".join(" ".join(u.compose.argv) for u in units)
        doc.add(None, None, "", *compose_todos.mitigations(api, takes_flag))
        doc.add(None, None, "", *compose_todos.bindings(api, db, db_link or db))


def _env_entries(env: dict[str, str]) -> list[Entry]:
    return [Entry(key, value) for key, value in env.items()]


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path, start)


def check_draft(text: str, where: Path) -> list[str]:
    """The stack-file loader's problems with the draft, as if it were at ``where``."""
    import tempfile

    from chaos.stackfile import problems

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=where, delete=False) as handle:
        handle.write(text)
        temp = Path(handle.name)
    try:
        return [p.problem if p.line is None else f"line {p.line}: {p.field}: {p.problem}"
                for p in problems(temp)]  # fmt: skip
    finally:
        temp.unlink(missing_ok=True)


__all__ = ["Draft", "InvalidCompose", "check_draft", "import_compose"]
