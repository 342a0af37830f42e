"""The venues' public price APIs as the pricer reads them: one reader per API (pure).

Each venue of MINIDEX_VENUES speaks one API (MINIDEX_VENUE_APIS, see ``minidex.config``);
its reader says which request to send for the symbols wanted and turns the answer into
``Quote`` objects, or raises ``VenueError`` naming what the venue said instead.

- ``binance`` (spot): ``GET /api/v3/ticker/bookTicker?symbols=["BTCUSDT"]``, a list of
  ``{"symbol", "bidPrice", "bidQty", "askPrice", "askQty"}`` with numbers as strings; an
  error is ``{"code", "msg"}`` (HTTP 4xx/5xx). A quote is the book's mid.
- ``kraken``: ``GET /0/public/Ticker?pair=XXBTZUSD``, ``{"error": [...], "result": {PAIR:
  {"a": [ask, ...], "b": [bid, ...], "c": [last, ...], ...}}}``: the error list is empty
  when all went well (an unknown pair is an error with HTTP 200), and the result is keyed
  by the pair's own name even when it was asked for by its altname (XBTUSD -> XXBTZUSD).
  A quote is the book's mid.
- ``coinbase`` (Exchange): ``GET /products/BTC-USD/ticker`` per symbol, ``{"bid", "ask",
  "price", "size", "time", ...}``; an error is ``{"message"}``. A quote is the book's mid.
- ``devfeed``: ``GET /prices``, ``{"ts", "venues": [{"venue", "market", "price"}]}``
  (``minidex.devfeed``, numbers as numbers): one quote per price listed.

A reader checks the answer's form, not its sense: any finite number an exchange sends is
read as it is, ``"0.00000000"`` too. Whether a quote is fit to price with is the pricer's
call (``minidex.pricer``, the quote guard).

A symbol's name on a venue, unless MINIDEX_VENUE_APIS says otherwise, follows the
exchange's convention for ``BASE-QUOTE``: Binance ``BTCUSDT`` (USD is quoted in USDT there),
Kraken ``XBTUSD`` (Kraken calls bitcoin XBT; it answers under ``XXBTZUSD``), Coinbase
``BTC-USD``, devfeed the symbol itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

APIS = ("devfeed", "binance", "kraken", "coinbase")


class VenueError(ValueError):
    """The venue's answer holds no quote: its own error, or a form the reader does not know."""


@dataclass(frozen=True)
class Quote:
    """One venue's price of one of minidex's symbols (``bid``/``ask`` where it quotes a book)."""

    sym: str
    px: float
    source: str  # which venue: its index in MINIDEX_VENUES (devfeed: index.venue)
    bid: float | None = None
    ask: float | None = None


@dataclass(frozen=True)
class Request:
    """What to GET from a venue: a path under its base URL and the query."""

    path: str
    query: Mapping[str, str]


def venue_symbol(api: str, sym: str) -> str:
    """The exchange's usual name of minidex's ``BASE-QUOTE`` symbol."""
    base, _, quote = sym.partition("-")
    quote = quote or "USD"
    if api == "binance":
        return base + ("USDT" if quote == "USD" else quote)
    if api == "kraken":
        return {"BTC": "XBT", "DOGE": "XDG"}.get(base, base) + quote
    if api == "coinbase":
        return f"{base}-{quote}"
    return sym


def names(api: str, symbols: Sequence[str], given: Mapping[str, str]) -> dict[str, str]:
    """Each of minidex's ``symbols`` -> its name on a venue: ``given``, else the usual one."""
    return {sym: given.get(sym) or venue_symbol(api, sym) for sym in symbols}


def kraken_altname(pair: str) -> str:
    """``XBTUSD`` for Kraken's ``XXBTZUSD``: its older pairs carry an X (crypto) and a Z
    (fiat) prefix in their own name, which the answer is keyed by."""
    if len(pair) == 8 and pair[0] == "X" and pair[4] in "XZ":
        return pair[1:4] + pair[5:]
    return pair


