"""What the services share around aiohttp: JSON replies, periodic loops, and serving.

``serve`` runs an app until SIGTERM/SIGINT; aiohttp then stops accepting, lets handlers in
flight finish (up to 3 s), and runs the app's cleanup (background loops are cancelled).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from aiohttp import web

from minidex.config import Settings

log = logging.getLogger("minidex")


def reply(body: Any, status: int = 200) -> web.Response:
    return web.json_response(
        body, status=status, dumps=lambda o: json.dumps(o, separators=(",", ":"))
    )


async def every(
    interval_s: float, step: Callable[[], Coroutine[Any, Any, None]], what: str
) -> None:
    """Run ``step`` every ``interval_s`` for ever; a failing step is logged, not fatal."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the next round retries
            log.warning("%s failed: %s: %s", what, type(err).__name__, err)
        await asyncio.sleep(interval_s)


def background(
    *loops: Callable[[], Coroutine[Any, Any, None]],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup context running ``loops`` while the app runs."""

    async def context(_app: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(loop()) for loop in loops]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    return context


def serve(app: web.Application, settings: Settings, name: str) -> None:
    log.info("%s serving on %s:%d", name, settings.host, settings.port)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=None,
        shutdown_timeout=3.0,
        reuse_address=True,
    )
