"""The reference stack's database content: its schema and its genesis.

The server itself is the built-in postgres (``chaos.builtins.postgres``); the stack file
gives it ``schema.sql`` and runs ``init`` once it is healthy:

  python -m chaos.stack.db init --db H:P | --dsn-host H --port P
        [--seed N --accounts N --collateral X]
        create database ``tradechaos`` and the schema (if missing) and the genesis (once;
        idempotent)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from chaos.builtins.postgres import connect

SCHEMA_PATH = Path(__file__).with_name("schema.sql")
DBNAME = "tradechaos"
DEFAULT_ACCOUNTS = 40
DEFAULT_COLLATERAL = 100_000.0
INSURANCE_FUND = 0
GENESIS_EPOCH = 1


def _connect(hostport: str, dbname: str) -> Any:
    return connect(hostport, dbname)


def ensure_schema(hostport: str) -> None:
    """Create database ``tradechaos`` (if missing) and apply schema.sql (idempotent)."""
    with _connect(hostport, "postgres") as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DBNAME,)).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE {DBNAME}")
    with _connect(hostport, DBNAME) as conn:
        conn.execute(SCHEMA_PATH.read_text())


def init(
    hostport: str,
    seed: int,
    accounts: int = DEFAULT_ACCOUNTS,
    collateral: float = DEFAULT_COLLATERAL,
) -> bool:
    """Schema + genesis. Returns False (and changes nothing) when the genesis exists."""
    from chaos.world import MARKETS

    ensure_schema(hostport)
    now = time.time()
    with _connect(hostport, DBNAME) as conn, conn.transaction():
        if conn.execute("SELECT 1 FROM leases").fetchone():
            return False
        conn.execute("INSERT INTO accounts VALUES (%s, 0)", (INSURANCE_FUND,))
        # the genesis deposits are epoch 1's first events, written by its leaseholder 'a'
        for account in range(1, accounts + 1):
            conn.execute("INSERT INTO accounts VALUES (%s, %s)", (account, collateral))
            conn.execute(
                "INSERT INTO events (seq, epoch, sequencer, time, kind, body) "
                "VALUES (%s, %s, 'a', %s, 'deposit', %s::jsonb)",
                (
                    account,
                    GENESIS_EPOCH,
                    now,
                    f'{{"account": {account}, "amount": {collateral!r}}}',
                ),
            )
        for spec in MARKETS:
            conn.execute(
                "INSERT INTO market_state (market, funding_index, interval, mark_price, ts) "
                "VALUES (%s, %s, 0, %s, %s)",
                (spec.name, spec.initial_funding_index, spec.initial_price, now),
            )
        conn.execute("INSERT INTO leases VALUES (1, %s, 'a', %s)", (GENESIS_EPOCH, now))
        conn.execute("INSERT INTO trading_mode VALUES (1, 'normal', %s)", (now,))
        conn.execute("INSERT INTO writer_state VALUES (1, 0, 0, '', %s)", (now,))
    del seed  # the genesis does not depend on the seed today; kept for the CLI contract
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.stack.db")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("init")
    p.add_argument("--db", default=None, help="host:port")
    p.add_argument("--dsn-host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--accounts", type=int, default=DEFAULT_ACCOUNTS)
    p.add_argument("--collateral", type=float, default=DEFAULT_COLLATERAL)
    args = parser.parse_args(argv)
    if args.db is None and args.port is None:
        parser.error("init needs --db HOST:PORT or --port P")
    hostport = args.db or f"{args.dsn_host}:{args.port}"
    created = init(hostport, args.seed, args.accounts, args.collateral)
    print("genesis created" if created else "genesis already present", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