def number(value: Any, what: str) -> float:
    """A price field: a decimal string (``"60000.50"``) or a JSON number, finite."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise VenueError(f"{what} is not a number: {value!r}")
    try:
        parsed = float(value)
    except ValueError:
        raise VenueError(f"{what} is not a number: {value!r}") from None
    if not math.isfinite(parsed):
        raise VenueError(f"{what} is not finite: {value!r}")
    return parsed


def book(sym: str, source: str, bid: Any, ask: Any, what: str) -> Quote:
    b, a = number(bid, f"{what} bid"), number(ask, f"{what} ask")
    return Quote(sym, (b + a) / 2, source, b, a)


def request(api: str, symbols: Mapping[str, str]) -> list[Request]:
    """The requests that fetch ``symbols`` (minidex's symbol -> the venue's) from a venue."""
    names = list(symbols.values())
    if api == "binance":
        listed = json.dumps(names, separators=(",", ":"))  # ["BTCUSDT","ETHUSDT"]
        return [Request("/api/v3/ticker/bookTicker", {"symbols": listed})]
    if api == "kraken":
        return [Request("/0/public/Ticker", {"pair": ",".join(names)})]
    if api == "coinbase":
        return [Request(f"/products/{quote(name, safe='')}/ticker", {}) for name in names]
    return [Request("/prices", {})]


def read(
    api: str, status: int, body: Any, symbols: Mapping[str, str], source: str, asked: int = 0
) -> list[Quote]:
    """The quotes in the answer (HTTP ``status``, decoded JSON ``body``) to ``request(api,
    symbols)[asked]``; VenueError when it holds none."""
    if api == "binance":
        return binance(status, body, symbols, source)
    if api == "kraken":
        return kraken(status, body, symbols, source)
    if api == "coinbase":
        sym = list(symbols)[asked]
        return [coinbase(status, body, sym, source)]
    return devfeed(status, body, symbols, source)


def binance(status: int, body: Any, symbols: Mapping[str, str], source: str) -> list[Quote]:
    """Binance spot's book ticker: one object (``?symbol=``) or a list (``?symbols=``)."""
    if isinstance(body, dict) and "code" in body:
        raise VenueError(f"binance error {body.get('code')}: {body.get('msg')}")
    if status != 200:
        raise VenueError(f"binance answered HTTP {status}")
    entries = body if isinstance(body, list) else [body]
    ours = {name: sym for sym, name in symbols.items()}
    quotes = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise VenueError(f"binance: a book ticker is not an object: {entry!r}")
        name = entry.get("symbol")
        sym = ours.get(name) if isinstance(name, str) else None
        if sym is not None:
            what = f"binance {name}"
            quotes.append(book(sym, source, entry.get("bidPrice"), entry.get("askPrice"), what))
    return quotes


def kraken(status: int, body: Any, symbols: Mapping[str, str], source: str) -> list[Quote]:
    """Kraken's ticker: ``error`` is a list of messages (empty when all went well)."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), list):
        raise VenueError(f"kraken answered HTTP {status} without its error list")
    if body["error"]:
        raise VenueError(f"kraken error: {', '.join(map(str, body['error']))}")
    result = body.get("result")
    if status != 200 or not isinstance(result, dict):
        raise VenueError(f"kraken answered HTTP {status} without a result")
    ours: dict[str, str] = {}
    for sym, pair in symbols.items():
        ours[pair] = ours[kraken_altname(pair)] = sym
    quotes = []
    for pair, ticker in result.items():
        found = ours.get(pair) or ours.get(kraken_altname(pair))
        if found is None:
            continue
        if not isinstance(ticker, dict):
            raise VenueError(f"kraken {pair}: the ticker is not an object")
        ask, bid = ticker.get("a"), ticker.get("b")
        if not (isinstance(ask, list) and ask and isinstance(bid, list) and bid):
            raise VenueError(f"kraken {pair}: no a/b [price, ...] lists")
        quotes.append(book(found, source, bid[0], ask[0], f"kraken {pair}"))
    return quotes


def coinbase(status: int, body: Any, sym: str, source: str) -> Quote:
    """Coinbase Exchange's product ticker."""
    if isinstance(body, dict) and "message" in body:
        raise VenueError(f"coinbase HTTP {status}: {body['message']}")
    if status != 200 or not isinstance(body, dict):
        raise VenueError(f"coinbase answered HTTP {status}")
    return book(sym, source, body.get("bid"), body.get("ask"), f"coinbase {sym}")


def devfeed(status: int, body: Any, symbols: Mapping[str, str], source: str) -> list[Quote]:
    """minidex.devfeed's ``/prices``: several venues' prices in one answer."""
    listed = body.get("venues") if isinstance(body, dict) else None
    if status != 200 or not isinstance(listed, list):
        raise VenueError(f"devfeed answered HTTP {status} without a venues list")
    ours = {name: sym for sym, name in symbols.items()}
    quotes = []
    for entry in listed:
        name = entry.get("market") if isinstance(entry, dict) else None
        sym = ours.get(name) if isinstance(name, str) else None
        if sym is not None:
            try:
                price = number(entry.get("price"), f"devfeed {name}")
            except VenueError:
                continue  # that venue's quote only: the others in the answer still count
            quotes.append(Quote(sym, price, f"{source}.{entry.get('venue')}"))
    return quotes
