"""Cross-reference checks of a stack file: what its JSON Schema cannot say.

Every name used must be declared (services, links, options, built-in databases), the
services' dependencies must have no cycle, every placeholder must be known and name
something that exists, and each binding must point at what it needs (the orders link at a
``clients`` link, a history SQL source at a built-in postgres). Each problem is recorded
with the line of the offending key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from chaos.files.fields import Reader, known
from chaos.files.yamlsource import LineDict, dotted, line_at
from chaos.stackfile import bindings as B
from chaos.stackfile.model import CLIENTS, ArgGroup, Command, ServiceDecl, StackFile
from chaos.stackfile.placeholders import (
    PlaceholderError,
    request_fields,
    service_placeholders,
)

MODE_FIELDS = ("mode",)
FUND_FIELDS = ("account", "amount")


class _Check:
    def __init__(self, r: Reader, doc: LineDict, stack: StackFile) -> None:
        self.r = r
        self.doc = doc
        self.stack = stack
        self.services = {s.name: s for s in stack.services}
        self.links = {lk.name: lk for lk in stack.links}

    def fail(self, path: Sequence[Any], problem: str) -> None:
        self.r.fail(line_at(self.doc, path), dotted(path), problem)

    # -- names -------------------------------------------------------------------------
    def option(self, path: Sequence[Any], name: str, boolean: bool = False) -> None:
        bare = name.lstrip("!")
        decl = self.stack.options.get(bare)
        if decl is None:
            self.fail(path, f"unknown option {bare!r} (options: {known(self.stack.options)})")
        elif boolean and decl.type != "bool":
            self.fail(path, f"option {bare!r} is a {decl.type}, not a bool (a condition)")

    def service(self, path: Sequence[Any], name: str) -> bool:
        if name not in self.services:
            self.fail(path, f"unknown service {name!r} (known: {known(self.services)})")
            return False
        return True

    def link(self, path: Sequence[Any], name: str, client: str | None = None) -> bool:
        link = self.links.get(name)
        if link is None:
            self.fail(path, f"unknown link {name!r} (links: {known(self.links)})")
            return False
        if client is not None and link.client != client:
            self.fail(path, f"link {name!r} is used by {link.client}, not by {client!r}")
            return False
        return True

    def database(self, path: Sequence[Any], name: str) -> None:
        """A link to a built-in postgres, or a built-in postgres service."""
        target = self.links[name].server if name in self.links else name
        svc = self.services.get(target)
        if svc is None:
            self.fail(path, f"unknown database {name!r}: name a link to a postgres service or "
                      f"the service (links: {known(self.links)})")  # fmt: skip
        elif svc.builtin != "postgres":
            self.fail(path, f"{name!r} does not lead to a builtin postgres service")

    # -- templates ---------------------------------------------------------------------
    def template(self, path: Sequence[Any], text: str, build_arg: bool = False) -> None:
        try:
            used = list(service_placeholders(text))
        except PlaceholderError as err:
            self.fail(path, str(err))
            return
        for name, arg in used:
            if name == "base_image" and not build_arg:
                self.fail(path, "{base_image} is only known in build args")
            elif name == "option":
                self.option(path, str(arg))
            elif name == "link":
                self.link(path, str(arg))
            elif name == "service":
                self.service(path, str(arg))
            elif name == "url" and arg not in self.links and arg not in self.services:
                self.fail(path, f"{{url:{arg}}} names no link or service")
            elif name == "dsn":
                self.database(path, str(arg))
            elif name == "venue_urls":
                server = self.links[arg].server if arg in self.links else None
                if server is None or self.services[server].builtin != "venues":
                    self.fail(
                        path, f"{{venue_urls:{arg}}} needs a link to a builtin venues service"
                    )

    def command(self, path: Sequence[Any], command: Command) -> None:
        for index, item in enumerate(command):
            if isinstance(item, ArgGroup):
                self.option([*path, index, "when"], item.when, boolean=True)
                for sub, arg in enumerate(item.args):
                    self.template([*path, index, "args", sub], arg)
            else:
                self.template([*path, index], item)

    def request(self, path: Sequence[Any], req: B.Request | None, fields: Iterable[str]) -> None:
        if req is None:
            return
        allowed = tuple(fields)
        texts: list[tuple[list[Any], str]] = [([*path], req.path)]
        texts += [([*path, "query", k], str(v)) for k, v in req.query.items()]
        texts += [([*path, "headers", k], v) for k, v in req.headers.items()]
        texts += list(_strings(req.body, [*path, "body"]))
        for where, text in texts:
            try:
                used = list(request_fields(text))
            except Exception as err:
                self.fail(where, str(err))
                continue
            for name, _conversion in used:
                if name not in allowed:
                    self.fail(where, f"unknown field {{{name}}} here (known: {known(allowed)})")
        for name in req.values:
            if name not in allowed:
                self.fail(
                    [*path, "values", name], f"unknown field {name!r} (known: {known(allowed)})"
                )
        if req.service is not None:
            self.service([*path, "service"], req.service)
        if req.via is not None:
            self.link([*path, "via"], req.via)


def _strings(value: Any, path: list[Any]) -> Iterable[tuple[list[Any], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, [*path, index])


def check(r: Reader, doc: LineDict, stack: StackFile) -> None:
    c = _Check(r, doc, stack)
    _check_links(c)
    for svc in stack.services:
        _check_service(c, svc)
    _check_cycles(c)
    for mitigation in stack.mitigations:
        for service in mitigation.effects:
            c.service(["mitigations", mitigation.name, "services", service], service)
    _check_bindings(c)
    check_names(c.fail, stack.checks, ())
    for check_decl in stack.checks:
        c.database(["checks", check_decl.name, "sql", "database"], check_decl.database)


def check_names(
    fail: Callable[[list[Any], str], None], checks: Sequence[B.SqlCheck], taken: Sequence[str]
) -> None:
    """A user check may not take the name of a built-in invariant, of a checker an entry
    point registers, or of a check in ``taken`` (the stack file's, for an experiment's)."""
    if not checks:
        return
    from chaos.checkers import REGISTRY
    from chaos.checkers.user import entry_point_names

    plugins = entry_point_names()
    for check_decl in checks:
        where = ["checks", check_decl.name]
        if check_decl.name in REGISTRY:
            fail(where, f"{check_decl.name!r} is a built-in invariant's name")
        elif check_decl.name in plugins:
            fail(where, f"{check_decl.name!r} is the name of the checker the entry point "
                 f"{plugins[check_decl.name]} registers")  # fmt: skip
        elif check_decl.name in taken:
            fail(where, f"the stack file declares a check {check_decl.name!r} already")


def _check_links(c: _Check) -> None:
    for index, link in enumerate(c.stack.links):
        path = ["links", index]
        if link.client != CLIENTS:
            c.service(path, link.client)
        c.service(path, link.server)
        if link.client == link.server:
            c.fail(path, f"a link from {link.client} to itself")
        if link.name in c.services:
            c.fail(path, f"link name {link.name!r} is also a service's name")
        if sum(1 for other in c.stack.links if other.name == link.name) > 1:
            c.fail(path, f"link name {link.name!r} is used twice (give one a name:)")
        if link.when is not None:
            c.option([*path, "when"], link.when, boolean=True)


def _check_service(c: _Check, svc: ServiceDecl) -> None:
    path: list[Any] = ["services", svc.name]
    if svc.builtin is not None:
        for key in ("command", "image", "build", "docker"):
            if key in c.doc["services"][svc.name]:
                c.fail([*path, key], f"a builtin {svc.builtin} service takes no {key}")
        if svc.builtin == "postgres" and svc.schema is not None and not svc.schema.is_file():
            c.fail([*path, "schema"], f"no schema file at {svc.schema}")
        if isinstance(svc.count, str):
            name = svc.count[len("{option:") : -1]
            decl = c.stack.options.get(name)
            if decl is None or decl.type != "int":
                c.fail([*path, "count"], f"{svc.count} must name an int option")
        _check_venues(c, svc, path)
    else:
        if not svc.command and not svc.image:
            c.fail(path, "a service needs a command (process backend) or an image (docker)")
        for key in ("database", "schema", "count", "venues"):
            if key in c.doc["services"][svc.name]:
                c.fail([*path, key], f"{key} is a parameter of builtin services only")
    for index, dep in enumerate(svc.depends_on):
        if dep == svc.name:
            c.fail([*path, "depends_on", index], "a service cannot depend on itself")
        else:
            c.service([*path, "depends_on", index], dep)
    if svc.when is not None:
        c.option([*path, "when"], svc.when, boolean=True)
    c.command([*path, "command"], svc.command)
    if svc.docker_command is not None:
        c.command([*path, "docker", "command"], svc.docker_command)
    for key, value in svc.env.items():
        c.template([*path, "env", key], value)
    for key, value in (svc.docker_env or {}).items():
        c.template([*path, "docker", "env", key], value)
    for kind, commands in (("setup", svc.setup), ("after_healthy", svc.after_healthy)):
        for index, command in enumerate(commands):
            c.command([*path, kind, index], command)
    if svc.health is not None and svc.health.command:
        c.command([*path, "health", "command"], svc.health.command)
    if svc.build is not None:
        for key, value in svc.build.args.items():
            c.template([*path, "build", "args", key], value, build_arg=True)
        if svc.build.context is not None and not svc.build.context.is_dir():
            c.fail([*path, "build", "context"], f"no folder at {svc.build.context}")


def _check_venues(c: _Check, svc: ServiceDecl, path: list[Any]) -> None:
    """``venues:`` (one shape per venue) is for builtin venues, instead of ``count``, and
    its symbol maps name the stack's markets, each symbol once per venue."""
    body = c.doc["services"][svc.name]
    for key in ("venues", "count"):
        if key in body and svc.builtin != "venues":
            c.fail([*path, key], f"{key} is a parameter of builtin venues only")
    if "venues" in body and "count" in body:
        c.fail([*path, "count"], "give count or venues (one entry per venue), not both")
    markets = [m.name for m in c.stack.markets]
    for index, venue in enumerate(svc.venues):
        seen: dict[str, str] = {}
        for market, symbol in venue.symbols.items():
            where = [*path, "venues", index, "symbols", market]
            if market not in markets:
                c.fail(where, f"unknown market {market!r} (markets: {known(markets)})")
            elif symbol in seen:
                c.fail(where, f"symbol {symbol!r} is also {seen[symbol]}'s on this venue")
            seen[symbol] = market


