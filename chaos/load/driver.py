"""LoadDriver: runs the trading load (Locust, headless) in processes of its own.

Contract (docs/contracts.md §6)
- ``LoadDriver(target, history_dir, seed, users, spawn_rate, log_path, accounts, ...,
  workers=0, processes=None)`` is a context manager; ``target`` says where the traders send
  orders (the listener of the stack's ``bindings.orders.via`` link, the failover link's,
  the venues for prices when the stack shows none) and which stack file's orders binding
  shapes the requests. With ``workers`` 0 ``start()`` spawns one ``python -m
  chaos.load.worker`` (every user in one process, as always); with ``workers`` N >= 1 it
  spawns a Locust master and N workers (``--role master|worker``: Locust's own distributed
  protocol over 127.0.0.1, on a port claimed for the run), each worker trading for its
  share of ``accounts`` (``chaos.experiment.partition``). Every process leads its own process
  group, dies with us (PR_SET_PDEATHSIG), and is recorded with ``processes`` (the run
  folder's state.json: ``tradechaos cleanup`` sweeps what a SIGKILL leaves) until reaped.
  ``start()`` returns once users are spawning (every worker connected); ``stop()`` stops
  them (SIGTERM to the master, which quits its workers; each worker then finishes its
  operation in flight; SIGTERM, grace, SIGKILL for any that does not exit) and always
  reaps; then the workers' client files are merged into ``client.jsonl``
  (``chaos.load.merge``). Both are idempotent.
- ``sample()`` returns the live figures over the window (the master's: aggregated from
  the workers' reports): rps, error rate, p50, p99, cumulative requests and failures;
  zeros before the first report.
- After ``stop()``, ``accounting()`` compares the client history with Locust's own
  request counts (each worker's own, summed): every order/cancel request Locust made is one
  invoke in ``client.jsonl`` and every invoke has exactly one completion; ``summary()`` is
  what journal.json and run.json record of the load (workers, ops, ops per worker).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from chaos.errors import BadInput, InfrastructureError
from chaos.experiment.partition import ADVERSARY_PROCESS, DEFAULT_TRADERS, accounts_problem
from chaos.host import processes as host_processes
from chaos.load.accounting import LoadAccounting, account
from chaos.load.merge import count_ops, merge_client_history

__all__ = ["ADVERSARY_PROCESS", "LoadAccounting", "LoadDriver", "LoadSample", "LoadTarget"]

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


class ProcessMarks(Protocol):
    """Where the load's processes are recorded while they live (``RunFolder`` is one)."""

    def record_process(self, service: str, pid: int, pgid: int, start_time: int | None) -> None:
        """Note a process group that a crash of this run would leave behind."""

    def forget_process(self, service: str) -> None:
        """The process group is gone (reaped)."""


