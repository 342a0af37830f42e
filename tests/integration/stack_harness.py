"""Test helpers for the reference stack: start it, drive trading traffic, read its records.

``make_stack`` returns a ``BackendStack`` (the process backend: every link through the
embedded proxy) or, with ``TRADECHAOS_STACK_HARNESS=direct``, a ``DirectStack``, which starts
the reference stack from its own stack file (same commands, same placeholders) with every
``{link:NAME}`` pointing straight at the server, so the stack's own behaviour can be tested
apart from the proxy and the backend. ``TradingClient`` quotes around the oracle price with
makers and opens leveraged positions with takers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import psycopg
import requests

from chaos.backends.base import Endpoint
from chaos.backends.placeholders import Placeholders, name_tables
from chaos.backends.process import ProcessBackend
from chaos.bindings.places import Places
from chaos.faults.base import FaultContext
from chaos.faults.proxyapi import proxy_control
from chaos.history.recorder import Recorder
from chaos.host.runs import RunFolder
from chaos.stackfile import load, reference_stack_path, resolve
from chaos.stackfile.definition import StackDefinition
from chaos.world import MARKET_NAMES, market_spec


def reference_stack(standby: bool = False, rto_s: float = 5.0) -> StackDefinition:
    """The reference stack's definition (its stack file) with these option values."""
    return resolve(load(reference_stack_path()), {"standby": standby, "rto": rto_s})


HOST = "127.0.0.1"
T = TypeVar("T")


@dataclass
class Step:
    """What ``chaos.experiment.actions.build`` reads of an experiment step."""

    action: str
    target: str | tuple[str, ...] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    id: str = "s"
    for_s: float | None = None


@contextlib.contextmanager
def process_backend(
    root: Path,
    name: str,
    definition: StackDefinition,
    params: Mapping[str, str],
    toxiproxy_url: str | None = None,
) -> Iterator[ProcessBackend]:
    """A started process backend in a new run folder under ``root``, stopped afterwards;
    ``toxiproxy_url`` (else ``TRADECHAOS_TOXIPROXY_URL``) puts it behind an external (e.g.
    a real) Toxiproxy."""
    run = RunFolder.create(root, name, "test")
    url = toxiproxy_url or os.environ.get("TRADECHAOS_TOXIPROXY_URL")
    be = ProcessBackend(definition, run, params, url)
    be.start_stack()
    try:
        yield be
    finally:
        be.stop_stack()


