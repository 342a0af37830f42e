"""minidex's pricer reads each venue in its own exchange's API (minidex.venues): Binance's
book ticker with numbers as strings, Kraken's error/result envelope keyed by the pair's own
name, Coinbase's product ticker, the devfeed's /prices; an error in the venue's own form is
a VenueError, never a quote. The median is taken of every quote as sent unless the quote
guard is on, which leaves out non-positive prices, crossed books and far-off quotes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from minidex import venues
from minidex.config import ConfigError, VenueApi, from_env
from minidex.pricer import mark_prices
from minidex.venues import Quote, VenueError

BTC = {"BTC-USD": "BTCUSDT"}


def test_binance_book_ticker_numbers_as_strings() -> None:
    listed = [
        {"symbol": "BTCUSDT", "bidPrice": "60000.00000000", "bidQty": "1.5",
         "askPrice": "60001.00000000", "askQty": "0.2"},
        {"symbol": "ETHUSDT", "bidPrice": "3000.10", "bidQty": "1", "askPrice": "3000.20",
         "askQty": "1"},
    ]  # fmt: skip
    quotes = venues.read("binance", 200, listed, {"BTC-USD": "BTCUSDT"}, "0")
    assert quotes == [Quote("BTC-USD", 60000.5, "0", 60000.0, 60001.0)]
    one = {"symbol": "BTCUSDT", "bidPrice": "1", "askPrice": "3"}  # ?symbol= answers an object
    assert venues.read("binance", 200, one, BTC, "0")[0].px == 2.0
    zero = {"symbol": "BTCUSDT", "bidPrice": "0.00000000", "askPrice": "0.00000000"}
    assert venues.read("binance", 200, [zero], BTC, "0")[0].px == 0.0  # read as sent


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (400, {"code": -1121, "msg": "Invalid symbol."}, "binance error -1121: Invalid symbol."),
        (503, {"code": -1001, "msg": "Internal error"}, "binance error -1001"),
        (502, None, "binance answered HTTP 502"),
        (200, ["BTCUSDT"], "not an object"),
        (200, [{"symbol": "BTCUSDT", "bidPrice": "n/a", "askPrice": "1"}], "bid is not a number"),
        (200, [{"symbol": "BTCUSDT", "bidPrice": 1, "askPrice": None}], "ask is not a number"),
        (200, [{"symbol": "BTCUSDT", "bidPrice": "1", "askPrice": "inf"}], "ask is not finite"),
    ],
)
def test_binance_errors_are_venue_errors(status: int, body: Any, said: str) -> None:
    with pytest.raises(VenueError, match=said):
        venues.read("binance", status, body, BTC, "0")


def kraken_ticker(ask: str, bid: str, last: str) -> dict[str, Any]:
    return {"a": [ask, "1", "1.000"], "b": [bid, "2", "2.000"], "c": [last, "0.01"],
            "v": ["10", "20"], "p": [last, last], "t": [5, 9], "l": [last, last],
            "h": [last, last], "o": last}  # fmt: skip


def test_kraken_result_is_keyed_by_the_pairs_own_name() -> None:
    body = {"error": [], "result": {"XXBTZUSD": kraken_ticker("60002.0", "60000.0", "60001.3"),
                                    "SOLUSD": kraken_ticker("151", "149", "150")}}  # fmt: skip
    pairs = {"BTC-USD": "XBTUSD", "SOL-USD": "SOLUSD"}  # asked by its altname
    quotes = venues.read("kraken", 200, body, pairs, "1")
    assert sorted(quotes, key=lambda q: q.sym) == [
        Quote("BTC-USD", 60001.0, "1", 60000.0, 60002.0),
        Quote("SOL-USD", 150.0, "1", 149, 151),
    ]
    asked_by_name = venues.read("kraken", 200, body, {"BTC-USD": "XXBTZUSD"}, "1")
    assert [q.px for q in asked_by_name] == [60001.0]
    assert venues.request("kraken", pairs)[0].query == {"pair": "XBTUSD,SOLUSD"}


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (200, {"error": ["EQuery:Unknown asset pair"]}, "kraken error: EQuery:Unknown asset pair"),
        (503, {"error": ["EService:Unavailable"]}, "EService:Unavailable"),
        (200, {"result": {}}, "without its error list"),
        (200, {"error": [], "result": {"XXBTZUSD": {"c": ["1", "1"]}}}, "no a/b"),
        (200, {"error": [], "result": {"XXBTZUSD": kraken_ticker("x", "1", "1")}}, "ask is not"),
    ],
)
def test_kraken_errors_are_venue_errors(status: int, body: Any, said: str) -> None:
    with pytest.raises(VenueError, match=said):
        venues.read("kraken", status, body, {"BTC-USD": "XXBTZUSD"}, "1")


def test_coinbase_product_ticker_one_request_per_symbol() -> None:
    symbols = {"BTC-USD": "BTC-USD", "ETH-USD": "ETH-USD"}
    asks = venues.request("coinbase", symbols)
    assert [a.path for a in asks] == ["/products/BTC-USD/ticker", "/products/ETH-USD/ticker"]
    body = {"ask": "3000.02", "bid": "3000.00", "volume": "1000.0", "trade_id": 86326522,
            "price": "3000.01", "size": "0.01", "time": "2024-05-01T12:00:00.123456Z"}  # fmt: skip
    assert venues.read("coinbase", 200, body, symbols, "2", asked=1) == [
        Quote("ETH-USD", 3000.01, "2", 3000.0, 3000.02)]  # fmt: skip
    with pytest.raises(VenueError, match="coinbase HTTP 404: NotFound"):
        venues.read("coinbase", 404, {"message": "NotFound"}, symbols, "2")
    with pytest.raises(VenueError, match="coinbase answered HTTP 500"):
        venues.read("coinbase", 500, None, symbols, "2")


def test_devfeed_lists_several_venues_in_one_answer() -> None:
    listed: list[dict[str, object]] = [
        {"venue": 0, "market": "BTC-USD", "price": 60000.0},
        {"venue": 1, "market": "BTC-USD", "price": 60010},
        {"venue": 1, "market": "ETH-USD", "price": 3000.0},
    ]
    body = {"ts": 1.0, "venues": listed}
    quotes = venues.read("devfeed", 200, body, {"BTC-USD": "BTC-USD"}, "4")
    assert [(q.px, q.source) for q in quotes] == [(60000.0, "4.0"), (60010.0, "4.1")]
    with pytest.raises(VenueError, match="HTTP 503"):
        venues.read("devfeed", 503, {"error": "venue unavailable"}, {"BTC-USD": "BTC-USD"}, "4")
    more = {"ts": 1.0, "venues": [*listed, {"venue": 2, "market": "BTC-USD", "price": "NaN"}]}
    kept = venues.read("devfeed", 200, more, {"BTC-USD": "BTC-USD"}, "4")
    assert [q.source for q in kept] == ["4.0", "4.1"]  # one bad quote drops only itself


def test_a_binance_request_lists_its_symbols_as_json() -> None:
    (asked,) = venues.request("binance", {"BTC-USD": "BTCUSDT", "ETH-USD": "ETHUSDT"})
    assert asked.path == "/api/v3/ticker/bookTicker"
    assert json.loads(asked.query["symbols"]) == ["BTCUSDT", "ETHUSDT"]
    assert asked.query["symbols"] == '["BTCUSDT","ETHUSDT"]'


def test_the_exchanges_usual_names() -> None:
    usual = {api: venues.venue_symbol(api, "BTC-USD") for api in venues.APIS}
    assert usual == {"devfeed": "BTC-USD", "binance": "BTCUSDT", "kraken": "XBTUSD",
                     "coinbase": "BTC-USD"}  # fmt: skip
    assert venues.venue_symbol("binance", "ETH-EUR") == "ETHEUR"
    assert venues.kraken_altname("XXBTZUSD") == "XBTUSD"
    assert venues.kraken_altname("XETHZUSD") == "ETHUSD"
    assert venues.kraken_altname("SOLUSD") == "SOLUSD"


def q(px: float, source: str, bid: float | None = None, ask: float | None = None) -> Quote:
    return Quote("BTC-USD", px, source, bid, ask)


def test_without_the_guard_zeros_from_half_the_venues_make_a_zero_mark() -> None:
    quotes = [q(0.0, "0", 0.0, 0.0), q(0.0, "1", 0.0, 0.0), q(60000.0, "2")]
    marks, left_out = mark_prices(quotes)
    assert marks == {"BTC-USD": (0.0, [0.0, 0.0, 60000.0])} and left_out == []
    one_bad = [q(0.0, "0"), q(60000.0, "1"), q(60006.0, "2")]
    assert mark_prices(one_bad)[0]["BTC-USD"][0] == 60000.0  # the median outvotes one venue


def test_the_guard_leaves_out_unfit_and_far_quotes() -> None:
    quotes = [q(0.0, "0", 0.0, 0.0), q(60010.0, "1", 60020.0, 60000.0),  # crossed book
              q(60000.0, "2", 59999.0, 60001.0), q(60006.0, "3"), q(80000.0, "4")]  # fmt: skip
    marks, left_out = mark_prices(quotes, guard=True, band=0.05)
    assert marks == {"BTC-USD": (60003.0, [60000.0, 60006.0])}
    assert left_out == [
        "BTC-USD from venue 0: price 0",
        "BTC-USD from venue 1: book bid 60020 ask 60000",
        "BTC-USD from venue 4: 80000, 33.3% off",
    ]
    nothing_fit = mark_prices([q(0.0, "0"), q(-1.0, "1")], guard=True)
    assert nothing_fit[0] == {} and len(nothing_fit[1]) == 2  # no mark this round


def test_the_guard_keeps_every_clean_quote() -> None:
    quotes = [q(60000.0, "0", 59999.0, 60001.0), q(60030.0, "1"), q(59980.0, "2")]
    assert mark_prices(quotes, guard=True) == mark_prices(quotes)


BASE = {"MINIDEX_PORT": "8081", "MINIDEX_DB": "postgresql://postgres@127.0.0.1:5432/minidex"}
THREE = "http://127.0.0.1:9000/v/0,http://127.0.0.1:9000/v/1,http://127.0.0.1:9000/v/2"
PRICER = ("MINIDEX_DB", "MINIDEX_VENUES")


def test_venue_apis_one_per_url_with_names() -> None:
    apis = "binance:BTC-USD=BTCUSDT,kraken:BTC-USD=XXBTZUSD,coinbase"
    s = from_env({**BASE, "MINIDEX_VENUES": THREE, "MINIDEX_VENUE_APIS": apis}, PRICER)
    assert s.venue_apis == (
        VenueApi("binance", (("BTC-USD", "BTCUSDT"),)),
        VenueApi("kraken", (("BTC-USD", "XXBTZUSD"),)),
        VenueApi("coinbase"),
    )
    assert (s.quote_guard, s.quote_band) == (False, 0.05)
    one_for_all = from_env(
        {**BASE, "MINIDEX_VENUES": THREE, "MINIDEX_VENUE_APIS": "kraken"}, PRICER
    )
    assert one_for_all.venue_apis == (VenueApi("kraken"),) * 3
    default = from_env({**BASE, "MINIDEX_VENUES": THREE}, PRICER)
    assert default.venue_apis == (VenueApi("devfeed"),) * 3
    guarded = {**BASE, "MINIDEX_VENUES": THREE, "MINIDEX_QUOTE_GUARD": "1",
               "MINIDEX_QUOTE_BAND_BPS": "200", "MINIDEX_SYMBOLS": "BTC-USD,ETH-USD",
               "MINIDEX_VENUE_APIS": "binance:BTC-USD=BTCUSDT;ETH-USD=ETHUSDT"}  # fmt: skip
    s = from_env(guarded, PRICER)
    assert (s.quote_guard, s.quote_band) == (True, 0.02)
    assert s.venue_apis[2].names == (("BTC-USD", "BTCUSDT"), ("ETH-USD", "ETHUSDT"))


@pytest.mark.parametrize(
    ("apis", "named"),
    [
        ("binance,kraken", "names 2 APIs for the 3 URLs of MINIDEX_VENUES"),
        ("binance,,kraken", "has an empty entry"),
        ("bitstamp", "unknown API 'bitstamp' \\(known: devfeed, binance, kraken, coinbase\\)"),
        ("binance:BTCUSDT", "'BTCUSDT' is not SYMBOL=NAME"),
        ("binance:ETH-USD=ETHUSDT", "'ETH-USD' is not one of MINIDEX_SYMBOLS \\(BTC-USD\\)"),
    ],
)
def test_a_bad_venue_api_is_named(apis: str, named: str) -> None:
    with pytest.raises(ConfigError, match=f"MINIDEX_VENUE_APIS.*{named}"):
        from_env({**BASE, "MINIDEX_VENUES": THREE, "MINIDEX_VENUE_APIS": apis}, PRICER)


def test_a_bad_guard_setting_is_named() -> None:
    with pytest.raises(ConfigError, match="MINIDEX_QUOTE_GUARD must be 1 or 0"):
        from_env({**BASE, "MINIDEX_QUOTE_GUARD": "yes please"})
    with pytest.raises(ConfigError, match="MINIDEX_QUOTE_BAND_BPS must be a finite number >= 1"):
        from_env({**BASE, "MINIDEX_QUOTE_BAND_BPS": "0"})
