"""Start the example stack minidex by hand, as real processes, without tradechaos's engine.

PostgreSQL comes from tradechaos's builtin (``python -m chaos.builtins.postgres
setup/serve``) with a ``minidex`` database and examples/minidex/schema.sql; the venues are
the builtin venues (``python -m chaos.builtins.venues``: the default market BTC-PERP; read
through ``GET /prices``, or with ``shapes`` each venue in a real exchange's API under
``/v/{i}``); the minidex services are ``python -m minidex.<service>`` configured by
MINIDEX_* variables only.
``export_history`` runs the stack file's history queries the way docs/stack-file.md says a
``sql`` source is read, and writes a History folder the checkers can judge.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import psycopg
import requests
import yaml
from stack_harness import free_port, wait_until

from chaos.checkers.params import CheckParams
from chaos.history.reader import History

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "minidex"
MARKET = "BTC-PERP"  # what the reference feeds serve; minidex trades any symbol it is told
HOST = "127.0.0.1"


class Service(Protocol):
    """A running minidex service: a process here, a container in tests/docker."""

    def alive(self) -> bool: ...

    def stop(self, grace_s: float = 10.0) -> int | None: ...

    def tail(self) -> str: ...


class Proc:
    """One child process in its own session: SIGTERM, a grace period, SIGKILL, reaped."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                argv, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace_s: float = 10.0) -> int:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                return self.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
        return self.popen.wait(grace_s)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


