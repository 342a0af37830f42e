"""The built-in venues in real exchanges' public API shapes (chaos.builtins.shapes/stream):
each shape serves the true price path, every data fault works in every shape, and the stack
file's ``venues:`` list is validated."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from chaos.builtins.quotes import Venues
from chaos.builtins.symbols import default_symbol, kraken_altname, parse_shape, venue_shapes
from chaos.builtins.venues import build_app
from chaos.stackfile import load, problems, resolve
from chaos.world import PricePath

EPOCH = 1_000.0
MARKETS = ("BTC-PERP", "ETH-PERP")
SPECS = ["binance:BTC-PERP=BTCUSDT", "coinbase", "kraken", "tradechaos"]
SEED = 5


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_venues(t: float = EPOCH + 30.0) -> tuple[Venues, Clock]:
    venues = Venues(SEED, EPOCH, len(SPECS), shapes=venue_shapes(SPECS, len(SPECS), MARKETS))
    clock = Clock(t)
    venues.clock = clock
    return venues, clock


def run(test: Callable[[TestClient[Any, Any], Venues, Clock], Awaitable[None]]) -> None:
    async def main() -> None:
        venues, clock = make_venues()
        async with TestClient(TestServer(build_app(venues))) as client:
            await test(client, venues, clock)

    asyncio.run(main())


async def get(client: TestClient[Any, Any], path: str) -> tuple[int, Any]:
    response = await client.get(path)
    return response.status, json.loads(await response.text())


# Each shape: (venue index, path of BTC-PERP's quote, price read from the answer)
READERS: dict[str, tuple[int, str, Callable[[Any], float]]] = {
    "binance": (0, "/v/0/api/v3/ticker/price?symbol=BTCUSDT", lambda a: float(a["price"])),
    "binance-book": (
        0,
        "/v/0/api/v3/ticker/bookTicker?symbol=BTCUSDT",
        lambda a: (float(a["bidPrice"]) + float(a["askPrice"])) / 2,
    ),
    "coinbase": (1, "/v/1/products/BTC-USD/ticker", lambda a: float(a["price"])),
    "kraken": (
        2,
        "/v/2/0/public/Ticker?pair=XBTUSD",
        lambda a: float(a["result"]["XXBTZUSD"]["c"][0]),
    ),
    "tradechaos": (3, "/v/3/price/BTC-PERP", lambda a: float(a["price"])),
}
DROPPED: dict[str, Callable[[Any], bool]] = {  # the shape's own error form, with a 5xx
    "binance": lambda a: a["code"] == -1001 and "unable to process" in a["msg"],
    "binance-book": lambda a: a["code"] == -1001,
    "coinbase": lambda a: a == {"message": "Service Unavailable"},
    "kraken": lambda a: a == {"error": ["EService:Unavailable"]},
    "tradechaos": lambda a: a == {"error": "venue unavailable"},
}


@pytest.mark.parametrize("shape", sorted(READERS))
def test_each_shape_serves_the_true_price_path(shape: str) -> None:
    venue, path, read = READERS[shape]
    truth = PricePath(SEED, EPOCH)

    async def check(client: TestClient[Any, Any], venues: Venues, clock: Clock) -> None:
        for t in (EPOCH + 5.0, EPOCH + 40.0, EPOCH + 90.0):
            clock.t = t
            status, answer = await get(client, path)
            assert status == 200, answer
            assert read(answer) == pytest.approx(truth.price("BTC-PERP", t), rel=3e-4)
            assert read(answer) == pytest.approx(venues.clean_price(venue, "BTC-PERP", t), rel=1e-7)

    run(check)


@pytest.mark.parametrize("shape", sorted(READERS))
@pytest.mark.parametrize("kind", ["freeze", "zero", "scale", "offset", "drop"])
def test_every_data_fault_works_in_every_shape(shape: str, kind: str) -> None:
    venue, path, read = READERS[shape]

    async def check(client: TestClient[Any, Any], venues: Venues, clock: Clock) -> None:
        _, before = await get(client, path)
        clean = read(before)
        value = {"scale": 2.0, "offset": 125.0}.get(kind)
        venues.add_fault({"venue": venue, "market": "BTC-PERP", "kind": kind,
                          **({"value": value} if value is not None else {})})  # fmt: skip
        clock.t += 20.0  # the world moves on
        moved = venues.clean_price(venue, "BTC-PERP", clock.t)
        status, answer = await get(client, path)
        if kind == "drop":
            assert status == 503 and DROPPED[shape](answer), answer
            other = await client.get(path.replace("BTC", "ETH").replace("XBT", "ETH"))
            assert other.status == 200  # only the faulted market is dropped
            return
        assert status == 200
        expected = {"freeze": clean, "zero": 0.0, "scale": 2 * moved, "offset": moved + 125.0}
        assert read(answer) == pytest.approx(expected[kind], rel=1e-7, abs=1e-6)
        venues.faults.clear()
        _, healed = await get(client, path)
        assert read(healed) == pytest.approx(moved, rel=1e-7)

    run(check)


def test_binance_answers_like_binance() -> None:
    async def check(client: TestClient[Any, Any], venues: Venues, clock: Clock) -> None:
        status, one = await get(client, "/v/0/api/v3/ticker/price?symbol=BTCUSDT")
        assert status == 200 and set(one) == {"symbol", "price"} and one["symbol"] == "BTCUSDT"
        assert isinstance(one["price"], str) and len(one["price"].split(".")[1]) == 8
        status, every = await get(client, "/v/0/api/v3/ticker/price")
        assert [item["symbol"] for item in every] == ["BTCUSDT", "ETHUSDT"]
        status, some = await get(client, '/v/0/api/v3/ticker/bookTicker?symbols=["ETHUSDT"]')
        assert status == 200 and [s["symbol"] for s in some] == ["ETHUSDT"]
        assert set(some[0]) == {"symbol", "bidPrice", "bidQty", "askPrice", "askQty"}
        assert float(some[0]["bidPrice"]) < float(some[0]["askPrice"])
        assert await get(client, "/v/0/api/v3/ticker/price?symbol=btcusdt") == (
            400,
            {"code": -1121, "msg": "Invalid symbol."},
        )
        assert (await get(client, "/v/0/api/v3/ping")) == (200, {})
        status, server = await get(client, "/v/0/api/v3/time")
        assert server["serverTime"] == int(clock.t * 1000)
        venues.add_fault({"venue": 0, "market": "ETH-PERP", "kind": "drop"})
        status, _ = await get(client, "/v/0/api/v3/ticker/price")  # the list fails whole
        assert status == 503

    run(check)


def test_coinbase_answers_like_coinbase_and_freeze_stops_the_last_trade() -> None:
    async def check(client: TestClient[Any, Any], venues: Venues, clock: Clock) -> None:
        status, ticker = await get(client, "/v/1/products/ETH-USD/ticker")
        assert status == 200
        assert set(ticker) == {"ask", "bid", "volume", "trade_id", "price", "size", "time"}
        assert isinstance(ticker["trade_id"], int) and isinstance(ticker["price"], str)
        assert ticker["time"] == "1970-01-01T00:17:10.000000Z"  # EPOCH + 30 s, UTC
        assert await get(client, "/v/1/products/DOGE-USD/ticker") == (404, {"message": "NotFound"})
        venues.add_fault({"venue": 1, "market": "ETH-PERP", "kind": "freeze"})
        clock.t += 7.0
        _, frozen = await get(client, "/v/1/products/ETH-USD/ticker")
        assert (frozen["trade_id"], frozen["time"], frozen["price"]) == (
            ticker["trade_id"], ticker["time"], ticker["price"])  # fmt: skip
        venues.faults.clear()
        _, live = await get(client, "/v/1/products/ETH-USD/ticker")
        assert live["trade_id"] == ticker["trade_id"] + 70

    run(check)


def test_kraken_answers_like_kraken() -> None:
    async def check(client: TestClient[Any, Any], venues: Venues, clock: Clock) -> None:
        status, both = await get(client, "/v/2/0/public/Ticker?pair=XBTUSD,XETHZUSD")
        assert status == 200 and both["error"] == []
        assert sorted(both["result"]) == ["XETHZUSD", "XXBTZUSD"]
        entry = both["result"]["XXBTZUSD"]
        assert set(entry) == {"a", "b", "c", "v", "p", "t", "l", "h", "o"}
        assert len(entry["a"]) == 3 and len(entry["c"]) == 2 and isinstance(entry["t"][0], int)
        assert float(entry["b"][0]) < float(entry["c"][0]) < float(entry["a"][0])
        _, every = await get(client, "/v/2/0/public/Ticker")
        assert sorted(every["result"]) == ["XETHZUSD", "XXBTZUSD"]
        assert await get(client, "/v/2/0/public/Ticker?pair=DOGEUSD") == (
            200,
            {"error": ["EQuery:Unknown asset pair"]},
        )
        _, server = await get(client, "/v/2/0/public/Time")
        assert server["error"] == [] and server["result"]["unixtime"] == int(clock.t)

    run(check)


def test_the_reference_endpoints_stay_and_ignore_shapes() -> None:
    async def check(client: TestClient[Any, Any], venues: Venues, clock: Clock) -> None:
        status, every = await get(client, "/prices")
        assert status == 200 and len(every["venues"]) == len(SPECS) * len(MARKETS)
        assert {q["market"] for q in every["venues"]} == set(MARKETS)
        status, one = await get(client, "/venues/0/price/ETH-PERP")
        assert status == 200 and one["market"] == "ETH-PERP"
        status, native = await get(client, "/v/3/prices")
        assert {q["venue"] for q in native["venues"]} == {3}

    run(check)


def test_the_binance_stream_pushes_book_tickers_and_every_fault_acts_on_it() -> None:
    async def check(client: TestClient[Any, Any], venues: Venues, clock: Clock) -> None:
        async def next_message(ws: Any) -> Any:
            return json.loads(await asyncio.wait_for(ws.receive_str(), 2.0))

        ws = await client.ws_connect("/v/0/ws/btcusdt@bookTicker")
        first = await next_message(ws)
        assert set(first) == {"u", "s", "b", "B", "a", "A"} and first["s"] == "BTCUSDT"
        mid = (float(first["b"]) + float(first["a"])) / 2
        assert mid == pytest.approx(venues.clean_price(0, "BTC-PERP", clock.t), rel=1e-7)
        venues.add_fault({"venue": 0, "market": "BTC-PERP", "kind": "zero"})
        zero = await next_message(ws)
        assert zero["b"] == zero["a"] == "0.00000000" and zero["u"] > first["u"]
        venues.faults.clear()
        venues.add_fault({"venue": 0, "market": "BTC-PERP", "kind": "freeze"})
        await next_message(ws)  # the frozen book, once
        clock.t += 30.0
        with pytest.raises(TimeoutError):  # a frozen book pushes nothing new
            await asyncio.wait_for(ws.receive_str(), 0.5)
        venues.faults.clear()
        venues.add_fault({"venue": 0, "market": "BTC-PERP", "kind": "scale", "value": 3.0})
        scaled = await next_message(ws)
        mid = (float(scaled["b"]) + float(scaled["a"])) / 2
        assert mid == pytest.approx(3 * venues.clean_price(0, "BTC-PERP", clock.t), rel=1e-7)
        venues.faults.clear()
        venues.add_fault({"venue": 0, "market": "BTC-PERP", "kind": "drop"})
        clock.t += 1.0
        with pytest.raises(TimeoutError):  # nothing while it holds...
            await asyncio.wait_for(ws.receive_str(), 0.5)
        refused = await client.get("/v/0/ws/btcusdt@bookTicker")  # ...and no new stream
        assert refused.status == 503 and (await refused.json())["code"] == -1001
        await ws.close()

    run(check)


def test_the_binance_stream_subscribes_live_and_combines() -> None:
    async def check(client: TestClient[Any, Any], venues: Venues, clock: Clock) -> None:
        ws = await client.ws_connect("/v/0/ws")
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@bookTicker"],
                                      "id": 7}))  # fmt: skip
        answers = [json.loads(await asyncio.wait_for(ws.receive_str(), 2.0)) for _ in range(2)]
        assert {"result": None, "id": 7} in answers
        assert any(a.get("s") == "ETHUSDT" for a in answers)
        await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 8}))
        for _ in range(5):
            answer = json.loads(await asyncio.wait_for(ws.receive_str(), 2.0))
            if answer.get("id") == 8:
                assert answer["result"] == ["ethusdt@bookTicker"]
                break
        else:
            pytest.fail("no answer to LIST_SUBSCRIPTIONS")
        await ws.close()
        combined = await client.ws_connect(
            "/v/0/stream?streams=btcusdt@bookTicker/ethusdt@bookTicker"
        )
        seen = set()
        for _ in range(2):
            message = json.loads(await asyncio.wait_for(combined.receive_str(), 2.0))
            seen.add(message["stream"])
            assert message["data"]["s"] in ("BTCUSDT", "ETHUSDT")
        assert seen == {"btcusdt@bookTicker", "ethusdt@bookTicker"}
        await combined.close()
        assert (await client.get("/v/1/ws/btcusdt@bookTicker")).status == 404  # coinbase: none

    run(check)


def test_default_symbols_and_shape_specs() -> None:
    assert default_symbol("binance", "BTC-PERP") == "BTCUSDT"
    assert default_symbol("coinbase", "ETH-PERP") == "ETH-USD"
    assert default_symbol("kraken", "BTC-PERP") == "XXBTZUSD"
    assert default_symbol("kraken", "SOL-PERP") == "SOLUSD"
    assert default_symbol("tradechaos", "BTC-PERP") == "BTC-PERP"
    assert kraken_altname("XXBTZUSD") == "XBTUSD" and kraken_altname("SOLUSD") == "SOLUSD"
    assert parse_shape("binance:BTC-PERP=BTCUSDT,ETH-PERP=ETHUSDT") == (
        "binance", {"BTC-PERP": "BTCUSDT", "ETH-PERP": "ETHUSDT"})  # fmt: skip
    with pytest.raises(ValueError, match="unknown shape 'ftx'"):
        parse_shape("ftx")
    with pytest.raises(ValueError, match="unknown market 'SOL-PERP'"):
        venue_shapes(["binance:SOL-PERP=SOLUSDT"], 1, MARKETS)


STACK = """\
name: shapes
markets:
  BTC-PERP: {initial_price: 60000}
  ETH-PERP: {initial_price: 3000}
