"""junit.xml as Jenkins and GitLab read it (parsed with junitparser and ElementTree)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from chaos.report.junit import render_junit, write_junit

RECORDED = Path(__file__).resolve().parents[1] / "data" / "recorded_run"


@pytest.fixture
def failing_journal() -> dict[str, Any]:
    journal: dict[str, Any] = json.loads((RECORDED / "journal.json").read_text())
    return journal


def test_failing_run_reads_back_with_failure_texts(
    tmp_path: Path, failing_journal: dict[str, Any]
) -> None:
    path = write_junit(tmp_path / "junit.xml", failing_journal)
    xml = JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    assert suite.name == "paradex-funding-restore.vulnerable"
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (6, 2, 0, 1)
    outcome = {case.name: case for case in suite}
    assert set(outcome) == {
        "steady_state_hypothesis",
        "no_unintended_liquidations",
        "no_corrupt_chain_writes",
        "fills_within_band",
        "sequence_integrity",
        "recovery_within_rto",
    }
    for case in outcome.values():
        assert case.classname == "paradex-funding-restore.vulnerable"
        assert case.time == 0.0
    # expected and found: the experiment caught the incident
    assert outcome["no_unintended_liquidations"].is_passed
    assert outcome["no_corrupt_chain_writes"].is_passed
    (band,) = outcome["fills_within_band"].result
    assert isinstance(band, Failure)
    assert band.message == (
        "fills_within_band: violated unexpectedly: 1 violation(s) of 40 fills outside normal mode"
    )
    assert "#1: fill 6.5% above the true price while post_only (seq=61" in band.text
    (unknown,) = outcome["sequence_integrity"].result
    assert isinstance(unknown, Failure)
    assert "events.jsonl ends before the final flush" in unknown.text
    # nothing to check: skipped with the reason, neither a pass nor a failure
    (skipped,) = outcome["recovery_within_rto"].result
    assert isinstance(skipped, Skipped)
    assert skipped.message == (
        "recovery_within_rto: unknown: no evidence: no node loss or sequencer kill in "
        "faults.jsonl (not a pass)"
    )
    assert not outcome["recovery_within_rto"].is_passed
    assert outcome["fills_within_band"].system_out.startswith(
        "run folder: runs/20260719-120000-paradex-funding-restore-vulnerable"
    )


def test_expected_violation_not_found_fails(failing_journal: dict[str, Any]) -> None:
    failing_journal["verdicts"][0]["valid"] = True
    root = ET.fromstring(render_junit([failing_journal]))
    case = root.find(".//testcase[@name='no_unintended_liquidations']")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None
    assert "did not reproduce it" in failure.get("message", "")


def test_run_error_is_a_junit_error(failing_journal: dict[str, Any]) -> None:
    failing_journal.update(status="error", error="the stack did not start: oracle not healthy")
    failing_journal["steady_state"] = {}
    xml = JUnitXml.fromstring(render_junit([failing_journal]))
    suite = next(iter(xml))
    run = next(case for case in suite if case.name == "run")
    (error,) = run.result
    assert isinstance(error, Error)
    assert "oracle not healthy" in error.message
    assert suite.errors == 1
    assert run.time == pytest.approx(32.0)


def test_passing_run_has_no_failures_and_required_attributes(
    failing_journal: dict[str, Any],
) -> None:
    del failing_journal["verdicts"][2:]
    failing_journal["expectation_met"] = True
    root = ET.fromstring(render_junit([failing_journal]))
    assert root.tag == "testsuites"
    assert root.get("failures") == "0" and root.get("tests") == "3"
    suite = root.find("testsuite")
    assert suite is not None
    for attr in ("name", "tests", "failures", "errors", "time", "timestamp"):
        assert suite.get(attr) is not None, attr
    assert root.find(".//failure") is None
    for case in root.iter("testcase"):
        assert {"classname", "name", "time"} <= set(case.attrib)


def test_control_characters_in_counterexamples_stay_valid_xml(
    failing_journal: dict[str, Any],
) -> None:
    failing_journal["verdicts"][2]["counterexamples"][0]["problem"] = "bad\x00byte\x1b[31m"
    ET.fromstring(render_junit([failing_journal]))
