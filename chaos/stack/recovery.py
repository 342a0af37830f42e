"""Snapshots and rollbacks of the reference stack, on the database side (the sequencer calls
these while it holds its write lock, so no batch is written in between).

A **snapshot** marks a point of the sequenced state: the event log's seq S (every event up to
S), the chain head the writer had recorded then (height H, its last seq and hash: blocks
1..H hold events up to that last seq <= S) and the market state (funding index per market).
It is a row of ``snapshots``, named by its label.

A **rollback** to (S, H) — given, or a snapshot's, or H alone (S = the last seq of block H,
from ``written_blocks``) — in ONE transaction: moves the events after S to
``rolled_back_events`` (with the rollback's id), rewrites accounts, positions, open and
pending orders and the trading mode as a replay of the events up to S (``chaos.stack.replay``)
left them, forgets the idempotency results recorded after S, restores a snapshot's market
state, and records a pending chain rollback in ``rollbacks``. The writer rolls the chain back
to H and marks it done (``chain_done_at``); it writes the events after H again from the
db, so the chain ends as blocks 1..H plus new blocks of the kept and the new events. New
events take the seqs after S again: the log stays gap-free. Access control is left as it is.
"""

from __future__ import annotations

import json
from typing import Any

from chaos.stack.blocks import EVENT_COLUMNS, event_record
from chaos.stack.changes import BadRequest
from chaos.stack.engine import Engine
from chaos.stack.replay import rebuild
from chaos.stack.store import UPSERT_ORDER_SQL, check_fence, lock_lease, order_row

SNAPSHOT_COLUMNS = "label, seq, time, chain_height, chain_last_seq, chain_hash, market_state"


async def take_snapshot(
    conn: Any, label: str | None, seq: int, now: float, fence: tuple[int, str] | None
) -> dict[str, Any]:
    """Record a snapshot at ``seq`` (the engine's, between two batches); its answer."""
    label = label or f"seq-{seq}"
    async with conn.transaction():
        lease = await lock_lease(conn, fence)
        cur = await conn.execute("SELECT height, last_seq, hash FROM writer_state WHERE id = 1")
        head = await cur.fetchone() or (0, 0, "")
        cur = await conn.execute(
            "SELECT market, funding_index, interval, mark_price, ts FROM market_state "
            "ORDER BY market"
        )
        market_state = [
            {"market": m, "funding_index": f, "interval": int(k), "mark_price": p, "ts": ts}
            for m, f, k, p, ts in await cur.fetchall()
        ]
        cur = await conn.execute(
            f"INSERT INTO snapshots ({SNAPSHOT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (label) DO NOTHING RETURNING label",
            (label, seq, now, int(head[0]), int(head[1]), head[2], json.dumps(market_state)),
        )
        if await cur.fetchone() is None:
            raise BadRequest(f"a snapshot named {label!r} exists already")
        await check_fence(lease, fence)
    return {
        "status": "accepted",
        "snapshot": label,
        "seq": seq,
        "time": now,
        "chain_height": int(head[0]),
        "chain_last_seq": int(head[1]),
        "chain_hash": head[2],
        "market_state": market_state,
    }


async def list_snapshots(conn: Any) -> list[dict[str, Any]]:
    cur = await conn.execute(f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots ORDER BY time")
    names = [c.strip() for c in SNAPSHOT_COLUMNS.split(",")]
    return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]