def _check_cycles(c: _Check) -> None:
    deps = {s.name: [d for d in s.depends_on if d in c.services] for s in c.stack.services}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for dep in deps[name]:
            if state.get(dep) == 1:
                cycle = " -> ".join([*trail[trail.index(dep) :], dep])
                c.fail(["services", name, "depends_on"], f"dependency cycle: {cycle}")
            elif dep not in state:
                visit(dep, [*trail, dep])
        state[name] = 2

    for name in deps:
        if name not in state:
            visit(name, [name])


def _check_bindings(c: _Check) -> None:
    b = c.stack.bindings
    root = ["bindings"]
    if b.orders is not None:
        path = [*root, "orders"]
        c.link([*path, "via"], b.orders.via, client=CLIENTS)
        if b.orders.failover is not None:
            c.link([*path, "failover"], b.orders.failover, client=CLIENTS)
        c.request([*path, "submit"], b.orders.submit, B.ORDER_FIELDS)
        c.request([*path, "cancel"], b.orders.cancel, B.CANCEL_FIELDS)
        if b.orders.market_data is not None:
            c.request([*path, "market_data"], b.orders.market_data.request, ())
    if b.accounts is not None:
        path = [*root, "accounts"]
        overlap = set(b.accounts.traders) & set(b.accounts.adversaries)
        if overlap:
            c.fail([*path, "adversaries"], f"accounts {sorted(overlap)[:5]} are traders too")
        c.request([*path, "fund"], b.accounts.fund, FUND_FIELDS)
        if b.accounts.fund is not None and not (b.accounts.fund.service or b.accounts.fund.via):
            c.fail([*path, "fund"], "say where to send it: service: NAME or via: LINK")
        if b.accounts.fund_sql is not None:
            c.database([*path, "fund", "sql", "database"], b.accounts.fund_sql.database)
    if b.trading_mode is not None:
        path = [*root, "trading_mode"]
        for index, name in enumerate(b.trading_mode.services):
            c.service([*path, "services", index], name)
        c.request([*path, "set"], b.trading_mode.set, MODE_FIELDS)
        c.request([*path, "get"], b.trading_mode.get, ())
    if b.db_upgrade is not None:
        path = [*root, "db_upgrade"]
        c.database([*path, "database"], b.db_upgrade.database)
        for index, name in enumerate(b.db_upgrade.clients):
            if (
                c.link([*path, "clients", index], name)
                and c.links[name].server != b.db_upgrade.database
            ):
                c.fail([*path, "clients", index],
                       f"link {name!r} does not lead to {b.db_upgrade.database!r}")  # fmt: skip
    if b.history is not None:
        _check_history(c, b.history)
    if b.response is not None:
        _check_response(c, b.response)


