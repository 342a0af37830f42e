"""LoadDriver: runs the trading load (Locust, headless) in its own process.

Contract (docs/contracts.md §6)
- ``LoadDriver(target, history_dir, seed, users, spawn_rate, log_path, accounts)`` is a
  context manager; ``target`` says where the traders send orders (the listener of the
  stack's ``bindings.orders.via`` link, the failover link's, the venues for prices when
  the stack shows none) and which stack file's orders binding shapes the requests;
  ``start()`` spawns ``python -m chaos.load.worker`` in its own process group (dies with
  us) and returns once the worker reports that users are spawning; ``stop()`` sends
  SIGTERM, waits a grace period, then SIGKILL, and always reaps. Both are idempotent.
- ``sample()`` returns the live figures over the worker's window (rps, error rate, p50,
  p99, cumulative requests and failures); zeros before the first report.
- After ``stop()``, ``accounting()`` compares the client history with Locust's own
  request counts: every order/cancel request Locust made is one invoke in ``client.jsonl``
  and every invoke has exactly one completion.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from chaos.errors import InfrastructureError
from chaos.host import processes

ADVERSARY_PROCESS = 900_000
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 15.0


@dataclass(frozen=True)
class LoadTarget:
    """Where and how the traders trade: the stack file whose ``bindings.orders`` shapes each
    request, the URL of the orders link's listener, the failover link's (or None), and the
    built-in venues' URL (prices, when the stack shows no market data)."""

    stack_file: Path
    url: str
    failover_url: str | None = None
    venues_url: str | None = None


@dataclass(frozen=True)
class LoadSample:
    rps: float = 0.0
    error_rate: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    requests: int = 0
    failures: int = 0
    users: int = 0


@dataclass(frozen=True)
class LoadAccounting:
    """Locust's request counts against the client history (order and cancel requests)."""

    locust_requests: dict[str, int]
    invokes: dict[str, int]
    completions: dict[str, int] = field(default_factory=dict)
    unmatched_invokes: int = 0
    interrupted: int = 0

    @property
    def matches(self) -> bool:
        names = set(self.locust_requests) | set(self.invokes)
        counted = all(
            self.locust_requests.get(n, 0) == self.invokes.get(n, 0) - self._interrupted_of(n)
            for n in names
        )
        return counted and self.unmatched_invokes == 0

    def _interrupted_of(self, name: str) -> int:
        return self.completions.get(f"{name}:interrupted", 0)

    def describe(self) -> str:
        return (
            f"locust requests {self.locust_requests}, history invokes {self.invokes}, "
            f"completions {self.completions}, invokes without completion {self.unmatched_invokes}"
        )


def _accounts_arg(accounts: Sequence[int] | None) -> str:
    return ",".join(str(a) for a in accounts) if accounts else "1-36"


class LoadDriver:
    def __init__(
        self,
        target: LoadTarget,
        history_dir: Path | str,
        seed: int,
        users: int,
        spawn_rate: float,
        log_path: Path | str,
        accounts: Sequence[int] | None = None,
        *,
        retry_unknown: bool = True,
        window_s: float = 2.0,
        stop_timeout_s: float = 8.0,
    ) -> None:
        self.target = target
        self.history_dir = Path(history_dir)
        self.seed = seed
        self.users = users
        self.spawn_rate = spawn_rate
        self.log_path = Path(log_path)
        self.accounts = list(accounts) if accounts else None
        self.retry_unknown = retry_unknown
        self.window_s = window_s
        self.stop_timeout_s = stop_timeout_s
        self.stats_path = self.log_path.with_name(self.log_path.stem + "-stats.json")
        self._proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None

    def __enter__(self) -> LoadDriver:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def argv(self) -> list[str]:
        argv = [
            sys.executable, "-m", "chaos.load.worker",
            "--host", self.target.url,
            "--stack", str(self.target.stack_file),
            "--history-dir", str(self.history_dir),
            "--stats-file", str(self.stats_path),
            "--seed", str(self.seed),
            "--users", str(self.users),
            "--spawn-rate", str(self.spawn_rate),
            "--accounts", _accounts_arg(self.accounts),
            "--window", str(self.window_s),
            "--stop-timeout", str(self.stop_timeout_s),
        ]  # fmt: skip
        if self.target.failover_url:
            argv += ["--failover", self.target.failover_url]
        if self.target.venues_url:
            argv += ["--venues", self.target.venues_url]
        if not self.retry_unknown:
            argv.append("--no-retry-unknown")
        return argv

    def start(self) -> None:
        if self._proc is not None:
            return
        self.history_dir.mkdir(parents=True, exist_ok=True)
        self.stats_path.unlink(missing_ok=True)
        env = dict(os.environ)
        project_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (project_root, env.get("PYTHONPATH")) if p)
        self._proc = processes.spawn(self.argv(), self.log_path, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.stats_path.exists():
            if self._proc.poll() is not None or time.monotonic() >= deadline:
                tail = self._log_tail()
                self.stop()
                raise InfrastructureError(
                    f"the load generator did not start (log {self.log_path}): {tail}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, wait for the users to finish their operation in flight, SIGKILL; reap."""
        proc = self._proc
        if proc is None or self.exit_code is not None:
            return
        self.exit_code = processes.terminate(proc, grace_s=self.stop_timeout_s + STOP_GRACE_S)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _stats(self) -> dict[str, Any]:
        try:
            loaded = json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def sample(self) -> LoadSample:
        stats = self._stats()
        if not stats:
            return LoadSample()
        return LoadSample(
            rps=float(stats.get("rps", 0.0)),
            error_rate=float(stats.get("error_rate", 0.0)),
            p50_ms=float(stats.get("p50_ms", 0.0)),
            p99_ms=float(stats.get("p99_ms", 0.0)),
            requests=int(stats.get("requests", 0)),
            failures=int(stats.get("failures", 0)),
            users=int(stats.get("users", 0)),
        )

    def final_stats(self) -> dict[str, Any]:
        """The worker's last figures (``final: true`` when it stopped cleanly)."""
        return self._stats()

    def accounting(self) -> LoadAccounting:
        """Locust's order/cancel request counts against this load's ops in client.jsonl."""
        by_name = self._stats().get("by_name") or {}
        locust = {n: int(by_name[n]["requests"]) for n in ("order", "cancel") if n in by_name}
        invokes: Counter[str] = Counter()
        completions: Counter[str] = Counter()
        open_ops: Counter[tuple[int, str]] = Counter()
        path = self.history_dir / "client.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        for line in lines:
            op = json.loads(line)
            process = int(op.get("process", 0))
            if process >= ADVERSARY_PROCESS or op.get("adversary"):
                continue
            key = (process, str(op.get("client_order_id")))
            if op["type"] == "invoke":
                invokes[op["f"]] += 1
                open_ops[key] += 1
                continue
            open_ops[key] -= 1
            completions[op["type"]] += 1
            if str(op.get("error", "")).startswith("interrupted"):
                completions[f"{op['f']}:interrupted"] += 1
        return LoadAccounting(
            locust_requests=locust,
            invokes=dict(invokes),
            completions=dict(completions),
            unmatched_invokes=sum(v for v in open_ops.values() if v != 0),
            interrupted=sum(v for k, v in completions.items() if k.endswith(":interrupted")),
        )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