async def resolve_target(conn: Any, req: dict[str, Any], seq_now: int) -> dict[str, Any]:
    """The rollback's (snapshot, to_seq, chain_height, chain_hash, market_state) from a
    request ``{"snapshot": label}`` or ``{"seq": S, "chain_height": H}`` (either alone);
    BadRequest naming what is missing or out of range."""
    target: dict[str, Any] = {"snapshot": None, "chain_hash": None, "market_state": None}
    if req.get("snapshot") is not None:
        cur = await conn.execute(
            "SELECT seq, chain_height, chain_hash, market_state FROM snapshots WHERE label = %s",
            (str(req["snapshot"]),),
        )
        row = await cur.fetchone()
        if row is None:
            raise BadRequest(f"no snapshot named {req['snapshot']!r}")
        target.update(
            snapshot=str(req["snapshot"]),
            to_seq=int(row[0]),
            chain_height=int(row[1]),
            chain_hash=row[2] or None,
            market_state=row[3],
        )
    else:
        seq, height = req.get("seq"), req.get("chain_height", req.get("height"))
        for name, value in (("seq", seq), ("chain_height", height)):
            if value is not None and (not isinstance(value, int) or value < 0):
                raise BadRequest(f"{name} must be a non-negative integer")
        if seq is None and height is None:
            raise BadRequest("a rollback needs snapshot, or seq and/or chain_height")
        if seq is None:
            cur = await conn.execute(
                "SELECT last_seq, hash FROM written_blocks WHERE height = %s", (height,)
            )
            row = await cur.fetchone()
            if row is None and height != 0:
                raise BadRequest(f"block {height} is unknown here: give seq as well")
            seq, target["chain_hash"] = (int(row[0]), row[1]) if row else (0, None)
        if height is None:
            cur = await conn.execute(
                "SELECT COALESCE(max(height), 0) FROM written_blocks WHERE last_seq <= %s",
                (seq,),
            )
            height = int((await cur.fetchone())[0])
        target.update(to_seq=int(seq), chain_height=int(height))
    if target["to_seq"] > seq_now:
        raise BadRequest(f"seq {target['to_seq']} is beyond the log's last seq {seq_now}")
    return target


async def roll_back(
    conn: Any,
    fresh: Engine,
    target: dict[str, Any],
    seq_now: int,
    now: float,
    fence: tuple[int, str] | None,
) -> dict[str, Any]:
    """Roll the db back to ``target["to_seq"]`` (see the module); ``fresh`` is an empty
    engine of this sequencer, rebuilt here from the kept events. The answer (without the
    chain's part, which the writer does)."""
    to_seq, height = target["to_seq"], target["chain_height"]
    cur = await conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE seq <= %s ORDER BY seq, id", (to_seq,)
    )
    rebuild(fresh, (event_record(row) for row in await cur.fetchall()))
    async with conn.transaction():
        lease = await lock_lease(conn, fence)
        cur = await conn.execute(
            "INSERT INTO rollbacks (snapshot, to_seq, from_seq, chain_height, chain_hash, time) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (target["snapshot"], to_seq, seq_now, height, target["chain_hash"], now),
        )
        rollback_id = int((await cur.fetchone())[0])
        await conn.execute(
            "INSERT INTO rolled_back_events (rollback, id, seq, epoch, sequencer, time, kind, "
            "body) SELECT %s, id, seq, epoch, sequencer, time, kind, body FROM events "
            "WHERE seq > %s",
            (rollback_id, to_seq),
        )
        summary = await _summary(conn, rollback_id)
        await conn.execute("DELETE FROM events WHERE seq > %s", (to_seq,))
        await _restore_state(conn, fresh, to_seq, target["market_state"])
        await conn.execute("DELETE FROM written_blocks WHERE height > %s", (height,))
        await conn.execute(  # a snapshot taken before the writer resyncs sees block H
            "UPDATE writer_state SET height = %s, "
            "last_seq = COALESCE((SELECT last_seq FROM written_blocks WHERE height = %s), 0), "
            "hash = COALESCE((SELECT hash FROM written_blocks WHERE height = %s), '') "
            "WHERE id = 1 AND height > %s",
            (height, height, height, height),
        )
        await check_fence(lease, fence)
    return {
        "status": "accepted",
        "rollback": rollback_id,
        "snapshot": target["snapshot"],
        "to_seq": to_seq,
        "from_seq": seq_now,
        "chain_height": height,
        "time": now,
        "rolled_back": summary,
        "mode": fresh.mode,
        "at_seq": to_seq,
        "accounts": fresh.accounts_state(),
    }


