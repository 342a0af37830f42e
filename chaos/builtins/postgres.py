"""The built-in PostgreSQL (``builtin: postgres``): PostgreSQL 16 from the ``pgserver``
wheel's binaries, for any stack.

Commands (``python -m chaos.builtins.postgres CMD``):
  setup --data-dir D [--pg-bin B] [--database NAME] [--schema FILE]
        a new cluster (trust auth, user postgres, 127.0.0.1 only) that already holds the
        database and the schema: copied from a template cluster built once per machine
        (initdb + single-user mode, keyed by the schema's content); idempotent
  serve --data-dir D --port P [--pg-bin B]
        run postgres on 127.0.0.1:P until SIGTERM (forwarded as SIGINT: fast shutdown)

Running as root, initdb and postgres run as the unprivileged ``postgres`` user (``nobody``
when that does not exist), as PostgreSQL refuses root.

Also the engine's side of a migration (``db_upgrade`` strategy ``migrate``):
``copy_schema`` (``pg_dump --schema-only`` of one instance applied to another),
``copy_tables`` (table by table, with a delay between tables, cancellable at table
boundaries), ``table_names`` and ``row_counts``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

SETUP_TIMEOUT_S = 120.0
DUMP_TIMEOUT_S = 60.0
STATEMENT_TIMEOUT_MS = 30_000


def default_pg_bin() -> Path:
    """The wheel's binaries, located without importing pgserver (its import has side effects)."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise SystemExit("the pgserver package is not installed; pass --pg-bin")
    return Path(spec.origin).parent / "pginstall" / "bin"


def _run_as_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise SystemExit("running as root and neither user 'postgres' nor 'nobody' exists")


