"""The incident library, end to end on the process backend (issue 7; the Paradex response,
issue 21).

The whole library runs once, as a CI gate runs it: ``tradechaos run
experiments/incidents/*.yaml --controls --jobs 2`` (every variant with faults injected and as
a control) must exit 0. Then, per incident: the vulnerable variants find exactly their
expected violations, with counterexamples that tell the incident's story; every other
variant holds every invariant or had nothing to check (unknown for lack of evidence:
never a pass, not a failure); every control run does the same with its faults skipped.
The pytest plugin route (``pytest FILE --tradechaos-no-faults``) is run for one incident.
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
        # whichever of the two writers' events the chain writer read first went on chain;
        # the other's are on no block, or a block's seqs are out of order
        "no_corrupt_chain_writes": r"by sequencer '[ab]', epoch \d\) is on no block|holds seq \d+",
    },
    "cloudflare-2025-edge": {
        "no_duplicate_orders": r"accepted again",
    },
    # the response: nothing is left violated after it; its story is the harm ledger's
    # (test_the_response_makes_whole_what_the_race_cost) and the recovered-state verdicts
    "paradex-2026-response": {},
}
RESPONSE = "paradex-2026-response"
RECOVERED = ("rollback_restores_snapshot", "no_corrupt_market_data_remains",
             "no_unreported_lost_orders", "trigger_orders_survive_cancel_all",
             "recovered_state_matches_replay")  # fmt: skip


Key = tuple[str, str, bool]  # experiment, variant, no_faults


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> dict[Key, dict[str, Any]]:
    """Every journal of one run of the whole library with its controls, two at a time."""
    out = tmp_path_factory.mktemp("library")
    files = [str(INCIDENTS / f"{name}.yaml") for name in sorted(STORIES)]
    options = ["--controls", "--jobs", "2", "--out", str(out), "--quiet"]
    proc = subprocess.run(
        [sys.executable, "-m", "chaos", "run", *files, *options],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    found: dict[Key, dict[str, Any]] = {}
    for path in sorted(out.glob("*/journal.json")):
        journal = json.loads(path.read_text())
        key = (journal["experiment"], journal["variant"], bool(journal["no_faults"]))
        assert key not in found, key
        found[key] = journal
    return found


def _journals(library: dict[Key, dict[str, Any]], name: str, no_faults: bool) -> dict[str, Any]:
    return {v: j for (e, v, c), j in library.items() if e == name and c is no_faults}


def _held_or_no_evidence(verdict: dict[str, Any]) -> bool:
    return verdict["valid"] is True or (
        verdict["valid"] == "unknown" and verdict.get("no_evidence") is True
    )


def _problems(verdict: dict[str, Any]) -> str:
    return "\n".join(str(c.get("problem", c)) for c in verdict.get("counterexamples", []))


def test_the_library_runs_every_variant_with_faults_and_as_a_control(
    library: dict[Key, dict[str, Any]],
) -> None:
    variants = {name: set(_journals(library, name, False)) for name in STORIES}
    assert all({"vulnerable", "mitigated"} <= found for found in variants.values()), variants
    assert {name: set(_journals(library, name, True)) for name in STORIES} == variants
    assert all(j["status"] == "passed" for j in library.values())


@pytest.mark.parametrize("name", sorted(STORIES))
def test_incident_caught_when_vulnerable_and_held_when_mitigated(
    name: str, library: dict[Key, dict[str, Any]]
) -> None:
    journals = _journals(library, name, no_faults=False)
    for variant, journal in journals.items():
        assert journal["status"] == "passed", (variant, journal.get("error"))
        assert journal["expectation_met"] is True, variant
        expected = set(journal["expected_violations"])
        for verdict in journal["verdicts"]:
            if verdict["invariant"] in expected:
                assert verdict["valid"] is False, (variant, verdict)
                assert verdict["count"] > 0 and verdict["counterexamples"], verdict
            else:
                assert _held_or_no_evidence(verdict), (
                    variant,
                    verdict["invariant"],
                    verdict["message"],
                    _problems(verdict),
                )
        for file in ("journal.json", "junit.xml", "report.html"):
            assert (Path(journal["run_dir"]) / file).is_file(), (variant, file)
    assert journals["mitigated"]["expected_violations"] == []
    vulnerable = {v["invariant"]: v for v in journals["vulnerable"]["verdicts"]}
    for invariant, story in STORIES[name].items():
        problems = _problems(vulnerable[invariant])
        assert re.search(story, problems), f"{invariant} does not tell the story:\n{problems}"


@pytest.mark.parametrize("name", sorted(STORIES))
def test_control_runs_hold_every_invariant(name: str, library: dict[Key, dict[str, Any]]) -> None:
    """No harm without an injected fault: the same timeline with its faults skipped."""
    for variant, journal in _journals(library, name, no_faults=True).items():
        assert journal["expectation_met"] is True and journal["expected_violations"] == []
        assert all(_held_or_no_evidence(v) for v in journal["verdicts"]), (
            variant,
            [(v["invariant"], _problems(v)) for v in journal["verdicts"] if v["valid"] is not True],
        )
        skipped = [t for t in journal["timeline"] if t.get("fault")]
        assert skipped and all(t.get("skipped") for t in skipped), variant


def test_the_response_makes_whole_what_the_race_cost(library: dict[Key, dict[str, Any]]) -> None:
    """Paradex's response rehearsed: on the vulnerable stack the race liquidated accounts
    that were healthy under the truth, the harm ledger (the log as written) names them and
    what each lost, and the rollback to the pre-maintenance snapshot made all of it whole;
    after the runbook the chain is the snapshot's plus valid blocks, the accounts equal a
    fair replay, and cancel_all kept the take-profit / stop-loss orders and nothing else.
    On the mitigated stack and in the controls the same runbook costs nobody anything."""
    runs = {(v, c): j for (e, v, c), j in library.items() if e == RESPONSE}
    assert set(runs) == {(v, c) for v in ("vulnerable", "mitigated") for c in (False, True)}
    for (variant, control), journal in runs.items():
        verdicts = {v["invariant"]: v for v in journal["verdicts"]}
        for name in RECOVERED:
            assert verdicts[name]["valid"] is True and verdicts[name]["checked"] > 0, (
                variant, control, name, verdicts[name]["message"])  # fmt: skip
        assert "cancel_all cancelled" in verdicts["no_unreported_lost_orders"]["message"]
        kept = _evidence(journal, "cancel_all")["kept_orders"]
        assert {o["order_type"] for o in kept} == {"take_profit", "stop_loss"}, kept
        rollback = _evidence(journal, "chain_rollback")
        assert rollback["chain"]["rolled_back"] is True and rollback["snapshot"] == "pre"
        harm = journal["harm"]
        assert harm["unknown"] == [] and harm["rollbacks"][0]["snapshot"] == "pre"
        if (variant, control) != ("vulnerable", False):
            assert harm["totals"]["total"] == 0.0 and harm["item_count"] == 0, (variant, harm)
    _the_ledger_names_the_liquidated_and_the_rollback_made_them_whole(
        runs[("vulnerable", False)]["harm"]
    )


def _the_ledger_names_the_liquidated_and_the_rollback_made_them_whole(
    harm: dict[str, Any],
) -> None:
    # the liquidated side of each unintended liquidation (not the maker or the fund that
    # took the position), each one removed by the rollback step
    liquidated = [i for i in harm["items"] if i["kind"] == "unintended_liquidation"
                  and not i.get("counterparty") and i["loss"] > 0]  # fmt: skip
    assert liquidated and all(i["made_whole_by"] == "rollback" for i in liquidated), liquidated
    accounts = {a["account"] for a in harm["accounts"]}
    made_whole = harm["rollbacks"][0]["made_whole_by_account"]
    assert {i["account"] for i in liquidated} <= accounts & {int(a) for a in made_whole}
    assert harm["affected_accounts"] >= 1 and harm["totals"]["unintended_liquidation"] > 100
    assert harm["totals"]["owed"] == 0.0
    assert harm["totals"]["made_whole"] == harm["totals"]["total"] > 100


def _evidence(journal: dict[str, Any], action: str) -> dict[str, Any]:
    path = Path(journal["run_dir"]) / "history" / "faults.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line]
    found = [r["evidence"] for r in records if r["action"] == action and r["phase"] == "evidence"]
    assert len(found) == 1, (action, found)
    return dict(found[0])


def test_control_run_through_the_pytest_plugin(tmp_path: Path) -> None:
    """``pytest experiments/incidents/FILE --tradechaos-no-faults``, the route of a pytest
    release gate: one item per variant, each passes."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(INCIDENTS / "cloudflare-2025-edge.yaml"),
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
    assert re.search(r"\b2 passed\b", proc.stdout), proc.stdout[-2000:]
    journals = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/journal.json"))]
    assert sorted(j["variant"] for j in journals) == ["mitigated", "vulnerable"]
    for journal in journals:
        assert journal["no_faults"] is True
        assert all(v["valid"] is True for v in journal["verdicts"]), journal["variant"]
