"""The load worker: ``python -m chaos.load.worker --host URL ...`` runs Locust headless.

Runs in its own process because importing locust monkey-patches it with gevent; started
and stopped by ``chaos.load.driver.LoadDriver``.

Contract
- Client operations are appended to ``<history-dir>/client.jsonl`` (one ``write`` per
  line, O_APPEND), load samples to ``<history-dir>/load.jsonl`` every second.
- ``--stats-file`` is replaced atomically every 0.5 s with the live figures over the last
  ``--window`` seconds: ``{"time", "users", "rps", "error_rate", "p50_ms", "p99_ms",
  "requests", "failures", "by_name": {name: {"requests", "failures"}}}``; its first
  appearance means the users are being spawned.
- SIGTERM (or SIGINT) stops cleanly: no new operations, users finish the one in flight
  (up to ``--stop-timeout``), the final figures are written with ``"final": true`` and the
  process exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos.load.worker")
    parser.add_argument("--host", required=True, help="URL of the orders link's listener")
    parser.add_argument("--stack", type=Path, required=True, help="the stack file (bindings)")
    parser.add_argument("--failover", default=None, help="URL of the failover link's listener")
    parser.add_argument("--venues", default=None, help="URL of the venues (prices)")
    parser.add_argument("--history-dir", type=Path, required=True)
    parser.add_argument("--stats-file", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--spawn-rate", type=float, default=10.0)
    parser.add_argument("--accounts", default="1-36", help="e.g. 1-36 or 1,2,5")
    parser.add_argument("--no-retry-unknown", action="store_true")
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--stop-timeout", type=float, default=8.0)
    return parser.parse_args(argv)


def parse_accounts(text: str) -> list[int]:
    accounts: list[int] = []
    for part in text.split(","):
        if "-" in part:
            low, high = part.split("-", 1)
            accounts += range(int(low), int(high) + 1)
        elif part.strip():
            accounts.append(int(part))
    return accounts


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Window:
    """Requests completed in the last ``seconds``: (monotonic time, ms, failed)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.samples: deque[tuple[float, float, bool]] = deque()
        self.started = time.monotonic()

    def add(self, response_ms: float, failed: bool) -> None:
        self.samples.append((time.monotonic(), response_ms, failed))

    def figures(self) -> dict[str, float]:
        now = time.monotonic()
        while self.samples and self.samples[0][0] < now - self.seconds:
            self.samples.popleft()
        span = max(1e-3, min(self.seconds, now - self.started))
        latencies = [s[1] for s in self.samples]
        failures = sum(1 for s in self.samples if s[2])
        return {
            "rps": round(len(self.samples) / span, 2),
            "error_rate": round(failures / len(self.samples), 4) if self.samples else 0.0,
            "p50_ms": round(percentile(latencies, 0.50), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
        }


def _write_atomic(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import gevent.event  # type: ignore[import-untyped]  # locust imports (and patches with) gevent: only ever in this process
    from locust.env import Environment

    from chaos.load import locustfile

    args.history_dir.mkdir(parents=True, exist_ok=True)
    from chaos.stackfile import load as load_stack

    stack = load_stack(args.stack)
    if stack.bindings.orders is None:
        raise SystemExit(f"{args.stack}: the stack file declares no bindings.orders")
    locustfile.Config.seed = args.seed
    locustfile.Config.binding = stack.bindings.orders
    modes = stack.bindings.trading_mode
    locustfile.Config.modes = dict(modes.modes) if modes is not None else None
    locustfile.Config.standby_url = args.failover
    locustfile.Config.venues_url = args.venues
    locustfile.Config.accounts = parse_accounts(args.accounts)
    locustfile.Config.retry_unknown = not args.no_retry_unknown
    locustfile.Config.ops_fd = os.open(
        args.history_dir / "client.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
    )
    load_fd = os.open(
        args.history_dir / "load.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
    )

    env = Environment(
        user_classes=[locustfile.MarketMaker, locustfile.Taker],
        host=args.host,
        stop_timeout=args.stop_timeout,
    )
    window = Window(args.window)

    def on_request(
        response_time: float, exception: object = None, name: str = "", **_kw: Any
    ) -> None:
        if name in ("order", "cancel"):
            window.add(float(response_time or 0.0), exception is not None)

    env.events.request.add_listener(on_request)  # type: ignore[no-untyped-call]
    stop = gevent.event.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop.set)

    def figures(final: bool = False) -> dict[str, Any]:
        by_name = {
            name: {"requests": entry.num_requests, "failures": entry.num_failures}
            for (name, _method), entry in env.stats.entries.items()
        }
        total = env.stats.total
        return {
            "time": time.time(),
            "users": runner.user_count,
            **window.figures(),
            "requests": total.num_requests,
            "failures": total.num_failures,
            "by_name": by_name,
            "final": final,
        }

    runner = env.create_local_runner()
    runner.start(args.users, spawn_rate=args.spawn_rate)
    _write_atomic(args.stats_file, figures())
    last_sample = 0.0
    while not stop.wait(timeout=0.5):
        current = figures()
        _write_atomic(args.stats_file, current)
        if current["time"] - last_sample >= 1.0:
            last_sample = current["time"]
            sample = {
                k: current[k]
                for k in (
                    "time",
                    "rps",
                    "p50_ms",
                    "p99_ms",
                    "error_rate",
                    "users",
                    "requests",
                    "failures",
                )
            }
            sample.update(p50=current["p50_ms"], p99=current["p99_ms"], errors=current["failures"])
            os.write(load_fd, (json.dumps(sample) + "\n").encode())
    locustfile.Config.stopping.set()
    runner.stop()
    runner.quit()
    final = figures(final=True)
    _write_atomic(args.stats_file, final)
    os.write(
        load_fd,
        (
            json.dumps(
                {
                    "time": final["time"],
                    "final": True,
                    "requests": final["requests"],
                    "failures": final["failures"],
                }
            )
            + "\n"
        ).encode(),
    )
    os.close(load_fd)
    os.close(locustfile.Config.ops_fd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
