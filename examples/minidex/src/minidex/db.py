"""PostgreSQL access: one connection per user, re-made after any failure, every call bounded.

A stalled connection never answers, so a server-side statement timeout is not enough: each
call runs under a client-side ``asyncio.timeout``; on timeout or error the connection is
dropped and the next call reconnects. Also the journal's rows as ``Entry`` objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg

from minidex.entry import Entry

T = TypeVar("T")
COLUMNS = tuple(f.name for f in dataclasses.fields(Entry))  # the journal's, in order
_TIMES = ("at", "mark_at")


class Db:
    def __init__(self, dsn: str, name: str, timeout_s: float = 5.0) -> None:
        self.dsn, self.name, self.timeout_s = dsn, name, timeout_s
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def run(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """``work(conn)`` on a live connection (autocommit: use ``conn.transaction()``)."""
        try:
            async with asyncio.timeout(self.timeout_s):
                if self._conn is None or self._conn.closed:
                    self._conn = await psycopg.AsyncConnection.connect(
                        self.dsn,
                        autocommit=True,
                        connect_timeout=max(1, int(self.timeout_s)),
                        application_name=f"minidex-{self.name}",
                    )
                return await work(self._conn)
        except BaseException:
            await self.close()
            raise

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async def go(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

        return await self.run(go)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


def _when(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


def row_of(entry: Entry) -> tuple[Any, ...]:
    return tuple(_when(getattr(entry, c)) if c in _TIMES else getattr(entry, c) for c in COLUMNS)


def entry_of(row: Sequence[Any]) -> Entry:
    values = dict(zip(COLUMNS, row, strict=True))
    for c in _TIMES:
        if values[c] is not None:
            values[c] = values[c].timestamp()
    for c in ("equity", "maint"):
        if values[c] is not None:
            values[c] = float(values[c])
    return Entry(**values)


INSERT_SQL = (
    f"INSERT INTO journal ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
)
SELECT_SQL = f"SELECT {', '.join(COLUMNS)} FROM journal"


async def write(
    conn: psycopg.AsyncConnection[Any],
    entries: Sequence[Entry],
    replies: Sequence[tuple[int, str, int, dict[str, Any]]] = (),
) -> None:
    """``entries`` (and the first reply per (acct, cid)) in one transaction."""
    async with conn.transaction(), conn.cursor() as cur:
        await cur.executemany(INSERT_SQL, [row_of(e) for e in entries])
        if replies:
            await cur.executemany(
                "INSERT INTO replies (acct, cid, txn, reply) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (acct, cid) DO NOTHING",
                [(a, c, n, json.dumps(r)) for a, c, n, r in replies],
            )


async def read(
    conn: psycopg.AsyncConnection[Any], after: int = 0, limit: int | None = None
) -> list[Entry]:
    sql = f"{SELECT_SQL} WHERE n > %s ORDER BY n" + (f" LIMIT {int(limit)}" if limit else "")
    cur = await conn.execute(sql, (after,))
    return [entry_of(row) for row in await cur.fetchall()]


async def read_replies(conn: psycopg.AsyncConnection[Any]) -> dict[tuple[int, str], dict[str, Any]]:
    cur = await conn.execute("SELECT acct, cid, reply FROM replies")
    return {(acct, cid): reply for acct, cid, reply in await cur.fetchall()}
