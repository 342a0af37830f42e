"""The engine: orders, matching, accounts and the liquidation loop, over the journal.

``python -m minidex.engine`` with MINIDEX_PORT, MINIDEX_DB, MINIDEX_SYMBOLS and the guards
MINIDEX_MAX_MARK_AGE_MS and MINIDEX_DEDUPE (see ``minidex.config``).

    POST   /v1/orders          {"cid", "acct", "sym", "side": BUY|SELL, "kind": LIMIT|MARKET,
                                "px": "60000.5", "sz": "0.01", "po": false}
                               -> {"result": FILLED|RESTING|REJECTED, "txn", "trades", "why"}
    DELETE /v1/orders/{cid}?acct=N   -> {"result": CANCELLED|REJECTED, "txn", "why"}
    GET    /v1/market          -> {"status", "marks": {sym: {"px", "at"}}, "book": {...}}
    GET    /v1/accounts/{acct} -> {"cash", "positions"}
    PUT    /v1/admin/status    {"status": OPEN|REDUCE_ONLY|CANCEL_ONLY|HALTED, "by"}
    POST   /v1/admin/credit    {"acct", "amount": "100000", "by"}
    GET    /healthz            200 once the journal is loaded, else 503

One lock serialises every change, and an operation's journal entries are committed before
its reply is sent: whatever a client was told happened is in the journal. When a commit
fails the outcome is unknown (503 saying so) and the exchange is rebuilt from the journal.
The work under the lock is shielded from a client that goes away mid-request.

Marks are whatever the pricer last wrote to ``marks``, polled every MINIDEX_POLL_MS and
also read once at start, before serving: after a restart the engine has the newest mark in
the database at once, however old it is (the guard is what refuses an old one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from minidex import db
from minidex.config import Settings, load
from minidex.exchange import (
    STATUSES,
    BadRequest,
    Exchange,
    Mark,
    Outcome,
    account,
    decimal,
    parse_order,
    rejected,
)
from minidex.web import background, every, reply, serve

log = logging.getLogger("minidex.engine")
LIQUIDATION_INTERVAL_S = 0.2
MARKS_SQL = (
    "SELECT DISTINCT ON (sym) sym, px, at FROM marks WHERE sym = ANY(%s) ORDER BY sym, n DESC"
)


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = db.Db(settings.db, "engine")
        self.marks_db = db.Db(settings.db, "engine-marks", timeout_s=2.0)
        self.lock = asyncio.Lock()
        self.exchange: Exchange | None = None  # None while (re)loading
        self.marks: dict[str, Mark] = {}
        self.liquidations = 0
        self.passes = 0  # liquidation passes completed
        self._reloading: asyncio.Task[None] | None = None

    async def load(self) -> None:
        """Rebuild the exchange from the journal (retrying until the database answers)."""
        async with self.lock:
            self.exchange = None
            s = self.settings
            while True:
                try:
                    exchange = Exchange(
                        s.symbols, s.maint_margin, s.max_mark_age_s, s.dedupe, s.insurance_acct
                    )
                    reading = db.Db(s.db, "engine-load", timeout_s=60.0)
                    try:
                        entries = await reading.run(db.read)
                        replies = await reading.run(db.read_replies) if s.dedupe else {}
                    finally:
                        await reading.close()
                    exchange.restore(entries, replies)
                    await self.poll_marks()
                    exchange.marks = dict(self.marks)
                    self.exchange = exchange
                    log.info("journal loaded: %d entries, status %s", exchange.n, exchange.status)
                    return
                except Exception as err:
                    log.warning("loading the journal failed, retrying: %s", err)
                    await asyncio.sleep(0.2)

    async def poll_marks(self) -> None:
        rows = await self.marks_db.fetch(MARKS_SQL, (list(self.settings.symbols),))
        self.marks.update({sym: Mark(Decimal(px), at.timestamp()) for sym, px, at in rows})
        if self.exchange is not None:
            self.exchange.marks.update(self.marks)

    async def change(self, operation: Callable[[Exchange, float], Outcome]) -> Outcome:
        """``operation`` under the lock, its entries committed before it returns."""
        return await asyncio.shield(self._change(operation))

    async def _change(self, operation: Callable[[Exchange, float], Outcome]) -> Outcome:
        not_serving = Outcome(rejected("not serving: loading the journal"), http_status=503)
        if self.exchange is None:  # (re)loading holds the lock: answer now, do not queue
            return not_serving
        async with self.lock:
            exchange = self.exchange
            if exchange is None:
                return not_serving
            outcome = operation(exchange, time.time())
            if not outcome.entries:
                return outcome
            key = outcome.reply_key
            replies = [(*key, outcome.entries[0].n, outcome.reply)] if key else []
            try:
                await self.db.run(lambda conn: db.write(conn, outcome.entries, replies))
                return outcome
            except Exception as err:
                log.warning("journal write failed (%s: %s); reloading", type(err).__name__, err)
                why = f"journal write failed, outcome unknown: {type(err).__name__}"
                self.exchange = None
        self._reloading = asyncio.get_running_loop().create_task(self.load())
        return Outcome(rejected(why) | {"result": "UNKNOWN"}, http_status=503)

    async def liquidation_step(self) -> None:
        outcome = await self.change(lambda ex, now: Outcome({}, ex.liquidate(now)))
        self.passes += 1
        for entry in outcome.entries:
            if entry.typ == "LIQ":
                self.liquidations += 1
                log.info(
                    "liquidated account %s %s %s at mark %s (%.2f s old): equity %.2f < %.2f",
                    entry.acct,
                    entry.sym,
                    entry.sz,
                    entry.mark,
                    entry.at - (entry.mark_at or entry.at),
                    entry.equity,
                    entry.maint,
                )

    # -- HTTP ---------------------------------------------------------------------------
    async def respond(self, operation: Callable[[Exchange, float], Outcome]) -> web.Response:
        outcome = await self.change(operation)
        return reply(outcome.reply, outcome.http_status)

    async def place(self, request: web.Request) -> web.Response:
        try:
            order = parse_order(await _json(request), self.settings.symbols)
        except BadRequest as err:
            return reply(rejected(str(err)), 400)
        return await self.respond(lambda ex, now: ex.place(order, now))

    async def cancel(self, request: web.Request) -> web.Response:
        try:
            acct = int(request.query.get("acct", ""))
        except ValueError:
            return reply(rejected("acct must be given as ?acct=N"), 400)
        cid = request.match_info["cid"]
        return await self.respond(lambda ex, now: ex.cancel(acct, cid, now))

    async def set_status(self, request: web.Request) -> web.Response:
        body = await _json(request)
        status, by = body.get("status"), str(body.get("by") or "admin")
        if status not in STATUSES:
            return reply({"why": f"status must be one of {', '.join(STATUSES)}"}, 400)
        return await self.respond(lambda ex, now: ex.set_status(status, by, now))

    async def credit(self, request: web.Request) -> web.Response:
        body = await _json(request)
        try:
            acct, amount = account(body.get("acct")), decimal(body, "amount")
        except BadRequest as err:
            return reply({"why": str(err)}, 400)
        by = str(body.get("by") or "admin")
        return await self.respond(lambda ex, now: ex.credit(acct, amount, now, by))

    async def market(self, _request: web.Request) -> web.Response:
        exchange = self.exchange
        if exchange is None:
            return reply({"why": "loading the journal"}, 503)
        books = exchange.books.items()
        return reply(
            {
                "status": exchange.status,
                "trading": exchange.shown_status(time.time()),
                "marks": {s: {"px": str(m.px), "at": m.at} for s, m in exchange.marks.items()},
                "book": {
                    s: {"bid": _str(b.best("BUY")), "ask": _str(b.best("SELL"))} for s, b in books
                },
            }
        )

    async def account_view(self, request: web.Request) -> web.Response:
        exchange = self.exchange
        if exchange is None:
            return reply({"why": "loading the journal"}, 503)
        acct = int(request.match_info["acct"])
        held = exchange.ledger.open_positions(acct)
        return reply(
            {
                "acct": acct,
                "cash": repr(exchange.ledger.cash.get(acct, 0.0)),
                "positions": {
                    s: {"sz": str(p.size), "entry": repr(p.entry)} for s, p in held.items()
                },
            }
        )

    async def healthz(self, _request: web.Request) -> web.Response:
        exchange = self.exchange
        now = time.time()
        body = {
            "ok": exchange is not None,
            "status": exchange.status if exchange else None,
            "txn": exchange.n if exchange else None,
            "mark_age_s": {s: round(now - m.at, 3) for s, m in self.marks.items()},
            "liquidations": self.liquidations,
            "passes": self.passes,
        }
        return reply(body, 200 if exchange is not None else 503)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {}


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def build_app(settings: Settings) -> web.Application:
    engine = Engine(settings)
    app = web.Application(client_max_size=1 << 16)
    app.add_routes(
        [
            web.post("/v1/orders", engine.place),
            web.delete("/v1/orders/{cid}", engine.cancel),
            web.get("/v1/market", engine.market),
            web.get("/v1/accounts/{acct:\\d+}", engine.account_view),
            web.put("/v1/admin/status", engine.set_status),
            web.post("/v1/admin/credit", engine.credit),
            web.get("/healthz", engine.healthz),
        ]
    )

    async def run() -> None:
        await engine.load()
        await asyncio.gather(
            every(settings.poll_s, engine.poll_marks, "mark poll"),
            every(LIQUIDATION_INTERVAL_S, engine.liquidation_step, "liquidation pass"),
        )

    app.cleanup_ctx.append(background(run))
    app["engine"] = engine
    return app


def main() -> None:
    settings = load("engine")
    serve(build_app(settings), settings, "engine")


if __name__ == "__main__":
    main()
