"""junit.xml: one run as a JUnit test suite that Jenkins and GitLab read.

Shape: ``<testsuites><testsuite name=EXPERIMENT.VARIANT ...><properties/><testcase
classname=EXPERIMENT.VARIANT name=CASE time=S>[<failure message=... type=...>text</failure>
| <error ...> | <skipped message=REASON/>][<system-out>run folder</system-out>]</testcase>
...<system-out/></testsuite></testsuites>``. The cases and their outcomes come from
``chaos.report.outcomes``: a violated invariant that the variant expected passes; a
failure's text lists its counterexamples; an UNKNOWN case (no evidence, not required) is
skipped with its reason, never a pass.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaos.files.atomic import replace_text
from chaos.report.outcomes import RUN_CASE, Case, cases, suite_name

# Characters XML 1.0 forbids even when escaped.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def render_junit(journals: Sequence[Mapping[str, Any]]) -> str:
    """The JUnit XML document (UTF-8 text with declaration) for one or more runs."""
    root = ET.Element("testsuites", name="tradechaos")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for journal in journals:
        suite = _suite(journal)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        total_time += float(suite.get("time", "0"))
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: Path, journal: Mapping[str, Any]) -> Path:
    """Write ``render_junit([journal])`` to ``path`` (atomically: temp file, then rename)."""
    return replace_text(path, render_junit([journal]))


def _suite(journal: Mapping[str, Any]) -> ET.Element:
    name = suite_name(journal)
    duration = run_duration(journal)
    run_cases = cases(journal)
    failures = sum(1 for c in run_cases if not c.passed and c.kind != "error")
    errors = sum(1 for c in run_cases if c.kind == "error")
    skipped = sum(1 for c in run_cases if c.outcome == "UNKNOWN")
    suite = ET.Element(
        "testsuite",
        name=name,
        tests=str(len(run_cases)),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        time=f"{duration:.3f}",
        timestamp=_timestamp(journal.get("started_at")),
        hostname=socket.gethostname(),
    )
    props = ET.SubElement(suite, "properties")
    for key in ("file", "variant", "seed", "backend", "no_faults", "status", "run_dir"):
        if journal.get(key) is not None:
            ET.SubElement(props, "property", name=key, value=_clean(str(journal[key])))
    expected = ",".join(str(x) for x in journal.get("expected_violations") or [])
    ET.SubElement(props, "property", name="expected_violations", value=expected)
    out_text = _run_folder_text(journal)
    for case in run_cases:
        case_time = duration if case.name == RUN_CASE else 0.0
        testcase = _testcase(name, case, case_time, out_text)
        if journal.get("file"):
            testcase.set("file", _clean(str(journal["file"])))  # GitLab links the file
        suite.append(testcase)
    ET.SubElement(suite, "system-out").text = out_text
    ET.SubElement(suite, "system-err").text = ""
    return suite


def _testcase(classname: str, case: Case, seconds: float, out_text: str) -> ET.Element:
    element = ET.Element("testcase", classname=classname, name=case.name, time=f"{seconds:.3f}")
    if not case.passed:
        tag = "error" if case.kind == "error" else "failure"
        problem = ET.SubElement(
            element, tag, message=_clean(f"{case.name}: {case.summary}"), type=case.kind
        )
        problem.text = _clean("\n".join([case.summary, *case.details]))
    elif case.outcome == "UNKNOWN":
        ET.SubElement(element, "skipped", message=_clean(f"{case.name}: {case.summary}"))
    elif case.details:
        out_text = "\n".join([case.summary, *case.details, "", out_text])
    ET.SubElement(element, "system-out").text = _clean(out_text)
    return element


def _run_folder_text(journal: Mapping[str, Any]) -> str:
    run_dir = str(journal.get("run_dir") or "")
    if not run_dir:
        return "run folder: unknown"
    return f"run folder: {run_dir}\nreport: {Path(run_dir) / 'report.html'}"


def run_duration(journal: Mapping[str, Any]) -> float:
    """Seconds between ``started_at`` and ``ended_at`` (epoch seconds or ISO 8601); 0 when
    either is missing or unreadable."""
    start = to_epoch(journal.get("started_at"))
    end = to_epoch(journal.get("ended_at"))
    if start is None or end is None or end < start:
        return 0.0
    return end - start


def to_epoch(value: Any) -> float | None:
    """Epoch seconds from a number or an ISO 8601 string (naive means UTC); else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return None


def _timestamp(value: Any) -> str:
    epoch = to_epoch(value)
    if epoch is None:
        epoch = datetime.now(UTC).timestamp()
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("?", text)
