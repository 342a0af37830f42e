"""Toxiproxy 2.x HTTP API on aiohttp, plus two tradechaos extensions.

Status codes follow Toxiproxy: 201 for a created proxy and for ``/populate``, 200 for a
created or updated toxic, 204 for deletes and ``/reset``, 400 bad request, 404 unknown
proxy/toxic/route, 409 duplicate name, 500 when a listener cannot bind, 403 for browsers
(a ``Mozilla/`` user agent, as Toxiproxy). Every error body is
``{"error": "one sentence", "status": code}`` and no request can stop the server.

Extensions: ``GET /proxies/{name}/stats`` (fault evidence) and ``GET /runtime`` (open file
descriptors, asyncio tasks and links of this process, for leak checks).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from chaos import __version__
from chaos.proxy.server import ApiError, ProxyCollection

TOXIPROXY_VERSION = "2.12.0"

_COLLECTION: web.AppKey[ProxyCollection] = web.AppKey("collection", ProxyCollection)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(payload: object, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(payload).encode(), status=status, content_type="application/json"
    )


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message, "status": status}, status)


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise ApiError(400, f"bad request body: {err}") from err


@web.middleware
async def _no_browsers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Like Toxiproxy: a web page must not be able to drive the API through a browser."""
    if request.headers.get("User-Agent", "").startswith("Mozilla/"):
        return _error(403, "user agent not allowed")
    return await handler(request)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as err:
        return _error(err.status, err.message)
    except web.HTTPException as err:
        if err.status >= 400:
            return _error(err.status, err.reason.lower())
        raise
    except asyncio.CancelledError:
        raise
    except Exception as err:  # the server must keep serving whatever a request does
        return _error(500, f"internal error: {type(err).__name__}: {err}")


def _collection(request: web.Request) -> ProxyCollection:
    return request.app[_COLLECTION]


async def version(request: web.Request) -> web.Response:
    return _json({"version": TOXIPROXY_VERSION, "tradechaos": __version__})


async def proxy_index(request: web.Request) -> web.Response:
    proxies = _collection(request).proxies
    return _json({name: proxy.to_json() for name, proxy in proxies.items()})


async def proxy_create(request: web.Request) -> web.Response:
    collection = _collection(request)
    body = await _body(request)
    async with collection.lock:
        proxy = await collection.create(body)
    return _json(proxy.to_json(), 201)


async def populate(request: web.Request) -> web.Response:
    collection = _collection(request)
    body = await _body(request)
    async with collection.lock:
        proxies = await collection.populate(body)
    return _json({"proxies": [p.to_json() for p in proxies]}, 201)


async def proxy_show(request: web.Request) -> web.Response:
    return _json(_collection(request).get(request.match_info["proxy"]).to_json())


async def proxy_update(request: web.Request) -> web.Response:
    collection = _collection(request)
    body = await _body(request)
    async with collection.lock:
        proxy = await collection.update(request.match_info["proxy"], body)
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
    app = web.Application(middlewares=[_errors, _no_browsers], client_max_size=1 << 20)
    app[_COLLECTION] = collection
    one = "/proxies/{proxy}"
    toxic = one + "/toxics/{toxic}"
    app.add_routes(
        [
            web.get("/version", version),
            web.get("/runtime", runtime),
            web.post("/reset", reset),
            web.post("/populate", populate),
            web.get("/proxies", proxy_index),
            web.post("/proxies", proxy_create),
            web.get(one, proxy_show),
            web.post(one, proxy_update),
            web.patch(one, proxy_update),
            web.delete(one, proxy_delete),
            web.get(one + "/stats", proxy_stats),
            web.get(one + "/toxics", toxic_index),
            web.post(one + "/toxics", toxic_create),
            web.get(toxic, toxic_show),
            web.post(toxic, toxic_update),
            web.patch(toxic, toxic_update),
            web.delete(toxic, toxic_delete),
        ]
    )
    return app
