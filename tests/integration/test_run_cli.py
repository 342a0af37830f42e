"""``tradechaos run`` end to end from the command line on tests/data/tiny-latency.yaml:
one latency fault, two variants (calm must pass; expects-duplicates expects a violation a
short latency cannot cause, so it must fail). Needs the whole reference stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from run_cli_helpers import DATA, processes_mentioning, tradechaos

pytestmark = pytest.mark.integration
TINY = str(DATA / "tiny-latency.yaml")


def journals(stdout: str) -> dict[str, dict[str, Any]]:
    """The ``--json`` journals (docs/contracts.md section 3) by variant."""
    return {j["variant"]: j for j in json.loads(stdout)}


def test_two_variants_exit_1_and_the_journals_say_why(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    done = tradechaos("run", TINY, "--out", str(out), "--json", "--quiet")
    assert done.returncode == 1, done.stderr[-3000:]
    found = journals(done.stdout)
    calm, dup = found["calm"], found["expects-duplicates"]
    assert calm["status"] == "passed", calm.get("error")
    assert calm["expectation_met"] is True and calm["seed"] == 11
    verdicts = {v["invariant"]: v["valid"] for v in calm["verdicts"]}
    assert verdicts == {"no_duplicate_orders": True, "sequence_integrity": True}
    (step,) = calm["timeline"]
    assert step["id"] == "slow-db" and step["fault"] is True and step["skipped"] is False
    assert step["started"] is not None and step["lateness_ms"] < 250
    assert dup["status"] == "failed" and dup["expectation_met"] is False
    assert dup["expected_violations"] == ["no_duplicate_orders"]
    for journal in (calm, dup):
        run_dir = Path(str(journal["run_dir"]))
        on_disk = json.loads((run_dir / "journal.json").read_text())
        assert on_disk["status"] == journal["status"]
        assert (run_dir / "history" / "run.json").is_file()
        assert processes_mentioning(str(run_dir)) == []
    checked = tradechaos("check", str(calm["run_dir"]))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "every invariant holds" in checked.stdout
    # the same rule as `run`: a run that expected a violation and found none fails
    rechecked = tradechaos("check", str(dup["run_dir"]))
    assert rechecked.returncode == 1, rechecked.stdout + rechecked.stderr
    assert "no longer catches" in rechecked.stdout


def test_one_variant_and_the_control_run(tmp_path: Path) -> None:
    calm = tradechaos("run", TINY, "--variant", "calm", "--out", str(tmp_path / "a"), "--quiet")
    assert calm.returncode == 0, calm.stderr[-3000:]
    control = tradechaos(
        "run", TINY, "--variant", "expects-duplicates", "--no-faults",
        "--out", str(tmp_path / "b"), "--json", "--quiet",
    )  # fmt: skip
    assert control.returncode == 0, control.stderr[-3000:]
    (journal,) = json.loads(control.stdout)
    assert journal["no_faults"] is True and journal["expected_violations"] == []
    assert journal["timeline"][0]["skipped"] is True and journal["timeline"][0]["started"] is None
    assert Path(journal["run_dir"]).name.endswith("-tiny-latency-expects-duplicates-control")


def test_bad_input_exits_2_before_starting_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(TINY).read_text().replace("sequencer-db", "sequencer-bd"))
    done = tradechaos("run", str(bad), "--out", str(tmp_path / "runs"))
    assert done.returncode == 2
    assert f"{bad}:22: method[0].target" in done.stderr
    assert not (tmp_path / "runs").exists()
    unknown = tradechaos("run", TINY, "--variant", "nope", "--out", str(tmp_path / "runs"))
    assert unknown.returncode == 2 and "variants: calm, expects-duplicates" in unknown.stderr
