"""What a journal means, case by case: the one place that turns verdicts into pass/fail.

Every report (JUnit, HTML, terminal, pytest) shows the same cases with the same outcome:

- the steady-state hypothesis (before and after the method),
- one case per invariant the run checked,
- one case per expected violation the run did not check at all,
- one ``run`` case when the run itself ended in an error or was interrupted.

An invariant case passes when the finding matches the variant's expectation: violated and
expected (the experiment caught the incident), or held and not expected. An unexpected
violation, an expected violation that was not found, and an ``unknown`` the history could
not decide (a missing or malformed source) are failures. An ``unknown`` for lack of
evidence (nothing to check: no liquidation, no node loss...) is its own outcome, UNKNOWN:
never shown as a pass, and failing only when the variant expects a violation there or the
experiment requires evidence for it (``require_evidence``).

``invariants_met`` is the one rule that turns verdicts into "the variant met its
expectation"; the runner (``chaos.runner.runner.judge``) and ``tradechaos check`` use it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

CaseKind = Literal[
    "held",  # not expected to be violated, and held
    "caught",  # expected to be violated, and was
    "unexpected_violation",
    "expected_not_found",  # expected violated; held, or nothing to check
    "unknown",  # the history could not be judged
    "no_evidence",  # nothing to check, not required: UNKNOWN, does not fail the variant
    "evidence_required",  # nothing to check, but the experiment requires evidence
    "not_checked",
    "steady_state",
    "error",
]
Outcome = Literal["PASS", "FAIL", "UNKNOWN"]
FAILING_KINDS = frozenset(
    {"unexpected_violation", "expected_not_found", "unknown", "evidence_required", "not_checked"}
)
STEADY_STATE_CASE = "steady_state_hypothesis"
RUN_CASE = "run"
MAX_COUNTEREXAMPLES = 5
_PAIRS_AFTER_TEXT = 6  # a counterexample's own sentence says most; the rest is in journal.json
_TEXT_KEYS = ("message", "reason", "description", "why", "detail", "problem")
# Shown only where a reader can ask for details (report.html's hover), not in the text.
_DETAIL_KEYS = ("wall_time",)


@dataclass(frozen=True)
class Case:
    """One reported case. ``summary`` is one plain sentence; ``details`` holds the lines
    (counterexamples, failing probes) a reader needs to understand a failure."""

    name: str
    kind: CaseKind
    passed: bool  # the case does not fail the variant (an UNKNOWN outcome may still pass)
    summary: str
    details: tuple[str, ...] = ()
    expected_violation: bool = False
    count: int | None = None
    checked: int | None = None
    examples: tuple[str, ...] = ()  # the counterexamples in plain words (also in details)
    found: str = ""  # the finding alone: held / violated / unknown (empty: from the kind)
    unit: str = ""  # what ``checked`` counts (blocks, liquidations...)
    evidence_required: bool = False

    @property
    def outcome(self) -> Outcome:
        """What reports print: PASS, FAIL, or UNKNOWN (no evidence; not a failure)."""
        if not self.passed:
            return "FAIL"
        return "UNKNOWN" if self.kind == "no_evidence" else "PASS"

    @property
    def result_word(self) -> str:
        """The finding alone, without the expectation: held / violated / unknown / ..."""
        if self.found:
            return self.found
        return {
            "held": "held",
            "caught": "violated",
            "unexpected_violation": "violated",
            "expected_not_found": "held",
            "unknown": "unknown",
            "no_evidence": "unknown",
            "evidence_required": "unknown",
            "not_checked": "not checked",
            "steady_state": "held" if self.passed else "failed",
            "error": "error",
        }[self.kind]

    @property
    def count_text(self) -> str:
        """``violated/checked unit``, e.g. ``3/66 blocks``; empty for non-invariant cases."""
        if self.checked is None:
            return "" if self.count is None else str(self.count)
        text = f"{self.count or 0}/{self.checked}"
        return f"{text} {self.unit}" if self.unit else text


def suite_name(journal: Mapping[str, Any]) -> str:
    """``<experiment>.<variant>``, the JUnit class name of every case of one run."""
    return f"{journal.get('experiment') or 'experiment'}.{journal.get('variant') or 'default'}"


def expectation_met(journal: Mapping[str, Any]) -> bool:
    """The run met its expectation: no run error, and the journal says so (or, when it does
    not say, every case passed)."""
    if run_error(journal) is not None:
        return False
    met = journal.get("expectation_met")
    return met if isinstance(met, bool) else all(case.passed for case in cases(journal))


def invariants_met(
    verdicts: Sequence[Mapping[str, Any]],
    checked: Sequence[str],
    expected: Sequence[str],
    required: Sequence[str] = (),
) -> bool:
    """The verdicts meet the expectation: every checked invariant has a verdict whose case
    passes (``verdict_case``), and every expected violation was checked. The one rule."""
    by_name = {str(v.get("invariant")): v for v in verdicts if isinstance(v, Mapping)}
    for name in checked:
        verdict = by_name.get(name)
        if verdict is None or not verdict_case(verdict, name in expected, name in required).passed:
            return False
    return all(name in checked for name in expected)


def required_evidence(journal: Mapping[str, Any]) -> list[str]:
    """The invariants the run required evidence for (journal ``require_evidence``)."""
    return [str(name) for name in journal.get("require_evidence") or []]


def cases(journal: Mapping[str, Any]) -> list[Case]:
    """Every case of one run's journal, in report order (see the module docstring)."""
    expected = [str(name) for name in journal.get("expected_violations") or []]
    required = required_evidence(journal)
    result = [steady_state_case(journal)]
    seen: set[str] = set()
    for verdict in journal.get("verdicts") or []:
        if isinstance(verdict, Mapping):
            name = str(verdict.get("invariant"))
            case = verdict_case(verdict, name in expected, name in required)
            seen.add(case.name)
            result.append(case)
    for name in expected:
        if name not in seen:
            result.append(
                Case(
                    name=name,
                    kind="not_checked",
                    passed=False,
                    summary="expected to be violated, but the run did not check it",
                    expected_violation=True,
                )
            )
    error = run_error(journal)
    if error is not None:
        result.append(Case(name=RUN_CASE, kind="error", passed=False, summary=error))
    return result


