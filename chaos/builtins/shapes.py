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
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from chaos.builtins.web import json_response
from chaos.stackfile.schema import VENUE_SHAPES
from chaos.truth import STEP_S

if TYPE_CHECKING:
    from chaos.builtins.venues import Venues

SHAPES = VENUE_SHAPES
HALF_SPREAD = 0.00005  # half the bid/ask spread, as a fraction of the quote (0.5 bp)
QUOTE_ASSET = {"binance": "USDT", "coinbase": "USD", "kraken": "USD"}
# Kraken's legacy asset codes: X-prefixed crypto, Z-prefixed fiat (support.kraken.com)
KRAKEN_ASSETS = {"BTC": "XBT", "DOGE": "XDG"}
KRAKEN_LEGACY = {"XBT", "ETH", "LTC", "XRP", "XLM", "ETC", "REP", "ZEC", "XMR", "MLN", "XDG"}
MIN_DECIMALS = {"binance": 8, "coinbase": 2, "kraken": 5, "tradechaos": 0}
BINANCE_INVALID_SYMBOL = {"code": -1121, "msg": "Invalid symbol."}
BINANCE_UNAVAILABLE = {
    "code": -1001,
    "msg": "Internal error; unable to process your request. Please try again.",
}
COINBASE_NOT_FOUND = {"message": "NotFound"}
COINBASE_UNAVAILABLE = {"message": "Service Unavailable"}
KRAKEN_UNKNOWN_PAIR = {"error": ["EQuery:Unknown asset pair"]}
KRAKEN_UNAVAILABLE = {"error": ["EService:Unavailable"]}


def base_asset(market: str) -> str:
    """``BTC`` for ``BTC-PERP``, ``BTC-USD``, ``BTC/USD`` or ``BTC_USDT``."""
    for sep in ("-", "/", "_"):
        if sep in market:
            return market.split(sep, 1)[0].upper()
    return market.upper()


def default_symbol(shape: str, market: str) -> str:
    """The symbol a market is served under when the stack file's map does not name it:
    binance ``BTCUSDT``, coinbase ``BTC-USD``, kraken ``XXBTZUSD`` (legacy assets) or
    ``SOLUSD``, tradechaos the market's own name."""
    base = base_asset(market)
    if shape == "binance":
        return f"{base}USDT"
    if shape == "coinbase":
        return f"{base}-USD"
    if shape == "kraken":
        asset = KRAKEN_ASSETS.get(base, base)
        return f"X{asset}ZUSD" if asset in KRAKEN_LEGACY else f"{asset}USD"
    return market


def kraken_altname(symbol: str) -> str:
    """``XBTUSD`` for ``XXBTZUSD`` (Kraken's legacy X/Z prefixes dropped); else itself."""
    if len(symbol) == 8 and symbol[0] == "X" and symbol[4] == "Z":
        return symbol[1:4] + symbol[5:]
    return symbol


@dataclass(frozen=True)
class VenueShape:
    """One venue's shape and its symbol for every market (defaults filled in)."""

    shape: str = "tradechaos"
    symbols: Mapping[str, str] = field(default_factory=dict)  # market -> symbol

    def market_of(self, symbol: str) -> str | None:
        """The market served as ``symbol`` (exactly as the exchange spells it; Kraken's
        altname too), or None."""
        for market, own in self.symbols.items():
            if symbol == own or (self.shape == "kraken" and symbol == kraken_altname(own)):
                return market
        return None


def parse_shape(text: str) -> tuple[str, dict[str, str]]:
    """``binance:BTC-PERP=BTCUSDT,ETH-PERP=ETHUSDT`` -> (shape, {market: symbol});
    ValueError naming what is wrong."""
    shape, _, pairs = text.partition(":")
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r} (known: {', '.join(SHAPES)})")
    symbols: dict[str, str] = {}
    for pair in filter(None, pairs.split(",")):
        market, sep, symbol = pair.partition("=")
        if not sep or not market or not symbol:
            raise ValueError(f"{pair!r} is not MARKET=SYMBOL")
        symbols[market] = symbol
    return shape, symbols


def venue_shapes(
    specs: Sequence[str] | None, count: int, markets: Sequence[str]
) -> tuple[VenueShape, ...]:
    """The shapes of ``count`` venues from ``--venue-shape`` texts (``parse_shape``; a venue
    without one speaks tradechaos's shape), each with a symbol for every market."""
    given = [parse_shape(text) for text in specs or ()]
    if len(given) > count:
        raise ValueError(f"{len(given)} venue shapes for {count} venues")
    result = []
    for index in range(count):
        shape, own = given[index] if index < len(given) else ("tradechaos", {})
        unknown = [m for m in own if m not in markets]
        if unknown:
            raise ValueError(f"venue {index}: symbols name an unknown market {unknown[0]!r}")
        symbols = {m: own.get(m) or default_symbol(shape, m) for m in markets}
        result.append(VenueShape(shape, symbols))
    return tuple(result)


def price_text(value: float, shape: str) -> str:
    """A price as the shape writes it: at least the shape's decimals, and enough for eight
    significant digits (so a small price keeps its precision)."""
    if value == 0 or not math.isfinite(value):
        digits = MIN_DECIMALS[shape]
    else:
        digits = 8 - 1 - math.floor(math.log10(abs(value)))
        digits = max(MIN_DECIMALS[shape], min(12, digits))
    return f"{value:.{digits}f}"


@dataclass(frozen=True)
class Tick:
    """A venue's book top for one market at one instant (after data faults)."""

    price: float
    bid: float
    ask: float
    trade_id: int  # grows each price step; stops while frozen
    traded_at: float  # wall-clock s of the last trade; stops while frozen


def tick(venues: Venues, venue: int, market: str, now: float) -> Tick | None:
    """The venue's tick, or None while a ``drop`` fault holds."""
    price = venues.quote(venue, market, now)
    if price is None:
        return None
    frozen = venues.frozen_since(venue, market)
    traded_at = now if frozen is None else frozen
    step = max(0, int((traded_at - venues.path.epoch) / STEP_S))
    half = abs(price) * HALF_SPREAD
    return Tick(price, price - half, price + half, step + 1, traded_at)


def iso_time(t: float) -> str:
    """``2024-05-01T12:00:00.123456Z`` (Coinbase's form)."""
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


def shape_routes(venues: Venues) -> list[web.RouteDef]:
    """Every venue's routes under ``/v/{i}`` in its own shape (and its stream, if any)."""
    from chaos.builtins.stream import stream_routes

    routes: list[web.RouteDef] = []
    for index, shape in enumerate(venues.shapes):
        routes.extend(ROUTES[shape.shape](venues, index, shape))
        routes.extend(stream_routes(venues, index, shape))
    return routes
