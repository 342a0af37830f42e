"""The few aiohttp pieces a small JSON service needs: answers, request bodies, and a
serve loop that stops cleanly on SIGTERM/SIGINT. Used by the built-in parts (and free for
a stack's own services to use)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from typing import Any

from aiohttp import web

log = logging.getLogger("chaos.builtins")


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(body, separators=(",", ":")), status=status, content_type="application/json"
    )


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; 400 with the reason when it is not one."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError) as err:
        raise web.HTTPBadRequest(text=f"invalid JSON: {err}") from err
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


def install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def serve(app: web.Application, host: str, port: int) -> None:
    """Run ``app`` until SIGTERM/SIGINT, then clean up (on_cleanup hooks, at most 5 s)."""
    install_uvloop()

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
        await site.start()
        log.info("listening on %s:%d", host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("stopping")
        try:
            await asyncio.wait_for(runner.cleanup(), 5.0)
        except TimeoutError:
            log.warning("cleanup timed out")

    asyncio.run(main())
