"""Invariants of the user's own: SQL checks and checkers registered by entry points.

- A **SQL check** (``checks:`` of a stack or experiment file, ``chaos.stackfile.bindings.
  SqlCheck``) is run by the runner once the run is over, against the stack's database
  (``chaos.bindings.checks``), into ``history/checks.jsonl``: one record per check,
  ``{"time", "check", "database", "query", "count", "rows": [...], "error"?}``. Its checker
  (``SqlChecker``) is pure: every row of its record is a counterexample; no row, it held;
  no record or an ``error``, it is unknown.
- A **Python checker** is registered under the entry-point group ``tradechaos.checkers``
  (``name = "package.module:object"``): the object is a checker (``name`` and
  ``check(history, params) -> Verdict``, the ``chaos.checkers.base.Checker`` protocol), a
  class making one without arguments, or a function ``(history, params) -> Verdict``. It is
  validated when loaded (``load_entry_point``: ``PluginError`` naming the entry point).

Both are named in an experiment's ``invariants`` and appear in verdicts, JUnit and HTML
like the built-ins, and may be expected violated. A user checker that raises, or returns
something other than a ``Verdict``, gives an ``unknown`` verdict naming the problem
(``checked``), never a crashed run.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from typing import Any

from chaos.checkers.base import Checker, FunctionChecker, Verdict, unknown
from chaos.checkers.params import CheckParams
from chaos.history.reader import History

GROUP = "tradechaos.checkers"


class PluginError(ValueError):
    """An entry-point checker cannot be used (one sentence naming the entry point)."""


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return dict(_scan(tuple(sys.path)))


@lru_cache(maxsize=8)
def _scan(path: tuple[str, ...]) -> tuple[tuple[str, metadata.EntryPoint], ...]:
    """The group's entry points for this ``sys.path`` (a scan of every dist-info: ~2 ms,
    done once per path)."""
    del path  # the cache key: a changed sys.path is scanned again
    return tuple((ep.name, ep) for ep in metadata.entry_points(group=GROUP))


def entry_point_names() -> dict[str, str]:
    """Each registered checker's name -> ``module:object`` (nothing is imported)."""
    return {name: ep.value for name, ep in _entry_points().items()}


def load_entry_point(name: str) -> Checker:
    """The checker entry point ``name`` registers, validated; ``PluginError`` otherwise."""
    found = _entry_points().get(name)
    if found is None:
        raise PluginError(f"no entry point {name!r} in group {GROUP}")
    where = f"entry point {name} = {found.value} ({GROUP})"
    try:
        obj = found.load()
    except Exception as err:  # an import error of someone else's package
        raise PluginError(f"{where} cannot be loaded: {type(err).__name__}: {err}") from None
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as err:
            raise PluginError(f"{where}: {obj.__name__}() failed: {err}") from None
    check = getattr(obj, "check", None)
    if callable(check):
        own = getattr(obj, "name", None)
        if own != name:
            raise PluginError(f"{where}: its name is {own!r}, not {name!r}")
        _takes_two(check, f"{where}: check", "(history, params)")
        return _Plugin(name, obj)
    if callable(obj):
        _takes_two(obj, where, "(history, params) -> Verdict")
        return FunctionChecker(name, obj)
    raise PluginError(f"{where} is neither a checker (name and check(history, params)) nor a "
                      "function (history, params) -> Verdict")  # fmt: skip


def _takes_two(function: Callable[..., Any], where: str, form: str) -> None:
    try:
        inspect.signature(function).bind(None, None)
    except TypeError:
        raise PluginError(f"{where} does not take two arguments {form}") from None
    except ValueError:  # a builtin without a signature: trust it
        return


@dataclass(frozen=True)
class _Plugin:
    name: str
    checker: Any

    def check(self, history: History, params: CheckParams) -> Verdict:
        result: Verdict = self.checker.check(history, params)
        return result


@dataclass(frozen=True)
class SqlChecker:
    """The pure half of a SQL check: judges its record in ``history/checks.jsonl``."""

    name: str

    def check(self, history: History, params: CheckParams) -> Verdict:
        record = next((r for r in history.records("checks") if r.get("check") == self.name), None)
        if record is None:
            return unknown(self.name, "history/checks.jsonl has no result of this SQL check "
                           "(it runs when the stack's history is exported)")  # fmt: skip
        if record.get("error"):
            return unknown(self.name, f"its query failed: {record['error']}")
        rows = [r for r in record.get("rows") or () if isinstance(r, Mapping)]
        count = int(record.get("count", len(rows)))
        if count:
            first = ", ".join(f"{k}={v}" for k, v in list(rows[0].items())[:6]) if rows else ""
            message = f"{count} row(s) from {record.get('database')}; first: {first}"
            shown = [dict(r) for r in rows[: params.max_counterexamples]]
            return Verdict(self.name, False, count, count, shown, message)
        return Verdict(self.name, True, 0, 1, [], f"held: the query on {record.get('database')} "
                       "returned no row")  # fmt: skip


def find(name: str, history: History | None) -> Checker | None:
    """The user checker called ``name``: a SQL check the run declared (``run.json``
    ``checks``) or an entry point; None when there is none. ``PluginError`` for an entry
    point that cannot be used."""
    if history is not None and name in history.run.checks:
        return SqlChecker(name)
    if name in _entry_points():
        return load_entry_point(name)
    return None


def run_one(checker: Checker, name: str, history: History, params: CheckParams) -> Verdict:
    """A user checker's verdict, ``unknown`` when it raises or returns no Verdict."""
    try:
        verdict = checker.check(history, params)
    except Exception as err:  # the user's code: its bug must not end the run's checks
        return unknown(name, f"the checker raised {type(err).__name__}: {err}")
    if not isinstance(verdict, Verdict):
        return unknown(name, f"the checker returned {type(verdict).__name__}, not a Verdict")
    if verdict.invariant != name:
        verdict = dataclasses.replace(verdict, invariant=name)
    return verdict
