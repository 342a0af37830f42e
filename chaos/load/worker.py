"""The load process: ``python -m chaos.load.worker --role local|master|worker ...``.

Runs in its own process because importing locust monkey-patches it with gevent; started
and stopped by ``chaos.load.driver.LoadDriver`` (and, on Kubernetes, by the export's load
Deployments: ``chaos.k8s.loadgen``).

Roles
- ``local`` (the default; ``load.workers: 0``): one process runs every user, as always.
- ``master``: Locust's ``MasterRunner`` on ``--master-bind-host:--master-port``; waits for
  ``--workers`` workers (``--start-timeout``), starts ``--users`` users at ``--spawn-rate``
  across them (Locust's own dispatch), runs no user itself, and writes the figures
  aggregated from the workers' reports (``chaos.load.distributed``).
- ``worker``: Locust's ``WorkerRunner`` connected to ``--master-host:--master-port``; runs
  the users the master gives it, for its share of the accounts (``chaos.experiment.partition``:
  worker ``--worker-index`` of ``--workers``; Locust's own index when none is given).

Contract
- Client operations go to ``<history-dir>/client.jsonl`` (local) or
  ``<history-dir>/client.<worker>.jsonl`` (a worker; every op then carries ``worker``),
  one ``write`` per line (O_APPEND); with ``--history-stdout`` a worker prints each as a
  history record line ``{"stream": "client", "record": {...}}`` instead
  (``chaos.k8s.records`` reads them back). Load samples go to ``<history-dir>/load.jsonl``
  every second (local and master).
- ``--stats-file`` is replaced atomically every 0.5 s with the live figures over the last
  ``--window`` seconds: ``{"time", "users", "rps", "error_rate", "p50_ms", "p99_ms",
  "requests", "failures", "by_name": {name: {"requests", "failures"}}}``; its first
  appearance means the users are being spawned (on a master: once every worker is
  connected).
- SIGTERM (or SIGINT) stops cleanly: no new operations, users finish the one in flight
  (up to ``--stop-timeout``), the final figures are written with ``"final": true`` and the
  process exits 0. A master's SIGTERM asks every worker to do the same (Locust's ``quit``);
  a worker also stops so when its master quits.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaos.load.figures import COUNTED, Window, load_sample, percentile, write_atomic
from chaos.load.shared import (
    STATS_INTERVAL_S,
    configure_traders,
    figures,
    open_append,
    parse_accounts,
    stop_signals,
    write_line,
)

__all__ = ["Window", "main", "parse_accounts", "parse_args", "percentile"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos.load.worker")
    parser.add_argument("--role", choices=("local", "master", "worker"), default="local")
    parser.add_argument("--host", default="", help="URL of the orders link's listener")
    parser.add_argument(
        "--stack", type=Path, default=None, help="the stack file (default: the reference stack)"
    )
    parser.add_argument("--failover", default=None, help="URL of the failover link's listener")
    parser.add_argument("--venues", default=None, help="URL of the venues (prices)")
    parser.add_argument("--history-dir", type=Path, default=None)
    parser.add_argument("--history-stdout", action="store_true", help="client ops on stdout")
    parser.add_argument("--stats-file", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--spawn-rate", type=float, default=10.0)
    parser.add_argument("--accounts", default="1-36", help="e.g. 1-36 or 1,2,5")
    parser.add_argument("--no-retry-unknown", action="store_true")
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--stop-timeout", type=float, default=8.0)
    distributed = parser.add_argument_group("distributed (Locust master/worker)")
    distributed.add_argument("--workers", type=int, default=1, help="how many workers share")
    distributed.add_argument("--worker-index", type=int, default=None)
    distributed.add_argument("--master-host", default="127.0.0.1")
    distributed.add_argument("--master-bind-host", default="127.0.0.1")
    distributed.add_argument("--master-port", type=int, default=5557)
    distributed.add_argument("--start-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.history_stdout and args.role != "worker":
        parser.error("--history-stdout is for a worker (a local load writes --history-dir)")
    if args.role != "master" and args.history_dir is None and not args.history_stdout:
        parser.error("--history-dir (or, for a worker, --history-stdout) is required")
    if args.role in ("local", "master") and not args.host:
        parser.error(f"--host is required for the {args.role}")
    return args


def run_local(args: argparse.Namespace) -> int:
    from locust.env import Environment

    from chaos.load import locustfile

    configure_traders(args)
    assert args.history_dir is not None
    locustfile.Config.ops_fd = open_append(args.history_dir / "client.jsonl")
    load_fd = open_append(args.history_dir / "load.jsonl")
    env = Environment(
        user_classes=locustfile.user_classes(distributed=False),
        host=args.host,
        stop_timeout=args.stop_timeout,
    )
    window = Window(args.window)

    def on_request(
        response_time: float, exception: object = None, name: str = "", **_kw: Any
    ) -> None:
        if name in COUNTED:
            window.add(float(response_time or 0.0), exception is not None)

    env.events.request.add_listener(on_request)  # type: ignore[no-untyped-call]
    stop = stop_signals()
    locustfile.Config.configured.set()
    runner = env.create_local_runner()
    runner.start(args.users, spawn_rate=args.spawn_rate)
    stats = args.stats_file
    if stats is not None:
        write_atomic(stats, figures(env, runner, window))
    last_sample = 0.0
    while not stop.wait(timeout=STATS_INTERVAL_S):
        current = figures(env, runner, window)
        if stats is not None:
            write_atomic(stats, current)
        if current["time"] - last_sample >= 1.0:
            last_sample = current["time"]
            write_line(load_fd, load_sample(current))
    locustfile.Config.stopping.set()
    runner.stop()
    runner.quit()
    final = figures(env, runner, window, final=True)
    if stats is not None:
        write_atomic(stats, final)
    write_line(load_fd, final_line(final))
    os.close(load_fd)
    os.close(locustfile.Config.ops_fd)
    return 0


def final_line(final: dict[str, Any]) -> dict[str, Any]:
    return {
        "time": final["time"],
        "final": True,
        "requests": final["requests"],
        "failures": final["failures"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "local":
        return run_local(args)
    from chaos.load import distributed

    if args.role == "master":
        return distributed.run_master(args)
    return distributed.run_worker(args)


if __name__ == "__main__":
    raise SystemExit(main())
