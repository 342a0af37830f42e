"""The pass/fail semantics every report shares (chaos.report.outcomes)."""

from __future__ import annotations

from typing import Any

import pytest

from chaos.report.outcomes import (
    cases,
    describe_mapping,
    expectation_met,
    first_failure_line,
    invariants_met,
)


def journal(verdicts: list[dict[str, Any]], expected: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "experiment": "demo",
        "variant": "vulnerable",
        "status": "passed",
        "expected_violations": expected,
        "steady_state": {"before": {"ok": True, "probes": []}, "after": {"ok": True}},
        "verdicts": verdicts,
        **extra,
    }


def verdict(
    name: str, valid: object, *examples: dict[str, Any], message: str = ""
) -> dict[str, Any]:
    return {
        "invariant": name,
        "valid": valid,
        "count": len(examples),
        "checked": 9,
        "counterexamples": list(examples),
        "message": message,
    }


@pytest.mark.parametrize(
    ("valid", "expected", "kind", "passed"),
    [
        (True, False, "held", True),
        (False, True, "caught", True),
        (False, False, "unexpected_violation", False),
        (True, True, "expected_not_found", False),
        ("unknown", False, "unknown", False),
        ("unknown", True, "unknown", False),
    ],
)
def test_invariant_case_passes_when_the_finding_matches_the_expectation(
    valid: object, expected: bool, kind: str, passed: bool
) -> None:
    run = journal(
        [verdict("no_corrupt_chain_writes", valid, {"problem": "block 3 forked"})],
        ["no_corrupt_chain_writes"] if expected else [],
    )
    case = cases(run)[1]
    assert (case.name, case.kind, case.passed) == ("no_corrupt_chain_writes", kind, passed)


def test_unknown_carries_the_reason() -> None:
    run = journal([verdict("sequence_integrity", "unknown", message="no events.jsonl")], [])
    assert cases(run)[1].summary == "unknown: no events.jsonl"
    assert first_failure_line(run) == "sequence_integrity: unknown: no events.jsonl"


def test_expected_violation_that_was_not_checked_fails() -> None:
    run = journal([], ["no_duplicate_orders"])
    case = cases(run)[-1]
    assert (case.name, case.kind, case.passed) == ("no_duplicate_orders", "not_checked", False)


def test_steady_state_failure_names_the_failing_probe() -> None:
    run = journal([], [])
    run["steady_state"]["after"] = {
        "ok": False,
        "probes": [{"probe": "error_rate", "ok": False, "value": 0.4, "limit": 0.05}],
    }
    case = cases(run)[0]
    assert not case.passed
    assert case.details == ("after: probe=error_rate, ok=false, value=0.4, limit=0.05",)


def test_run_error_is_a_failing_case_and_the_expectation_is_not_met() -> None:
    run = journal([], [], status="error", error="the stack did not start: db not healthy")
    run["expectation_met"] = True  # a broken journal must not hide the error
    assert cases(run)[-1].summary == "error: the stack did not start: db not healthy"
    assert not expectation_met(run)


def test_counterexample_reads_as_its_own_sentence_first() -> None:
    text = describe_mapping(
        {"seq": 12, "problem": "account 3 liquidated above maintenance", "price": 60123.456789}
    )
    assert text == "account 3 liquidated above maintenance (seq=12, price=60123.457)"


@pytest.mark.parametrize(
    ("expected", "required", "kind", "outcome"),
    [
        (False, False, "no_evidence", "UNKNOWN"),  # never shown as a pass, not a failure
        (False, True, "evidence_required", "FAIL"),
        (True, False, "expected_not_found", "FAIL"),
        (True, True, "expected_not_found", "FAIL"),
    ],
)
def test_nothing_to_check_is_unknown_and_fails_only_when_evidence_was_needed(
    expected: bool, required: bool, kind: str, outcome: str
) -> None:
    no_evidence = {
        **verdict("recovery_within_rto", "unknown", message="no evidence: no node loss"),
        "checked": 0,
        "unit": "node losses",
        "no_evidence": True,
    }
    run = journal(
        [no_evidence],
        ["recovery_within_rto"] if expected else [],
        require_evidence=["recovery_within_rto"] if required else [],
    )
    case = cases(run)[1]
    assert (case.kind, case.outcome, case.result_word) == (kind, outcome, "unknown")
    assert case.count_text == "0/0 node losses"
    assert "no node loss" in case.summary
    met = invariants_met(
        [no_evidence],
        ["recovery_within_rto"],
        ["recovery_within_rto"] if expected else [],
        ["recovery_within_rto"] if required else [],
    )
    assert met is (outcome != "FAIL")


def test_an_undecided_unknown_still_fails() -> None:
    """A source missing or malformed is not a lack of evidence: the run cannot be judged."""
    undecided = verdict("sequence_integrity", "unknown", message="cannot tell: no events.jsonl")
    assert cases(journal([undecided], []))[1].outcome == "FAIL"
    assert invariants_met([undecided], ["sequence_integrity"], []) is False
