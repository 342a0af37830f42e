"""A WebSocket ticker stream for the built-in venues: Binance's book-ticker stream.

A venue of shape ``binance`` also serves, like ``wss://stream.binance.com:9443``:

- ``/v/{i}/ws/{symbol}@bookTicker`` (a raw stream; symbols lowercase), payload
  ``{"u": update_id, "s": "BTCUSDT", "b": bid, "B": bid_qty, "a": ask, "A": ask_qty}``
  (numbers as strings);
- ``/v/{i}/stream?streams=btcusdt@bookTicker/ethusdt@bookTicker`` (combined: each message
  ``{"stream": name, "data": payload}``);
- ``/v/{i}/ws`` with live ``{"method": "SUBSCRIBE"|"UNSUBSCRIBE"|"LIST_SUBSCRIPTIONS",
  "params": [...], "id": n}`` requests, answered ``{"result": null|[...], "id": n}``.

A message is pushed when a subscribed symbol's bid or ask changes (the price path moves
every ``chaos.world.STEP_S``), so a ``freeze`` fault silences the stream, ``zero``/
``scale``/``offset`` change what it pushes, and while a ``drop`` holds nothing is pushed
and a new connection is refused with 503 and Binance's ``-1001`` error. Open streams are
closed (1001, going away) when the venues stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from chaos.builtins.quotes import Venues, tick
from chaos.builtins.symbols import BINANCE_UNAVAILABLE, VenueShape, price_text
from chaos.builtins.web import json_response
from chaos.world import STEP_S

SUFFIX = "@bookTicker"


class _Open:
    """The app's open streams (closed at shutdown)."""

    def __init__(self) -> None:
        self.streams: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()


OPEN_STREAMS = web.AppKey("open_streams", _Open)


def attach(app: web.Application) -> None:
    """Track the app's open streams and close them when it shuts down."""
    app[OPEN_STREAMS] = _Open()

    async def close_all(app: web.Application) -> None:
        for ws in set(app[OPEN_STREAMS].streams):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"venues stopping")

    app.on_shutdown.append(close_all)


def stream_routes(venues: Venues, index: int, shape: VenueShape) -> list[web.RouteDef]:
    """The stream routes of venue ``index`` (none unless its shape is ``binance``)."""
    if shape.shape != "binance":
        return []
    by_name = {f"{symbol.lower()}{SUFFIX}": market for market, symbol in shape.symbols.items()}

    async def raw(request: web.Request) -> web.StreamResponse:
        name = request.match_info["stream"]
        if name not in by_name:
            return json_response({"code": -1121, "msg": "Invalid symbol."}, 400)
        return await _serve(request, venues, index, shape, by_name, [name], combined=False)

    async def bare(request: web.Request) -> web.StreamResponse:
        return await _serve(request, venues, index, shape, by_name, [], combined=False)

    async def combined(request: web.Request) -> web.StreamResponse:
        names = [n for n in request.query.get("streams", "").split("/") if n]
        if not names or any(n not in by_name for n in names):
            return json_response({"code": -1121, "msg": "Invalid symbol."}, 400)
        return await _serve(request, venues, index, shape, by_name, names, combined=True)

    return [
        web.get(f"/v/{index}/ws", bare),
        web.get(f"/v/{index}/ws/{{stream}}", raw),
        web.get(f"/v/{index}/stream", combined),
    ]


async def _serve(
    request: web.Request,
    venues: Venues,
    index: int,
    shape: VenueShape,
    by_name: dict[str, str],
    names: list[str],
    combined: bool,
) -> web.StreamResponse:
    now = venues.clock()
    if any(tick(venues, index, by_name[n], now) is None for n in names):
        return json_response(BINANCE_UNAVAILABLE, 503)
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    request.app[OPEN_STREAMS].streams.add(ws)
    subscribed = list(names)
    closed = asyncio.Event()
    reader = asyncio.create_task(_read(ws, subscribed, by_name, closed))
    sent: dict[str, tuple[str, str]] = {}
    update_id = 0
    try:
        while not closed.is_set():
            now = venues.clock()
            for name in list(subscribed):
                found = tick(venues, index, by_name[name], now)
                if found is None:
                    continue
                book = (price_text(found.bid, "binance"), price_text(found.ask, "binance"))
                if sent.get(name) == book:
                    continue
                sent[name] = book
                update_id = max(update_id + 1, found.trade_id)
                payload: dict[str, Any] = {
                    "u": update_id,
                    "s": shape.symbols[by_name[name]],
                    "b": book[0],
                    "B": "1.00000000",
                    "a": book[1],
                    "A": "1.00000000",
                }
                message = {"stream": name, "data": payload} if combined else payload
                await ws.send_str(json.dumps(message, separators=(",", ":")))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed.wait(), STEP_S)
    except (ConnectionResetError, RuntimeError):
        pass  # the client went away mid-send
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        await ws.close()
    return ws


async def _read(
    ws: web.WebSocketResponse,
    subscribed: list[str],
    by_name: dict[str, str],
    closed: asyncio.Event,
) -> None:
    """Answer live subscription requests until the client closes."""
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            await ws.send_str(json.dumps(_request(msg.data, subscribed, by_name)))
    finally:
        closed.set()


def _request(text: str, subscribed: list[str], by_name: dict[str, str]) -> dict[str, Any]:
    try:
        body = json.loads(text)
        method, params, ident = body["method"], body.get("params") or [], body.get("id")
    except (ValueError, KeyError, TypeError):
        return {"error": {"code": 2, "msg": "Invalid request"}, "id": None}
    if method == "LIST_SUBSCRIPTIONS":
        return {"result": list(subscribed), "id": ident}
    if method not in ("SUBSCRIBE", "UNSUBSCRIBE") or not isinstance(params, list):
        problem = f"Invalid request: unknown method {method}"
        return {"error": {"code": 2, "msg": problem}, "id": ident}
    unknown = [p for p in params if p not in by_name]
    if unknown:
        return {"error": {"code": 2, "msg": f"Invalid request: unknown stream {unknown[0]}"},
                "id": ident}  # fmt: skip
    for name in params:
        if method == "SUBSCRIBE" and name not in subscribed:
            subscribed.append(name)
        elif method == "UNSUBSCRIBE" and name in subscribed:
            subscribed.remove(name)
    return {"result": None, "id": ident}
