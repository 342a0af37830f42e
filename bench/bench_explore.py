"""Explore's trial throughput (issue 17): trials per 10 minutes and per-trial overhead.

On a 10 s experiment (bench/data/explore-10s.yaml, nothing ever violated, so every trial is a
search trial), side by side in the same run:
- baseline: plain ``tradechaos run FILE`` once per trial, one after another (what a script
  looping over schedules would do);
- ``tradechaos explore FILE --budget N --jobs 1``: trials in the explorer's own process;
- ``tradechaos explore FILE --budget N --jobs J``: J trials side by side, each its own stack.
In these rows every trial gets a fresh stack; a fourth row reuses one started stack, reset
between trials by ``bench/reuse_prototype.py`` (PROTOTYPE: no backend can reset a stack
yet; docs/explore.md proposes the interface). Per-trial overhead is a trial's wall
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
    return wall, _trial_walls(out)


def _explore_reusing(out: Path, trials: int) -> tuple[float, list[float]]:
    """The same exploration with every trial on one lent, reset stack (the prototype)."""
    began = time.monotonic()
    argv = [sys.executable, "-m", "bench.reuse_prototype", str(EXPERIMENT), str(trials), str(out)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        print(f"  (prototype exit {done.returncode}: {done.stderr.strip()[-300:]})")
    wall = time.monotonic() - began
    resets = [float(x) for x in next(out.glob("*-explore/resets.txt")).read_text().split()]
    if resets:
        print(f"  (prototype: median reset {statistics.median(resets):.2f} s)", flush=True)
    return wall, _trial_walls(out)


def _trial_walls(out: Path) -> list[float]:
    (doc_path,) = out.glob("*-explore/explore.json")
    doc = json.loads(doc_path.read_text())
    held = sum(1 for t in doc["trials"] if t.get("status") == "passed")
    if held != len(doc["trials"]):
        print(f"  ({len(doc['trials']) - held} trial(s) did not hold every invariant)")
    return [float(t["wall_s"]) for t in doc["trials"] if "wall_s" in t]


def _row(name: str, trials: int, wall: float, per_trial: list[float], base: float | None) -> None:
    rate = trials * 600.0 / wall
    overhead = statistics.median(per_trial) - METHOD_S
    ratio = f"{rate / base:5.2f}" if base else "    -"
    print(
        f"{name:37} {trials:6} {wall:8.1f} {wall / trials:9.1f} {overhead:10.1f} "
        f"{rate:9.1f} {ratio}",
        flush=True,
    )


def main() -> None:
    trials = int(os.environ.get("TRADECHAOS_BENCH_EXPLORE_TRIALS", "6"))
    jobs = int(os.environ.get("TRADECHAOS_BENCH_JOBS", "2"))
    print(
        f"{'':37} {'trials':>6} {'wall s':>8} {'s/trial':>9} {'overhead':>10} "
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
        if os.environ.get("TRADECHAOS_BENCH_REUSE", "1") != "0":
            wall, walls = _explore_reusing(Path(tmp) / "reuse", trials)
            _row("explore --jobs 1 (reused, PROTOTYPE)", trials, wall, walls, base)
    print(
        "overhead: median trial wall time minus the 10 s method (for run: the whole "
        "command); ratio: trials per 10 min against the baseline. Reused: one stack reset "
        "between trials by bench/reuse_prototype.py (a stand-in for the backend interface "
        "docs/explore.md proposes; TRADECHAOS_BENCH_REUSE=0 skips it).",
        flush=True,
    )


if __name__ == "__main__":
    main()
