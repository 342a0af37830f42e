"""bench/soak.py's table: a combination whose outcome differs between passes is a flake;
a verdict that differs while the outcome does not is drift; passes add up in one folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import soak  # noqa: E402


def fake_pass(backend_dir: Path, number: int, runs: list[dict[str, Any]], code: int = 0) -> None:
    out = backend_dir / f"pass-{number}"
    for index, journal in enumerate(runs):
        run_dir = out / "runs" / f"run-{index}"
        run_dir.mkdir(parents=True)
        (run_dir / "journal.json").write_text(json.dumps(journal))
    (out / "pass.json").write_text(json.dumps({"pass": number, "exit_code": code, "wall_s": 200}))


def journal(variant: str, met: bool, valid: object, no_faults: bool = False) -> dict[str, Any]:
    return {
        "experiment": "dydx",
        "variant": variant,
        "no_faults": no_faults,
        "status": "passed" if met else "failed",
        "expectation_met": met,
        "verdicts": [
            {
                "invariant": "no_unintended_liquidations",
                "valid": valid,
                "no_evidence": valid == "unknown",
            }
        ],
    }


def test_an_outcome_that_differs_between_passes_is_a_flake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend_dir = tmp_path / "process"
    fake_pass(
        backend_dir, 1, [journal("mitigated", True, True), journal("vulnerable", True, False)]
    )
    fake_pass(
        backend_dir, 2, [journal("mitigated", False, False), journal("vulnerable", True, False)]
    )
    assert soak.next_number(backend_dir) == 3
    assert soak.main(["--passes", "0", "--backends", "process", "--out", str(tmp_path)]) == 1
    text = capsys.readouterr().out
    assert "dydx                         mitigated        faults     1/2   FLAKY" in text
    assert "dydx                         vulnerable       faults     2/2   stable" in text
    assert "process: 1 flaky combination(s) of 2 over 2 pass(es)" in text


def test_a_verdict_that_drifts_without_changing_the_outcome_is_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend_dir = tmp_path / "process"
    for number, valid in enumerate((True, "unknown", True), 1):
        fake_pass(backend_dir, number, [journal("mitigated", True, valid, no_faults=True)])
    assert soak.main(["--passes", "0", "--backends", "process", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "verdict drift: no_unintended_liquidations: held 2x, unknown (no evidence) 1x" in text
    assert "pass 2 (unknown (no evidence)):" in text
    assert "process: 0 flaky combination(s) of 1 over 3 pass(es)" in text


def test_an_unfinished_pass_is_not_counted_and_bad_usage_exits_2(tmp_path: Path) -> None:
    (tmp_path / "process" / "pass-1").mkdir(parents=True)  # no pass.json: did not finish
    assert soak.finished_passes(tmp_path / "process") == []
    assert soak.main(["--passes", "-1", "--out", str(tmp_path)]) == 2
    assert soak.main(["--passes", "0", "--backends", "kube", "--out", str(tmp_path)]) == 2