def _drop_privileges(user: str | None) -> dict[str, Any]:
    """Popen arguments that run the child as ``user`` (uid, gid and no extra groups)."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _prepare_dir(data_dir: Path, user: str | None) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    if user is None:
        return
    entry = pwd.getpwnam(user)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o700)
    # the unprivileged user must be able to traverse every parent folder
    for parent in data_dir.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def cluster_dir(data_dir: Path) -> Path:
    """Where the cluster of ``data_dir`` lives.

    As a normal user: ``data_dir`` itself. As root the server runs as another user, who
    must traverse every parent folder, and test runners (pytest) reset their temp roots to
    0700 at any time; so the cluster lives under ``$TMPDIR/tradechaos-pgdata/<hash>``
    (recorded in ``data_dir/CLUSTER``) and is swept once its ``data_dir`` is gone.
    """
    if os.geteuid() != 0:
        return data_dir
    digest = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return _cluster_root() / digest


def _cluster_root() -> Path:
    return Path(tempfile.gettempdir()) / "tradechaos-pgdata"


def sweep_orphan_clusters() -> None:
    """Remove the clusters (root only, see ``cluster_dir``) whose data dir is gone."""
    root = _cluster_root()
    for origin in root.glob("*.origin"):
        try:
            if not Path(origin.read_text().strip()).exists():
                shutil.rmtree(root / origin.stem, ignore_errors=True)
                origin.unlink(missing_ok=True)
        except OSError:
            continue


def setup(
    data_dir: Path, pg_bin: Path, database: str = "postgres", schema: Path | None = None
) -> None:
    """Make the cluster of ``data_dir`` (with ``database`` and ``schema``) unless it exists."""
    data_dir.mkdir(parents=True, exist_ok=True)
    cluster = cluster_dir(data_dir)
    if cluster != data_dir and not (data_dir / "CLUSTER").exists():
        shutil.rmtree(cluster, ignore_errors=True)  # left by an earlier folder of this path
    if (cluster / "PG_VERSION").exists():
        return
    user = _run_as_user()
    if cluster != data_dir:
        root = _cluster_root()
        root.mkdir(mode=0o711, exist_ok=True)
        root.chmod(0o711)
        if cluster.exists():
            shutil.rmtree(cluster)
        (root / f"{cluster.name}.origin").write_text(str(data_dir.resolve()))
        (data_dir / "CLUSTER").write_text(str(cluster) + "\n")
    _prepare_dir(cluster, user)
    schema_sql = schema.read_text() if schema is not None else ""
    template = _template_dir(pg_bin, user, database, schema_sql)
    if not template.exists():
        _build_template(template, pg_bin, user, database, schema_sql)
    subprocess.run(
        ["cp", "-a", f"{template}/.", str(cluster)],
        **_drop_privileges(user),
        check=True,
        timeout=SETUP_TIMEOUT_S,
    )


def _template_dir(pg_bin: Path, user: str | None, database: str, schema_sql: str) -> Path:
    """A ready cluster (initdb + database + schema) to copy, keyed by what makes it."""
    key = hashlib.sha1(
        b"v3\0" + schema_sql.encode() + b"\0" + database.encode() + b"\0"
        + str(pg_bin).encode() + (user or "").encode()
    ).hexdigest()[:12]  # fmt: skip
    root = (
        _cluster_root()
        if os.geteuid() == 0
        else (Path(tempfile.gettempdir()) / f"tradechaos-pgdata-{os.getuid()}")
    )
    root.mkdir(mode=0o711, exist_ok=True)
    return root / f"template-{key}"


def _single_user(pg_bin: Path, cluster: Path, dbname: str, sql: str, user: str | None) -> None:
    subprocess.run(
        [
            str(pg_bin / "postgres"),
            "--single",
            "-D",
            str(cluster),
            "-F",
            "-j",
            "-c",
            "exit_on_error=true",
            dbname,
        ],
        input=sql.encode(),
        **_drop_privileges(user),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=SETUP_TIMEOUT_S,
    )


def split_statements(sql: str) -> list[str]:
    """The statements of a schema file (``--`` comments dropped, split at ``;``)."""
    lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
    return [st.strip() for st in "\n".join(lines).split(";") if st.strip()]


def _build_template(
    template: Path, pg_bin: Path, user: str | None, database: str, schema_sql: str
) -> None:
    """initdb, CREATE DATABASE and the schema in single-user mode without fsync, once per
    machine (about 1-3 s); every setup then only copies it. Concurrent builders race
    harmlessly: the first rename wins. Templates of other schemas stay (other stacks)."""
    building = template.with_name(f"{template.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    _prepare_dir(building, user)
    subprocess.run(
        [
            str(pg_bin / "initdb"),
            "-D",
            str(building),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
            "--wal-segsize=1",
        ],
        **_drop_privileges(user),
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=SETUP_TIMEOUT_S,
    )
    if database != "postgres":
        _single_user(pg_bin, building, "postgres", f"CREATE DATABASE {database};\n\n", user)
    statements = split_statements(schema_sql)
    if statements:
        _single_user(pg_bin, building, database, "".join(f"{st};\n\n" for st in statements), user)
    try:
        os.rename(building, template)
    except OSError:  # another setup built it first
        shutil.rmtree(building, ignore_errors=True)


def postgres_argv(data_dir: Path, port: int, pg_bin: Path, host: str = "127.0.0.1") -> list[str]:
    socket_dir = str(data_dir) if len(str(data_dir)) < 90 else ""
    settings = {
        "listen_addresses": host,
        "port": str(port),
        "unix_socket_directories": socket_dir,
        "fsync": "on",
        "synchronous_commit": "on",
        "shared_buffers": "16MB",
        "max_connections": "100",
        "logging_collector": "off",
        "log_min_messages": "warning",
        "log_connections": "off",
        "max_wal_size": "256MB",
    }
    argv = [str(pg_bin / "postgres"), "-D", str(data_dir)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    return argv


def _death_signal_setter() -> Callable[[], None] | None:
    """A preexec function making the child die with this wrapper (Linux prctl), or None."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def set_pdeathsig() -> None:
        prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG

    return set_pdeathsig


def serve(data_dir: Path, port: int, pg_bin: Path, host: str = "127.0.0.1") -> int:
    """Run postgres in the foreground on ``host:port`` (127.0.0.1 unless a pod asks for
    every interface); SIGTERM/SIGINT become a fast shutdown."""
    user = _run_as_user()
    proc = subprocess.Popen(
        postgres_argv(cluster_dir(data_dir), port, pg_bin, host),
        **_drop_privileges(user),
        preexec_fn=_death_signal_setter(),
    )

    def forward(_signum: int, _frame: object) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    if cluster_dir(data_dir) != data_dir:  # off the start's critical path
        threading.Thread(target=sweep_orphan_clusters, daemon=True).start()
    return proc.wait()


# -- the engine's side: connections and migrations ---------------------------------------


def connect(hostport: str, dbname: str, timeout_s: float = 5.0) -> Any:
    """An autocommit connection as user postgres to ``host:port``, statements bounded."""
    import psycopg

    host, _, port = hostport.rpartition(":")
    return psycopg.connect(
        host=host or "127.0.0.1",
        port=int(port),
        user="postgres",
        dbname=dbname,
        autocommit=True,
        connect_timeout=max(1, int(timeout_s)),
        options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
    )


