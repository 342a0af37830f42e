"""Does the stack-file path cost wall time? The same incident variants, run by today's code
(the reference stack reached through its stack file and bindings) and by the code of a
baseline commit from before stacks were plug-ins, side by side in one run.

The baseline (``TRADECHAOS_BENCH_BASELINE_REF``, default ``f8a294e``: main before issue 14)
is checked out with ``git worktree`` into a temp folder and run with the same interpreter
and ``PYTHONPATH`` pointing at it. Rounds alternate baseline and current
(``TRADECHAOS_BENCH_REPEAT`` rounds, default 3) so that the machine's noise hits both. Per
variant: median wall time (journal started..ended) of each, the ratio current/baseline,
and whether both met the expectation every time. The goal (issue 14): within 10%.
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

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = [
    ("experiments/incidents/cloudflare-2025-edge.yaml", "vulnerable"),
    ("experiments/incidents/dydx-2025-oracle-restart.yaml", "vulnerable"),
    ("experiments/incidents/paradex-2026-db-upgrade.yaml", "vulnerable"),
    ("experiments/incidents/cme-2025-cooling.yaml", "mitigated"),
]


def _run(code: Path, file: str, variant: str, out: Path) -> tuple[float, bool]:
    env = dict(os.environ)
    if code != ROOT:
        env["PYTHONPATH"] = str(code)
    argv = [sys.executable, "-m", "chaos", "run", str(code / file), "--variant", variant]
    argv += ["--out", str(out), "--quiet", "--json"]
    done = subprocess.run(argv, cwd=code, env=env, capture_output=True, timeout=600, check=False)
    try:
        (journal,) = json.loads(done.stdout)
    except ValueError:
        print(f"  {code.name}: {file} {variant} gave no journal: {done.stderr[-300:]!r}")
        return float("nan"), False
    return float(journal["ended_at"] - journal["started_at"]), bool(journal["expectation_met"])


def main() -> None:
    ref = os.environ.get("TRADECHAOS_BENCH_BASELINE_REF", "f8a294e")
    repeat = int(os.environ.get("TRADECHAOS_BENCH_REPEAT", "3"))
    walls: dict[tuple[str, str], list[float]] = defaultdict(list)
    met: dict[tuple[str, str], list[bool]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="bench-stackfile-") as tmp:
        baseline = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(baseline), ref],
            cwd=ROOT, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        try:
            for round_ in range(repeat):
                began = time.monotonic()
                for file, variant in VARIANTS:
                    for label, code in (("baseline", baseline), ("current", ROOT)):
                        out = Path(tmp) / f"{label}-{round_}"
                        wall, ok = _run(code, file, variant, out)
                        walls[(label, f"{Path(file).stem}/{variant}")].append(wall)
                        met[(label, f"{Path(file).stem}/{variant}")].append(ok)
                print(f"round {round_ + 1}/{repeat}: {time.monotonic() - began:.0f} s", flush=True)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(baseline)],
                cwd=ROOT, check=False, capture_output=True, timeout=120,
            )  # fmt: skip
    print(f"\n{'variant':40} {'baseline s':>10} {'current s':>10} {'ratio':>6}  met (b/c)")
    ratios = []
    for _, name in sorted(k for k in walls if k[0] == "current"):
        base = statistics.median(walls[("baseline", name)])
        cur = statistics.median(walls[("current", name)])
        ratios.append(cur / base)
        b_met = f"{sum(met[('baseline', name)])}/{len(met[('baseline', name)])}"
        c_met = f"{sum(met[('current', name)])}/{len(met[('current', name)])}"
        print(f"{name:40} {base:10.1f} {cur:10.1f} {cur / base:6.2f}  {b_met} / {c_met}")
    print(
        f"median ratio current/baseline {statistics.median(ratios):.2f} "
        f"(max {max(ratios):.2f}) over {repeat} interleaved round(s); baseline {ref}",
        flush=True,
    )


if __name__ == "__main__":
    main()
