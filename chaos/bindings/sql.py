"""SQL reads and writes of bindings against a stack's built-in postgres: the history
export's sources, settle readings, and account funding.

Records come out as plain JSON values: numeric -> float (int when whole and the column is
an integer type), timestamps -> wall-clock seconds, JSON columns named in ``merge`` are
merged into the record, those in ``json`` kept as values (text JSON is decoded).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Iterator, Mapping
from typing import Any

from chaos.bindings.client import BindingError
from chaos.bindings.places import Places
from chaos.stackfile.bindings import SqlSource

FETCH_ROWS = 5000
STATEMENT_TIMEOUT_MS = 60_000


def _connect(places: Places, database: str) -> Any:
    import psycopg

    hostport, dbname = places.database(database)
    host, _, port = hostport.rpartition(":")
    return psycopg.connect(
        host=host or "127.0.0.1",
        port=int(port),
        user="postgres",
        dbname=dbname,
        connect_timeout=5,
        options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
    )


def plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and value.as_tuple().exponent == 0
            else float(value)
        )
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.timestamp()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _decoded(value: Any) -> Any:
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def records(places: Places, source: SqlSource) -> Iterator[dict[str, Any]]:
    """Each row of ``source.query`` as a History record (streamed, server-side cursor).
    A database error (unreachable, a bad query) is a ``BindingError`` naming the database."""
    import psycopg

    try:
        yield from _rows(places, source)
    except psycopg.Error as err:
        raise BindingError(f"{source.database}: {type(err).__name__}: {err}") from None


def _rows(places: Places, source: SqlSource) -> Iterator[dict[str, Any]]:
    with _connect(places, source.database) as conn, conn.cursor(name="tradechaos-export") as cur:
        cur.itersize = FETCH_ROWS
        cur.execute(source.query)
        names = [c.name for c in cur.description or ()]
        for row in cur:
            record: dict[str, Any] = {}
            for name, value in zip(names, row, strict=True):
                if name in source.merge:
                    merged = _decoded(value)
                    if isinstance(merged, Mapping):
                        record.update(merged)
                    continue
                record[name] = _decoded(value) if name in source.json else plain(value)
            yield record


def scalar(places: Places, source: SqlSource) -> Any:
    """The first column of the first row (None when there is no row)."""
    with _connect(places, source.database) as conn:
        row = conn.execute(source.query).fetchone()
    return plain(row[0]) if row else None


def execute(places: Places, database: str, statement: str, params: Mapping[str, Any]) -> None:
    """Run one statement with named parameters (``%(account)s``), committed."""
    with _connect(places, database) as conn:
        conn.execute(statement, dict(params))
        conn.commit()