@dataclass
class _Child:
    # "load-local", "load-master", "load-worker-<i>": state.json names, with a hyphen that
    # no stack service name has (so none collides with a service's record)
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path


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
        workers: int = 0,
        processes: ProcessMarks | None = None,
    ) -> None:
        """``BadInput`` when ``workers`` cannot each have accounts of their own."""
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
        self.workers = workers
        self.processes = processes
        problem = accounts_problem(len(self.accounts or DEFAULT_TRADERS), workers)
        if workers and problem is not None:
            raise BadInput(f"load: {problem}")
        self.stats_path = self.log_path.with_name(self.log_path.stem + "-stats.json")
        self._children: list[_Child] = []
        self._port: int | None = None
        self._stopped = False
        self.exit_code: int | None = None
        self.worker_exit_codes: list[int | None] = []

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

    # -- command lines -------------------------------------------------------------------------
    def _common(self) -> list[str]:
        argv = [
            "--host", self.target.url,
            "--stack", str(self.target.stack_file),
            "--history-dir", str(self.history_dir),
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

    def argv(self) -> list[str]:
        """The single process's command line (``workers`` 0)."""
        head = [sys.executable, "-m", "chaos.load.worker"]
        return [*head, *self._common(), "--stats-file", str(self.stats_path)]

    def master_argv(self, port: int) -> list[str]:
        head = [sys.executable, "-m", "chaos.load.worker", "--role", "master"]
        return [
            *head, *self._common(), "--stats-file", str(self.stats_path),
            "--workers", str(self.workers), "--master-bind-host", "127.0.0.1",
            "--master-port", str(port), "--start-timeout", str(START_TIMEOUT_S),
        ]  # fmt: skip

    def worker_argv(self, index: int, port: int) -> list[str]:
        head = [sys.executable, "-m", "chaos.load.worker", "--role", "worker"]
        return [
            *head, *self._common(), "--stats-file", str(self.worker_stats_path(index)),
            "--workers", str(self.workers), "--worker-index", str(index),
            "--master-host", "127.0.0.1", "--master-port", str(port),
        ]  # fmt: skip

    def worker_log_path(self, index: int) -> Path:
        return self.log_path.with_name(f"{self.log_path.stem}-worker-{index}.log")

    def worker_stats_path(self, index: int) -> Path:
        return self.log_path.with_name(f"{self.log_path.stem}-worker-{index}-stats.json")

    # -- lifecycle -----------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], log_path: Path) -> None:
        env = dict(os.environ)
        project_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (project_root, env.get("PYTHONPATH")) if p)
        proc = host_processes.spawn(argv, log_path, env=env)
        self._children.append(_Child(name, proc, log_path))
        if self.processes is not None:
            self.processes.record_process(
                name, proc.pid, proc.pid, host_processes.start_time(proc.pid)
            )

    def start(self) -> None:
        if self._children:
            return
        self.history_dir.mkdir(parents=True, exist_ok=True)
        self.stats_path.unlink(missing_ok=True)
        try:
            if self.workers == 0:
                self._spawn("load-local", self.argv(), self.log_path)
            else:
                from chaos.host import ports

                self._port = port = ports.free_port()
                self._spawn("load-master", self.master_argv(port), self.log_path)
                for index in range(self.workers):
                    self.worker_stats_path(index).unlink(missing_ok=True)
                    argv = self.worker_argv(index, port)
                    self._spawn(f"load-worker-{index}", argv, self.worker_log_path(index))
        except OSError as err:
            self.stop()
            raise InfrastructureError(f"the load generator could not be started: {err}") from err
        deadline = time.monotonic() + START_TIMEOUT_S + 5.0
        while not self.stats_path.exists():
            exited = [c for c in self._children if c.proc.poll() is not None]
            if exited or time.monotonic() >= deadline:
                tails = "; ".join(f"{c.log_path}: {self._log_tail(c.log_path)}" for c in
                                  (exited or self._children[:1]))  # fmt: skip
                self.stop()
                raise InfrastructureError(f"the load generator did not start ({tails})")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop every process (see the module doc), reap it, merge the workers' histories."""
        if not self._children or self._stopped:
            return
        self._stopped = True
        grace = self.stop_timeout_s + STOP_GRACE_S
        first, *workers = self._children
        try:
            self.exit_code = host_processes.terminate(first.proc, grace_s=grace)
            self._forget(first)
            deadline = time.monotonic() + grace  # the master quit them: they are finishing
            for child in workers:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            for child in workers:  # the stuck ones all at once: one grace for all of them
                if child.proc.poll() is None:
                    host_processes.signal_group(child.proc.pid, signal.SIGTERM)
            last = time.monotonic() + STOP_GRACE_S
            for child in workers:
                left = max(0.1, last - time.monotonic())
                self.worker_exit_codes.append(host_processes.terminate(child.proc, grace_s=left))
                self._forget(child)
        finally:
            if self._port is not None:
                from chaos.host import ports

                ports.release(self._port)
            if self.workers:
                self._finish_history()

    def _forget(self, child: _Child) -> None:
        if self.processes is not None:
            self.processes.forget_process(child.name)

    def _finish_history(self) -> None:
        """The workers' client files into ``client.jsonl``; the final load line (their
        own counts, summed) into ``load.jsonl``."""
        merge_client_history(self.history_dir, range(self.workers))
        final = self.final_stats()
        line = {"time": time.time(), "final": True, "requests": final.get("requests", 0),
                "failures": final.get("failures", 0), "workers": self.workers}  # fmt: skip
        with (self.history_dir / "load.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")

    def pids(self) -> dict[str, int]:
        """The load's processes by name (``load-local``, ``load-master``, ``load-worker-<i>``)."""
        return {c.name: c.proc.pid for c in self._children}

    @property
    def running(self) -> bool:
        return bool(self._children) and all(c.proc.poll() is None for c in self._children)

    # -- figures -------------------------------------------------------------------------------
    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def sample(self) -> LoadSample:
        stats = self._read(self.stats_path)
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
        """The load's last figures (``final: true`` when it stopped cleanly); with workers,
        their own final counts summed, each also under ``workers``."""
        if not self.workers:
            return self._read(self.stats_path)
        finals = {str(i): self._read(self.worker_stats_path(i)) for i in range(self.workers)}
        by_name: dict[str, dict[str, int]] = {}
        for stats in finals.values():
            for name, entry in (stats.get("by_name") or {}).items():
                into = by_name.setdefault(name, {"requests": 0, "failures": 0})
                into["requests"] += int(entry.get("requests", 0))
                into["failures"] += int(entry.get("failures", 0))
        return {
            "final": all(s.get("final") is True for s in finals.values()),
            "requests": sum(int(s.get("requests", 0)) for s in finals.values()),
            "failures": sum(int(s.get("failures", 0)) for s in finals.values()),
            "by_name": by_name,
            "workers": finals,
        }

    def accounting(self) -> LoadAccounting:
        """Locust's order/cancel request counts against this load's ops in client.jsonl."""
        return account(self.final_stats().get("by_name") or {}, self.history_dir)

    def summary(self) -> dict[str, Any]:
        """What journal.json and run.json record of the load (docs/contracts.md §3)."""
        counts = count_ops(self.history_dir)
        return {
            "workers": self.workers,
            "users": self.users,
            "spawn_rate": self.spawn_rate,
            "ops": counts.ops,
            "ops_per_worker": counts.per_worker,
        }

    def _log_tail(self, path: Path | None = None, lines: int = 20) -> str:
        try:
            text = (path or self.log_path).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.splitlines()[-lines:])
