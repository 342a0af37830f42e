"""A stand-in price feed for local development (docker-compose), not part of the exchange.

``python -m minidex.devfeed`` with MINIDEX_PORT and MINIDEX_SYMBOLS: serves ``GET /prices``
in the venues' format, ``{"ts", "venues": [{"venue", "market", "price"}]}``, from three
venues quoting one random walk (60000 for a symbol starting with BTC, else 3000) with a
little noise each. tradechaos replaces it with its own venues, which quote the true price.
"""

from __future__ import annotations

import math
import random
import time

from aiohttp import web

from minidex.config import load
from minidex.web import reply, serve

VENUES = 3


def build_app(symbols: tuple[str, ...], seed: int = 1) -> web.Application:
    rng = random.Random(seed)
    prices = {s: 60_000.0 if s.startswith("BTC") else 3_000.0 for s in symbols}
    last = [time.time()]

    async def quotes(_request: web.Request) -> web.Response:
        now = time.time()
        for sym in prices:  # a step of the walk per elapsed 100 ms
            steps = min(100, int((now - last[0]) / 0.1))
            prices[sym] *= math.exp(sum(rng.gauss(0, 0.0006) for _ in range(steps)))
        last[0] += int((now - last[0]) / 0.1) * 0.1
        venues = [
            {"venue": v, "market": s, "price": p * (1 + rng.uniform(-2e-4, 2e-4))}
            for v in range(VENUES)
            for s, p in prices.items()
        ]
        return reply({"ts": now, "venues": venues})

    async def healthz(_request: web.Request) -> web.Response:
        return reply({"ok": True})

    app = web.Application()
    app.add_routes([web.get("/prices", quotes), web.get("/healthz", healthz)])
    return app


def main() -> None:
    settings = load("devfeed", required=())
    serve(build_app(settings.symbols), settings, "devfeed")


if __name__ == "__main__":
    main()
