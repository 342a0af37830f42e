"""The sequencer's database side: rebuild an engine from the db, and write one batch.

``persist`` writes a batch's ``Changes`` in ONE pipelined transaction (one round trip);
with a fence it first locks the lease row and returns it, for the caller to compare with
the epoch it holds before the commit (raising aborts the transaction).
"""

from __future__ import annotations

import time
from typing import Any

from chaos.stack.book import Order
from chaos.stack.common import NEWEST_ORACLE_PRICES_SQL
from chaos.stack.engine import Changes, Engine, OraclePrice, Position
from chaos.world import MARKET_NAMES

ORDER_COLUMNS = (
    "order_id, client_order_id, account, market, side, price, qty, remaining, status, "
    "order_type, trigger_price"
)
UPSERT_ORDER_SQL = (
    f"INSERT INTO orders ({ORDER_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (order_id) DO UPDATE SET remaining = EXCLUDED.remaining, "
    "status = EXCLUDED.status, price = EXCLUDED.price"
)


def order_row(o: Order) -> tuple[Any, ...]:
    """``o`` as the values of ``UPSERT_ORDER_SQL`` (``ORDER_COLUMNS`` order)."""
    return (
        o.order_id,
        o.client_order_id,
        o.account,
        o.market,
        o.side,
        o.price,
        o.qty,
        o.remaining,
        o.status,
        o.order_type,
        o.trigger_price,
    )


async def read_prices(conn: Any) -> dict[str, OraclePrice]:
    """The newest oracle publication per market (the market state where none exists yet)."""
    cur = await conn.execute(NEWEST_ORACLE_PRICES_SQL)
    prices = {m: OraclePrice(float(p), float(f), float(ts)) for m, p, f, ts in await cur.fetchall()}
    if len(prices) < len(MARKET_NAMES):
        cur = await conn.execute("SELECT market, mark_price, funding_index, ts FROM market_state")
        for m, p, f, ts in await cur.fetchall():
            if m not in prices and p is not None:
                prices[m] = OraclePrice(float(p), float(f), float(ts))
    return prices


async def load_engine(conn: Any, engine: Engine, idempotency: bool) -> None:
    """Fill a fresh ``engine`` from the db: seq, collateral, positions, the open book and the
    pending trigger orders, the trading mode, traders' access, the first results per
    client_order_id, and the oracle prices."""
    cur = await conn.execute("SELECT COALESCE(max(seq), 0) FROM events")
    engine.seq = int((await cur.fetchone())[0])
    cur = await conn.execute("SELECT account, collateral FROM accounts")
    engine.collateral = {int(a): float(c) for a, c in await cur.fetchall()}
    cur = await conn.execute(
        "SELECT account, market, size, entry_price, entry_funding_index, realised_pnl "
        "FROM positions"
    )
    for a, m, size, entry, f_entry, pnl in await cur.fetchall():
        engine.positions[(int(a), m)] = Position(size, entry, f_entry, pnl)
    cur = await conn.execute(
        f"SELECT {ORDER_COLUMNS} FROM orders WHERE status IN ('open', 'pending') ORDER BY order_id"
    )
    for row in await cur.fetchall():
        if row[3] in engine.books:
            order = Order(*row)
            if order.status == "pending":
                engine.hold_trigger(order)
            else:
                engine.rest(order)
    cur = await conn.execute("SELECT mode FROM trading_mode WHERE id = 1")
    row = await cur.fetchone()
    engine.mode = row[0] if row else "normal"
    cur = await conn.execute("SELECT enabled, reason FROM access_control WHERE id = 1")
    row = await cur.fetchone()
    engine.access_enabled, engine.access_reason = (bool(row[0]), row[1]) if row else (True, "")
    if idempotency:
        cur = await conn.execute("SELECT client_order_id, result FROM idempotency")
        engine.results = {coid: result for coid, result in await cur.fetchall()}
    for market, price in (await read_prices(conn)).items():
        engine.set_price(market, price)


async def lock_lease(conn: Any, fence: tuple[int, str] | None) -> Any:
    """Inside a transaction: lock the lease row (its cursor, for ``check_fence``) or None."""
    if fence is None:
        return None
    return await conn.execute("SELECT epoch, holder FROM leases WHERE id = 1 FOR UPDATE")


async def check_fence(lease: Any, fence: tuple[int, str] | None) -> tuple[Any, ...] | None:
    """Raise ``FencedOut`` (aborting the transaction) unless the locked lease is ``fence``."""
    if lease is None:
        return None
    row: tuple[Any, ...] | None = await lease.fetchone()
    if fence is not None and (row is None or (int(row[0]), row[1]) != fence):
        raise FencedOut(row)
    return row


async def persist(
    conn: Any, engine: Engine, changes: Changes, fence: tuple[int, str] | None
) -> tuple[Any, ...] | None:
    """Write ``changes``; with ``fence`` lock and return the lease row (epoch, holder)."""
    async with conn.pipeline(), conn.transaction():
        lease = await lock_lease(conn, fence)
        async with conn.cursor() as cur:
            if changes.events:
                await cur.executemany(
                    "INSERT INTO events (seq, epoch, sequencer, time, kind, body) "
                    "VALUES (%s, %s, %s, %s, %s, %s::jsonb)",
                    changes.events,
                )
            if changes.orders:
                await cur.executemany(
                    UPSERT_ORDER_SQL, [order_row(o) for o in changes.orders.values()]
                )
            if changes.positions:
                rows = []
                for account, market in changes.positions:
                    p = engine.positions[(account, market)]
                    rows.append(
                        (
                            account,
                            market,
                            p.size,
                            p.entry_price,
                            p.entry_funding_index,
                            p.realised_pnl,
                        )
                    )
                await cur.executemany(
                    "INSERT INTO positions VALUES (%s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (account, market) DO UPDATE SET size = EXCLUDED.size, "
                    "entry_price = EXCLUDED.entry_price, "
                    "entry_funding_index = EXCLUDED.entry_funding_index, "
                    "realised_pnl = EXCLUDED.realised_pnl",
                    rows,
                )
            if changes.accounts:
                await cur.executemany(
                    "INSERT INTO accounts VALUES (%s, %s) ON CONFLICT (account) "
                    "DO UPDATE SET collateral = EXCLUDED.collateral",
                    [(a, engine.collateral.get(a, 0.0)) for a in changes.accounts],
                )
            if changes.idempotency:
                await cur.executemany(
                    "INSERT INTO idempotency (client_order_id, result, at_seq) "
                    "VALUES (%s, %s::jsonb, %s) ON CONFLICT (client_order_id) DO NOTHING",
                    changes.idempotency,
                )
            if changes.access is not None:
                await cur.execute(
                    "INSERT INTO access_control VALUES (1, %s, %s, %s) ON CONFLICT (id) "
                    "DO UPDATE SET enabled = EXCLUDED.enabled, reason = EXCLUDED.reason, "
                    "ts = EXCLUDED.ts",
                    (*changes.access, time.time()),
                )
            if changes.mode is not None:
                await cur.execute(
                    "INSERT INTO trading_mode VALUES (1, %s, %s) ON CONFLICT (id) "
                    "DO UPDATE SET mode = EXCLUDED.mode, ts = EXCLUDED.ts",
                    (changes.mode, time.time()),
                )
        return await check_fence(lease, fence)


class FencedOut(Exception):
    """The lease row did not match the fence: the transaction was rolled back."""

    def __init__(self, row: tuple[Any, ...] | None) -> None:
        super().__init__(f"lease is {row}")
        self.row = row
