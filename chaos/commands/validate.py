"""``tradechaos validate FILE...``: load experiment files without running anything."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from chaos.errors import EXIT_BAD_INPUT, EXIT_OK
from chaos.experiment.loader import problems

EXAMPLE = """example:
  tradechaos validate experiments/incidents/*.yaml
  tradechaos validate --json experiments/

Prints one line per problem, FILE:LINE: FIELD: problem (allowed: ...).
exit codes: 0 every file is valid, 2 some file is not."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check experiment files without running them",
        description="Check experiment files (or every *.yaml under a folder) without running.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="experiment file or folder")
    parser.add_argument("--json", action="store_true", help="print a JSON list of results")
    parser.set_defaults(handler=handle)


def experiment_files(paths: list[str]) -> list[str]:
    """Files as given; a folder stands for every *.yaml / *.yml below it (sorted)."""
    result: list[str] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
            result.extend(str(p) for p in found if p.is_file())
        else:
            result.append(given)
    return result


def handle(args: argparse.Namespace) -> int:
    results: list[dict[str, Any]] = []
    for path in experiment_files(args.files):
        found = problems(path)
        results.append(
            {
                "file": path,
                "ok": not found,
                "problems": [
                    {"line": p.line, "field": p.field, "problem": p.problem, "message": str(p)}
                    for p in found
                ],
            }
        )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            if result["ok"]:
                print(f"{result['file']}: ok")
            for problem in result["problems"]:
                print(problem["message"])
    if not results:
        print("no experiment files found")
        return EXIT_BAD_INPUT
    return EXIT_OK if all(r["ok"] for r in results) else EXIT_BAD_INPUT