def _check_history(c: _Check, history: B.HistoryBinding) -> None:
    path = ["bindings", "history"]
    for name, sources in history.sources.items():
        for index, source in enumerate(sources):
            where = [*path, name] + ([index] if len(sources) > 1 else [])
            if source.sql is not None:
                c.database([*where, "sql", "database"], source.sql.database)
            if source.http is not None:
                c.service([*where, "http", "service"], source.http.service)
            if source.file is not None:
                c.service([*where, "file", "service"], source.file.service)
                c.template([*where, "file", "path"], source.file.path)
    if history.settle is not None:
        for index, pair in enumerate(history.settle.until):
            for key, reading in zip(("value", "at_least"), pair, strict=True):
                where = [*path, "settle", "until", index, key]
                if reading.sql is not None:
                    c.database([*where, "sql", "database"], reading.sql.database)
                elif reading.http_service is not None:
                    c.service([*where, "http", "service"], reading.http_service)


# -- the response binding (issue 21) ------------------------------------------------------


def _check_response(c: _Check, response: B.ResponseBinding) -> None:
    """Its services exist; each request uses only its own fields and goes to them."""
    path = ["bindings", "response"]
    for index, name in enumerate(response.services):
        c.service([*path, "services", index], name)
    for name, fields in B.RESPONSE_FIELDS.items():
        found = response.get(name)
        if found is None:
            continue
        c.request([*path, name], found.request, fields)
        for key in ("service", "via"):
            if getattr(found.request, key) is not None:
                c.fail([*path, name, key], "a response request goes to bindings.response."
                       f"services (each in turn), not to a {key} of its own")  # fmt: skip


# -- end of the response binding ----------------------------------------------------------