def table_names(hostport: str, dbname: str) -> list[str]:
    """The tables of schema ``public``, by name."""
    with connect(hostport, dbname) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        ).fetchall()
    return [str(r[0]) for r in rows]


def row_counts(hostport: str, dbname: str, tables: Sequence[str]) -> dict[str, int]:
    with connect(hostport, dbname) as conn:
        return {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables}


def copy_schema(src: str, dst: str, dbname: str, pg_bin: Path | None = None) -> None:
    """Create ``dbname`` on ``dst`` (if missing) with the schema of ``src``'s (no data):
    ``pg_dump --schema-only`` applied in one connection."""
    pg_dump = (pg_bin or default_pg_bin()) / "pg_dump"
    host, _, port = src.rpartition(":")
    try:
        done = subprocess.run(
            [
                str(pg_dump),
                "-h",
                host or "127.0.0.1",
                "-p",
                port,
                "-U",
                "postgres",
                "--schema-only",
                "--no-owner",
                "--no-privileges",
                dbname,
            ],
            capture_output=True,
            text=True,
            timeout=DUMP_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(f"pg_dump of {src} did not finish in {DUMP_TIMEOUT_S:g} s") from err
    if done.returncode != 0:
        raise RuntimeError(f"pg_dump of {src} failed: {done.stderr.strip()[-300:]}")
    with connect(dst, "postgres") as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            conn.execute(f'CREATE DATABASE "{dbname}"')
    with connect(dst, dbname) as conn:
        exists = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
        if exists and int(exists[0]) == 0:
            conn.execute(done.stdout)


class CopyCancelled(Exception):
    """``copy_tables`` stopped between two tables because its ``cancel`` event was set."""


def copy_tables(
    src: str,
    dst: str,
    dbname: str,
    tables: Sequence[str],
    delay_s: float = 0.0,
    cancel: threading.Event | None = None,
) -> None:
    """Copy ``tables`` of ``src`` to ``dst`` one at a time, ``delay_s`` apart (the schema
    must exist on ``dst``: ``copy_schema``). Each table is emptied then filled with COPY,
    and its serial/identity sequences are set past the copied ids. Between tables ``dst``
    is visibly incomplete: the migration's race window. Setting ``cancel`` stops the copy at
    the next table boundary (``CopyCancelled``); a table is never left half copied."""
    stop = cancel if cancel is not None else threading.Event()
    with connect(src, dbname) as source, connect(dst, dbname) as target:
        for index, table in enumerate(tables):
            if index and delay_s > 0:
                stop.wait(delay_s)
            if stop.is_set():
                raise CopyCancelled(f"copy cancelled before table {table}")
            with target.transaction():
                target.execute(f'TRUNCATE "{table}"')
                with (
                    source.cursor().copy(f'COPY "{table}" TO STDOUT') as out,
                    target.cursor().copy(f'COPY "{table}" FROM STDIN') as into,
                ):
                    for chunk in out:
                        into.write(chunk)
                _advance_sequences(target, table)


def _advance_sequences(conn: Any, table: str) -> None:
    columns = conn.execute(
        "SELECT attname, pg_get_serial_sequence(%s, attname) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        (f'"{table}"', f'"{table}"'),
    ).fetchall()
    for column, sequence in columns:
        if sequence:
            conn.execute(
                f'SELECT setval(%s, GREATEST((SELECT max("{column}") FROM "{table}"), 1))',
                (sequence,),
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.builtins.postgres")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("setup", "serve"):
        p = sub.add_parser(name)
        p.add_argument("--data-dir", type=Path, required=True)
        p.add_argument("--pg-bin", default="")
        if name == "serve":
            p.add_argument("--port", type=int, required=True)
            p.add_argument("--host", default="127.0.0.1")
        else:
            p.add_argument("--database", default="postgres")
            p.add_argument("--schema", type=Path, default=None)
    args = parser.parse_args(argv)
    pg_bin = Path(args.pg_bin) if args.pg_bin else default_pg_bin()
    if args.cmd == "setup":
        setup(args.data_dir.resolve(), pg_bin, args.database, args.schema)
        return 0
    return serve(args.data_dir.resolve(), args.port, pg_bin, args.host)


if __name__ == "__main__":
    sys.exit(main())