def run_error(journal: Mapping[str, Any]) -> str | None:
    """One sentence when the run did not finish normally, else None."""
    status = journal.get("status")
    if status in ("error", "interrupted") or journal.get("error"):
        reason = journal.get("error") or f"the run ended with status {status}"
        return f"{status or 'error'}: {reason}"
    return None


def verdict_case(verdict: Mapping[str, Any], expected: bool, required: bool = False) -> Case:
    """The case of one checker verdict under the variant's expectation (module docstring);
    ``required``: the experiment requires evidence for this invariant."""
    name = str(verdict.get("invariant") or "?")
    valid = verdict.get("valid")
    count = _int_or_none(verdict.get("count"))
    checked = _int_or_none(verdict.get("checked"))
    unit = str(verdict.get("unit") or "")
    message = str(verdict.get("message") or "").strip()
    examples = counterexample_lines(verdict.get("counterexamples") or [])
    found = f"{count if count is not None else 'some'} violation(s)"
    of_checked = f" of {checked} {unit or 'checked'}".rstrip() if checked is not None else ""

    def make(kind: CaseKind, passed: bool, summary: str, *details: str) -> Case:
        shown = tuple(d for d in details if d in examples)
        word = "held" if valid is True else "violated" if valid is False else "unknown"
        return Case(
            name,
            kind,
            passed,
            summary,
            _lines(*details),
            expected,
            count,
            checked,
            shown,
            found=word,
            unit=unit,
            evidence_required=required,
        )

    if valid is True and not expected:
        held = f"held ({checked} {unit or 'checked'})" if checked is not None else "held"
        return make("held", True, held, message)
    if valid is False and expected:
        summary = f"violated as expected: {found}{of_checked}; the experiment caught it"
        return make("caught", True, summary, message, *examples)
    if valid is False:
        return make(
            "unexpected_violation",
            False,
            f"violated unexpectedly: {found}{of_checked}",
            message,
            *examples,
        )
    if valid is True:
        summary = "expected to be violated, but it held: the experiment did not reproduce it"
        return make("expected_not_found", False, summary, message)
    reason = message or "the checker could not decide"
    if verdict.get("no_evidence") is True:
        if expected:
            summary = f"expected to be violated, but there was nothing to check ({reason})"
            return make("expected_not_found", False, summary)
        if required:
            summary = f"unknown, and the experiment requires evidence: {reason}"
            return make("evidence_required", False, summary)
        return make("no_evidence", True, f"unknown: {reason} (not a pass)")
    return make("unknown", False, f"unknown: {reason}", *examples)


