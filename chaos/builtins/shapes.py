"""The public REST shapes the built-in venues speak: what an oracle of a real exchange polls.

Each venue ``i`` of a built-in venues service serves its quotes under ``/v/{i}`` in the shape
the stack file chose for it (``venues: [{shape: binance, symbols: {BTC-PERP: BTCUSDT}}]``):

- ``tradechaos``: ``GET /v/{i}/price/{symbol}`` -> ``{"venue", "market", "price", "ts"}``,
  ``GET /v/{i}/prices`` -> ``{"ts", "venues": [{"venue", "market", "price"}]}``.
- ``binance`` (spot): ``GET /v/{i}/api/v3/ticker/price`` and ``.../ticker/bookTicker``
  with ``?symbol=S`` (an object), ``?symbols=["S","T"]`` or nothing (a list), numbers as
  strings with 8 decimals; an unknown symbol is 400 ``{"code": -1121, "msg": "Invalid
  symbol."}``; ``/api/v3/ping`` and ``/api/v3/time`` too. A WebSocket book-ticker stream
  is ``chaos.builtins.stream``.
- ``coinbase`` (Exchange): ``GET /v/{i}/products/{product_id}/ticker`` -> ``{"ask", "bid",
  "volume", "trade_id", "price", "size", "time"}`` (numbers as strings, ``trade_id`` an
  integer, ``time`` ISO 8601 UTC); unknown product: 404 ``{"message": "NotFound"}``.
- ``kraken``: ``GET /v/{i}/0/public/Ticker?pair=XBTUSD[,ETHUSD]`` -> ``{"error": [],
  "result": {"XXBTZUSD": {"a", "b", "c", "v", "p", "t", "l", "h", "o"}}}`` keyed by the
  pair's own name (the symbol; its altname is accepted in the request); an unknown pair is
  200 ``{"error": ["EQuery:Unknown asset pair"]}``; ``/0/public/Time`` too.

Data faults act on the quote before it is shaped, so every fault works in every shape:
``zero``/``scale``/``offset`` change every price field, ``freeze`` also stops the last
trade's id and time, ``drop`` answers the shape's own error form with HTTP 503 (Binance
``-1001``, Coinbase ``{"message"}``, Kraken ``EService:Unavailable``). A request naming
several symbols fails whole when one of them is dropped, as a failing venue would.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from chaos.builtins.quotes import Tick, Venues, tick
from chaos.builtins.symbols import (
    BINANCE_INVALID_SYMBOL,
    BINANCE_UNAVAILABLE,
    COINBASE_NOT_FOUND,
    COINBASE_UNAVAILABLE,
    KRAKEN_UNAVAILABLE,
    KRAKEN_UNKNOWN_PAIR,
    VenueShape,
    iso_time,
    price_text,
)
from chaos.builtins.web import json_response

Handler = Callable[[web.Request], Any]


def _requested(raw: Mapping[str, str]) -> list[str] | None:
    """Binance's ``symbol=S`` or ``symbols=["S","T"]`` (None: every symbol); ValueError."""
    if "symbol" in raw:
        return [raw["symbol"]]
    if "symbols" in raw:
        names = json.loads(raw["symbols"])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("symbols")
        return list(names)
    return None


def binance_routes(venues: Venues, index: int, shape: VenueShape) -> list[web.RouteDef]:
    prefix = f"/v/{index}/api/v3"

    def ticker(fields: Callable[[str, Tick], dict[str, Any]]) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            try:
                wanted = _requested(request.query)
            except ValueError:
                return json_response(
                    {"code": -1100, "msg": "Illegal characters found in parameter 'symbols'"},
                    400,
                )
            single = "symbol" in request.query
            pairs = (
                [(shape.symbols[m], m) for m in venues.markets]
                if wanted is None
                else [(s, shape.market_of(s)) for s in wanted]
            )
            if any(market is None for _, market in pairs):
                return json_response(BINANCE_INVALID_SYMBOL, 400)
            now = venues.clock()
            items = []
            for _symbol, market in pairs:
                assert market is not None
                found = tick(venues, index, market, now)
                if found is None:
                    return json_response(BINANCE_UNAVAILABLE, 503)
                items.append(fields(shape.symbols[market], found))
            return json_response(items[0] if single else items)

        return handle

    def price(symbol: str, t: Tick) -> dict[str, Any]:
        return {"symbol": symbol, "price": price_text(t.price, "binance")}

    def book(symbol: str, t: Tick) -> dict[str, Any]:
        return {
            "symbol": symbol,
            "bidPrice": price_text(t.bid, "binance"),
            "bidQty": "1.00000000",
            "askPrice": price_text(t.ask, "binance"),
            "askQty": "1.00000000",
        }

    async def ping(_request: web.Request) -> web.Response:
        return json_response({})

    async def server_time(_request: web.Request) -> web.Response:
        return json_response({"serverTime": int(venues.clock() * 1000)})

    return [
        web.get(f"{prefix}/ticker/price", ticker(price)),
        web.get(f"{prefix}/ticker/bookTicker", ticker(book)),
        web.get(f"{prefix}/ping", ping),
        web.get(f"{prefix}/time", server_time),
    ]