services:
  feeds:
    builtin: venues
    venues:
      - {shape: binance, symbols: {BTC-PERP: BTCUSDT}}
      - {shape: kraken}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    return path


def test_a_stack_file_chooses_a_shape_per_venue(tmp_path: Path) -> None:
    definition = resolve(load(write(tmp_path, STACK)))
    feeds = definition.service("feeds")
    assert feeds.venues == 2
    assert feeds.command[-4:] == ("--venue-shape", "binance:BTC-PERP=BTCUSDT",
                                  "--venue-shape", "kraken")  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("shape: kraken", "shape: bitfinex"),
         "yaml:10: services.feeds.venues[1].shape: unknown value 'bitfinex' (allowed: "
         "'tradechaos', 'binance', 'coinbase', 'kraken')"),
        (("BTC-PERP: BTCUSDT", "SOL-PERP: SOLUSDT"),
         "yaml:9: services.feeds.venues[0].symbols.SOL-PERP: unknown market 'SOL-PERP' "
         "(markets: BTC-PERP, ETH-PERP)"),
        (("{BTC-PERP: BTCUSDT}", "{BTC-PERP: BTCUSDT, ETH-PERP: BTCUSDT}"),
         "services.feeds.venues[0].symbols.ETH-PERP: symbol 'BTCUSDT' is also BTC-PERP's"),
        (("    venues:\n", "    count: 2\n    venues:\n"),
         "services.feeds.count: give count or venues (one entry per venue), not both"),
        (("BTC-PERP: BTCUSDT", "BTC-PERP: BTC/USD"),
         "services.feeds.venues[0].symbols.BTC-PERP: 'BTC/USD' is not an exchange symbol"),
    ],
)  # fmt: skip
def test_validate_names_a_bad_venue_list(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    found = problems(write(tmp_path, STACK.replace(*change)))
    assert found, "the stack file should be refused"
    assert message in str(found[0]), str(found[0])
