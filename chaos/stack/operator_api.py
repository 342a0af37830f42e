"""The sequencer's operator endpoints (docs/contracts.md, reference stack, sequencer).

``cancel_all`` with exceptions by order type, ``disable_access``/``enable_access``,
``snapshot``, ``rollback`` and ``replay``. Requests that change the sequenced state go
through the sequencer's batch queue (``submit``) or run between two batches with its write
lock (``exclusive``), so each one sees the log at one seq.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Protocol

from aiohttp import web

from chaos.builtins.web import json_response, read_json
from chaos.stack import recovery
from chaos.stack.changes import BadRequest
from chaos.stack.common import Pg
from chaos.stack.engine import Engine


class Sequencing(Protocol):
    """What the operator API needs of the sequencer (``chaos.stack.sequencer.Sequencer``):
    its engine and lease epoch, its database, the fence it writes under, a request through
    its batch queue (``submit``) and an operation between two batches (``exclusive``)."""

    engine: Engine
    epoch: int
    db: Pg

    @property
    def fence(self) -> tuple[int, str] | None: ...

    def _new_engine(self, epoch: int) -> Engine: ...

    async def submit(self, kind: str, body: dict[str, Any]) -> web.Response: ...

    async def exclusive(self, operation: Any, reload: bool = False) -> web.Response: ...


log = logging.getLogger("chaos.stack.sequencer")
ROLLBACK_CHAIN_WAIT_S = 10.0  # how long a rollback's answer waits for the writer's part


def refused(reason: str) -> web.Response:
    """Traders' answer while access is disabled: 403, so clients record ``fail`` (the
    order certainly did not happen), never ``info``."""
    return json_response({"status": "refused", "error": reason}, 403)


class OperatorApi:
    """HTTP handlers of the operator endpoints of one sequencer."""

    def __init__(self, seq: Sequencing) -> None:
        self.seq = seq

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/admin/cancel_all", self.cancel_all),
            web.post("/admin/disable_access", self.disable_access),
            web.post("/admin/enable_access", self.enable_access),
            web.get("/admin/access", self.get_access),
            web.post("/admin/snapshot", self.snapshot),
            web.get("/admin/snapshots", self.snapshots),
            web.post("/admin/rollback", self.rollback),
            web.post("/admin/replay", self.replay),
        ]

    async def cancel_all(self, request: web.Request) -> web.Response:
        return await self.seq.submit("cancel_all", await read_json(request))

    async def disable_access(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        reason = str(body.get("reason") or "maintenance")
        return await self.seq.submit("access", {"enabled": False, "reason": reason})

    async def enable_access(self, _request: web.Request) -> web.Response:
        return await self.seq.submit("access", {"enabled": True, "reason": ""})

    async def get_access(self, _request: web.Request) -> web.Response:
        engine = self.seq.engine
        return json_response({"enabled": engine.access_enabled, "reason": engine.access_reason})

    async def snapshot(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        label = body.get("label")
        if label is not None and (not isinstance(label, str) or not label):
            return json_response({"error": "label must be a non-empty string"}, 400)

        async def take(conn: Any) -> dict[str, Any]:
            return await recovery.take_snapshot(
                conn, label, self.seq.engine.seq, time.time(), self.seq.fence
            )

        return await self.seq.exclusive(take)

    async def snapshots(self, _request: web.Request) -> web.Response:
        return json_response({"snapshots": await self.seq.db.run(recovery.list_snapshots)})

    async def rollback(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        wait_s = body.get("wait_s", ROLLBACK_CHAIN_WAIT_S)
        if not isinstance(wait_s, int | float) or wait_s < 0:
            return json_response({"error": "wait_s must be a number >= 0"}, 400)
        done: dict[str, Any] = {}

        async def go(conn: Any) -> dict[str, Any]:
            seq_now = self.seq.engine.seq
            target = await recovery.resolve_target(conn, body, seq_now)
            fresh = self.seq._new_engine(self.seq.epoch)
            answer = await recovery.roll_back(
                conn, fresh, target, seq_now, time.time(), self.seq.fence
            )
            done.update(answer)
            return answer

        response = await self.seq.exclusive(go, reload=True)
        if not done:
            return response
        log.warning(
            "rolled back to seq %d (rollback %d, %d events removed)",
            done["to_seq"],
            done["rollback"],
            done["rolled_back"]["events"],
        )
        done["chain"] = await self.wait_for_chain(done["rollback"], float(wait_s))
        return json_response(done)

    async def wait_for_chain(self, rollback_id: int, wait_s: float) -> dict[str, Any]:
        """The writer's part of a rollback, waited for at most ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while True:
            rows = await self.seq.db.fetch(
                "SELECT chain_done_at, chain_dropped, chain_error, chain_height FROM rollbacks "
                "WHERE id = %s",
                (rollback_id,),
            )
            if rows and rows[0][0] is not None:
                done_at, dropped, error, height = rows[0]
                return {
                    "rolled_back": error is None,
                    "height": int(height),
                    "dropped": dropped,
                    "error": error,
                    "at": done_at,
                }
            if time.monotonic() >= deadline:
                return {
                    "rolled_back": False,
                    "pending": True,
                    "error": "the writer has not "
                    f"rolled the chain back within {wait_s:g} s (it will when it runs)",
                }
            await asyncio.sleep(0.1)

    async def replay(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        seqs, kinds, rollback_id = body.get("seqs"), body.get("kinds"), body.get("rollback")
        if seqs is not None and not (
            isinstance(seqs, list) and all(isinstance(x, int) for x in seqs)
        ):
            return json_response({"error": "seqs must be a list of integers"}, 400)
        if kinds is not None and not (
            isinstance(kinds, list) and all(isinstance(x, str) for x in kinds)
        ):
            return json_response({"error": "kinds must be a list of event kinds"}, 400)
        try:
            rollback_id, events = await self.seq.db.run(
                lambda conn: recovery.rolled_back_events(conn, rollback_id, seqs, kinds)
            )
        except BadRequest as err:
            return json_response({"error": str(err)}, 400)
        response = await self.seq.submit("replay", {"events": events})
        if response.status == 200:
            answer = json.loads(response.text or "{}")
            return json_response({**answer, "rollback": rollback_id})
        return response