@contextlib.contextmanager
def fault_context(
    backend: ProcessBackend, definition: StackDefinition, history: Path, seed: int
) -> Iterator[FaultContext]:
    """A FaultContext on ``backend`` recording into ``history``."""
    with Recorder(history) as recorder:
        yield FaultContext(
            backend,
            proxy_control(backend.toxiproxy_url),
            recorder,
            definition,
            rng=random.Random(seed),
        )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], T | Literal[False] | None],
    timeout_s: float,
    what: str,
    interval_s: float = 0.05,
) -> T:
    """The first truthy value of ``predicate()`` (an exception counts as not yet); a
    TimeoutError naming ``what`` and the last error after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last_err: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as err:
            last_err = err
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what} (last error: {last_err})")


class DirectStack:
    """The reference stack as local processes without a proxy. Use as a context manager."""

    def __init__(
        self,
        root: Path,
        mitigations: str = "all",
        seed: int = 7,
        standby: bool = False,
        epoch: float | None = None,
        only: tuple[str, ...] | None = None,
        rto_s: float = 5.0,
    ) -> None:
        self.root = root
        self.definition = reference_stack(standby=standby, rto_s=rto_s)
        if only is not None:  # a subset, with the links among its members
            self.definition = dataclasses.replace(
                self.definition,
                services=tuple(s for s in self.definition.services if s.name in only),
                links=tuple(lk for lk in self.definition.links if lk.server in only),
            )
        self.params = {
            "seed": str(seed),
            "epoch": repr(epoch or time.time()),
            "mitigations": mitigations,
        }
        self.endpoints = {s.name: Endpoint(HOST, free_port()) for s in self.definition.services}
        self.links = {lk.name: self.endpoints[lk.server] for lk in self.definition.links}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.started_at = 0.0
        self.cold_start_s = 0.0
        self.errors: list[BaseException] = []

    def _start_first(self, name: str) -> None:
        try:
            self.start(name, first=True)
        except BaseException as err:
            self.errors.append(err)

    def _fill(self, name: str) -> Placeholders:
        databases, venues = name_tables(self.definition)
        return Placeholders(
            python=sys.executable,
            port=self.endpoints[name].port,
            run_dir=self.root,
            data_dir=self.root / "data" / name,
            params=self.params,
            links=self.links,
            services=self.endpoints,
            stack_dir=self.definition.stack_dir,
            databases=databases,
            venue_counts=venues,
        )

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def start(self, name: str, first: bool = False, wait: bool = True) -> None:
        spec = self.definition.service(name)
        fill = self._fill(name)
        (self.root / "data" / name).mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        with self.log(name).open("ab") as log:
            if first:
                for command in spec.setup:
                    subprocess.run(
                        fill.argv(command), stdout=log, stderr=log, check=True, timeout=60
                    )
            self.procs[name] = subprocess.Popen(
                fill.argv(spec.command), stdout=log, stderr=log, start_new_session=True
            )
        if wait:
            self.wait_healthy(name)
        if first:
            with self.log(name).open("ab") as log:
                for command in spec.after_healthy:
                    subprocess.run(
                        fill.argv(command), stdout=log, stderr=log, check=True, timeout=60
                    )

    def healthy(self, name: str) -> bool:
        spec = self.definition.service(name)
        ep = self.endpoints[name]
        if spec.health.kind == "pg":
            with psycopg.connect(
                host=ep.host, port=ep.port, user="postgres", dbname="postgres", connect_timeout=1
            ) as conn:
                conn.execute("SELECT 1")
            return True
        return requests.get(f"{ep.url}/health", timeout=1).status_code == 200

    def wait_healthy(self, name: str, timeout_s: float = 30.0) -> None:
        proc = self.procs[name]

        def check() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")
            return self.healthy(name)

        try:
            wait_until(check, timeout_s, f"{name} to be healthy")
        except TimeoutError as err:
            raise TimeoutError(f"{err}\n{self.tail(name)}") from None

    def tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join(self.log(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, name: str, grace_s: float = 10.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGCONT)  # a paused process cannot handle SIGTERM
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            proc.wait(timeout=10)

    def levels(self) -> list[list[str]]:
        """Services grouped so that each group depends only on earlier groups."""
        done: set[str] = set()
        levels: list[list[str]] = []
        for name in self.definition.start_order():
            deps = set(self.definition.service(name).depends_on)
            depth = max((i + 1 for i, lvl in enumerate(levels) if deps & set(lvl)), default=0)
            if depth == len(levels):
                levels.append([])
            levels[depth].append(name)
            done.add(name)
        return levels

    def pause(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGCONT)

    def health(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = requests.get(f"{self.url(name)}/health", timeout=2).json()
        return result

    def __enter__(self) -> DirectStack:
        self.started_at = time.monotonic()
        try:
            for level in self.levels():  # independent services start in parallel
                threads = [
                    threading.Thread(target=self._start_first, args=(name,)) for name in level
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=90)
                if self.errors:
                    raise self.errors[0]
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.cold_start_s = time.monotonic() - self.started_at
        return self

    def __exit__(self, *exc: object) -> None:
        for name in reversed(self.definition.start_order()):
            self.stop(name)

    # -- access -------------------------------------------------------------------------
    def places(self) -> Places:
        """Where the services and links are, for the bindings (links go straight to their
        servers here)."""
        stack = self

        class Locator:
            def endpoint(self, service: str) -> Endpoint:
                return stack.endpoints[service]

            def link_endpoint(self, link: str) -> Endpoint:
                return stack.links[link]

        return Places(self.definition, Locator())

    def url(self, name: str) -> str:
        return self.endpoints[name].url

    def client_url(self, name: str) -> str:
        """Where clients reach ``name`` (its ``clients-NAME`` link when there is one)."""
        return self.url(name)

    @property
    def db(self) -> str:
        return str(self.endpoints["db"])

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        ep = self.endpoints["db"]
        with psycopg.connect(
            host=ep.host,
            port=ep.port,
            user="postgres",
            dbname="tradechaos",
            connect_timeout=5,
            options="-c statement_timeout=20000",
        ) as conn:
            return list(conn.execute(sql, params).fetchall())

    def max_seq(self) -> int:
        return int(self.query("SELECT COALESCE(max(seq), 0) FROM events")[0][0])

    def chain_head(self) -> dict[str, Any]:
        head: dict[str, Any] = requests.get(f"{self.url('chain')}/head", timeout=5).json()
        return head

    def quiesce(self, timeout_s: float = 20.0) -> int:
        """Stop everything that makes events (risk, sequencers), then wait for the chain."""
        for name in ("risk", "sequencer_b", "sequencer"):
            if name in self.definition.service_names:
                self.stop(name)
        return self.wait_chain_caught_up(timeout_s)

    def wait_chain_caught_up(self, timeout_s: float = 20.0) -> int:
        """Wait until the chain holds every event of the db; returns the last seq."""
        target = self.max_seq()
        wait_until(
            lambda: self.chain_head()["last_seq"] >= target,
            timeout_s,
            f"the chain to reach seq {target}",
            interval_s=0.1,
        )
        return target


class BackendStack(DirectStack):
    """The same stack through ``chaos.backends.process.ProcessBackend`` and its proxy."""

    def __init__(self, root: Path, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.backend: Any = None
        self._starting: dict[str, threading.Thread] = {}

    def __enter__(self) -> BackendStack:
        from chaos.backends.process import ProcessBackend
        from chaos.host.runs import RunFolder

        run = RunFolder.create(self.root, "stack-test")
        self.backend = ProcessBackend(self.definition, run, self.params)
        self.started_at = time.monotonic()
        self.backend.start_stack()
        self.cold_start_s = time.monotonic() - self.started_at
        self.endpoints = {s.name: self.backend.endpoint(s.name) for s in self.definition.services}
        return self

    def __exit__(self, *exc: object) -> None:
        if self.backend is not None:
            self.backend.stop_stack()

    def places(self) -> Places:
        return Places(self.definition, self.backend)

    def client_url(self, name: str) -> str:
        link = f"clients-{name}"
        if link in {lk.name for lk in self.definition.links}:
            return str(self.backend.link_endpoint(link).url)
        return self.url(name)

    def start(self, name: str, first: bool = False, wait: bool = True) -> None:
        if wait:
            self.backend.start(name, timeout_s=30.0)
            return
        errors = self.errors
        thread = threading.Thread(
            target=lambda: _collect(errors, self.backend.start, name, 60.0), daemon=True
        )
        thread.start()
        self._starting[name] = thread

    def wait_healthy(self, name: str, timeout_s: float = 30.0) -> None:
        thread = self._starting.pop(name, None)
        if thread is not None:
            thread.join(timeout=timeout_s)
            if self.errors:
                raise self.errors.pop()
        self.backend.wait_healthy(name, timeout_s=timeout_s)

    def stop(self, name: str, grace_s: float = 10.0) -> None:
        self.backend.stop(name, grace_s=grace_s)

    def pause(self, name: str) -> None:
        self.backend.pause(name)

    def resume(self, name: str) -> None:
        self.backend.resume(name)

    def tail(self, name: str, lines: int = 30) -> str:
        return str(self.backend.logs(name, tail=lines))


def _collect(errors: list[BaseException], fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except BaseException as err:
        errors.append(err)


def make_stack(root: Path, **kwargs: Any) -> DirectStack:
    """The stack for an integration test: through the process backend unless
    ``TRADECHAOS_STACK_HARNESS=direct``."""
    if os.environ.get("TRADECHAOS_STACK_HARNESS", "backend") == "direct":
        return DirectStack(root, **kwargs)
    return BackendStack(root, **kwargs)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open() as fh:
        for line in fh:
            yield json.loads(line)


class TradingClient:
    """Makers quote around the oracle price; takers open leveraged positions.

    Makers are accounts 1..makers, takers the next ones with leverages ``leverages``
    (alternating long and short, over the markets). Runs in a thread until ``stop()``.
    """

    def __init__(
        self,
        sequencer_url: str,
        seed: int = 1,
        makers: int = 6,
        leverages: tuple[float, ...] = (45, 45, 45, 45, 10, 5),
        collateral: float = 100_000.0,
    ) -> None:
        self.url = sequencer_url
        self.rng = random.Random(seed)
        self.makers = list(range(1, makers + 1))
        self.takers = [
            (
                makers + 1 + i,
                lev,
                MARKET_NAMES[(i // 2) % len(MARKET_NAMES)],
                "buy" if i % 2 == 0 else "sell",
            )
            for i, lev in enumerate(leverages)
        ]
        self.collateral = collateral
        self.session = requests.Session()
        self.ids = itertools.count(1)
        self.stats = {"accepted": 0, "rejected": 0, "errors": 0, "fills": 0}
        self.filled: dict[int, float] = {account: 0.0 for account, *_ in self.takers}
        self.acked: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._open_quotes: dict[int, list[str]] = {}

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            resp = self.session.post(f"{self.url}{path}", json=body, timeout=5)
        except requests.RequestException:
            self.stats["errors"] += 1
            return None
        if resp.status_code != 200:
            self.stats["errors"] += 1
            return None
        result: dict[str, Any] = resp.json()
        if result.get("status") == "accepted":
            self.stats["accepted"] += 1
            self.stats["fills"] += len(result.get("fills", []))
            if path == "/orders":
                self.acked.append({"client_order_id": body["client_order_id"], **result})
        else:
            self.stats["rejected"] += 1
        return result

    def marks(self) -> dict[str, float]:
        body = self.session.get(f"{self.url}/markets", timeout=5).json()["markets"]
        return {m: v["oracle_price"] for m, v in body.items() if v["oracle_price"]}

    def quote_round(self, marks: dict[str, float]) -> None:
        for account in self.makers:
            for coid in self._open_quotes.pop(account, []):
                self.post("/orders/cancel", {"client_order_id": coid, "account": account})
            coids = []
            for market, mark in marks.items():
                spec = market_spec(market)
                qty = 8.0 if market == "BTC-PERP" else 150.0
                offset = 0.0004 * (1 + account % 3)
                for side, sign in (("buy", -1), ("sell", 1)):
                    price = round(mark * (1 + sign * offset) / spec.tick) * spec.tick
                    coid = f"q{account}-{next(self.ids)}"
                    self.post(
                        "/orders",
                        {
                            "client_order_id": coid,
                            "account": account,
                            "market": market,
                            "side": side,
                            "type": "limit",
                            "price": price,
                            "qty": qty,
                        },
                    )
                    coids.append(coid)
            self._open_quotes[account] = coids

    def take_round(self, marks: dict[str, float]) -> None:
        for account, leverage, market, side in self.takers:
            target = leverage * self.collateral / marks[market]
            missing = target - self.filled[account]
            if missing <= target * 0.01:
                continue
            chunk = min(missing, target / 4)
            result = self.post(
                "/orders",
                {
                    "client_order_id": f"t{account}-{next(self.ids)}",
                    "account": account,
                    "market": market,
                    "side": side,
                    "type": "market",
                    "qty": round(chunk, 4),
                },
            )
            if result and result.get("status") == "accepted":
                self.filled[account] += sum(f["qty"] for f in result["fills"])

    def noise_round(self, marks: dict[str, float]) -> None:
        account = self.rng.choice(self.makers)
        market = self.rng.choice(list(marks))
        qty = 0.05 if market == "BTC-PERP" else 1.0
        self.post(
            "/orders",
            {
                "client_order_id": f"n{account}-{next(self.ids)}",
                "account": account,
                "market": market,
                "side": self.rng.choice(("buy", "sell")),
                "type": "market",
                "qty": qty,
            },
        )

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                marks = self.marks()
            except (requests.RequestException, ValueError, KeyError):
                self.stats["errors"] += 1
                self._stop.wait(0.2)
                continue
            if len(marks) == len(MARKET_NAMES):
                self.quote_round(marks)
                self.take_round(marks)
                for _ in range(3):
                    self.noise_round(marks)
            self._stop.wait(0.3)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="trading-client", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
