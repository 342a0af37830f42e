"""The settler: batches the journal into a hash-linked settlement ledger.

``python -m minidex.settler`` with MINIDEX_PORT, MINIDEX_DB and MINIDEX_SETTLE_MS.

Every MINIDEX_SETTLE_MS, the journal entries after the last settled one (up to 2000) become
one ``settlements`` row in one transaction with each touched account's ``balances`` (its
cash as of the batch's last entry, replayed with ``minidex.ledger``): ``digest`` is the
SHA-256 of the previous digest and the batch's entries, so the ledger is append-only and
any rewrite of the journal shows. At start the ledger state is rebuilt by replaying the
journal up to the last settled entry. Serves only ``GET /healthz``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from minidex import db
from minidex.config import Settings, load
from minidex.entry import Entry, post
from minidex.ledger import Ledger
from minidex.web import background, every, reply, serve

log = logging.getLogger("minidex.settler")
BATCH = 2000
GENESIS = "0" * 64


def digest(prev: str, entries: list[Entry]) -> str:
    h = hashlib.sha256(prev.encode())
    for row in map(db.row_of, entries):
        h.update(repr(row).encode())
    return h.hexdigest()


class Settler:
    def __init__(self, settings: Settings) -> None:
        self.db = db.Db(settings.db, "settler", timeout_s=10.0)
        self.ledger: Ledger | None = None
        self.batch, self.last_n, self.prev = 0, 0, GENESIS

    async def resume(self, conn: Any) -> None:
        cur = await conn.execute(
            "SELECT batch, last_n, digest FROM settlements ORDER BY batch DESC LIMIT 1"
        )
        row = await cur.fetchone()
        ledger = Ledger()
        if row is not None:
            self.batch, self.last_n, self.prev = int(row[0]), int(row[1]), row[2]
            for entry in await db.read(conn):
                if entry.n > self.last_n:
                    break
                post(ledger, entry)
        self.ledger = ledger
        log.info("resuming after batch %d (journal entry %d)", self.batch, self.last_n)

    async def step(self) -> None:
        if self.ledger is None:
            await self.db.run(self.resume)
        await self.db.run(self.settle)

    async def settle(self, conn: Any) -> None:
        assert self.ledger is not None
        entries = await db.read(conn, after=self.last_n, limit=BATCH)
        if not entries:
            return
        if entries[0].n != self.last_n + 1:
            log.error("journal gap: entry %d follows %d", entries[0].n, self.last_n)
        touched: set[int] = set()
        for entry in entries:
            touched |= post(self.ledger, entry)
        batch, last_n, new = self.batch + 1, entries[-1].n, digest(self.prev, entries)
        cash = [(a, self.ledger.cash.get(a, 0.0), last_n) for a in sorted(touched)]
        try:
            async with conn.transaction(), conn.cursor() as cur:
                await cur.execute(
                    "INSERT INTO settlements VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (
                        batch,
                        entries[0].n,
                        last_n,
                        len(entries),
                        new,
                        self.prev,
                        datetime.fromtimestamp(time.time(), UTC),
                    ),
                )
                await cur.executemany(
                    "INSERT INTO balances (acct, cash, settled_n) VALUES (%s, %s, %s) "
                    "ON CONFLICT (acct) DO UPDATE SET cash = EXCLUDED.cash, "
                    "settled_n = EXCLUDED.settled_n",
                    cash,
                )
        except BaseException:
            self.ledger = None  # applied in memory but not settled: rebuild
            raise
        self.batch, self.last_n, self.prev = batch, last_n, new

    async def healthz(self, _request: web.Request) -> web.Response:
        return reply({"ok": True, "batch": self.batch, "settled_n": self.last_n})


def build_app(settings: Settings) -> web.Application:
    settler = Settler(settings)
    app = web.Application()
    app.add_routes([web.get("/healthz", settler.healthz)])
    app.cleanup_ctx.append(background(lambda: every(settings.settle_s, settler.step, "settling")))
    app["settler"] = settler
    return app


def main() -> None:
    settings = load("settler")
    serve(build_app(settings), settings, "settler")


if __name__ == "__main__":
    main()
