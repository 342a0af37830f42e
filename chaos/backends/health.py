"""Wait strategies: how to tell that a service is ready, and how to wait for it.

A strategy's ``probe()`` makes one short, time-limited attempt and returns None when the
service is ready or a short reason when not. ``wait_ready`` polls a strategy until it is
ready, the owning process exits, or the total timeout expires; it never sleeps longer than
the poll interval and every probe has its own timeout (at most ``PROBE_TIMEOUT_S``).
"""

from __future__ import annotations

import http.client
import re
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from chaos.backends.base import Endpoint
from chaos.stackfile.definition import HealthCheck

PROBE_TIMEOUT_S = 1.0


class WaitStrategy(Protocol):
    @property
    def description(self) -> str: ...

    def probe(self) -> str | None: ...


class NotReady(Exception):
    """The service did not become ready. ``exited`` is True when its process ended first."""

    def __init__(self, description: str, last_reason: str, waited_s: float, exited: bool):
        self.description = description
        self.last_reason = last_reason
        self.waited_s = waited_s
        self.exited = exited
        what = "its process exited" if exited else f"timed out after {waited_s:.1f} s"
        super().__init__(f"waited for {description}; {what} (last: {last_reason})")


@dataclass(frozen=True)
class HttpWait:
    """Ready when ``GET path`` answers ``status`` (200 by default)."""

    endpoint: Endpoint
    path: str = "/health"
    status: int = 200

    @property
    def description(self) -> str:
        return f"GET {self.endpoint.url}{self.path} to answer {self.status}"

    def probe(self) -> str | None:
        conn = http.client.HTTPConnection(
            self.endpoint.host, self.endpoint.port, timeout=PROBE_TIMEOUT_S
        )
        try:
            conn.request("GET", self.path)
            response = conn.getresponse()
            body = response.read(200)
        except (OSError, http.client.HTTPException) as err:
            return f"{type(err).__name__}: {err}"
        finally:
            conn.close()
        if response.status == self.status:
            return None
        return f"HTTP {response.status} {body.decode(errors='replace').strip()}"


@dataclass(frozen=True)
class TcpWait:
    """Ready when the port accepts a TCP connection."""

    endpoint: Endpoint

    @property
    def description(self) -> str:
        return f"TCP port {self.endpoint} to accept connections"

    def probe(self) -> str | None:
        try:
            with socket.create_connection(
                (self.endpoint.host, self.endpoint.port), timeout=PROBE_TIMEOUT_S
            ):
                return None
        except OSError as err:
            return f"{type(err).__name__}: {err}"


@dataclass(frozen=True)
class PgWait:
    """Ready when PostgreSQL accepts a connection (user postgres, database postgres) and
    answers ``SELECT 1``."""

    endpoint: Endpoint
    user: str = "postgres"
    dbname: str = "postgres"

    @property
    def description(self) -> str:
        return f"PostgreSQL at {self.endpoint} to answer SELECT 1"

    def probe(self) -> str | None:
        import psycopg  # lazy: only pg services need it

        try:
            with psycopg.connect(
                host=self.endpoint.host,
                port=self.endpoint.port,
                user=self.user,
                dbname=self.dbname,
                connect_timeout=2,
            ) as conn:
                conn.execute("SELECT 1").fetchone()
        except psycopg.Error as err:
            return f"{type(err).__name__}: {str(err).strip().splitlines()[-1:]}"
        return None


@dataclass(frozen=True)
class LogWait:
    """Ready when the service's log shows a line matching ``pattern`` after byte ``offset``
    (where its latest start began writing)."""

    log_path: Path
    pattern: str
    offset: int = 0

    @property
    def description(self) -> str:
        return f"a line matching {self.pattern!r} in {self.log_path}"

    def probe(self) -> str | None:
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self.offset)
                text = handle.read(4 << 20).decode(errors="replace")
        except OSError as err:
            return f"{type(err).__name__}: {err}"
        return None if re.search(self.pattern, text, re.MULTILINE) else "no such line yet"


@dataclass(frozen=True)
class CommandWait:
    """Ready when ``argv`` exits 0 (within the probe timeout)."""

    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    timeout_s: float = field(default=PROBE_TIMEOUT_S * 5)

    @property
    def description(self) -> str:
        return f"`{' '.join(self.argv)}` to exit 0"

    def probe(self) -> str | None:
        try:
            done = subprocess.run(
                list(self.argv),
                env=dict(self.env) if self.env is not None else None,
                cwd=self.cwd,
                capture_output=True,
                timeout=self.timeout_s,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"{type(err).__name__}: {err}"
        if done.returncode == 0:
            return None
        tail = (done.stdout + done.stderr).decode(errors="replace").strip()[-120:]
        return f"exit {done.returncode} {tail}".strip()


def strategy_for(
    check: HealthCheck,
    endpoint: Endpoint,
    log_path: Path | None = None,
    log_offset: int = 0,
    command: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> WaitStrategy:
    """The wait strategy for a service's declared health check (``command``: its argv with
    the placeholders filled, for a ``command`` check)."""
    if check.kind == "http":
        return HttpWait(endpoint, check.path, check.status)
    if check.kind == "tcp":
        return TcpWait(endpoint)
    if check.kind == "pg":
        return PgWait(endpoint)
    if check.kind == "log":
        if log_path is None:
            return TcpWait(endpoint)
        return LogWait(log_path, check.pattern, log_offset)
    if check.kind == "command":
        return CommandWait(tuple(command or check.command), env)
    raise ValueError(f"unknown health check kind {check.kind!r}")


def wait_ready(
    strategy: WaitStrategy,
    timeout_s: float,
    interval_s: float = 0.05,
    alive: Callable[[], bool] | None = None,
) -> float:
    """Poll ``strategy`` until ready; return the seconds waited.

    Raises ``NotReady`` when ``timeout_s`` expires or ``alive()`` turns False first.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    reason = "not probed yet"
    while True:
        if alive is not None and not alive():
            raise NotReady(strategy.description, reason, time.monotonic() - started, True)
        result = strategy.probe()
        if result is None:
            return time.monotonic() - started
        reason = result
        now = time.monotonic()
        if now >= deadline:
            raise NotReady(strategy.description, reason, now - started, False)
        time.sleep(min(interval_s, max(deadline - now, 0.0)))
