"""The trading load as one process against a Locust master with 1, 2 and 4 workers (issue 18).

Starts the reference stack on the process backend (every link through the embedded proxy,
every guard on; a fresh stack per round, primed by a discarded run, since a stack that has
traded for minutes is slower) and drives it through its orders link (``bindings.orders.via``: the
``clients`` end is the load) with ``USERS`` traders, one configuration at a time, for
``DURATION_S`` seconds each after a ``WARMUP_S`` ramp: ``1 process`` (``load.workers: 0``,
the baseline) and ``1``, ``2``, ``4`` workers under a master (``load.workers: N``). Every
figure comes from the run's own client history (``client.jsonl``, merged from the
workers): order requests completed per second over the window (any outcome: what the link
carried), orders acknowledged per second, their latency p50/p99, and the CPU seconds the
load's processes used per 1000 orders. ``ROUNDS`` interleaved rounds (each round visits
every configuration, in a rotating order, so that the stack's growing book weighs on all
alike); medians over the rounds, and each configuration's ratio to ``1 process``.

The machine's cores are shared by the stack (postgres, sequencer, oracle, risk, writer,
chain, proxy) and the load: past the cores, more Locust processes only share them (the
figures say how much a worker's master/worker traffic costs). ``TRADECHAOS_BENCH_ROUNDS``
and ``TRADECHAOS_BENCH_USERS`` override the defaults.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROUNDS = int(os.environ.get("TRADECHAOS_BENCH_ROUNDS", "4"))
USERS = int(os.environ.get("TRADECHAOS_BENCH_USERS", "200"))
WARMUP_S = 2.0
DURATION_S = 6.0
PRIME_S = 4.0
CONFIGS = (("1 process", 0), ("1 worker", 1), ("2 workers", 2), ("4 workers", 4))


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine so far (/proc/stat's cpu line)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def _drive(
    url: str, stack: Any, workers: int, folder: Path, seed: int, duration_s: float = DURATION_S
) -> dict[str, float]:
    from chaos.host import processes as host_processes
    from chaos.load.driver import LoadDriver, LoadTarget

    assert stack.source is not None and stack.bindings.accounts is not None
    target = LoadTarget(stack.source, url)
    traders = list(stack.bindings.accounts.traders)
    driver = LoadDriver(target, folder / "history", seed, USERS, float(USERS),
                        folder / "load.log", traders, workers=workers)  # fmt: skip
    with driver:
        deadline = time.monotonic() + 30.0
        while driver.sample().users < USERS and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(WARMUP_S)  # the users ramp and the first quotes rest: not measured
        began, busy0 = time.time(), _machine_busy()
        cpu0 = sum(host_processes.cpu_seconds(pid) or 0.0 for pid in driver.pids().values())
        time.sleep(duration_s)
        ended, busy1 = time.time(), _machine_busy()
        cpu1 = sum(host_processes.cpu_seconds(pid) or 0.0 for pid in driver.pids().values())
    window = ended - began
    done, acked, latencies = 0, 0, []
    for line in (folder / "history" / "client.jsonl").read_text().splitlines():
        op = json.loads(line)
        if op["f"] != "order" or op["type"] == "invoke" or not began <= op["time"] <= ended:
            continue
        done += 1
        acked += op["type"] == "ok"
        if isinstance(op.get("latency"), int | float):
            latencies.append(float(op["latency"]))
    latencies.sort()
    return {
        "orders_s": done / window,
        "acked_s": acked / window,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else float("nan"),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
        "cpu_per_1k": 1000 * (cpu1 - cpu0) / done if done else float("nan"),
        "machine_busy": (busy1[0] - busy0[0]) / max(1.0, busy1[1] - busy0[1]),
    }


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
    from stack_harness import process_backend, reference_stack

    stack = reference_stack()
    assert stack.bindings.orders is not None
    link = stack.bindings.orders.via
    params = {"seed": "5", "epoch": repr(time.time()), "mitigations": "all"}
    runs: dict[str, list[dict[str, float]]] = {label: [] for label, _ in CONFIGS}
    print(
        f"{USERS} traders through {link} of the reference stack; {os.cpu_count()} cores; "
        f"{ROUNDS} interleaved rounds (a fresh stack each) of {DURATION_S:g} s per "
        f"configuration after a {WARMUP_S:g} s ramp",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        root = Path(tmp)
        for round_ in range(ROUNDS):
            with process_backend(root / "runs", "bench-load", stack, params) as backend:
                url = backend.link_endpoint(link).url
                _drive(url, stack, 0, root / f"prime{round_}", 1, PRIME_S)  # discarded
                shift = round_ % len(CONFIGS)
                for label, workers in CONFIGS[shift:] + CONFIGS[:shift]:
                    folder = root / f"round{round_}-{workers}"
                    figures = _drive(url, stack, workers, folder, 10 + round_)
                    runs[label].append(figures)
                    print(
                        f"  round {round_ + 1} {label:>9}: {figures['orders_s']:6.0f} orders/s, "
                        f"machine {100 * figures['machine_busy']:3.0f}% busy",
                        flush=True,
                    )
    _report(runs)


def _report(runs: dict[str, list[dict[str, float]]]) -> None:
    base = _median(runs["1 process"], "orders_s")
    print(
        f"{'load':>10}  {'orders/s':>8}  {'acked/s':>7}  {'p50 ms':>6}  {'p99 ms':>6}  "
        f"{'load CPU s/1k orders':>20}  {'machine busy':>12}  vs 1 process"
    )
    for label, _ in CONFIGS:
        median = {k: _median(runs[label], k) for k in runs[label][0]}
        ratio = median["orders_s"] / base if base else float("nan")
        print(
            f"{label:>10}  {median['orders_s']:8.0f}  {median['acked_s']:7.0f}  "
            f"{median['p50_ms']:6.1f}  {median['p99_ms']:6.1f}  {median['cpu_per_1k']:20.2f}  "
            f"{100 * median['machine_busy']:11.0f}%  {ratio:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
