"""Checker throughput (events/s) and peak memory on generated histories of growing size.

For each size (10^5, 10^6, 10^7 events by default; ``BENCH_CHECKERS_SIZES=100000,1000000``
to choose) a clean history is written to a temp folder (``tests/unit/histgen.write_bulk``:
fills and orders about 1 ms apart, 100 events per chain block). Each checker then runs in
a fresh subprocess, so its peak RSS is its own: the figures are CPU-time throughput
(events per CPU-second of that process, robust on a shared machine), wall-clock
throughput, and the process's peak RSS (interpreter and imports included, about 20 MiB:
a checker with bounded memory shows the same peak at every size). Sizes below 10^7 are repeated
and the median is printed. The last column compares each checker's throughput at the
largest size with the smallest (the baseline, same run): linear time keeps it near 1.0.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "unit"))

DEFAULT_SIZES = (100_000, 1_000_000, 10_000_000)
TARGET_EPS = 500_000  # sequence and chain checkers, one core

_CHILD = r"""
import json, sys, time
from chaos.checkers import REGISTRY, CheckParams
from chaos.history.reader import History
history = History.open(sys.argv[1])
cpu0, wall0 = time.process_time(), time.perf_counter()
verdict = REGISTRY[sys.argv[2]].check(history, CheckParams())
cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
with open("/proc/self/status") as fh:  # VmHWM: this image's peak (ru_maxrss keeps the parent's)
    peak = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
print(json.dumps({"cpu": cpu, "wall": wall, "peak_kib": peak, "valid": verdict.valid,
                  "no_evidence": verdict.no_evidence}))
"""


def _measure(run_dir: Path, checker: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(run_dir), checker],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1800,
    )
    result: dict[str, float] = json.loads(out.stdout)
    # a clean bulk history has nothing to check for some (no liquidation, no post-only
    # window): unknown for lack of evidence, after reading every event all the same
    if result["valid"] is not True and not result.get("no_evidence"):
        raise SystemExit(f"bench: {checker} did not hold on a clean history: {result}")
    return result


def _sizes() -> list[int]:
    raw = os.environ.get("BENCH_CHECKERS_SIZES")
    return [int(s) for s in raw.split(",")] if raw else list(DEFAULT_SIZES)


def main() -> None:
    import histgen

    from chaos.checkers import REGISTRY
    from chaos.history import reader

    print(f"JSON decoder: {reader.loads.__module__}; CPU-time throughput, median of runs")
    from chaos.checkers import RESPONSE_INVARIANTS

    skipped = ("no_lost_acked_orders", "recovery_within_rto", *RESPONSE_INVARIANTS)
    names = [n for n in REGISTRY if n not in skipped]
    print("(no_lost_acked_orders and recovery_within_rto read client ops/faults, not events)")
    results: dict[int, dict[str, tuple[float, float, float]]] = {}
    for n in _sizes():
        tmp = Path(tempfile.mkdtemp(prefix="bench-checkers-"))
        try:
            started = time.perf_counter()
            histgen.write_bulk(tmp, n)
            size_mb = sum(p.stat().st_size for p in (tmp / "history").iterdir()) / 1e6
            print(
                f"\n{n:,} events: generated in {time.perf_counter() - started:.1f}s "
                f"({size_mb:,.0f} MB on disk)",
                flush=True,
            )
            repeats = 3 if n <= 1_000_000 else 1
            results[n] = {}
            for name in names:
                runs = [_measure(tmp, name) for _ in range(repeats)]
                cpu = statistics.median(r["cpu"] for r in runs)
                wall = statistics.median(r["wall"] for r in runs)
                peak = statistics.median(r["peak_kib"] for r in runs) / 1024
                results[n][name] = (n / cpu, n / wall, peak)
                print(
                    f"  {name:28s} {n / cpu:>10,.0f} ev/s cpu  {n / wall:>10,.0f} ev/s wall"
                    f"  peak RSS {peak:6.1f} MiB",
                    flush=True,
                )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    _summary(results)


def _summary(results: dict[int, dict[str, tuple[float, float, float]]]) -> None:
    sizes = sorted(results)
    small, large = sizes[0], sizes[-1]
    print(f"\nthroughput at {large:,} / at {small:,} (1.0 = linear; within 0.8-1.2 wanted):")
    for name, (eps_small, _, rss_small) in results[small].items():
        eps_large, _, rss_large = results[large][name]
        flag = ""
        if name in ("sequence_integrity", "no_corrupt_chain_writes"):
            flag = "  target >= 500,000 ev/s: " + ("met" if eps_large >= TARGET_EPS else "NOT met")
        print(
            f"  {name:28s} {eps_large / eps_small:5.2f}  peak RSS {rss_small:.0f} -> "
            f"{rss_large:.0f} MiB{flag}"
        )


if __name__ == "__main__":
    main()
