"""The oracle: polls the venues, publishes mark price + funding index, persists them.

``python -m chaos.stack.oracle --port P --db H:P --feeds H:P --seed N --epoch T``

At start each market's funding index and interval are restored from ``market_state``; a
missing row defaults to 0.0 (the Paradex mechanism, deliberately kept). Missed funding
intervals are caught up with the current mark. Every 100 ms: median of the venues' quotes,
funding accrual with the published schedule (``PricePath.funding_rate``), one publication
persisted as an ``oracle_prices`` row + a ``market_state`` upsert in one transaction.

Guards: ``readiness_gates`` (no health, no publication until the db answers and every
market's row exists); ``data_validation`` (drop zero/negative quotes; refuse a funding index
that moved more than ``max_rate * price * (elapsed_intervals + 1)`` from the last valid value,
or from ``market_state`` when there is none, and re-adopt that reference instead).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from chaos.builtins.web import json_response, serve
from chaos.stack.common import Pg, base_parser, every, funding_jump_ok, parse_args, spawn
from chaos.world import MARKET_NAMES, PricePath

log = logging.getLogger("chaos.stack.oracle")


@dataclass
class MarketState:
    funding_index: float
    interval: int | None  # last accrued funding interval; None: adopt the current one
    restored_from: str  # "market_state" | "default" | "validation"
    published: dict[str, Any] | None = None
    fresh_restore: bool = True
    held: bool = False  # data_validation holds publication (no reference value yet)


class Oracle:
    def __init__(self, args: Any) -> None:
        self.args = args
        self.mitigations: frozenset[str] = args.mitigations
        self.path = PricePath(args.seed, args.epoch)
        self.db = Pg(args.db, "oracle", timeout_s=2.0)
        self.feeds_url = f"http://{args.feeds}"
        self.state: dict[str, MarketState] = {}
        self.ready_reason: str | None = "restoring"
        self.session: aiohttp.ClientSession | None = None
        self.last_publication = 0.0

    async def _market_rows(self) -> dict[str, tuple[float, int]]:
        rows = await self.db.fetch("SELECT market, funding_index, interval FROM market_state")
        return {m: (float(f), int(k)) for m, f, k in rows}

    async def restore(self) -> None:
        gated = "readiness_gates" in self.mitigations
        while True:
            try:
                rows = await self._market_rows()
            except Exception as err:
                self.ready_reason = f"db unreachable: {err}"
                await asyncio.sleep(0.2)
                continue
            missing = [m for m in MARKET_NAMES if m not in rows]
            if missing and gated:
                self.ready_reason = f"market_state rows missing: {', '.join(missing)}"
                await asyncio.sleep(0.2)
                continue
            break
        for market in MARKET_NAMES:
            if market in rows:
                index, interval = rows[market]
                self.state[market] = MarketState(index, interval, "market_state")
                log.info(
                    "restored %s funding index %r interval %d from market_state",
                    market,
                    index,
                    interval,
                )
            else:
                self.state[market] = MarketState(0.0, None, "default")
                log.warning("no market_state row for %s: funding index defaults to 0.0", market)
        self.ready_reason = None

    async def fetch_quotes(self) -> dict[str, list[float]]:
        assert self.session is not None
        async with self.session.get(f"{self.feeds_url}/prices") as resp:
            resp.raise_for_status()
            body = await resp.json(loads=json.loads)
        quotes: dict[str, list[float]] = {m: [] for m in MARKET_NAMES}
        for quote in body.get("venues", []):
            price = quote.get("price")
            if quote.get("market") not in quotes or not isinstance(price, (int, float)):
                continue
            if math.isnan(price):
                continue
            if "data_validation" in self.mitigations and not (math.isfinite(price) and price > 0):
                continue
            quotes[quote["market"]].append(float(price))
        return quotes

    def accrue(
        self, market: str, index: float, from_interval: int, to_interval: int, mark: float
    ) -> float:
        for k in range(from_interval + 1, to_interval + 1):
            index += self.path.funding_rate(market, k) * mark
        return index

    async def reference(self, market: str, state: MarketState) -> tuple[float, int] | None:
        if state.published is not None:
            return state.published["funding_index"], state.published["interval"]
        try:
            rows = await self._market_rows()
        except Exception:
            return None
        return rows.get(market)

    async def step(self) -> None:
        if self.ready_reason is not None:
            return
        quotes = await self.fetch_quotes()
        now = time.time()
        k_now = self.path.funding_interval(now)
        publications = []
        for market in MARKET_NAMES:
            inputs = quotes[market]
            if not inputs:
                continue
            mark = statistics.median(inputs)
            state = self.state[market]
            if state.interval is None:
                state.interval = k_now
            index = self.accrue(market, state.funding_index, state.interval, k_now, mark)
            if "data_validation" in self.mitigations:
                ref = await self.reference(market, state)
                if ref is None:
                    if not state.held:
                        log.warning("%s: no reference funding index yet; not publishing", market)
                    state.held = True
                    continue
                state.held = False
                ref_index, ref_interval = ref
                if not funding_jump_ok(
                    ref_index,
                    index,
                    mark,
                    self.path.spec(market).max_funding_rate,
                    k_now - ref_interval,
                ):
                    log.warning(
                        "%s: refusing funding index %r (reference %r at interval %d); "
                        "re-adopting the reference",
                        market,
                        index,
                        ref_index,
                        ref_interval,
                    )
                    index = self.accrue(market, ref_index, ref_interval, k_now, mark)
                    state.restored_from = "validation"
                    state.fresh_restore = True
            state.funding_index = index
            state.interval = k_now
            state.published = {
                "mark_price": mark,
                "funding_index": index,
                "ts": now,
                "interval": k_now,
            }
            publications.append(
                (market, mark, index, k_now, now, json.dumps(inputs), state.fresh_restore)
            )
            state.fresh_restore = False
        if publications:
            self.last_publication = now
            await self.db.run(lambda conn: self._persist(conn, publications))

    @staticmethod
    async def _persist(conn: Any, publications: list[tuple[Any, ...]]) -> None:
        async with conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO oracle_prices (market, mark_price, funding_index, interval, ts, "
                "inputs, restored) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s)",
                publications,
            )
            # The rows come from genesis (or a migration's copy); an UPDATE of a row that is
            # not there yet changes nothing. That is how an online migration can leave a new
            # instance without the funding index a restarting oracle restores from.
            await cur.executemany(
                "UPDATE market_state SET mark_price = %s, funding_index = %s, interval = %s, "
                "ts = %s WHERE market = %s",
                [(p[1], p[2], p[3], p[4], p[0]) for p in publications],
            )

    async def health(self, _request: web.Request) -> web.Response:
        if self.ready_reason is not None:
            gated = "readiness_gates" in self.mitigations
            if gated or self.ready_reason == "restoring":
                return json_response({"status": "unavailable", "reason": self.ready_reason}, 503)
        return json_response(
            {
                "status": "ok",
                "restored_from": {m: s.restored_from for m, s in self.state.items()},
                "last_publication_age": time.time() - self.last_publication
                if self.last_publication
                else None,
            }
        )

    async def prices(self, _request: web.Request) -> web.Response:
        markets = {m: s.published for m, s in self.state.items() if s.published is not None}
        return json_response({"ts": time.time(), "markets": markets})

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=0.5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self.session = session
            await self.restore()
            await every(0.1, self.step, "publication")


def build_app(args: Any) -> web.Application:
    oracle = Oracle(args)
    app = web.Application()
    app.add_routes([web.get("/health", oracle.health), web.get("/prices", oracle.prices)])
    spawn(app, oracle.run, "oracle")
    return app


def main(argv: list[str] | None = None) -> None:
    parser = base_parser("oracle")
    parser.add_argument("--db", required=True, help="host:port (the oracle-db link)")
    parser.add_argument("--feeds", required=True, help="host:port (the oracle-feeds link)")
    args = parse_args(parser, argv)
    serve(build_app(args), args.host, args.port)


if __name__ == "__main__":
    main()
