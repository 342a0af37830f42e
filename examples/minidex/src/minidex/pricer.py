"""The pricer (minidex's oracle): the median of the venues' quotes, written to ``marks``.

``python -m minidex.pricer`` with MINIDEX_PORT, MINIDEX_DB and MINIDEX_VENUES: base URLs,
each serving ``GET /prices`` as ``{"ts", "venues": [{"venue", "market", "price"}]}``.

Every MINIDEX_POLL_MS: ``GET /prices`` from every URL (1 s timeout each); one quote per
(URL, venue, market); per market the median of the positive finite quotes becomes one
``marks`` row, ``at`` = when it was published. Nothing is kept across restarts: a pricer
that is down simply publishes nothing. Serves only ``GET /healthz``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from minidex.config import Settings, load
from minidex.db import Db
from minidex.web import background, every, reply, serve

log = logging.getLogger("minidex.pricer")


def medians(answers: list[Any]) -> dict[str, tuple[float, list[float]]]:
    """Per market, the median of the usable quotes in ``answers`` and the quotes."""
    quotes: dict[str, dict[tuple[int, object], float]] = {}
    for i, answer in enumerate(answers):
        venues = answer.get("venues") if isinstance(answer, dict) else None
        for quote in venues if isinstance(venues, list) else []:
            if not isinstance(quote, dict):
                continue
            market, price = quote.get("market"), quote.get("price")
            if not isinstance(price, int | float) or not isinstance(market, str):
                continue
            if math.isfinite(price) and price > 0:
                quotes.setdefault(market, {})[(i, quote.get("venue"))] = float(price)
    return {m: (statistics.median(q.values()), list(q.values())) for m, q in quotes.items()}


class Pricer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Db(settings.db, "pricer", timeout_s=2.0)
        self.session: aiohttp.ClientSession | None = None
        self.published = 0
        self.last_at: float | None = None

    async def fetch(self, url: str) -> Any:
        assert self.session is not None
        try:
            async with self.session.get(f"{url.rstrip('/')}/prices") as resp:
                resp.raise_for_status()
                return await resp.json(loads=json.loads, content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            log.debug("venue %s: %s", url, err)
            return None

    async def step(self) -> None:
        answers = await asyncio.gather(*(self.fetch(u) for u in self.settings.venues))
        marks = medians(list(answers))
        if not marks:
            return
        at = time.time()
        rows = [
            (m, px, datetime.fromtimestamp(at, UTC), json.dumps(q)) for m, (px, q) in marks.items()
        ]

        async def write(conn: Any) -> None:
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO marks (sym, px, at, inputs) VALUES (%s, %s, %s, %s)", rows
                )

        await self.db.run(write)
        self.published += len(rows)
        self.last_at = at

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=1.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self.session = session
            await every(self.settings.poll_s, self.step, "pricing round")

    async def healthz(self, _request: web.Request) -> web.Response:
        age = None if self.last_at is None else round(time.time() - self.last_at, 3)
        return reply({"ok": True, "published": self.published, "last_age_s": age})


def build_app(settings: Settings) -> web.Application:
    pricer = Pricer(settings)
    app = web.Application()
    app.add_routes([web.get("/healthz", pricer.healthz)])
    app.cleanup_ctx.append(background(pricer.run))
    app["pricer"] = pricer
    return app


def main() -> None:
    settings = load("pricer", required=("MINIDEX_DB", "MINIDEX_VENUES"))
    serve(build_app(settings), settings, "pricer")


if __name__ == "__main__":
    main()
