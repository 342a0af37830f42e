"""The second stack (examples/minidex) run through tradechaos end to end, shared by the
process-backend test (tests/integration) and the docker one (tests/docker).

``tradechaos run examples/minidex/experiments/*.yaml --controls --jobs 2`` must exit 0 with
the stories its bugs tell: a late pricer restart executes on marks seconds old and
liquidates accounts that truly were not below maintenance (guard off); cut replies that are
retried execute an order twice (dedupe off); two of the three venues quoting zero, in
Binance's and Kraken's own APIs, make a zero mark on which the engine liquidates accounts
far above maintenance (quote guard off; the stack file's own SQL check finds the zero
marks). The mitigated variants and every control hold every invariant.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "minidex"
STORIES = {
    "minidex-late-pricer-restart": {
        "no_stale_price_execution": r"used an oracle price [\d.]+s old",
        "no_unintended_liquidations": r"liquidated at seq \d+ .* true equity",
    },
    "minidex-cut-replies": {"no_duplicate_orders": r"accepted again"},
    "minidex-venues-zero": {
        "no_unintended_liquidations": r"liquidated at seq \d+ .* used BTC-USD mark 0 \(true \d+",
        "no_nonpositive_marks": r"'sym': 'BTC-USD', 'px': 0(\.0*)?,",  # a row of the SQL check
    },
}


def run_example(out: Path, backend: str) -> dict[tuple[str, str, bool], dict[str, Any]]:
    files = sorted(str(p) for p in (EXAMPLE / "experiments").glob("*.yaml"))
    argv = [sys.executable, "-m", "chaos", "run", *files, "--controls", "--jobs", "2"]
    argv += ["--out", str(out), "--backend", backend, "--quiet"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    found = {}
    for path in sorted(out.glob("*/journal.json")):
        journal = json.loads(path.read_text())
        found[(journal["experiment"], journal["variant"], bool(journal["no_faults"]))] = journal
    return found


def check_stories(journals: dict[tuple[str, str, bool], dict[str, Any]]) -> None:
    assert {k[0] for k in journals} == set(STORIES)
    assert len(journals) == 4 * len(STORIES)  # 2 variants x (faults, control) each
    for (experiment, variant, control), journal in journals.items():
        verdicts = {v["invariant"]: v for v in journal["verdicts"]}
        expected = set() if control else set(journal["expected_violations"])
        assert {n for n, v in verdicts.items() if v["valid"] is False} == expected, journal
        if variant == "vulnerable" and not control:
            assert expected == set(STORIES[experiment])
            for invariant, pattern in STORIES[experiment].items():
                problems = [
                    str(c.get("problem", c)) for c in verdicts[invariant]["counterexamples"]
                ]
                assert any(re.search(pattern, p) for p in problems), (invariant, problems)
        run = json.loads((Path(journal["run_dir"]) / "history" / "run.json").read_text())
        assert run["stack"]["name"] == "minidex" and run["markets"] == ["BTC-USD"]
