"""The incident library's wall time and verdict stability (issue 7).

Runs the whole library as a CI gate would, ``tradechaos run experiments/incidents/*.yaml
--controls --jobs J`` (every variant with faults and as a control, ``J`` at once:
``TRADECHAOS_BENCH_JOBS``, default 2), REPEAT times (``TRADECHAOS_BENCH_REPEAT``, default 1),
and prints per variant: wall-time median and max (from each journal's started/ended),
whether every repeat gave the same verdicts, how often the expectation was met, and the
wall time of each pass of the library (the whole command). With ``J`` > 1 one more pass
runs with ``--jobs 1`` as the baseline (``TRADECHAOS_BENCH_BASELINE=0`` skips it), and the
ratio of the median pass to it is printed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
INCIDENTS = sorted((ROOT / "experiments" / "incidents").glob("*.yaml"))


def _run(out: Path, jobs: int) -> float:
    argv = [sys.executable, "-m", "chaos", "run", *map(str, INCIDENTS), "--controls"]
    argv += ["--jobs", str(jobs), "--out", str(out), "--quiet"]
    began = time.monotonic()
    subprocess.run(argv, cwd=ROOT, capture_output=True, timeout=1800, check=False)
    return time.monotonic() - began


def main() -> None:
    repeat = int(os.environ.get("TRADECHAOS_BENCH_REPEAT", "1"))
    jobs = int(os.environ.get("TRADECHAOS_BENCH_JOBS", "2"))
    walls: dict[tuple[str, str, bool], list[float]] = defaultdict(list)
    verdicts: dict[tuple[str, str, bool], set[str]] = defaultdict(set)
    met: dict[tuple[str, str, bool], list[bool]] = defaultdict(list)
    passes: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-incidents-") as tmp:
        for round_ in range(repeat):
            out = Path(tmp) / str(round_)
            pass_wall = _run(out, jobs)
            for journal_path in out.glob("*/journal.json"):
                journal = json.loads(journal_path.read_text())
                key = (journal["experiment"], journal["variant"], bool(journal["no_faults"]))
                walls[key].append(_wall(journal))
                verdicts[key].add(
                    ",".join(f"{v['invariant']}={v['valid']}" for v in journal["verdicts"])
                )
                met[key].append(bool(journal["expectation_met"]))
            passes.append(pass_wall)
            print(
                f"pass {round_ + 1}/{repeat}: library + controls, --jobs {jobs}: {pass_wall:.0f} s",
                flush=True,
            )
            _table(walls, verdicts, met, passes)
        if jobs > 1 and os.environ.get("TRADECHAOS_BENCH_BASELINE", "1") != "0":
            serial = _run(Path(tmp) / "baseline", 1)
            serial_walls = [
                _wall(json.loads(path.read_text()))
                for path in (Path(tmp) / "baseline").glob("*/journal.json")
            ]
            print(
                f"baseline --jobs 1: library + controls {serial:.0f} s (variant median "
                f"{statistics.median(serial_walls):.1f} s, max {max(serial_walls):.1f} s); "
                f"--jobs {jobs} median pass / baseline = "
                f"{statistics.median(passes) / serial:.2f}",
                flush=True,
            )


def _wall(journal: dict[str, Any]) -> float:
    return float(journal["ended_at"] - journal["started_at"])


def _table(
    walls: dict[tuple[str, str, bool], list[float]],
    verdicts: dict[tuple[str, str, bool], set[str]],
    met: dict[tuple[str, str, bool], list[bool]],
    passes: list[float],
) -> None:
    print(f"\n{'experiment':28} {'variant':16} {'run':8} {'median s':>8} {'max s':>6}  stable  met")
    for key in sorted(walls):
        name, variant, no_faults = key
        w = walls[key]
        print(
            f"{name:28} {variant:16} {'control' if no_faults else 'faults':8} "
            f"{statistics.median(w):8.1f} {max(w):6.1f}  "
            f"{'yes' if len(verdicts[key]) == 1 else 'NO':6}  {sum(met[key])}/{len(met[key])}"
        )
    print(
        f"library (every variant, faults + controls): median {statistics.median(passes):.0f} s, "
        f"max {max(passes):.0f} s over {len(passes)} pass(es); seeds are the files' own "
        "(paradex 7, dydx 11, cme 5, cloudflare 3)\n",
        flush=True,
    )


if __name__ == "__main__":
    main()
