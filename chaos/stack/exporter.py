"""Export the reference stack's records into the run's History (docs/history.md).

``export_history(run_dir, endpoints)`` writes ``history/events.jsonl`` (the db event log in
seq order, duplicates included), ``chain.jsonl`` (every block), ``oracle.jsonl`` (every
oracle publication) and ``modes.jsonl`` (every trading-mode change). ``endpoints`` maps
service and link names to ``host:port``: the database is read through the
``sequencer-db`` link when given (it follows a migration), else at ``db``; blocks from
``chain`` (else the newest ``blocks.jsonl`` under ``run_dir`` is copied).

CLI: ``python -m chaos.stack.exporter RUN_DIR --db HOST:PORT [--chain HOST:PORT]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from chaos.stack.blocks import EVENT_COLUMNS, event_record

FETCH_ROWS = 5000


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _rows(hostport: str, sql: str) -> Iterator[tuple[Any, ...]]:
    import psycopg

    host, _, port = hostport.rpartition(":")
    with (
        psycopg.connect(
            host=host or "127.0.0.1",
            port=int(port),
            user="postgres",
            dbname="tradechaos",
            connect_timeout=5,
            options="-c statement_timeout=60000",
        ) as conn,
        conn.cursor(name="export") as cur,
    ):
        cur.itersize = FETCH_ROWS
        cur.execute(sql)
        yield from cur


def _write(path: Path, records: Iterator[dict[str, Any]]) -> int:
    count = 0
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as fh:
        for record in records:
            fh.write(_dumps(record) + "\n")
            count += 1
    tmp.replace(path)
    return count


def _events(db: str) -> Iterator[dict[str, Any]]:
    for row in _rows(db, f"SELECT {EVENT_COLUMNS} FROM events ORDER BY seq, id"):
        yield event_record(row)


def _oracle(db: str) -> Iterator[dict[str, Any]]:
    sql = (
        "SELECT ts, market, mark_price, funding_index, interval, inputs, restored "
        "FROM oracle_prices ORDER BY id"
    )
    for ts, market, price, index, interval, inputs, restored in _rows(db, sql):
        yield {
            "time": float(ts),
            "market": market,
            "mark_price": float(price),
            "funding_index": float(index),
            "interval": int(interval),
            "inputs": inputs,
            "restored": bool(restored),
        }


def _modes(db: str) -> Iterator[dict[str, Any]]:
    sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE kind = 'mode' ORDER BY seq, id"
    for row in _rows(db, sql):
        event = event_record(row)
        yield {
            "time": event["time"],
            "mode": event["mode"],
            "source": event.get("source", "admin"),
            "seq": event["seq"],
            "sequencer": event["sequencer"],
        }


def _chain_from_node(chain: str) -> Iterator[dict[str, Any]]:
    import requests

    start = 1
    while True:
        resp = requests.get(
            f"http://{chain}/blocks", params={"from": start, "limit": 500}, timeout=30
        )
        resp.raise_for_status()
        blocks = resp.json()["blocks"]
        if not blocks:
            return
        yield from blocks
        start = blocks[-1]["height"] + 1


def _chain_from_file(run_dir: Path) -> Iterator[dict[str, Any]]:
    files = sorted(run_dir.rglob("blocks.jsonl"), key=lambda p: p.stat().st_mtime)
    if not files:
        return
    with files[-1].open() as fh:
        for line in fh:
            if line.endswith("\n"):
                yield json.loads(line)


FLUSH_TIMEOUT_S = 10.0


def await_final_flush(db: str, chain: str, timeout_s: float = FLUSH_TIMEOUT_S) -> bool:
    """Wait until the chain's head covers the event log's highest seq (the writer's final
    flush), polling both; False when it has not after ``timeout_s`` (the export then shows
    what the chain really holds)."""
    import requests

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            (max_seq,) = next(_rows(db, "SELECT coalesce(max(seq), 0) FROM events"))
            head = requests.get(f"http://{chain}/head", timeout=2.0).json()
            if int(head.get("last_seq") or 0) >= int(max_seq):
                return True
        except (OSError, ValueError, StopIteration, requests.RequestException):
            pass
        except Exception as err:  # a database error: export what there is
            print(f"final flush: {err}", file=sys.stderr)
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def export_history(run_dir: Path, endpoints: Mapping[str, str]) -> None:
    """Write the stack's history files under ``run_dir/history`` (overwriting them), after
    waiting for the writer's final flush to the chain."""
    run_dir = Path(run_dir)
    history = run_dir / "history"
    history.mkdir(parents=True, exist_ok=True)
    chain_node = endpoints.get("chain")
    db_of_record = endpoints.get("sequencer-db") or endpoints["db"]
    if chain_node and not await_final_flush(db_of_record, chain_node):
        print(
            f"final flush: the chain did not reach the event log within {FLUSH_TIMEOUT_S:g} s",
            file=sys.stderr,
        )
    # The database of record is the one the sequencer writes to: follow its link, which a
    # migration re-points at the new instance, rather than the original db service.
    db = endpoints.get("sequencer-db") or endpoints["db"]
    _write(history / "events.jsonl", _events(db))
    _write(history / "oracle.jsonl", _oracle(db))
    _write(history / "modes.jsonl", _modes(db))
    chain = endpoints.get("chain")
    blocks: Iterator[dict[str, Any]] = (
        _chain_from_node(chain) if chain else _chain_from_file(run_dir)
    )
    try:
        _write(history / "chain.jsonl", blocks)
    except OSError:
        _write(history / "chain.jsonl", _chain_from_file(run_dir))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.stack.exporter")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--db", required=True, help="host:port of the database")
    parser.add_argument("--chain", default=None, help="host:port of the chain node")
    args = parser.parse_args(argv)
    endpoints = {"db": args.db, **({"chain": args.chain} if args.chain else {})}
    export_history(args.run_dir, endpoints)
    print(f"history written to {args.run_dir / 'history'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
