"""Toxiproxy 2.x HTTP API on aiohttp, plus two tradechaos extensions.

The answers follow Toxiproxy 2.12.0 (docs/proxy.md lists where ours differs, on purpose):
- 201 for a created proxy and for ``/populate``, 200 for a created or updated toxic, 204
  for deletes and ``/reset``; 400 bad request, 404 unknown proxy/toxic, 409 duplicate
  name, 500 when a listener cannot bind; 403 for browsers (a ``Mozilla/`` user agent).
- Success bodies are compact JSON, ``Content-Type: application/json``; ``/version`` is
  ``{"version": "2.12.0"}`` and a newline (``application/json;charset=utf-8``).
- An error body is ``{"error": "...", "status": N}`` and a newline, served as
  ``text/plain; charset=utf-8`` with ``X-Content-Type-Options: nosniff`` (Go's
  ``http.Error``); ``/populate`` answers errors as ``application/json`` with the proxies it
  did create before the failure (``"proxies": [...]``, or ``null``).
- An unknown route is ``404 page not found`` (text); a known route with another method is
  an empty 405. Every request to a known route gets an ``X-Toxiproxy-Request-Id`` header.
No request can stop the server.

Extensions: ``GET /proxies/{name}/stats`` (fault evidence) and ``GET /runtime`` (open file
descriptors, asyncio tasks and links of this process, for leak checks).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from chaos.proxy.body import BodyError, decode
from chaos.proxy.server import ApiError, Proxy, ProxyCollection, bad_body

TOXIPROXY_VERSION = "2.12.0"
REQUEST_ID_HEADER = "X-Toxiproxy-Request-Id"

_COLLECTION: web.AppKey[ProxyCollection] = web.AppKey("collection", ProxyCollection)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RequestIds:
    """Request ids shaped as Toxiproxy's (xid: 4 bytes of time, 3 of machine, 2 of process,
    3 of counter, in 20 lowercase base32hex characters); unique within this process."""

    def __init__(self) -> None:
        self._machine = os.urandom(3)
        self._pid = (os.getpid() & 0xFFFF).to_bytes(2, "big")
        self._counter = itertools.count(int.from_bytes(os.urandom(3), "big"))

    def next(self) -> str:
        raw = (
            int(time.time()).to_bytes(4, "big")
            + self._machine
            + self._pid
            + (next(self._counter) & 0xFFFFFF).to_bytes(3, "big")
        )
        return base64.b32hexencode(raw).decode().rstrip("=").lower()


def _compact(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _json(payload: object, status: int = 200) -> web.Response:
    return web.Response(
        body=_compact(payload), status=status, headers={"Content-Type": "application/json"}
    )


def _text(status: int, text: str) -> web.Response:
    headers = {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}
    return web.Response(body=text.encode(), status=status, headers=headers)


def _error(status: int, message: str) -> web.Response:
    return _text(status, _compact({"error": message, "status": status}).decode() + "\n")


async def _body(request: web.Request) -> object:
    try:
        return decode(await request.read())
    except BodyError as err:
        raise bad_body(err) from None


_REQUEST_IDS: web.AppKey[RequestIds] = web.AppKey("request_ids", RequestIds)


@web.middleware
async def _toxiproxy_http(request: web.Request, handler: Handler) -> web.StreamResponse:
    unmatched = request.match_info.http_exception
    if unmatched is not None:  # Go's router answers before any middleware runs
        if unmatched.status == 405:
            return web.Response(status=405)
        return _text(404, "404 page not found\n")
    request_id = request.app[_REQUEST_IDS].next()
    try:
        if request.headers.get("User-Agent", "").startswith("Mozilla/"):
            # A web page must not be able to drive the API through a browser.
            response: web.StreamResponse = _text(403, "User agent not allowed\n")
        else:
            response = await handler(request)
    except ApiError as err:
        response = _error(err.status, err.message)
    except web.HTTPException as err:
        response = _error(err.status, err.reason.lower())
    except asyncio.CancelledError:
        raise
    except Exception as err:  # the server must keep serving whatever a request does
        response = _error(500, f"internal error: {type(err).__name__}: {err}")
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


def _collection(request: web.Request) -> ProxyCollection:
    return request.app[_COLLECTION]


async def version(request: web.Request) -> web.Response:
    body = f'{{"version": "{TOXIPROXY_VERSION}"}}\n'.encode()
    return web.Response(body=body, headers={"Content-Type": "application/json;charset=utf-8"})


async def proxy_index(request: web.Request) -> web.Response:
    proxies = _collection(request).proxies  # keys sorted, as Go writes a map
    return _json({name: proxies[name].to_json() for name in sorted(proxies)})


async def proxy_create(request: web.Request) -> web.Response:
    collection = _collection(request)
    body = await _body(request)
    async with collection.lock:
        proxy = await collection.create(body)
    return _json(proxy.to_json(), 201)


def _listed(proxies: list[Proxy]) -> list[object] | None:
    return [p.to_json() for p in proxies] or None  # Toxiproxy lists none as null


async def populate(request: web.Request) -> web.Response:
    collection = _collection(request)
    try:
        body = await _body(request)
        async with collection.lock:
            proxies, failure = await collection.populate(body)
    except ApiError as err:
        proxies, failure = [], err
    if failure is None:
        return _json({"proxies": _listed(proxies)}, 201)
    payload = {"error": failure.message, "status": failure.status, "proxies": _listed(proxies)}
    return _json(payload, failure.status)


async def proxy_show(request: web.Request) -> web.Response:
    return _json(_collection(request).get(request.match_info["proxy"]).to_json())


async def proxy_update(request: web.Request) -> web.Response:
    collection = _collection(request)
    proxy_name = request.match_info["proxy"]
    collection.get(proxy_name)  # an unknown proxy is 404 whatever the body
    body = await _body(request)
    async with collection.lock:
        proxy = await collection.update(proxy_name, body)
    return _json(proxy.to_json())


async def proxy_delete(request: web.Request) -> web.Response:
    collection = _collection(request)
    async with collection.lock:
        await collection.delete(request.match_info["proxy"])
    return web.Response(status=204)


async def reset(request: web.Request) -> web.Response:
    collection = _collection(request)
    async with collection.lock:
        await collection.reset()
    return web.Response(status=204)


async def toxic_index(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return _json([t.to_json() for t in proxy.toxics()])


async def toxic_create(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    body = await _body(request)
    return _json(proxy.add_toxic(body).to_json())


async def toxic_show(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return _json(proxy.find_toxic(request.match_info["toxic"]).to_json())


async def toxic_update(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    proxy.find_toxic(request.match_info["toxic"])  # an unknown toxic is 404 whatever the body
    body = await _body(request)
    return _json(proxy.update_toxic(request.match_info["toxic"], body).to_json())


async def toxic_delete(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    proxy.remove_toxic(request.match_info["toxic"])
    return web.Response(status=204)


async def proxy_stats(request: web.Request) -> web.Response:
    return _json(_collection(request).get(request.match_info["proxy"]).stats_json())


async def runtime(request: web.Request) -> web.Response:
    collection = _collection(request)
    return _json(
        {
            "open_fds": len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1,
            "tasks": len(asyncio.all_tasks()),
            "links": sum(len(p.links) for p in collection.proxies.values()),
        }
    )


def build_app(collection: ProxyCollection) -> web.Application:
    app = web.Application(middlewares=[_toxiproxy_http], client_max_size=1 << 20)
    app[_COLLECTION] = collection
    app[_REQUEST_IDS] = RequestIds()
    one = "/proxies/{proxy}"
    toxic = one + "/toxics/{toxic}"

    def get(path: str, handler: Handler) -> web.RouteDef:
        return web.get(path, handler, allow_head=False)  # Go's router: HEAD is not GET

    app.add_routes(
        [
            get("/version", version),
            get("/runtime", runtime),
            web.post("/reset", reset),
            web.post("/populate", populate),
            get("/proxies", proxy_index),
            web.post("/proxies", proxy_create),
            get(one, proxy_show),
            web.post(one, proxy_update),
            web.patch(one, proxy_update),
            web.delete(one, proxy_delete),
            get(one + "/stats", proxy_stats),
            get(one + "/toxics", toxic_index),
            web.post(one + "/toxics", toxic_create),
            get(toxic, toxic_show),
            web.post(toxic, toxic_update),
            web.patch(toxic, toxic_update),
            web.delete(toxic, toxic_delete),
        ]
    )
    return app
