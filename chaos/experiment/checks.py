"""An experiment's own invariants (docs/experiment-format.md, ``checks``): its ``checks:``
section (SQL checks, the same form as a stack file's), and the names its ``invariants``
may use: the built-ins, the stack file's and its own SQL checks, and the checkers that
``tradechaos.checkers`` entry points register (each loaded and validated here, so a
broken plug-in is an error naming it, not a failed run)."""

from __future__ import annotations

import re
from typing import Any

from chaos.checkers import REGISTRY
from chaos.checkers.user import PluginError, entry_point_names, load_entry_point
from chaos.files.fields import Reader, known
from chaos.files.yamlsource import LineDict
from chaos.stackfile.bindings import SqlCheck
from chaos.stackfile.build import link_name
from chaos.stackfile.model import StackFile
from chaos.stackfile.schema import CHECK_NAME

_NAME = re.compile(CHECK_NAME)


def read_checks(r: Reader, top: LineDict, stack: StackFile) -> tuple[SqlCheck, ...]:
    """The experiment's ``checks:``; each problem recorded with its line."""
    if "checks" not in top:
        return ()
    section = r.mapping(top["checks"], top.line_of("checks"), "checks", list(top["checks"] or ()))
    found: list[SqlCheck] = []
    for name, body in (section or LineDict()).items():
        line = section.line_of(name) if section is not None else top.line
        field = f"checks.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            r.fail(line, field, "a check name is lowercase letters, digits and '_'")
            continue
        problem = _taken(name, stack)
        if problem:
            r.fail(line, field, problem)
            continue
        spec = r.mapping(body, line, field, ("help", "sql"))
        if spec is None or not r.required(spec, "sql", f"{field}.sql"):
            continue
        query = r.mapping(spec["sql"], spec.line_of("sql"), f"{field}.sql", ("database", "query"))
        if query is None:
            continue
        database = r.string(query, "database", f"{field}.sql.database") if r.required(
            query, "database", f"{field}.sql.database") else None  # fmt: skip
        text = r.string(query, "query", f"{field}.sql.query") if r.required(
            query, "query", f"{field}.sql.query") else None  # fmt: skip
        helptext = r.string(spec, "help", f"{field}.help") if "help" in spec else ""
        if database is None or text is None:
            continue
        database = link_name(database, stack.links)
        wrong = database_problem(stack, database)
        if wrong:
            r.fail(query.line_of("database"), f"{field}.sql.database", wrong)
            continue
        found.append(SqlCheck(name, database, text, helptext or "", line))
    return tuple(found)


def _taken(name: str, stack: StackFile) -> str | None:
    if name in REGISTRY:
        return f"{name!r} is a built-in invariant's name"
    plugins = entry_point_names()
    if name in plugins:
        return f"{name!r} is the checker the entry point {plugins[name]} registers"
    if any(c.name == name for c in stack.checks):
        return f"stack {stack.name} declares a check {name!r} already"
    return None


def database_problem(stack: StackFile, name: str) -> str | None:
    """Why ``name`` is not a database a check can query (None when it is one)."""
    links = {lk.name: lk for lk in stack.links}
    server = links[name].server if name in links else name
    service = next((s for s in stack.services if s.name == server), None)
    if service is None:
        return (f"unknown database {name!r}: name a link to a builtin postgres service or the "
                f"service (links: {known(links)})")  # fmt: skip
    if service.builtin != "postgres":
        return f"{name!r} does not lead to a builtin postgres service"
    return None


def invariant_names(stack: StackFile, own: tuple[SqlCheck, ...]) -> tuple[str, ...]:
    """Every name ``invariants:`` may list (sorted)."""
    names = {*REGISTRY, *entry_point_names(), *(c.name for c in stack.checks),
             *(c.name for c in own)}  # fmt: skip
    return tuple(sorted(names))


def check_plugins(r: Reader, top: LineDict, invariants: tuple[str, ...]) -> None:
    """Load every entry-point checker the experiment names; a broken one is a problem."""
    plugins = entry_point_names()
    items: Any = top.get("invariants")
    for index, name in enumerate(invariants):
        if name not in plugins or name in REGISTRY:
            continue
        try:
            load_entry_point(name)
        except PluginError as err:
            line = items.line_of(index) if hasattr(items, "line_of") else top.line_of("invariants")
            r.fail(line, f"invariants[{index}]", str(err))
