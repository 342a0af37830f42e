"""``tradechaos check RUN_DIR``: run the checkers again on a recorded run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from chaos.errors import EXIT_EXPECTATION_NOT_MET, EXIT_OK, UsageError

EXAMPLE = """example:
  tradechaos check runs/20260119-101500-paradex-2026-db-upgrade-vulnerable
  tradechaos check RUN_DIR --json

exit codes: 0 the findings match the expectation recorded for the run (the rule `run`
applies: exactly the expected violations; an invariant with nothing to check is unknown,
which fails only if the run expected a violation there or required evidence for it);
1 otherwise; 2 not a run folder."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="re-run the checkers on a recorded run",
        description="Re-run the invariant checkers on the history of a recorded run.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    parser.set_defaults(handler=handle)


def _recorded(run_dir: Path) -> tuple[list[str], list[str], list[str], dict[str, Any]]:
    """Invariants, expected violations, required evidence and checker params recorded for
    the run."""
    run_json = run_dir / "history" / "run.json"
    if not run_json.is_file():
        raise UsageError(f"{run_dir}: not a run folder (no history/run.json)")
    try:
        run = json.loads(run_json.read_text(encoding="utf-8"))
        journal_path = run_dir / "journal.json"
        journal = json.loads(journal_path.read_text()) if journal_path.is_file() else {}
    except (OSError, ValueError) as err:
        raise UsageError(f"{run_dir}: unreadable run record: {err}") from None
    invariants = run.get("invariants") or [
        v["invariant"] for v in journal.get("verdicts", []) if isinstance(v, dict)
    ]
    expected = run.get("expected_violations", journal.get("expected_violations", []))
    required = run.get("require_evidence", journal.get("require_evidence")) or []
    if not invariants:
        from chaos.checkers import REGISTRY

        invariants = list(REGISTRY)
    return (
        [str(i) for i in invariants],
        [str(e) for e in expected],
        [str(r) for r in required],
        dict(run.get("params") or {}),
    )


def handle(args: argparse.Namespace) -> int:
    from chaos.runner.runner import judge
    from chaos.runner.wiring import check

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run folder")
    invariants, expected, required, params = _recorded(run_dir)
    verdicts = check(run_dir, tuple(invariants), params)
    all_hold = all(v.get("valid") is True or v.get("no_evidence") is True for v in verdicts)
    matches = judge(verdicts, invariants, expected, required)
    unknown = [str(v.get("invariant")) for v in verdicts if v.get("valid") not in (True, False)]
    if all_hold and matches:
        summary = "every invariant holds" + (
            f" or had nothing to check (unknown: {', '.join(unknown)})" if unknown else ""
        )
    elif all_hold:
        summary = (
            f"every invariant holds, but the run expected violations of {', '.join(expected)} "
            "(the experiment no longer catches what it should)"
        )
    elif matches:
        summary = f"matches the recorded expectation (violated: {', '.join(expected)})"
    else:
        summary = "does not match the recorded expectation " + (
            f"(expected violated: {', '.join(expected)})" if expected else "(none expected)"
        )
    ok = matches  # the rule `tradechaos run` applies: exactly the expected violations
    if args.json:
        print(
            json.dumps(
                {
                    "run_dir": str(run_dir),
                    "ok": ok,
                    "summary": summary,
                    "expected_violations": expected,
                    "require_evidence": required,
                    "verdicts": verdicts,
                },
                indent=2,
            )
        )
    else:
        for verdict in verdicts:
            print(_line(verdict, expected))
        print(f"{run_dir}: {summary}")
    return EXIT_OK if ok else EXIT_EXPECTATION_NOT_MET


def _line(verdict: dict[str, Any], expected: list[str]) -> str:
    name = str(verdict.get("invariant"))
    valid = verdict.get("valid")
    word = "held" if valid is True else "VIOLATED" if valid is False else "unknown"
    note = " (expected)" if name in expected else ""
    message = verdict.get("message") or ""
    unit = f" {verdict['unit']}" if verdict.get("unit") else ""
    counts = f"violated {verdict.get('count', 0)} of {verdict.get('checked', 0)}{unit}"
    return f"{word:<9} {name}{note}: {counts}. {message}".rstrip()
