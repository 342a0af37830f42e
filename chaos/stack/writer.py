"""The chain writer: batches sequenced events and market data into blocks on the chain.

``python -m chaos.stack.writer --port P --db H:P --chain H:P``

Every 250 ms: events with seq > cursor (seq order) and the newest oracle price per market
become one block (a block with no events is written at most once a second, for the market
data). After the chain accepts it, ``writer_state`` records (height, last_seq, hash). The
chain's head is authoritative: at start and after a 409 the cursor is resynced from
``GET /head`` (this is how a rollback is followed).

Rollbacks: the sequencer rolls the db back and leaves a pending row in ``rollbacks``; before
reading events, every step rolls the chain back to that row's height (``POST
/admin/rollback`` with the expected hash of that block), marks it done and resyncs from the
head, then writes the kept events again from the db. A block written between the db's
rollback and this step is dropped with the rest (the chain rollback comes after it), and
nothing is written before the row is marked, so a crash in between only repeats the chain
rollback. Every accepted block is also recorded in ``written_blocks`` (height, last seq,
hash): a rollback to a height finds its last seq there.

Guards: ``readiness_gates`` (no block until the db answers and the ``writer_state`` row
exists); ``data_validation`` (a market's data is left out of the block when its price is
zero/negative/NaN or its funding index jumped beyond the bound from the previous block).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any

import aiohttp
from aiohttp import web

from chaos.builtins.web import json_response, serve
from chaos.stack.blocks import EVENT_COLUMNS, GENESIS_HASH, event_record, make_block
from chaos.stack.common import (
    NEWEST_ORACLE_PRICES_SQL,
    Pg,
    base_parser,
    every,
    funding_jump_ok,
    parse_args,
    spawn,
)
from chaos.world import FUNDING_INTERVAL_S, market_spec

log = logging.getLogger("chaos.stack.writer")
MAX_EVENTS_PER_BLOCK = 2000
EMPTY_BLOCK_EVERY_S = 1.0


class Writer:
    def __init__(self, args: Any) -> None:
        self.args = args
        self.mitigations: frozenset[str] = args.mitigations
        self.db = Pg(args.db, "writer", timeout_s=3.0)
        self.chain_url = f"http://{args.chain}"
        self.session: aiohttp.ClientSession | None = None
        self.height = 0
        self.hash = GENESIS_HASH
        self.last_seq = 0
        self.last_market: dict[str, dict[str, Any]] = {}
        self.synced = False
        self.ready_reason: str | None = "starting"
        self.last_block_at = 0.0
        self.rejected_market_data = 0

    async def wait_ready(self) -> None:
        while "readiness_gates" in self.mitigations:
            try:
                if await self.db.fetch("SELECT height FROM writer_state WHERE id = 1"):
                    break
                self.ready_reason = "writer_state row missing"
            except Exception as err:
                self.ready_reason = f"db unreachable: {err}"
            await asyncio.sleep(0.2)
        self.ready_reason = None

    async def resync(self) -> None:
        assert self.session is not None
        async with self.session.get(f"{self.chain_url}/head") as resp:
            resp.raise_for_status()
            head = await resp.json(loads=json.loads)
        self.height, self.hash, self.last_seq = head["height"], head["hash"], head["last_seq"]
        block = head.get("block") or {}
        self.last_market = {md["market"]: md for md in block.get("market_data", [])}
        self.synced = True
        log.info(
            "cursor synced from the chain head: height %d, last_seq %d", self.height, self.last_seq
        )

    def valid_market_data(self, md: dict[str, Any]) -> bool:
        price, index = md["mark_price"], md["funding_index"]
        if not (math.isfinite(price) and price > 0 and math.isfinite(index)):
            return False
        prev = self.last_market.get(md["market"])
        if prev is None:
            return True
        elapsed = (md["ts"] - prev["ts"]) / FUNDING_INTERVAL_S
        return funding_jump_ok(
            prev["funding_index"], index, price, market_spec(md["market"]).max_funding_rate, elapsed
        )

    async def follow_rollbacks(self) -> None:
        """Carry out pending chain rollbacks, oldest first (see the module). When the block
        at the target height is not the one the rollback expected (the chain was rolled
        back and rewritten since), it rolls back to the highest block holding no event
        after the rollback's seq instead, and says so in ``chain_error``."""
        rows = await self.db.fetch(
            "SELECT id, chain_height, chain_hash, to_seq FROM rollbacks "
            "WHERE chain_done_at IS NULL ORDER BY id"
        )
        for rollback_id, height, expected_hash, to_seq in rows:
            status, answer = await self.chain_rollback(int(height), expected_hash)
            note = None
            if status == 409:
                found = await self.db.fetch(
                    "SELECT COALESCE(max(height), 0) FROM written_blocks WHERE last_seq <= %s",
                    (to_seq,),
                )
                height = int(found[0][0])
                note = f"{answer.get('error')}; rolled back to height {height} instead"
                status, answer = await self.chain_rollback(height, None)
            if status != 200:
                raise RuntimeError(f"chain rollback to height {height} failed: {answer}")
            log.warning("rollback %s: chain at height %s: %s", rollback_id, height, answer)
            await self.db.fetch(
                "UPDATE rollbacks SET chain_done_at = %s, chain_dropped = %s, chain_error = %s, "
                "chain_height = %s WHERE id = %s",
                (time.time(), answer.get("dropped"), note, height, rollback_id),
            )
            await self.db.fetch("DELETE FROM written_blocks WHERE height > %s", (height,))
            self.synced = False

    async def chain_rollback(
        self, height: int, expected_hash: str | None
    ) -> tuple[int, dict[str, Any]]:
        assert self.session is not None
        body: dict[str, Any] = {"height": height}
        if expected_hash:
            body["hash"] = expected_hash
        async with self.session.post(f"{self.chain_url}/admin/rollback", json=body) as resp:
            return resp.status, await resp.json(loads=json.loads, content_type=None)

    async def step(self) -> None:
        if self.ready_reason is not None:
            return
        await self.follow_rollbacks()
        if not self.synced:
            await self.resync()
        rows = await self.db.fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > %s ORDER BY seq, id LIMIT %s",
            (self.last_seq, MAX_EVENTS_PER_BLOCK),
        )
        now = time.time()
        if not rows and now - self.last_block_at < EMPTY_BLOCK_EVERY_S:
            return
        events = [event_record(row) for row in rows]
        market_data = []
        for market, price, index, ts in await self.db.fetch(NEWEST_ORACLE_PRICES_SQL):
            md = {
                "market": market,
                "mark_price": float(price),
                "funding_index": float(index),
                "ts": float(ts),
            }
            if "data_validation" in self.mitigations and not self.valid_market_data(md):
                self.rejected_market_data += 1
                log.warning("leaving invalid market data out of the block: %s", md)
                continue
            market_data.append(md)
        first_seq = events[0]["seq"] if events else self.last_seq + 1
        last_seq = events[-1]["seq"] if events else self.last_seq
        block = make_block(
            self.height + 1, self.hash, events, market_data, first_seq, last_seq, now
        )
        await self.post(block)

    async def post(self, block: dict[str, Any]) -> None:
        assert self.session is not None
        async with self.session.post(f"{self.chain_url}/blocks", json=block) as resp:
            if resp.status == 409:
                log.warning("chain refused height %d (409): resyncing", block["height"])
                self.synced = False
                return
            resp.raise_for_status()
        self.height, self.hash, self.last_seq = block["height"], block["hash"], block["last_seq"]
        for md in block["market_data"]:
            self.last_market[md["market"]] = md
        self.last_block_at = time.time()
        try:
            now = time.time()
            await self.db.fetch(
                "WITH block AS (INSERT INTO written_blocks VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (height) DO UPDATE SET last_seq = EXCLUDED.last_seq, "
                "hash = EXCLUDED.hash, ts = EXCLUDED.ts) "
                "INSERT INTO writer_state (id, height, last_seq, hash, ts) "
                "VALUES (1, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
                "height = EXCLUDED.height, last_seq = EXCLUDED.last_seq, hash = EXCLUDED.hash, "
                "ts = EXCLUDED.ts",
                (self.height, self.last_seq, self.hash, now) * 2,
            )
        except Exception as err:
            log.warning("recording writer_state failed: %s", err)

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=5.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self.session = session
            await self.wait_ready()
            await every(0.25, self.step, "block")

    async def health(self, _request: web.Request) -> web.Response:
        body = {
            "height": self.height,
            "last_seq": self.last_seq,
            "rejected_market_data": self.rejected_market_data,
        }
        if self.ready_reason is not None:
            return json_response(
                {"status": "unavailable", "reason": self.ready_reason, **body}, 503
            )
        return json_response({"status": "ok", **body})


def build_app(args: Any) -> web.Application:
    writer = Writer(args)
    app = web.Application()
    app.add_routes([web.get("/health", writer.health)])
    spawn(app, writer.run, "writer")
    return app


def main(argv: list[str] | None = None) -> None:
    parser = base_parser("writer")
    parser.add_argument("--db", required=True, help="host:port (the writer-db link)")
    parser.add_argument("--chain", required=True, help="host:port (the writer-chain link)")
    args = parse_args(parser, argv)
    serve(build_app(args), args.host, args.port)


if __name__ == "__main__":
    main()
