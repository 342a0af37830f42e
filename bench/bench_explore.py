"""Explore's trial throughput (issue 17): trials per 10 minutes and per-trial overhead.

On a 10 s experiment (bench/data/explore-10s.yaml, nothing ever violated, so every trial is a
search trial), side by side in the same run:
- baseline: plain ``tradechaos run FILE`` once per trial, one after another (what a script
  looping over schedules would do);
- ``tradechaos explore FILE --budget N --jobs 1``: trials in the explorer's own process;
- ``tradechaos explore FILE --budget N --jobs J``: J trials side by side, each its own stack.
Every trial gets a fresh stack (no backend can reset a started one yet: the reset interface
proposed in docs/explore.md would add a fourth row). Per-trial overhead is a trial's wall
time minus its method's 10 s; trials per 10 minutes is 600 s over the wall time per trial
of the whole command. N: ``TRADECHAOS_BENCH_EXPLORE_TRIALS`` (default 6); J:
``TRADECHAOS_BENCH_JOBS`` (default 2). The goal is >= 40 trials per 10 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "bench" / "data" / "explore-10s.yaml"
METHOD_S = 10.0


def _tradechaos(*args: str) -> float:
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "chaos", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=1800, check=False,
    )  # fmt: skip
    if done.returncode not in (0, 1):
        print(f"  (exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]})")
    return time.monotonic() - began


def _plain_runs(out: Path, trials: int) -> tuple[float, list[float]]:
    walls = [
        _tradechaos("run", str(EXPERIMENT), "--out", str(out), "--quiet") for _ in range(trials)
    ]
    return sum(walls), walls


def _explore(out: Path, trials: int, jobs: int) -> tuple[float, list[float]]:
    wall = _tradechaos(
        "explore", str(EXPERIMENT), "--budget", str(trials), "--jobs", str(jobs),
        "--out", str(out), "--quiet", "--json",
    )  # fmt: skip
    (doc_path,) = out.glob("*-explore/explore.json")
    doc = json.loads(doc_path.read_text())
    return wall, [float(t["wall_s"]) for t in doc["trials"] if "wall_s" in t]


def _row(name: str, trials: int, wall: float, per_trial: list[float], base: float | None) -> None:
    rate = trials * 600.0 / wall
    overhead = statistics.median(per_trial) - METHOD_S
    ratio = f"{rate / base:5.2f}" if base else "    -"
    print(
        f"{name:34} {trials:6} {wall:8.1f} {wall / trials:9.1f} {overhead:10.1f} "
        f"{rate:9.1f} {ratio}",
        flush=True,
    )


def main() -> None:
    trials = int(os.environ.get("TRADECHAOS_BENCH_EXPLORE_TRIALS", "6"))
    jobs = int(os.environ.get("TRADECHAOS_BENCH_JOBS", "2"))
    print(
        f"{'':34} {'trials':>6} {'wall s':>8} {'s/trial':>9} {'overhead':>10} "
        f"{'per 10min':>9} {'ratio':>5}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-explore-") as tmp:
        wall, walls = _plain_runs(Path(tmp) / "plain", trials)
        base = trials * 600.0 / wall
        _row("baseline: tradechaos run per trial", trials, wall, walls, None)
        wall, walls = _explore(Path(tmp) / "one", trials, 1)
        _row("explore --jobs 1 (fresh stacks)", trials, wall, walls, base)
        if jobs > 1:
            wall, walls = _explore(Path(tmp) / "many", trials, jobs)
            _row(f"explore --jobs {jobs} (fresh stacks)", trials, wall, walls, base)
    print(
        "overhead: median trial wall time minus the 10 s method (for run: the whole "
        "command); ratio: trials per 10 min against the baseline. Stack reuse: no backend "
        "resets a started stack yet (docs/explore.md proposes the interface).",
        flush=True,
    )


if __name__ == "__main__":
    main()
