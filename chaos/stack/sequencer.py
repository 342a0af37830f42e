"""The sequencer service: takes orders, matches them, sequences every event into the db.

``python -m chaos.stack.sequencer --port P --db H:P --instance a|b --role primary|standby``

One batching task owns the engine: requests queue up, each batch is applied in memory and
written in ONE transaction (group commit); every event's seq is assigned in that batch and
written by that transaction. If the transaction fails the engine is rebuilt from the db and
the batch's clients get 503 (their outcome is unknown to them).

Leadership: table ``leases`` (epoch, holder, renewed_at). The leader renews every 200 ms.
With ``fencing`` each write transaction locks the lease row and aborts if the epoch is no
longer its own (then the instance steps down to standby). A standby with ``auto_failover``
takes over (epoch + 1) when the lease is older than ``--rto``; ``POST /admin/promote``
takes over on request. Without fencing a slow old leader keeps writing (split brain).

Operator endpoints (docs/contracts.md, the reference stack's sequencer): ``cancel_all`` with
exceptions by order type, ``disable_access``/``enable_access`` (traders' orders and cancels
then get 403 ``{"status": "refused"}``), ``snapshot``, ``rollback`` (db here, chain by the
writer; the answer waits for the chain) and ``replay`` of rolled-back events. Batches and
the exclusive operations (snapshot, rollback) hold ``write_lock``, so each one sees the log
between two batches. After every price poll, trigger orders whose trigger price the mark
crossed are executed in a batch of their own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from chaos.builtins.web import json_response, read_json, serve
from chaos.stack import admin, store
from chaos.stack.common import Pg, base_parser, every, parse_args, spawn
from chaos.stack.engine import AccessRefused, BadRequest, Changes, Engine, NotServing
from chaos.stack.operator_api import OperatorApi, refused
from chaos.world import MARKET_NAMES

log = logging.getLogger("chaos.stack.sequencer")
MAX_BATCH = 256
REQUEST_TIMEOUT_S = 4.0  # below the load clients' 5 s: never executed after they gave up


class Fenced(Exception):
    """The lease epoch moved on: this instance no longer leads."""


class Sequencer:
    def __init__(self, args: Any) -> None:
        self.args = args
        self.instance: str = args.instance
        self.mitigations: frozenset[str] = args.mitigations
        self.db = Pg(args.db, f"sequencer-{self.instance}", timeout_s=args.db_timeout)
        self.lease_db = Pg(args.db, f"sequencer-{self.instance}-lease", timeout_s=2.0)
        self.price_db = Pg(args.db, f"sequencer-{self.instance}-prices", timeout_s=2.0)
        self.role = "loading"  # loading | leader | standby
        self.ready = False
        self.epoch = 0
        self.started_at = time.time()
        self.engine = self._new_engine(0)
        self.queue: asyncio.Queue[tuple[str, dict[str, Any], asyncio.Future[Any]]] = asyncio.Queue()
        self.in_flight: set[int] = set()  # ids of the futures of the batch being processed
        self.write_lock = asyncio.Lock()  # one batch or one exclusive admin operation at a time
        self.triggers_queued = False
        self.last_renewal = 0.0
        self.stats = {"batches": 0, "requests": 0, "commit_s": 0.0}

    def _new_engine(self, epoch: int) -> Engine:
        return Engine(
            self.instance,
            epoch,
            MARKET_NAMES,
            self.mitigations,
            band_bps=self.args.band_bps,
            stale_after_s=self.args.stale_after,
            fresh_after=self.started_at,
        )

    # -- state from the db ------------------------------------------------------------
    async def load(self) -> None:
        """Rebuild the engine from the db (retrying until the db answers)."""
        self.ready = False
        while True:
            try:
                engine = await self.db.run(self._load, timeout_s=30.0)
                break
            except Exception as err:
                log.warning("loading state failed, retrying: %s", err)
                await asyncio.sleep(0.2)
        engine.fresh_price_seen = self.engine.fresh_price_seen
        self.engine = engine
        self.ready = True
        log.info(
            "state loaded: epoch %d, seq %d, mode %s, %d open orders",
            engine.epoch,
            engine.seq,
            engine.mode,
            len(engine.orders_by_id),
        )

    async def _load(self, conn: Any) -> Engine:
        engine = self._new_engine(self.epoch)
        await store.load_engine(conn, engine, "idempotency_keys" in self.mitigations)
        return engine

    async def poll_prices(self) -> None:
        prices = await self.price_db.run(store.read_prices)
        now = time.time()
        for market, price in prices.items():
            self.engine.set_price(market, price, now)
        if (
            self.role == "leader"
            and self.ready
            and not self.triggers_queued
            and self.engine.triggers
            and self.engine.due_triggers(now)
        ):
            self.triggers_queued = True
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            await self.queue.put(("triggers", {}, fut))

    # -- leadership ---------------------------------------------------------------------
    async def _lease(self) -> tuple[int, str, float] | None:
        rows = await self.lease_db.fetch(
            "SELECT epoch, holder, renewed_at FROM leases WHERE id = 1"
        )
        return (int(rows[0][0]), rows[0][1], float(rows[0][2])) if rows else None

    async def start_role(self) -> None:
        while True:
            try:
                lease = await self._lease()
                break
            except Exception as err:
                log.warning("reading the lease failed, retrying: %s", err)
                await asyncio.sleep(0.2)
        if self.args.role == "primary":
            if lease is None or lease[1] == self.instance:
                self.epoch = lease[0] if lease else 1
                await self.become_leader()
                return
            if time.time() - lease[2] > self.args.rto:
                await self.take_over(f"lease of {lease[1]} expired at start")
                return
            log.info("lease held by %s (epoch %d): starting as standby", lease[1], lease[0])
        self.role = "standby"
        self.ready = True

    async def become_leader(self) -> None:
        self.ready = False
        self.role = "leader"  # serving only once load() set ready
        await self.load()
        self.last_renewal = time.time()
        log.info("leading with epoch %d", self.epoch)

    async def take_over(self, why: str, force: bool = False) -> bool:
        """Take the lease (epoch + 1) unless, under its lock, it turns out to have been
        renewed within the RTO budget meanwhile (``force``: take it regardless)."""

        async def go(conn: Any) -> int | None:
            async with conn.transaction():
                cur = await conn.execute(
                    "SELECT epoch, holder, renewed_at FROM leases WHERE id = 1 FOR UPDATE"
                )
                row = await cur.fetchone()
                if not force and row is not None and time.time() - row[2] <= self.args.rto:
                    return None
                epoch = (int(row[0]) if row else 0) + 1
                await conn.execute(
                    "INSERT INTO leases (id, epoch, holder, renewed_at) VALUES (1, %s, %s, %s) "
                    "ON CONFLICT (id) DO UPDATE SET epoch = EXCLUDED.epoch, "
                    "holder = EXCLUDED.holder, renewed_at = EXCLUDED.renewed_at",
                    (epoch, self.instance, time.time()),
                )
                return epoch

        epoch = await self.lease_db.run(go)
        if epoch is None:
            return False
        self.epoch = epoch
        log.warning("taking over as leader with epoch %d: %s", epoch, why)
        await self.become_leader()
        return True

    def step_down(self, why: str) -> None:
        if self.role == "leader":
            log.warning("stepping down (epoch %d): %s", self.epoch, why)
        self.role = "standby"

    async def lease_step(self) -> None:
        if self.role == "leader":
            rows = await self.lease_db.fetch(
                "UPDATE leases SET renewed_at = %s WHERE id = 1 AND epoch = %s AND holder = %s "
                "RETURNING epoch",
                (time.time(), self.epoch, self.instance),
            )
            if rows:
                self.last_renewal = time.time()
            elif "fencing" in self.mitigations:
                self.step_down("the lease moved to a newer epoch")
        elif self.role == "standby" and "auto_failover" in self.mitigations:
            lease = await self._lease()
            if lease is None or time.time() - lease[2] > self.args.rto:
                age = "missing" if lease is None else f"{time.time() - lease[2]:.2f} s old"
                await self.take_over(f"lease {age} > rto {self.args.rto} s")

    # -- the batching writer ------------------------------------------------------------
    async def submit(self, kind: str, body: dict[str, Any]) -> web.Response:
        if self.role != "leader" or not self.ready:
            return json_response({"error": f"not serving ({self.role})"}, 503)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self.queue.put((kind, body, fut))
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                result = await fut  # cancelled on timeout; the batch loop then skips it
        except TimeoutError:
            if id(fut) in self.in_flight:
                return json_response({"error": "timed out; outcome unknown"}, 503)
            return json_response({"error": "timed out before processing; not executed"}, 503)
        if isinstance(result, BadRequest):
            return json_response({"error": str(result)}, 400)
        if isinstance(result, AccessRefused):
            return refused(str(result))
        if isinstance(result, Exception):
            return json_response({"error": str(result)}, 503)
        return json_response(result)

    async def batch_loop(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < MAX_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            # a request whose handler gave up (timed out) is not executed: its client was
            # told so and may send it again
            batch = [item for item in batch if not item[2].done()]
            if not batch:
                continue
            self.in_flight = {id(fut) for _, _, fut in batch}
            try:
                async with self.write_lock:
                    outcomes = await self._process(batch)
            finally:
                self.in_flight = set()
                if any(kind == "triggers" for kind, _, _ in batch):
                    self.triggers_queued = False
            for (_, _, fut), outcome in zip(batch, outcomes, strict=True):
                if not fut.done():
                    fut.set_result(outcome)

    async def _process(self, batch: list[tuple[str, dict[str, Any], Any]]) -> list[Any]:
        if self.role != "leader" or not self.ready:
            return [NotServing(f"not serving ({self.role})")] * len(batch)
        changes = Changes()
        outcomes: list[Any] = []
        now = time.time()
        try:
            for kind, body, _ in batch:
                try:
                    outcomes.append(self._apply(kind, body, changes, now))
                except (BadRequest, NotServing, AccessRefused) as err:
                    outcomes.append(err)
            if not changes.empty() or changes.idempotency:
                started = time.perf_counter()
                await self.db.run(lambda conn: self._persist(conn, changes))
                self.stats["batches"] += 1
                self.stats["requests"] += len(batch)
                self.stats["commit_s"] += time.perf_counter() - started
            return outcomes
        except Fenced as err:
            self.step_down(str(err))
            return [NotServing(f"fenced: {err}")] * len(batch)
        except Exception as err:
            log.warning(
                "batch of %d failed (%s: %s); reloading state", len(batch), type(err).__name__, err
            )
            await self.load()
            return [NotServing(f"write failed; outcome unknown: {err}")] * len(batch)

    def _apply(self, kind: str, body: dict[str, Any], changes: Changes, now: float) -> Any:
        engine = self.engine
        if kind == "order":
            return engine.place_order(body, changes, now)
        if kind == "cancel":
            return engine.cancel(body, changes, now)
        if kind == "liquidation":
            return engine.liquidate(body, changes, now)
        if kind == "mode":
            return engine.set_mode(body, changes, now)
        if kind == "triggers":
            return engine.fire_triggers(changes, now)
        if kind == "cancel_all":
            return admin.cancel_all(engine, body, changes, now)
        if kind == "replay":
            return admin.replay_kept(engine, body["events"], changes, now)
        if kind == "access":
            engine.access_enabled, engine.access_reason = body["enabled"], body["reason"]
            changes.access = (body["enabled"], body["reason"])
            return {"status": "accepted", **body, "at_seq": engine.seq, "time": now}
        raise BadRequest(f"unknown request kind {kind!r}")

    @property
    def fence(self) -> tuple[int, str] | None:
        return (self.epoch, self.instance) if "fencing" in self.mitigations else None

    async def exclusive(self, operation: Any, reload: bool = False) -> web.Response:
        """Run ``operation(conn)`` against the db between two batches (the write lock held);
        ``reload``: rebuild the engine from the db after it, before any batch runs. Answers
        as ``submit`` does."""
        if self.role != "leader" or not self.ready:
            return json_response({"error": f"not serving ({self.role})"}, 503)
        async with self.write_lock:
            try:
                result = await self.db.run(operation, timeout_s=30.0)
                if reload:
                    await self.load()
            except BadRequest as err:
                return json_response({"error": str(err)}, 400)
            except store.FencedOut as err:
                self.step_down(f"fenced: {err}")
                return json_response({"error": f"not serving (fenced: {err})"}, 503)
            except Exception as err:
                log.warning("%s failed: %s: %s", operation, type(err).__name__, err)
                await self.load()
                return json_response({"error": f"failed; outcome unknown: {err}"}, 503)
        return json_response(result)

    async def _persist(self, conn: Any, changes: Changes) -> None:
        fence = (self.epoch, self.instance) if "fencing" in self.mitigations else None
        try:
            await store.persist(conn, self.engine, changes, fence)
        except store.FencedOut as err:
            raise Fenced(f"{err}, this instance holds epoch {self.epoch}") from None

    # -- HTTP ---------------------------------------------------------------------------
    async def health(self, _request: web.Request) -> web.Response:
        body = {
            "status": "ok",
            "instance": self.instance,
            "role": self.role,
            "epoch": self.epoch,
            "mode": self.engine.mode,
            "seq": self.engine.seq,
            "batches": self.stats["batches"],
            "mean_batch": self.stats["requests"] / max(1, self.stats["batches"]),
            "mean_commit_ms": 1000 * self.stats["commit_s"] / max(1, self.stats["batches"]),
        }
        if not self.ready or self.role == "loading":
            return json_response({**body, "status": "unavailable", "reason": "loading"}, 503)
        return json_response(body)

    async def orders(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if not self.engine.access_enabled:  # fast path; the batch checks again
            return refused(f"access disabled by the operator: {self.engine.access_reason}")
        return await self.submit("order", body)

    async def cancel(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if not self.engine.access_enabled:
            return refused(f"access disabled by the operator: {self.engine.access_reason}")
        return await self.submit("cancel", body)

    async def liquidations(self, request: web.Request) -> web.Response:
        return await self.submit("liquidation", await read_json(request))

    async def set_mode(self, request: web.Request) -> web.Response:
        return await self.submit("mode", await read_json(request))

    async def get_mode(self, _request: web.Request) -> web.Response:
        return json_response({"mode": self.engine.mode, "role": self.role, "epoch": self.epoch})

    async def markets(self, _request: web.Request) -> web.Response:
        now = time.time()
        body = {}
        for market, book in self.engine.books.items():
            price = self.engine.prices.get(market)
            body[market] = {
                "oracle_price": price.mark_price if price else None,
                "funding_index": price.funding_index if price else None,
                "oracle_ts": price.ts if price else None,
                "oracle_age": (now - price.ts) if price else None,
                "best_bid": book.best("buy"),
                "best_ask": book.best("sell"),
                "held": self.engine.price_block(market, now),
            }
        return json_response({"markets": body, "mode": self.engine.shown_mode(now)})

    async def account(self, request: web.Request) -> web.Response:
        try:
            account = int(request.match_info["account"])
        except ValueError as err:
            raise web.HTTPBadRequest(text="account must be an integer") from err
        return json_response(self.engine.account_view(account))

    async def promote(self, _request: web.Request) -> web.Response:
        if self.role == "leader":
            return json_response({"status": "already leader", "epoch": self.epoch})
        await self.take_over("promoted by operator", force=True)
        return json_response({"status": "leader", "epoch": self.epoch})


def build_app(args: Any) -> web.Application:
    seq = Sequencer(args)
    app = web.Application(client_max_size=1 << 20)
    app.add_routes(
        [
            web.get("/health", seq.health),
            web.post("/orders", seq.orders),
            web.post("/orders/cancel", seq.cancel),
            web.post("/liquidations", seq.liquidations),
            web.get("/markets", seq.markets),
            web.get("/mode", seq.get_mode),
            web.post("/admin/mode", seq.set_mode),
            web.post("/admin/promote", seq.promote),
            web.get("/accounts/{account}", seq.account),
            *OperatorApi(seq).routes(),
        ]
    )

    async def run() -> None:
        await seq.start_role()
        await asyncio.gather(
            seq.batch_loop(),
            every(0.2, seq.lease_step, "lease"),
            every(0.1, seq.poll_prices, "oracle price poll"),
        )

    spawn(app, run, "sequencer")
    app["sequencer"] = seq
    return app


def main(argv: list[str] | None = None) -> None:
    parser = base_parser("sequencer")
    parser.add_argument("--db", required=True, help="host:port (the sequencer-db link)")
    parser.add_argument("--instance", default="a")
    parser.add_argument("--role", choices=("primary", "standby"), default="primary")
    parser.add_argument("--rto", type=float, default=5.0, help="failover budget, s")
    parser.add_argument("--band-bps", type=float, default=200.0)
    parser.add_argument("--stale-after", type=float, default=3.0)
    parser.add_argument("--db-timeout", type=float, default=5.0)
    args = parse_args(parser, argv)
    serve(build_app(args), args.host, args.port)


if __name__ == "__main__":
    main()
