"""The built-in venues (``builtin: venues``): simulated exchanges serving the true price
path of the world's markets with per-venue noise. tradechaos owns them: the true price is
what the checkers judge against, and the data faults happen here.

``python -m chaos.builtins.venues --port P --seed N --epoch T --venues 3 --markets JSON
[--venue-shape SHAPE[:MARKET=SYMBOL,...]]...`` (``--markets``: a JSON list of
``chaos.world.MarketSpec`` fields, default the reference markets; ``--venue-shape``: venue
0's, then venue 1's...; a venue without one speaks tradechaos's own shape).

Endpoints: ``GET /prices`` and ``GET /venues/{i}/price/{market}`` (every venue, tradechaos's
shape, market names: for the engine and the reference stack), and each venue under
``/v/{i}`` in its own shape (``chaos.builtins.shapes``: Binance, Coinbase, Kraken or
tradechaos's; ``chaos.builtins.stream``: Binance's WebSocket book ticker).

Data faults (per venue and market, ``*`` for all): ``freeze`` (serve the price at the time
the fault began), ``zero``, ``scale`` (x value), ``offset`` (+ value), ``drop`` (503, in the
shape's own error form).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from aiohttp import web

from chaos.builtins import stream
from chaos.builtins.quotes import Venues
from chaos.builtins.shapes import ROUTES
from chaos.builtins.symbols import venue_shapes
from chaos.builtins.web import json_response, read_json, serve
from chaos.world import MARKETS, MarketSpec, PriceMove


def shape_routes(venues: Venues) -> list[web.RouteDef]:
    """Every venue's routes under ``/v/{i}`` in its own shape (and its stream, if any)."""
    routes: list[web.RouteDef] = []
    for index, shape in enumerate(venues.shapes):
        routes.extend(ROUTES[shape.shape](venues, index, shape))
        routes.extend(stream.stream_routes(venues, index, shape))
    return routes


def build_app(venues: Venues) -> web.Application:
    async def health(_request: web.Request) -> web.Response:
        return json_response(
            {"status": "ok", "venues": venues.venues, "faults": len(venues.faults)}
        )

    async def venue_price(request: web.Request) -> web.Response:
        try:
            venue = int(request.match_info["venue"])
        except ValueError as err:
            raise web.HTTPNotFound(text="unknown venue") from err
        market = request.match_info["market"]
        if not 0 <= venue < venues.venues or market not in venues.markets:
            raise web.HTTPNotFound(text="unknown venue or market")
        now = venues.clock()
        price = venues.quote(venue, market, now)
        if price is None:
            return json_response({"error": "venue unavailable"}, 503)
        return json_response({"venue": venue, "market": market, "price": price, "ts": now})

    async def all_prices(_request: web.Request) -> web.Response:
        now = venues.clock()
        quotes = []
        for venue in range(venues.venues):
            for market in venues.markets:
                price = venues.quote(venue, market, now)
                if price is not None:
                    quotes.append({"venue": venue, "market": market, "price": price})
        return json_response({"ts": now, "venues": quotes})

    async def add_fault(request: web.Request) -> web.Response:
        fault = venues.add_fault(await read_json(request))
        return json_response({"id": fault.id})

    async def delete_fault(request: web.Request) -> web.Response:
        try:
            removed = venues.faults.pop(int(request.match_info["id"]), None)
        except ValueError:
            removed = None
        return json_response({"removed": removed is not None})

    async def delete_faults(_request: web.Request) -> web.Response:
        count = len(venues.faults)
        venues.faults.clear()
        return json_response({"removed": count})

    async def move(request: web.Request) -> web.Response:
        body = await read_json(request)
        try:
            market = str(body.get("market", "*"))
            price_move = PriceMove(
                market,
                float(body.get("start", time.time())),
                float(body.get("duration", 0.0)),
                float(body["pct"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise web.HTTPBadRequest(text=f"move needs pct (and start, duration): {err}") from err
        if market != "*" and market not in venues.markets:
            raise web.HTTPBadRequest(text=f"unknown market {market!r}")
        venues.path.add_move(price_move)
        return json_response(
            {
                "market": market,
                "start": price_move.start,
                "duration": price_move.duration,
                "pct": price_move.pct,
            }
        )

    async def truth(request: web.Request) -> web.Response:
        market = request.match_info["market"]
        if market not in venues.markets:
            raise web.HTTPNotFound(text="unknown market")
        t = float(request.query.get("t", time.time()))
        return json_response(
            {
                "market": market,
                "t": t,
                "price": venues.path.price(market, t),
                "funding_index": venues.path.funding_index(market, t),
            }
        )

    app = web.Application()
    stream.attach(app)
    app.add_routes(shape_routes(venues))
    app.add_routes(
        [
            web.get("/health", health),
            web.get("/venues/{venue}/price/{market}", venue_price),
            web.get("/prices", all_prices),
            web.post("/admin/fault", add_fault),
            web.delete("/admin/fault/{id}", delete_fault),
            web.delete("/admin/faults", delete_faults),
            web.post("/admin/move", move),
            web.get("/admin/truth/{market}", truth),
        ]
    )
    return app


def parse_markets(text: str | None) -> tuple[MarketSpec, ...]:
    if not text:
        return MARKETS
    return tuple(MarketSpec(**spec) for spec in json.loads(text))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chaos.builtins.venues")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epoch", type=float, default=None, help="price origin, wall-clock s")
    parser.add_argument("--venues", type=int, default=3)
    parser.add_argument("--markets", default=None, help="JSON list of market parameters")
    parser.add_argument(
        "--venue-shape",
        action="append",
        default=[],
        help="SHAPE[:MARKET=SYMBOL,...] of the next venue (repeat per venue)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", stream=sys.stderr,
                        format="%(asctime)s venues %(levelname)s %(message)s")  # fmt: skip
    epoch = time.time() if args.epoch is None else args.epoch
    markets = parse_markets(args.markets)
    try:
        shapes = venue_shapes(args.venue_shape, args.venues, tuple(m.name for m in markets))
    except ValueError as err:
        parser.error(f"--venue-shape: {err}")
    venues = Venues(args.seed, epoch, args.venues, markets, shapes)
    serve(build_app(venues), args.host, args.port)


if __name__ == "__main__":
    main()
