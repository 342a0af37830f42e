"""Helpers shared by the stack's services: flags, logging, the aiohttp server loop, and a
PostgreSQL connection that reconnects after connection loss.

Every blocking call has a timeout: database statements are bounded by ``Pg.timeout_s`` on
the client side (a stalled proxy never answers, so a server-side statement_timeout is not
enough); on timeout or error the connection is dropped and the next use reconnects.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from chaos.stack.mitigations import parse_mitigations
from chaos.world import MARKET_NAMES

HOST = "127.0.0.1"
log = logging.getLogger("chaos.stack")


def base_parser(service: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m chaos.stack.{service}")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--run-dir", default=".")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epoch", type=float, default=None, help="price origin, wall-clock s")
    parser.add_argument("--mitigations", default="all")
    parser.add_argument("--log-level", default="INFO")
    return parser


def parse_args(
    parser: argparse.ArgumentParser, argv: list[str] | None = None
) -> argparse.Namespace:
    args = parser.parse_args(argv)
    try:
        args.mitigations = parse_mitigations(args.mitigations)
    except ValueError as err:
        parser.error(str(err))
    if getattr(args, "epoch", None) is None:
        args.epoch = time.time()
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s {parser.prog.rsplit('.', 1)[-1]} %(levelname)s %(message)s",
    )
    return args


def split_hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return (host or HOST), int(port)


def finite_positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def funding_jump_ok(
    old_index: float, new_index: float, price: float, max_rate: float, elapsed_intervals: float
) -> bool:
    """The data-validation bound: a funding index may move at most
    ``max_rate * price * (elapsed_intervals + 1)`` between two valid observations."""
    if not math.isfinite(new_index):
        return False
    bound = max_rate * abs(price) * (max(0.0, elapsed_intervals) + 1.0)
    return abs(new_index - old_index) <= bound


class Pg:
    """One lazily (re)connected async PostgreSQL connection (autocommit).

    ``run(fn)`` calls ``fn(conn)`` under a client-side timeout; any failure closes the
    connection (the next call reconnects) and re-raises.
    """

    def __init__(
        self, hostport: str, name: str, timeout_s: float = 5.0, dbname: str = "tradechaos"
    ):
        self.host, self.port = split_hostport(hostport)
        self.name = name
        self.timeout_s = timeout_s
        self.dbname = dbname
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self.last_error: str | None = None

    async def _connect(self) -> Any:
        import psycopg

        conn = await asyncio.wait_for(
            psycopg.AsyncConnection.connect(
                host=self.host,
                port=self.port,
                user="postgres",
                dbname=self.dbname,
                autocommit=True,
                connect_timeout=max(1, int(self.timeout_s)),
                application_name=self.name,
                # a client stopped mid-transaction (SIGSTOP, a cut link) must not hold its
                # locks (e.g. the lease row) for ever
                options="-c idle_in_transaction_session_timeout=2000",
            ),
            self.timeout_s,
        )
        return conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 1.0)

    async def run(self, fn: Callable[[Any], Awaitable[Any]], timeout_s: float | None = None) -> Any:
        async with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await self._connect()
                result = await asyncio.wait_for(fn(self._conn), timeout_s or self.timeout_s)
                self.last_error = None
                return result
            except BaseException as err:
                self.last_error = f"{type(err).__name__}: {err}".strip()
                await self.close()
                raise

    async def fetch(
        self, sql: str, params: Any = None, timeout_s: float | None = None
    ) -> list[tuple[Any, ...]]:
        async def go(conn: Any) -> list[tuple[Any, ...]]:
            cur = await conn.execute(sql, params)
            return list(await cur.fetchall()) if cur.description else []

        result: list[tuple[Any, ...]] = await self.run(go, timeout_s)
        return result


def spawn(app: web.Application, coro_fn: Callable[[], Awaitable[None]], name: str) -> None:
    """Run a background loop for the app's lifetime; it is cancelled at cleanup."""

    async def start(app_: web.Application) -> None:
        task = asyncio.create_task(_guarded(coro_fn, name), name=name)
        app_.setdefault("_tasks", []).append(task)

    async def stop(app_: web.Application) -> None:
        for task in app_.get("_tasks", []):
            task.cancel()
        for task in app_.get("_tasks", []):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        app_["_tasks"] = []

    app.on_startup.append(start)
    if stop not in app.on_cleanup:
        app.on_cleanup.append(stop)


async def _guarded(coro_fn: Callable[[], Awaitable[None]], name: str) -> None:
    while True:
        try:
            await coro_fn()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task %s crashed; restarting in 0.5 s", name)
            await asyncio.sleep(0.5)


async def every(interval_s: float, step: Callable[[], Awaitable[None]], name: str) -> None:
    """Call ``step`` every ``interval_s`` (fixed rate, no catch-up bursts); log failures."""
    next_at = time.monotonic()
    failures = 0
    while True:
        try:
            await step()
            failures = 0
        except asyncio.CancelledError:
            raise
        except Exception as err:
            failures += 1
            if failures in (1, 10) or failures % 100 == 0:
                log.warning(
                    "%s failed (%d in a row): %s: %s", name, failures, type(err).__name__, err
                )
        next_at += interval_s
        delay = next_at - time.monotonic()
        if delay < 0:
            next_at = time.monotonic()
            delay = 0
        await asyncio.sleep(delay)


# The newest oracle publication of every market (the sequencer, risk and the writer read it).
NEWEST_ORACLE_PRICES_SQL = " UNION ALL ".join(
    f"(SELECT market, mark_price, funding_index, ts FROM oracle_prices "
    f"WHERE market = '{m}' ORDER BY id DESC LIMIT 1)"
    for m in MARKET_NAMES
)
