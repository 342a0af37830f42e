"""The incident library, end to end on the process backend (issue 7).

For every incident file: ``tradechaos run FILE`` (every variant, faults injected) exits 0; the
vulnerable variants find exactly their expected violations, with counterexamples that tell
the incident's story; every other variant holds every invariant. The control runs
(``--no-faults``) go through the pytest plugin (``pytest experiments/incidents/...``), the
route a CI release gate takes, and must pass for every variant.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
INCIDENTS = ROOT / "experiments" / "incidents"

# For each incident: the invariant whose counterexamples must tell the story, and how.
STORIES: dict[str, dict[str, str]] = {
    "paradex-2026-db-upgrade": {
        # a funding index of (nearly) 0 where the truth is tens of thousands
        "no_corrupt_chain_writes": (
            r"block \d+ carries [A-Z]+-PERP funding index \d{1,3}(\.\d+)?; true \d{4,}"
        ),
        "no_unintended_liquidations": r"funding index \d{1,3}(\.\d+)? \(true \d{4,}",
        "fills_within_band": r"fill at [\d.]+ in post_only mode is [-+]\d+ bps from the true",
    },
    "dydx-2025-oracle-restart": {
        "no_stale_price_execution": r"used an oracle price [\d.]+s old",
        "no_unintended_liquidations": r"liquidated at seq \d+ .* true equity",
    },
    "cme-2025-cooling": {
        "sequence_integrity": r"written with epoch \d+ by 'a' after epoch \d+ began|written twice",
        "no_corrupt_chain_writes": r"by sequencer 'a', epoch 1\) is on no block|holds seq \d+",
    },
    "cloudflare-2025-edge": {
        "no_duplicate_orders": r"accepted again",
    },
}


def _journals(out: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(out.glob("*/journal.json")):
        journal = json.loads(path.read_text())
        found[journal["variant"]] = journal
    return found


def _problems(verdict: dict[str, Any]) -> str:
    return "\n".join(str(c.get("problem", c)) for c in verdict.get("counterexamples", []))


@pytest.mark.parametrize("name", sorted(STORIES))
def test_incident_caught_when_vulnerable_and_held_when_mitigated(name: str, tmp_path: Path) -> None:
    path = INCIDENTS / f"{name}.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "chaos", "run", str(path), "--out", str(tmp_path), "--quiet"],
        capture_output=True,
        text=True,
        timeout=420,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    journals = _journals(tmp_path)
    assert "vulnerable" in journals and "mitigated" in journals, sorted(journals)
    for variant, journal in journals.items():
        assert journal["status"] == "passed", (variant, journal.get("error"))
        assert journal["expectation_met"] is True, variant
        expected = set(journal["expected_violations"])
        for verdict in journal["verdicts"]:
            if verdict["invariant"] in expected:
                assert verdict["valid"] is False, (variant, verdict)
                assert verdict["count"] > 0 and verdict["counterexamples"], verdict
            else:
                assert verdict["valid"] is True, (variant, verdict["invariant"], _problems(verdict))
        for file in ("journal.json", "junit.xml", "report.html"):
            assert (Path(journal["run_dir"]) / file).is_file(), (variant, file)
    assert journals["mitigated"]["expected_violations"] == []
    vulnerable = {v["invariant"]: v for v in journals["vulnerable"]["verdicts"]}
    for invariant, story in STORIES[name].items():
        problems = _problems(vulnerable[invariant])
        assert re.search(story, problems), f"{invariant} does not tell the story:\n{problems}"


@pytest.mark.parametrize("name", sorted(STORIES))
def test_control_run_without_faults_passes_through_the_pytest_plugin(
    name: str, tmp_path: Path
) -> None:
    """``pytest experiments/incidents/FILE --tradechaos-no-faults``: every variant holds
    every invariant (no harm without an injected fault)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(INCIDENTS / f"{name}.yaml"),
            "--tradechaos-no-faults",
            "--tradechaos-out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=420,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", proc.stdout), proc.stdout[-2000:]
    journals = _journals(tmp_path)
    assert journals, "the plugin wrote no run folder"
    for variant, journal in journals.items():
        assert journal["no_faults"] is True
        assert all(v["valid"] is True for v in journal["verdicts"]), (
            variant,
            [(v["invariant"], _problems(v)) for v in journal["verdicts"] if v["valid"] is not True],
        )
        skipped = [t for t in journal["timeline"] if t.get("fault")]
        assert skipped and all(t.get("skipped") for t in skipped), variant
