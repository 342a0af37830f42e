"""How each venue shape names and writes things: the shapes known, their default symbols
for a market (Binance ``BTCUSDT``, Coinbase ``BTC-USD``, Kraken ``XXBTZUSD``), a venue's
shape and symbols (``VenueShape``, from ``--venue-shape SHAPE[:MARKET=SYMBOL,...]``), prices
as text and times as Coinbase writes them, and the shapes' error bodies."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from chaos.stackfile.schema import VENUE_SHAPES

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


def iso_time(t: float) -> str:
    """``2024-05-01T12:00:00.123456Z`` (Coinbase's form)."""
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
