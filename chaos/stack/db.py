"""The stack's database: PostgreSQL 16 from the ``pgserver`` wheel's binaries.

Commands (``python -m chaos.stack.db CMD``):
  setup --data-dir D [--pg-bin B]            a new cluster (trust auth, user postgres) that
                                             already holds database ``tradechaos`` and the
                                             schema: copied from a template cluster built
                                             once per machine (initdb + single-user mode,
                                             keyed by schema.sql); idempotent
  serve --data-dir D --port P [--pg-bin B]   run postgres on 127.0.0.1:P until SIGTERM
                                             (forwarded as SIGINT: fast shutdown)
  init  --db H:P | --dsn-host H --port P [--seed N --accounts N --collateral X]
                                             create database ``tradechaos``, the schema and
                                             the genesis (once; idempotent)

Running as root, initdb and postgres run as the unprivileged ``postgres`` user (``nobody``
when that does not exist), as PostgreSQL refuses root.

``copy_tables`` copies the database to another instance table by table (the ``migrate``
database upgrade strategy), ``market_state`` last by default.
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
import time
from collections.abc import Sequence
from pathlib import Path

SCHEMA_PATH = Path(__file__).with_name("schema.sql")
DBNAME = "tradechaos"
DEFAULT_ACCOUNTS = 40
DEFAULT_COLLATERAL = 100_000.0
INSURANCE_FUND = 0
GENESIS_EPOCH = 1
# Copy order of the migrate strategy: market_state is last (the Paradex race window).
COPY_ORDER: tuple[str, ...] = (
    "events",
    "accounts",
    "positions",
    "orders",
    "idempotency",
    "oracle_prices",
    "leases",
    "trading_mode",
    "writer_state",
    "market_state",
)
_SERIAL_TABLES = ("events", "oracle_prices")


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


def _drop_privileges(user: str | None) -> dict[str, object]:
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


def _sweep_orphan_clusters() -> None:
    root = _cluster_root()
    for origin in root.glob("*.origin"):
        try:
            if not Path(origin.read_text().strip()).exists():
                shutil.rmtree(root / origin.stem, ignore_errors=True)
                origin.unlink(missing_ok=True)
        except OSError:
            continue


def setup(data_dir: Path, pg_bin: Path) -> None:
    """initdb the cluster of ``data_dir`` unless it already holds one."""
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
    template = _template_dir(pg_bin, user)
    if not template.exists():
        _build_template(template, pg_bin, user)
    subprocess.run(
        ["cp", "-a", f"{template}/.", str(cluster)],
        **_drop_privileges(user),  # type: ignore[arg-type]
        check=True,
        timeout=120,
    )


def _template_dir(pg_bin: Path, user: str | None) -> Path:
    """A ready cluster (initdb + database + schema) to copy, keyed by what makes it."""
    key = hashlib.sha1(
        b"v2\0" + SCHEMA_PATH.read_bytes() + str(pg_bin).encode() + (user or "").encode()
    ).hexdigest()[:12]
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
        **_drop_privileges(user),  # type: ignore[arg-type]
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )


def _build_template(template: Path, pg_bin: Path, user: str | None) -> None:
    """initdb, CREATE DATABASE and the schema in single-user mode without fsync, once per
    machine (about 1-3 s); every setup then only copies it. Concurrent builders race
    harmlessly: the first rename wins."""
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
        **_drop_privileges(user),  # type: ignore[arg-type]
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=120,
    )
    _single_user(pg_bin, building, "postgres", f"CREATE DATABASE {DBNAME};\n\n", user)
    lines = [ln for ln in SCHEMA_PATH.read_text().splitlines() if not ln.lstrip().startswith("--")]
    statements = [st.strip() for st in "\n".join(lines).split(";") if st.strip()]
    _single_user(pg_bin, building, DBNAME, "".join(f"{st};\n\n" for st in statements), user)
    for stale in template.parent.glob("template-*"):
        if stale.name != template.name and ".building-" not in stale.name:
            shutil.rmtree(stale, ignore_errors=True)
    try:
        os.rename(building, template)
    except OSError:  # another setup built it first
        shutil.rmtree(building, ignore_errors=True)


def postgres_argv(data_dir: Path, port: int, pg_bin: Path) -> list[str]:
    socket_dir = str(data_dir) if len(str(data_dir)) < 90 else ""
    settings = {
        "listen_addresses": "127.0.0.1",
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


def _death_signal_setter():  # type: ignore[no-untyped-def]
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


def serve(data_dir: Path, port: int, pg_bin: Path) -> int:
    """Run postgres in the foreground; SIGTERM/SIGINT become a fast shutdown."""
    user = _run_as_user()
    proc = subprocess.Popen(
        postgres_argv(cluster_dir(data_dir), port, pg_bin),
        **_drop_privileges(user),  # type: ignore[arg-type]
        preexec_fn=_death_signal_setter(),
    )

    def forward(_signum: int, _frame: object) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    if cluster_dir(data_dir) != data_dir:  # off the start's critical path
        threading.Thread(target=_sweep_orphan_clusters, daemon=True).start()
    return proc.wait()


def _connect(hostport_or_dsn: str, dbname: str, timeout_s: float = 5.0):  # type: ignore[no-untyped-def]
    import psycopg

    if "=" in hostport_or_dsn:
        return psycopg.connect(
            hostport_or_dsn,
            dbname=dbname,
            autocommit=True,
            connect_timeout=max(1, int(timeout_s)),
            options="-c statement_timeout=30000",
        )
    host, _, port = hostport_or_dsn.rpartition(":")
    return psycopg.connect(
        host=host or "127.0.0.1",
        port=int(port),
        user="postgres",
        dbname=dbname,
        autocommit=True,
        connect_timeout=max(1, int(timeout_s)),
        options="-c statement_timeout=30000",
    )


def ensure_schema(hostport_or_dsn: str) -> None:
    """Create database ``tradechaos`` (if missing) and apply schema.sql (idempotent)."""
    with _connect(hostport_or_dsn, "postgres") as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DBNAME,)).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE {DBNAME}")
    with _connect(hostport_or_dsn, DBNAME) as conn:
        conn.execute(SCHEMA_PATH.read_text())


def init(
    hostport: str,
    seed: int,
    accounts: int = DEFAULT_ACCOUNTS,
    collateral: float = DEFAULT_COLLATERAL,
) -> bool:
    """Schema + genesis. Returns False (and changes nothing) when the genesis exists."""
    from chaos.truth import MARKETS

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


class CopyCancelled(Exception):
    """``copy_tables`` stopped between two tables because its ``cancel`` event was set."""


def copy_tables(
    src_dsn: str,
    dst_dsn: str,
    delay_s: float = 0.0,
    order: Sequence[str] = COPY_ORDER,
    cancel: threading.Event | None = None,
) -> None:
    """Copy every table of ``src`` to ``dst`` one at a time, ``delay_s`` apart.

    ``dst`` gets the schema first (no genesis); each table is emptied then filled with COPY.
    Between tables ``dst`` is visibly incomplete: this is the migration race window.
    DSNs are ``host:port`` or libpq conninfo strings. Setting ``cancel`` stops the copy at the
    next table boundary (``CopyCancelled``); a table is never left half copied.
    """
    stop = cancel if cancel is not None else threading.Event()
    ensure_schema(dst_dsn)
    with _connect(src_dsn, DBNAME) as src, _connect(dst_dsn, DBNAME) as dst:
        for index, table in enumerate(order):
            if index and delay_s > 0:
                stop.wait(delay_s)
            if stop.is_set():
                raise CopyCancelled(f"copy cancelled before table {table}")
            with dst.transaction():
                dst.execute(f"TRUNCATE {table}")
                with (
                    src.cursor().copy(f"COPY {table} TO STDOUT") as out,
                    dst.cursor().copy(f"COPY {table} FROM STDIN") as into,
                ):
                    for chunk in out:
                        into.write(chunk)
                if table in _SERIAL_TABLES:
                    dst.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"GREATEST((SELECT max(id) FROM {table}), 1))"
                    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.stack.db")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("setup", "serve"):
        p = sub.add_parser(name)
        p.add_argument("--data-dir", type=Path, required=True)
        p.add_argument("--pg-bin", default="")
        if name == "serve":
            p.add_argument("--port", type=int, required=True)
    p = sub.add_parser("init")
    p.add_argument("--db", default=None, help="host:port")
    p.add_argument("--dsn-host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--accounts", type=int, default=DEFAULT_ACCOUNTS)
    p.add_argument("--collateral", type=float, default=DEFAULT_COLLATERAL)
    args = parser.parse_args(argv)
    if args.cmd == "init":
        if args.db is None and args.port is None:
            parser.error("init needs --db HOST:PORT or --port P")
        hostport = args.db or f"{args.dsn_host}:{args.port}"
        created = init(hostport, args.seed, args.accounts, args.collateral)
        print("genesis created" if created else "genesis already present", file=sys.stderr)
        return 0
    pg_bin = Path(args.pg_bin) if args.pg_bin else default_pg_bin()
    if args.cmd == "setup":
        setup(args.data_dir.resolve(), pg_bin)
        return 0
    return serve(args.data_dir.resolve(), args.port, pg_bin)


if __name__ == "__main__":
    sys.exit(main())
