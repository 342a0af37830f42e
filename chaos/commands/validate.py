"""``tradechaos validate FILE...``: load experiment and stack files without running anything.

A file whose top level has ``services`` and no ``method`` is a stack file
(docs/stack-file.md); any other YAML file is an experiment, validated against its stack
(``--stack`` overrides it). In a folder, YAML files that are neither (a compose file, say)
are skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from chaos.commands.stackargs import add_stack_argument
from chaos.errors import EXIT_BAD_INPUT, EXIT_OK, InvalidFile
from chaos.experiment.loader import problems

EXAMPLE = """example:
  tradechaos validate experiments/incidents/*.yaml
  tradechaos validate --json experiments/
  tradechaos validate examples/minidex/stack.yaml examples/minidex/experiments/*.yaml

Prints one line per problem, FILE:LINE: FIELD: problem (allowed: ...).
exit codes: 0 every file is valid, 2 some file is not."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check experiment and stack files without running them",
        description="Check experiment and stack files (or every *.yaml under a folder) "
        "without running anything.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="experiment file or folder")
    parser.add_argument("--json", action="store_true", help="print a JSON list of results")
    add_stack_argument(parser)
    parser.set_defaults(handler=handle)


def file_kind(path: str) -> str:
    """``stack``, ``experiment`` or ``other`` (a YAML file of someone else's), by its keys."""
    import re

    try:
        text = Path(path).read_text(errors="replace")[:200_000]
    except OSError:
        return "experiment"  # the loader reports why it cannot be read
    keys = set(re.findall(r"^([A-Za-z_]+)\s*:", text, re.MULTILINE))
    if "services" in keys and "method" not in keys:
        return "stack" if "name" in keys and "version" not in keys else "other"
    if keys & {"method", "variants", "invariants", "duration"} or not keys:
        return "experiment"
    return "other"


def problems_of(path: str, stack: str | None) -> tuple[str, list[InvalidFile]]:
    kind = file_kind(path)
    if kind == "stack":
        from chaos.stackfile import problems as stack_problems

        return kind, list(stack_problems(path))
    return kind, problems(path, stack)


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
    given = set(args.files)
    for path in experiment_files(args.files):
        kind, found = problems_of(path, args.stack)
        if kind == "other" and path not in given:
            continue  # a folder's YAML files that are not ours
        if kind == "other":
            kind, found = "experiment", problems(path, args.stack)
        results.append(
            {
                "file": path,
                "kind": kind,
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
                print(f"{result['file']}: ok ({result['kind']})")
            for problem in result["problems"]:
                print(problem["message"])
    if not results:
        print("no experiment or stack files found")
        return EXIT_BAD_INPUT
    return EXIT_OK if all(r["ok"] for r in results) else EXIT_BAD_INPUT
