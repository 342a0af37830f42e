"""Every binding of a running stack, exercised once (``tradechaos stack check``): what a
user runs before their first experiment.

``exercise(definition, places, running, scratch)`` funds one account, submits a tiny
order that does not fill (a limit buy 2% under the market) and cancels it, reads the
market data, reads the trading mode, sets another mode and sets it back, checks the
database a ``db_upgrade`` would migrate, exports the history into ``scratch`` and reads one
record of each kind (the order it sent must be among them), and runs each SQL check's
query once. Each result names the binding, OK / FAIL / SKIP (not declared), and for a
failure what was sent, what came back and which key of the stack file to fix. Nothing is
left changed but the funded account, the cancelled order and the mode switches in the
stack's own records. Only the bindings' own requests are made (``chaos.bindings.http``,
``.sql``, ``.modes``, ``.history``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaos.bindings import sql
from chaos.bindings.checks import run_check
from chaos.bindings.client import BindingError, send
from chaos.bindings.exercise_base import Result, State, http_failure
from chaos.bindings.exercise_history import check_history
from chaos.bindings.exercise_modes import check_trading_mode
from chaos.bindings.exercise_orders import check_orders
from chaos.bindings.http import render
from chaos.bindings.places import Places
from chaos.stackfile.bindings import SqlSource
from chaos.stackfile.definition import StackDefinition

__all__ = ["Result", "exercise"]


def exercise(
    definition: StackDefinition, places: Places, running: Callable[[str], bool], scratch: Path
) -> list[Result]:
    """Exercise every binding in order (see the module doc); never raises for the stack's
    answers, only for a bug of ours."""
    state = State()
    b = definition.bindings
    if b.accounts is not None and b.accounts.traders:
        state.account = b.accounts.traders[0]
    results = [_fund(definition, places, state)]
    results += check_orders(definition, places, state)
    results += check_trading_mode(definition, places, running, state)
    results.append(_db_upgrade(definition, places))
    results += check_history(definition, places, scratch, state)
    results += [_sql_check(check, places) for check in definition.checks]
    return results


# -- accounts ------------------------------------------------------------------------------


def _fund(definition: StackDefinition, places: Places, state: State) -> Result:
    accounts = definition.bindings.accounts
    if accounts is None:
        return Result(
            "accounts.fund",
            "SKIP",
            "no bindings.accounts: experiments use accounts "
            "1..N that the stack's own setup must fund",
        )
    amount = accounts.collateral or 1.0
    fields = {"account": state.account, "amount": amount}
    if accounts.fund_sql is not None:
        try:
            sql.execute(places, accounts.fund_sql.database, accounts.fund_sql.run, fields)
        except Exception as err:  # psycopg: the SQL or the database is wrong
            return Result(
                "accounts.fund",
                "FAIL",
                "the funding statement failed",
                accounts.fund_sql.run,
                f"{type(err).__name__}: {err}",
                "bindings.accounts.fund.sql",
            )
        return Result(
            "accounts.fund", "OK", f"account {state.account} funded with {amount:g} (SQL)"
        )
    if accounts.fund is None:
        return Result("accounts.fund", "SKIP", "no fund: the stack's own setup funds accounts")
    request = accounts.fund
    target = request.via or request.service or ""
    rendered = render(request, fields)
    try:
        status, text = send(places.url(target), rendered, request.timeout_s)
    except BindingError as err:
        return Result(
            "accounts.fund",
            "FAIL",
            "no answer",
            rendered.describe(),
            str(err),
            "bindings.accounts.fund (service or via)",
        )
    if not 200 <= status < 300:
        return http_failure(
            "accounts.fund", rendered.describe(), status, text, "bindings.accounts.fund"
        )
    return Result(
        "accounts.fund",
        "OK",
        f"account {state.account} funded with {amount:g} ({rendered.method} {rendered.path})",
    )


def _db_upgrade(definition: StackDefinition, places: Places) -> Result:
    binding = definition.bindings.db_upgrade
    if binding is None:
        return Result("db_upgrade", "SKIP", "no bindings.db_upgrade: no db_upgrade step")
    clients = binding.clients or tuple(
        lk.name for lk in definition.links if lk.server == binding.database
    )
    names = ", ".join("'" + t.replace("'", "''") + "'" for t in binding.tables)
    query = f"SELECT t FROM unnest(ARRAY[{names}]::text[]) AS t WHERE to_regclass(t) IS NULL"
    try:
        for link in clients:
            sql.scalar(places, SqlSource(link, "SELECT 1"))
        missing = (
            [r["t"] for r in sql.records(places, SqlSource(binding.database, query))]
            if binding.tables
            else []
        )
    except Exception as err:
        return Result(
            "db_upgrade",
            "FAIL",
            "its database is not reachable",
            "SELECT 1",
            f"{type(err).__name__}: {err}",
            "bindings.db_upgrade.database",
        )
    if missing:
        return Result(
            "db_upgrade",
            "FAIL",
            f"no table {', '.join(missing)} in the database",
            fix="bindings.db_upgrade.tables",
        )
    return Result(
        "db_upgrade",
        "OK",
        f"not run (it is a fault); {binding.database} reachable "
        f"through {len(clients)} link(s), {len(binding.tables)} table(s) found",
    )


def _sql_check(check: Any, places: Places) -> Result:
    record = run_check(check, places)
    if "error" in record:
        return Result(
            f"checks.{check.name}",
            "FAIL",
            "its query failed",
            check.query,
            record["error"],
            f"checks.{check.name}.sql",
        )
    return Result(f"checks.{check.name}", "OK", f"the query runs; {record['count']} row(s) now")
