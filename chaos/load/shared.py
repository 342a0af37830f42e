"""What every load process shares (``chaos.load.worker``'s local role, and the master and
workers of ``chaos.load.distributed``): the traders' configuration from the stack file,
the stats payload, the append-only history files, the stop signals."""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from chaos.load.figures import Tally, Window

STATS_INTERVAL_S = 0.5


def parse_accounts(text: str) -> list[int]:
    accounts: list[int] = []
    for part in text.split(","):
        if "-" in part:
            low, high = part.split("-", 1)
            accounts += range(int(low), int(high) + 1)
        elif part.strip():
            accounts.append(int(part))
    return accounts


def configure_traders(args: argparse.Namespace) -> None:
    """The traders' configuration from the stack file's bindings (local and worker)."""
    from chaos.load import locustfile
    from chaos.stackfile import load as load_stack
    from chaos.stackfile import reference_stack_path  # after locust: it patches ssl first

    path = args.stack or reference_stack_path()
    stack = load_stack(path)
    if stack.bindings.orders is None:
        raise SystemExit(f"{path}: the stack file declares no bindings.orders")
    locustfile.Config.seed = args.seed
    locustfile.Config.binding = stack.bindings.orders
    modes = stack.bindings.trading_mode
    locustfile.Config.modes = dict(modes.modes) if modes is not None else None
    locustfile.Config.standby_url = args.failover
    locustfile.Config.venues_url = args.venues
    locustfile.Config.accounts = parse_accounts(args.accounts)
    locustfile.Config.retry_unknown = not args.no_retry_unknown


def open_append(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def figures(
    env: Any, runner: Any, window: Window, final: bool = False, tally: Tally | None = None
) -> dict[str, Any]:
    """The stats-file payload (see the module doc): counts from ``env``'s Locust stats, or
    from ``tally`` (a worker's)."""
    if tally is not None:
        by_name = {name: dict(entry) for name, entry in tally.by_name.items()}
        requests, failures = tally.totals()
    else:
        by_name = {
            name: {"requests": entry.num_requests, "failures": entry.num_failures}
            for (name, _method), entry in env.stats.entries.items()
        }
        requests, failures = env.stats.total.num_requests, env.stats.total.num_failures
    return {
        "time": time.time(),
        "users": runner.user_count,
        **window.figures(),
        "requests": requests,
        "failures": failures,
        "by_name": by_name,
        "final": final,
    }


def stop_signals() -> Any:
    """A gevent Event set by SIGTERM or SIGINT."""
    import gevent  # type: ignore[import-untyped]  # locust imports (and patches with) gevent: only ever in this process
    import gevent.event  # type: ignore[import-untyped]

    stop = gevent.event.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop.set)
    return stop


def write_line(fd: int, record: dict[str, Any]) -> None:
    os.write(fd, (json.dumps(record) + "\n").encode())
