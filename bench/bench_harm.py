"""Harm ledger throughput (events/s) and peak memory, against no_unintended_liquidations.

The harm ledger replays every event against the truth like no_unintended_liquidations does
(plus the stack's and the fair books, the open orders and one entry per accepted order), so
that checker, measured on the same history in the same run, is the baseline: the ratio
says what the ledger costs on top of it. Clean generated histories
(``tests/unit/histgen.write_bulk``) of 10^5 and 10^6 events (``BENCH_HARM_SIZES`` to
choose); each measurement in a fresh subprocess (CPU time and peak RSS its own), median of 3.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "unit"))
DEFAULT_SIZES = (100_000, 1_000_000)

_CHILD = r"""
import json, sys, time
from chaos.checkers import REGISTRY, CheckParams
from chaos.harm import harm_ledger
from chaos.history.reader import History
history = History.open(sys.argv[1])
cpu0 = time.process_time()
if sys.argv[2] == "harm_ledger":
    ledger = harm_ledger(history, CheckParams()).to_dict()
    ok = ledger["affected_accounts"] == 0
else:
    ok = REGISTRY[sys.argv[2]].check(history, CheckParams()).valid is True
cpu = time.process_time() - cpu0
with open("/proc/self/status") as fh:
    peak = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
print(json.dumps({"cpu": cpu, "peak_kib": peak, "ok": ok}))
"""
WHAT = ("no_unintended_liquidations", "harm_ledger")


def _measure(run_dir: Path, what: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(run_dir), what],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1800,
    )
    result: dict[str, float] = json.loads(out.stdout)
    if not result["ok"]:
        raise SystemExit(f"bench: {what} found harm in a clean history: {result}")
    return result


def main() -> None:
    import histgen

    raw = os.environ.get("BENCH_HARM_SIZES")
    sizes = [int(s) for s in raw.split(",")] if raw else list(DEFAULT_SIZES)
    for n in sizes:
        tmp = Path(tempfile.mkdtemp(prefix="bench-harm-"))
        try:
            histgen.write_bulk(tmp, n)
            cpu: dict[str, float] = {}
            for what in WHAT:
                runs = [_measure(tmp, what) for _ in range(3)]
                cpu[what] = statistics.median(r["cpu"] for r in runs)
                peak = statistics.median(r["peak_kib"] for r in runs) / 1024
                print(
                    f"  {n:>10,} events  {what:28s} {n / cpu[what]:>10,.0f} ev/s cpu"
                    f"  peak RSS {peak:6.1f} MiB",
                    flush=True,
                )
            ratio = cpu["harm_ledger"] / cpu["no_unintended_liquidations"]
            print(f"  {n:>10,} events  harm ledger / liquidation checker CPU time: {ratio:.2f}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
