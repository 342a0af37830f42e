"""The two roles of a distributed load: a Locust master and its workers, speaking Locust's
own master/worker protocol (ZeroMQ RPC: spawn, heartbeat, stats reports, quit). Run only
inside ``python -m chaos.load.worker --role master|worker`` (locust patches the process).

Contract
- ``run_master``: binds ``--master-bind-host:--master-port``; once ``--workers`` workers are
  connected (else exit 3 after ``--start-timeout`` s) starts ``--users`` users at
  ``--spawn-rate`` across them with Locust's dispatch, and writes the stats file (the
  figures over the window from the workers' reports, sent every ``REPORT_INTERVAL_S``)
  and load samples. On SIGTERM it quits the workers (Locust's ``quit``: each stops its
  users, who finish the operation in flight, and exits) and writes its last figures. It
  writes no final ``load.jsonl`` line: the workers' own final counts are the record
  (``LoadDriver`` adds it).
- ``run_worker``: takes its worker index (``--worker-index``, else the one the master's
  ack gave), its share of the accounts and its block of process ids
  (``chaos.experiment.partition``) *before* any of its users start, then runs what the master
  sends. It stops when the master quits it or on SIGTERM (then it tells the master), and
  writes its final figures (``"final": true``, its own Locust counts: what its client
  file is accounted against).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from chaos.load.figures import COUNTED, Tally, Window, load_sample, write_atomic
from chaos.load.shared import (
    STATS_INTERVAL_S,
    configure_traders,
    figures,
    open_append,
    stop_signals,
    write_line,
)

REPORT_INTERVAL_S = 0.5  # worker -> master stats reports (Locust's default is 3 s)
EXIT_NO_WORKERS = 3


def _environment(args: argparse.Namespace, log_level: str) -> Any:
    import locust.runners
    from locust.env import Environment
    from locust.log import setup_logging

    from chaos.load import locustfile

    setup_logging(log_level)  # type: ignore[no-untyped-call]  # to stderr: the process's log file (workers connecting, ...)
    locust.runners.WORKER_REPORT_INTERVAL = REPORT_INTERVAL_S
    return Environment(
        user_classes=locustfile.user_classes(distributed=True),
        host=args.host or None,
        stop_timeout=args.stop_timeout,
    )


def _wait_for_workers(runner: Any, args: argparse.Namespace, stop: Any) -> bool:
    deadline = time.monotonic() + args.start_timeout
    while runner.worker_count < args.workers:
        if stop.wait(timeout=0.05):
            return False
        if time.monotonic() >= deadline:
            sys.stderr.write(
                f"tradechaos load master: {runner.worker_count} of {args.workers} workers "
                f"connected within {args.start_timeout:g}s\n"
            )
            return False
    return True


def run_master(args: argparse.Namespace) -> int:
    env = _environment(args, "INFO")
    import gevent  # type: ignore[import-untyped]

    window = Window(args.window)

    def on_worker_report(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
        for entry in data.get("stats") or ():
            if entry.get("name") in COUNTED:
                window.add_report(entry.get("response_times") or {}, entry.get("num_failures", 0))

    env.events.worker_report.add_listener(on_worker_report)
    stop = stop_signals()
    runner = env.create_master_runner(
        master_bind_host=args.master_bind_host, master_bind_port=args.master_port
    )
    if not _wait_for_workers(runner, args, stop):
        runner.quit()
        return 0 if stop.is_set() else EXIT_NO_WORKERS
    starting = gevent.spawn(runner.start, args.users, args.spawn_rate)
    load_fd = open_append(args.history_dir / "load.jsonl") if args.history_dir else None

    def publish(final: bool = False) -> dict[str, Any]:
        current = figures(env, runner, window, final)
        current["workers"] = runner.worker_count
        if args.stats_file is not None:
            write_atomic(args.stats_file, current)
        return current

    publish()
    last_sample = 0.0
    while not stop.wait(timeout=STATS_INTERVAL_S):
        current = publish()
        if load_fd is not None and current["time"] - last_sample >= 1.0:
            last_sample = current["time"]
            write_line(load_fd, load_sample(current))
    starting.kill(block=True)
    runner.quit()
    publish(final=True)
    return 0


def run_worker(args: argparse.Namespace) -> int:
    from chaos.experiment.partition import worker_accounts
    from chaos.load import locustfile
    from chaos.load.merge import worker_client_file

    env = _environment(args, "WARNING")
    configure_traders(args)
    traders = list(locustfile.Config.accounts)
    window, tally = Window(args.window), Tally()

    def on_request(
        response_time: float, exception: object = None, name: str = "", **_kw: Any
    ) -> None:
        tally.add(name, exception is not None)
        if name in COUNTED:
            window.add(float(response_time or 0.0), exception is not None)

    def on_stopping(**_kw: Any) -> None:
        locustfile.Config.stopping.set()  # no retries once the users are told to stop

    env.events.request.add_listener(on_request)
    env.events.test_stopping.add_listener(on_stopping)
    stop = stop_signals()
    runner = env.create_worker_runner(args.master_host, args.master_port)
    index = args.worker_index if args.worker_index is not None else runner.worker_index
    locustfile.Config.worker = index
    locustfile.Config.accounts = worker_accounts(traders, args.workers, index)
    if args.history_stdout:
        locustfile.Config.ops_fd, locustfile.Config.ops_as_records = sys.stdout.fileno(), True
    else:
        locustfile.Config.ops_fd = open_append(worker_client_file(args.history_dir, index))
    locustfile.Config.configured.set()
    while not stop.is_set():
        if runner.greenlet.join(timeout=STATS_INTERVAL_S):
            break  # the master quit us: the users are stopped
        if args.stats_file is not None:
            write_atomic(args.stats_file, figures(env, runner, window, tally=tally))
    if stop.is_set():
        locustfile.Config.stopping.set()
        runner.send_message("quit")
        runner.quit()
    if args.stats_file is not None:
        final = figures(env, runner, window, final=True, tally=tally)
        final["worker"] = index
        write_atomic(args.stats_file, final)
    return 0