async def _summary(conn: Any, rollback_id: int) -> dict[str, Any]:
    cur = await conn.execute(
        "SELECT kind, count(*), min(seq), max(seq) FROM rolled_back_events WHERE rollback = %s "
        "GROUP BY kind ORDER BY kind",
        (rollback_id,),
    )
    rows = await cur.fetchall()
    cur = await conn.execute(
        "SELECT seq, body FROM rolled_back_events WHERE rollback = %s "
        "AND kind IN ('order_accepted', 'liquidation') ORDER BY seq, id",
        (rollback_id,),
    )
    orders, liquidations = [], []
    for seq, body in await cur.fetchall():
        body = json.loads(body) if isinstance(body, str) else body
        if "client_order_id" in body:
            orders.append(
                {
                    "seq": int(seq),
                    **{
                        k: body.get(k)
                        for k in ("order_id", "client_order_id", "account", "market", "order_type")
                    },
                }
            )
        else:
            liquidations.append(
                {"seq": int(seq), **{k: body.get(k) for k in ("account", "market", "qty")}}
            )
    return {
        "events": sum(int(r[1]) for r in rows),
        "by_kind": {r[0]: int(r[1]) for r in rows},
        "first_seq": min((int(r[2]) for r in rows), default=None),
        "last_seq": max((int(r[3]) for r in rows), default=None),
        "orders": orders,
        "liquidations": liquidations,
    }


async def _restore_state(conn: Any, fresh: Engine, to_seq: int, market_state: Any) -> None:
    """Rewrite the state tables as ``fresh`` (the replay up to ``to_seq``) holds them."""
    await conn.execute("DELETE FROM orders WHERE order_id > %s", (to_seq,))
    async with conn.cursor() as cur:
        if fresh.orders_by_id:
            await cur.executemany(
                UPSERT_ORDER_SQL, [order_row(o) for o in fresh.orders_by_id.values()]
            )
        await cur.execute("DELETE FROM accounts")
        if fresh.collateral:
            await cur.executemany(
                "INSERT INTO accounts VALUES (%s, %s)", sorted(fresh.collateral.items())
            )
        await cur.execute("DELETE FROM positions")
        if fresh.positions:
            await cur.executemany(
                "INSERT INTO positions VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (a, m, p.size, p.entry_price, p.entry_funding_index, p.realised_pnl)
                    for (a, m), p in fresh.positions.items()
                ],
            )
    await conn.execute("DELETE FROM idempotency WHERE at_seq > %s", (to_seq,))
    await conn.execute(
        "INSERT INTO trading_mode VALUES (1, %s, extract(epoch from now())) ON CONFLICT (id) "
        "DO UPDATE SET mode = EXCLUDED.mode, ts = EXCLUDED.ts",
        (fresh.mode,),
    )
    if isinstance(market_state, str):
        market_state = json.loads(market_state)
    for row in market_state or []:
        await conn.execute(
            "INSERT INTO market_state (market, funding_index, interval, mark_price, ts) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (market) DO UPDATE SET "
            "funding_index = EXCLUDED.funding_index, interval = EXCLUDED.interval, "
            "mark_price = EXCLUDED.mark_price, ts = EXCLUDED.ts",
            (row["market"], row["funding_index"], row["interval"], row["mark_price"], row["ts"]),
        )


async def rolled_back_events(
    conn: Any, rollback_id: int | None, seqs: list[int] | None, kinds: list[str] | None
) -> tuple[int, list[dict[str, Any]]]:
    """The events of rollback ``rollback_id`` (default: the latest) selected by seq and/or
    kind (both None: none, the caller must choose), for a replay."""
    if rollback_id is None:
        cur = await conn.execute("SELECT max(id) FROM rollbacks")
        found = (await cur.fetchone())[0]
        if found is None:
            raise BadRequest("there was no rollback: nothing to replay")
        rollback_id = int(found)
    if seqs is None and kinds is None:
        raise BadRequest("a replay needs seqs and/or kinds (the events to keep)")
    cur = await conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM rolled_back_events WHERE rollback = %s "
        "AND (%s::bigint[] IS NULL OR seq = ANY(%s::bigint[])) "
        "AND (%s::text[] IS NULL OR kind = ANY(%s::text[])) ORDER BY seq, id",
        (rollback_id, seqs, seqs, kinds, kinds),
    )
    return rollback_id, [event_record(row) for row in await cur.fetchall()]