class Minidex:
    """pg + feeds + pricer + engine + settler on free ports; ``with`` stops everything."""

    def __init__(self, root: Path, seed: int = 7, shapes: tuple[str, ...] = ()) -> None:
        self.root = root
        self.seed = seed
        self.shapes = shapes  # per venue SHAPE:BTC-PERP=SYMBOL, for the venues and the pricer
        self.epoch = time.time()
        self.ports = {name: free_port() for name in ("pg", "feeds", "pricer", "engine", "settler")}
        self.dsn = f"postgresql://postgres@{HOST}:{self.ports['pg']}/minidex"
        self.procs: dict[str, Service] = {}
        self.engine_env: dict[str, str] = {}

    def url(self, service: str) -> str:
        return f"http://{HOST}:{self.ports[service]}"

    def __enter__(self) -> Minidex:
        try:
            self._start_world()
            self.start("pricer")
            self.start("engine")
            self.start("settler")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for name in ("settler", "engine", "pricer", "feeds", "pg"):
            if name in self.procs:
                self.procs.pop(name).stop()

    def _start_world(self) -> None:
        py = sys.executable
        data = self.root / "pg"
        setup = [py, "-m", "chaos.builtins.postgres", "setup", "--data-dir", str(data)]
        setup += ["--database", "minidex", "--schema", str(EXAMPLE / "schema.sql")]
        subprocess.run(setup, check=True, timeout=120)
        pg_port = str(self.ports["pg"])
        serve = [py, "-m", "chaos.builtins.postgres", "serve", "--data-dir", str(data)]
        self.procs["pg"] = Proc("pg", [*serve, "--port", pg_port], os.environ, self.root)
        admin = f"postgresql://postgres@{HOST}:{pg_port}/postgres"

        def accepts() -> bool:
            psycopg.connect(admin, connect_timeout=1).close()
            return True

        wait_until(accepts, 30, "postgres")
        feeds = [
            py,
            "-m",
            "chaos.builtins.venues",
            "--port",
            str(self.ports["feeds"]),
            "--seed",
            str(self.seed),
            "--epoch",
            repr(self.epoch),
            "--venues",
            "3",
        ]
        for shape in self.shapes:
            feeds += ["--venue-shape", shape]
        self.procs["feeds"] = Proc("feeds", feeds, os.environ, self.root)
        wait_until(lambda: requests.get(f"{self.url('feeds')}/health", timeout=1).ok, 30, "feeds")

    def env(self, service: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDEX_")}
        env.update(
            PYTHONPATH=str(EXAMPLE / "src"),
            MINIDEX_PORT=str(self.ports[service]),
            MINIDEX_DB=self.dsn,
        )
        env.update(MINIDEX_SYMBOLS=MARKET, MINIDEX_VENUES=self.url("feeds"), MINIDEX_POLL_MS="100")
        if self.shapes:  # minidex's entries read like the venues' --venue-shape
            urls = [f"{self.url('feeds')}/v/{i}" for i in range(len(self.shapes))]
            env.update(MINIDEX_VENUES=",".join(urls), MINIDEX_VENUE_APIS=",".join(self.shapes))
        env.update(extra)
        return env

    def start(self, service: str, **extra: str) -> None:
        """Start ``service`` (``extra``: MINIDEX_* overrides) and wait until it is healthy."""
        if service == "engine":
            self.engine_env = extra
        proc = self.launch(service, self.env(service, **extra))
        self.procs[service] = proc

        def healthy() -> bool:
            if not proc.alive():
                raise AssertionError(f"{service} exited:\n{proc.tail()}")
            return requests.get(f"{self.url(service)}/healthz", timeout=1).status_code == 200

        wait_until(healthy, 30, f"{service} healthy")

    def launch(self, service: str, env: dict[str, str]) -> Service:
        """A minidex service as a process (override: e.g. as a container)."""
        return Proc(service, [sys.executable, "-m", f"minidex.{service}"], env, self.root)

    def stop(self, service: str) -> int | None:
        return self.procs.pop(service).stop()

    # -- talking to the engine like tradechaos's bindings would ------------------------------
    def credit(self, acct: int, amount: str) -> dict[str, Any]:
        answer = requests.post(
            f"{self.url('engine')}/v1/admin/credit",
            json={"acct": acct, "amount": amount, "by": "test"},
            timeout=5,
        )
        answer.raise_for_status()
        return dict(answer.json())

    def get(self, path: str) -> dict[str, Any]:
        return dict(requests.get(f"{self.url('engine')}{path}", timeout=5).json())

    def mark(self) -> tuple[float, float]:
        """The engine's mark of MARKET: (px, published at)."""
        marks = requests.get(f"{self.url('engine')}/v1/market", timeout=5).json()["marks"]
        return float(marks[MARKET]["px"]), float(marks[MARKET]["at"])

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, connect_timeout=5) as conn:
            return list(conn.execute(sql, params).fetchall())

    def feed_fault(self, **body: Any) -> None:
        """A data fault on the venues (``kind``, ``venue``, ``value``), until ``heal_feeds``."""
        url = f"{self.url('feeds')}/admin/fault"
        requests.post(url, json=body, timeout=5).raise_for_status()

    def heal_feeds(self) -> None:
        requests.delete(f"{self.url('feeds')}/admin/faults", timeout=5).raise_for_status()

    def true_price(self) -> float:
        answer = requests.get(f"{self.url('feeds')}/admin/truth/{MARKET}", timeout=5)
        return float(answer.json()["price"])

    def move(self, pct: float) -> dict[str, Any]:
        """The world's price moves now, at once (the feeds' admin API); the world record."""
        body = {"market": MARKET, "start": time.time(), "duration": 0.0, "pct": pct}
        requests.post(f"{self.url('feeds')}/admin/move", json=body, timeout=5).raise_for_status()
        return {
            "time": body["start"],
            "id": f"move{pct}",
            "action": "price_move",
            "target": None,
            "phase": "world",
            "params": body,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    return value


def export_history(
    stack_file: Path,
    dsn: str,
    run_dir: Path,
    run: Mapping[str, Any],
    client_ops: list[dict[str, Any]],
    world: list[dict[str, Any]],
) -> History:
    """The History of a run folder, from the stack file's ``bindings.history`` sql sources."""
    history = yaml.safe_load(stack_file.read_text())["bindings"]["history"]
    out = run_dir / "history"
    out.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        for source in ("events", "oracle", "modes"):
            spec = history[source]["sql"]
            cur = conn.execute(spec["query"])
            names = [c.name for c in cur.description or ()]
            with (out / f"{source}.jsonl").open("w") as fh:
                for row in cur:
                    record: dict[str, Any] = {}
                    for name, value in zip(names, row, strict=True):
                        if name in spec.get("merge", ()):
                            record.update(value)
                        else:
                            record[name] = _plain(value)
                    fh.write(json.dumps(record) + "\n")
    (out / "run.json").write_text(json.dumps(dict(run)))
    (out / "client.jsonl").write_text("".join(json.dumps(op) + "\n" for op in client_ops))
    (out / "faults.jsonl").write_text("".join(json.dumps(w) + "\n" for w in world))
    return History.open(run_dir)


def run_record(seed: int, epoch: float) -> dict[str, Any]:
    """run.json with the stack file's kind of market: the feeds' BTC-PERP price path (same
    seed, epoch, price, volatility), without funding, as minidex's stack file declares."""
    spec = {
        "name": MARKET,
        "initial_price": 60000.0,
        "volatility": 0.002,
        "initial_funding_index": 0.0,
        "max_funding_rate": 0.0,
        "tick": 0.5,
    }
    return {
        "run_id": "minidex-test",
        "experiment": "minidex",
        "variant": "by-hand",
        "seed": seed,
        "epoch": epoch,
        "markets": [MARKET],
        "market_specs": [spec],
        "params": CheckParams().to_dict(),
    }


class Client:
    """Orders as the load sends them (through ``base``), recorded as Jepsen client ops."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.ops: list[dict[str, Any]] = []

    def order(
        self, cid: str, acct: int, side: str, sz: str, px: str | None = None, attempt: int = 1
    ) -> dict[str, Any] | None:
        body: dict[str, Any] = {
            "cid": cid,
            "acct": acct,
            "sym": MARKET,
            "side": side,
            "kind": "LIMIT" if px else "MARKET",
            "sz": sz,
        }
        if px:
            body["px"] = px
        op = {
            "process": acct,
            "f": "order",
            "client_order_id": cid,
            "account": acct,
            "market": MARKET,
            "side": side.lower(),
            "qty": float(sz),
            "attempt": attempt,
        }
        self.ops.append({**op, "type": "invoke", "time": time.time()})
        try:
            answer = requests.post(f"{self.base}/v1/orders", json=body, timeout=5)
        except requests.ConnectionError as err:  # sent, then cut: the outcome is unknown
            self.ops.append({**op, "type": "info", "time": time.time(), "error": str(err)[:100]})
            return None
        reply = answer.json()
        kind = (
            "ok"
            if answer.status_code == 200 and reply.get("result") in ("FILLED", "RESTING")
            else "fail"
        )
        self.ops.append({**op, "type": kind, "time": time.time(), "seq": reply.get("txn")})
        return dict(reply)


@contextlib.contextmanager
def minidex(root: Path, seed: int = 7) -> Iterator[Minidex]:
    with Minidex(root, seed) as stack:
        yield stack