def steady_state_case(journal: Mapping[str, Any]) -> Case:
    """The steady-state hypothesis: every probe held before and (when checked) after."""
    steady = journal.get("steady_state") or {}
    parts = [(when, steady.get(when)) for when in ("before", "after")]
    checked = [(when, part) for when, part in parts if isinstance(part, Mapping)]
    if not checked:
        error = run_error(journal)
        if error is not None:
            return Case(STEADY_STATE_CASE, "steady_state", False, f"not checked ({error})")
        return Case(STEADY_STATE_CASE, "steady_state", True, "no steady-state probes")
    failing: list[str] = []
    for when, part in checked:
        if part.get("ok") is not True:
            bad = [p for p in part.get("probes") or [] if not _probe_ok(p)]
            failing.extend(f"{when}: {describe_mapping(p)}" for p in bad)
            if not bad:
                failing.append(f"{when}: the hypothesis did not hold")
    whens = " and ".join(when for when, _ in checked)
    if failing:
        return Case(
            STEADY_STATE_CASE, "steady_state", False, f"did not hold ({whens})", tuple(failing)
        )
    return Case(STEADY_STATE_CASE, "steady_state", True, f"held {whens} the method")


def _probe_ok(probe: Any) -> bool:
    return isinstance(probe, Mapping) and probe.get("ok") is not False


def counterexample_lines(
    counterexamples: Sequence[Any], limit: int = MAX_COUNTEREXAMPLES
) -> list[str]:
    """The first ``limit`` counterexamples in plain words, numbered, plus how many more."""
    lines = [f"#{i + 1}: {describe_mapping(cx)}" for i, cx in enumerate(counterexamples[:limit])]
    if len(counterexamples) > limit:
        lines.append(f"... and {len(counterexamples) - limit} more in journal.json")
    return lines


def describe_mapping(item: Any) -> str:
    """A counterexample or probe as one line: its own sentence first, then key=value pairs."""
    if not isinstance(item, Mapping):
        return format_value(item)
    text = next((str(item[k]) for k in _TEXT_KEYS if isinstance(item.get(k), str)), "")
    pairs = [
        f"{k}={format_value(v)}"
        for k, v in item.items()
        if k not in _TEXT_KEYS and k not in _DETAIL_KEYS
    ]
    if text and pairs:
        shown = pairs[:_PAIRS_AFTER_TEXT] + (["..."] if len(pairs) > _PAIRS_AFTER_TEXT else [])
        return f"{text} ({', '.join(shown)})"
    return text or ", ".join(pairs)


def format_value(value: Any) -> str:
    """Numbers short (8 significant digits), nested values as compact JSON (truncated)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.8g}"
    if isinstance(value, (int, str)):
        return str(value)
    text = json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= 200 else text[:197] + "..."


def first_failure_line(journal: Mapping[str, Any]) -> str | None:
    """The first failing case as ``name: summary`` plus its first detail, or None."""
    for case in cases(journal):
        if not case.passed:
            extra = f"; {case.details[0]}" if case.details else ""
            return f"{case.name}: {case.summary}{extra}"
    return None


def _lines(*texts: str) -> tuple[str, ...]:
    return tuple(t for t in texts if t)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return int(value)
    return None