def coinbase_routes(venues: Venues, index: int, shape: VenueShape) -> list[web.RouteDef]:
    async def ticker(request: web.Request) -> web.Response:
        market = shape.market_of(request.match_info["product_id"])
        if market is None:
            return json_response(COINBASE_NOT_FOUND, 404)
        found = tick(venues, index, market, venues.clock())
        if found is None:
            return json_response(COINBASE_UNAVAILABLE, 503)
        return json_response(
            {
                "ask": price_text(found.ask, "coinbase"),
                "bid": price_text(found.bid, "coinbase"),
                "volume": "1000.00000000",
                "trade_id": found.trade_id,
                "price": price_text(found.price, "coinbase"),
                "size": "0.01000000",
                "time": iso_time(found.traded_at),
            }
        )

    return [web.get(f"/v/{index}/products/{{product_id}}/ticker", ticker)]


def kraken_routes(venues: Venues, index: int, shape: VenueShape) -> list[web.RouteDef]:
    def entry(t: Tick) -> dict[str, Any]:
        p = price_text(t.price, "kraken")
        return {
            "a": [price_text(t.ask, "kraken"), "1", "1.000"],
            "b": [price_text(t.bid, "kraken"), "1", "1.000"],
            "c": [p, "0.01000000"],
            "v": ["1000.00000000", "1000.00000000"],
            "p": [p, p],
            "t": [t.trade_id, t.trade_id],
            "l": [p, p],
            "h": [p, p],
            "o": p,
        }

    async def ticker(request: web.Request) -> web.Response:
        raw = request.query.get("pair")
        names = [n.strip() for n in raw.split(",") if n.strip()] if raw else None
        markets = list(venues.markets) if names is None else [shape.market_of(n) for n in names]
        if any(m is None for m in markets):
            return json_response(KRAKEN_UNKNOWN_PAIR)
        now = venues.clock()
        result = {}
        for market in markets:
            assert market is not None
            found = tick(venues, index, market, now)
            if found is None:
                return json_response(KRAKEN_UNAVAILABLE, 503)
            result[shape.symbols[market]] = entry(found)
        return json_response({"error": [], "result": result})

    async def server_time(_request: web.Request) -> web.Response:
        now = venues.clock()
        stamp = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%a, %d %b %y %H:%M:%S +0000")
        return json_response({"error": [], "result": {"unixtime": int(now), "rfc1123": stamp}})

    return [
        web.get(f"/v/{index}/0/public/Ticker", ticker),
        web.get(f"/v/{index}/0/public/Time", server_time),
    ]


def native_routes(venues: Venues, index: int, shape: VenueShape) -> list[web.RouteDef]:
    async def one(request: web.Request) -> web.Response:
        market = shape.market_of(request.match_info["symbol"])
        if market is None:
            raise web.HTTPNotFound(text="unknown market")
        now = venues.clock()
        price = venues.quote(index, market, now)
        if price is None:
            return json_response({"error": "venue unavailable"}, 503)
        symbol = shape.symbols[market]
        return json_response({"venue": index, "market": symbol, "price": price, "ts": now})

    async def every(_request: web.Request) -> web.Response:
        now = venues.clock()
        quotes = []
        for market in venues.markets:
            price = venues.quote(index, market, now)
            if price is not None:
                quotes.append({"venue": index, "market": shape.symbols[market], "price": price})
        return json_response({"ts": now, "venues": quotes})

    return [web.get(f"/v/{index}/price/{{symbol}}", one), web.get(f"/v/{index}/prices", every)]


ROUTES: dict[str, Callable[[Venues, int, VenueShape], list[web.RouteDef]]] = {
    "tradechaos": native_routes,
    "binance": binance_routes,
    "coinbase": coinbase_routes,
    "kraken": kraken_routes,
}
