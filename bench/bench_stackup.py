"""How long a cold `tradechaos stack up --detach` takes until every service is healthy, for
the reference stack (8 services, 13 links) and the example stack minidex (5 services), in
interleaved rounds (``TRADECHAOS_BENCH_REPEAT``, default 5) so that the machine's noise
hits both. Prints the medians, min and max, and minidex / reference (the baseline measured
in the same run). Each stack is brought down after every start; a failed start or stop
stops the benchmark with its output.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STACKS = {
    "reference": [],
    "minidex": ["--stack", str(ROOT / "examples" / "minidex" / "stack.yaml")],
}


def _tradechaos(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "chaos", *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def _cold_start(name: str, out: Path) -> float:
    started = time.monotonic()
    up = _tradechaos("stack", "up", "--detach", "--out", str(out), *STACKS[name])
    elapsed = time.monotonic() - started
    down = _tradechaos("stack", "down", "--out", str(out))
    for step, done in (("up", up), ("down", down)):
        if done.returncode != 0:
            raise SystemExit(f"bench stackup: {name} stack {step} failed:\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    rounds = int(os.environ.get("TRADECHAOS_BENCH_REPEAT", "5"))
    times: dict[str, list[float]] = {name: [] for name in STACKS}
    with tempfile.TemporaryDirectory(prefix="tradechaos-bench-stackup-") as tmp:
        for i in range(rounds):
            for name in STACKS:
                times[name].append(_cold_start(name, Path(tmp) / f"{name}-{i}"))
            print(f"round {i + 1}/{rounds}: " + ", ".join(
                f"{n} {t[-1]:.2f} s" for n, t in times.items()), flush=True)  # fmt: skip
    print(f"\ncold `stack up --detach` to healthy, {rounds} rounds")
    print(f"{'stack':<10} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, values in times.items():
        print(f"{name:<10} {statistics.median(values):9.2f} {min(values):7.2f} {max(values):7.2f}")
    ratio = statistics.median(times["minidex"]) / statistics.median(times["reference"])
    print(f"minidex / reference (median): {ratio:.2f}")


if __name__ == "__main__":
    main()
