"""The built-in postgres (setup/serve), the reference stack's genesis (idempotent), and the
migrate upgrade's copy: the schema by pg_dump onto an empty instance (no schema file), then
table by table in the stack file's order (market_state last), serial ids continuing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from stack_harness import free_port, wait_until

from chaos.builtins import postgres as builtin
from chaos.stack import db
from chaos.stackfile import load, reference_stack_path

pytestmark = pytest.mark.integration


@contextmanager
def postgres(data_dir: Path, schema: bool = True) -> Iterator[str]:
    """A built-in postgres with database tradechaos (and the reference schema, or none)."""
    setup = [sys.executable, "-m", "chaos.builtins.postgres", "setup", "--data-dir"]
    setup += [str(data_dir), "--database", "tradechaos"]
    if schema:
        setup += ["--schema", str(db.SCHEMA_PATH)]
    subprocess.run(setup, check=True, timeout=120)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chaos.builtins.postgres",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        start_new_session=True,
    )
    hostport = f"127.0.0.1:{port}"

    def accepts() -> bool:
        psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=1
        ).close()
        return True

    try:
        wait_until(accepts, 30.0, "postgres to accept connections")
        yield hostport
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def rows(hostport: str, sql: str) -> list[tuple[Any, ...]]:
    host, port = hostport.split(":")
    with psycopg.connect(
        host=host, port=int(port), user="postgres", dbname="tradechaos", connect_timeout=5
    ) as conn:
        return list(conn.execute(sql).fetchall())


def test_init_is_idempotent_and_copy_tables_copies_market_state_last(tmp_path: Path) -> None:
    upgrade = load(reference_stack_path()).bindings.db_upgrade
    assert upgrade is not None  # the reference stack binds db_upgrade
    order = list(upgrade.tables)
    assert order[-1] == "market_state"
    with postgres(tmp_path / "src") as src, postgres(tmp_path / "dst", schema=False) as dst:
        assert db.init(src, seed=1) is True
        assert db.init(src, seed=1) is False  # the genesis exists: nothing changes
        assert rows(src, "SELECT count(*), min(seq), max(seq) FROM events") == [(40, 1, 40)]
        assert rows(src, "SELECT epoch, holder FROM leases") == [(1, "a")]
        seen_without_market_state = []

        def watch() -> None:  # the copy is visibly incomplete while it runs
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    events = rows(dst, "SELECT count(*) FROM events")[0][0]
                    states = rows(dst, "SELECT count(*) FROM market_state")[0][0]
                except psycopg.Error:
                    continue
                if events and not states:
                    seen_without_market_state.append(True)
                if states:
                    return

        watcher = threading.Thread(target=watch)
        watcher.start()
        builtin.copy_schema(src, dst, "tradechaos")
        builtin.copy_tables(src, dst, "tradechaos", order, delay_s=0.1)
        watcher.join(timeout=30)
        assert sorted(order) == builtin.table_names(src, "tradechaos")
        for table in order:
            assert rows(dst, f"SELECT count(*) FROM {table}") == rows(
                src, f"SELECT count(*) FROM {table}"
            ), table
        assert seen_without_market_state
        # serial ids continue after the copied rows
        rows(
            dst,
            "INSERT INTO events (seq, epoch, sequencer, time, kind, body) "
            "VALUES (41, 1, 'a', 0, 'mode', '{}') RETURNING id",
        )
        assert rows(dst, "SELECT max(id) FROM events") == [(41,)]
