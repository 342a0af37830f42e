"""``tradechaos list [DIR]``: the experiments under a folder, one line each."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from chaos.commands.stackargs import add_stack_argument
from chaos.commands.validate import experiment_files, file_kind
from chaos.errors import EXIT_BAD_INPUT, EXIT_OK, InvalidFile, UsageError
from chaos.experiment.loader import load
from chaos.experiment.model import Experiment

EXAMPLE = """example:
  tradechaos list                    # experiments/ (incidents and game-days)
  tradechaos list experiments/incidents --json

exit codes: 0 every file loaded, 2 a file is invalid (its first problem is shown)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "list",
        help="list experiments with their incident, variants and invariants",
        description="List the experiment files under DIR (default: experiments/).",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("directory", nargs="?", default="experiments", metavar="DIR")
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    add_stack_argument(parser)
    parser.set_defaults(handler=handle)


def summary(experiment: Experiment) -> dict[str, Any]:
    incident = experiment.incident
    return {
        "file": experiment.path,
        "name": experiment.name,
        "description": experiment.description,
        "incident": None
        if incident is None
        else {"date": incident.date, "operator": incident.operator},
        "variants": [
            {"name": v.name, "expect_violated": list(v.expect_violated)}
            for v in experiment.variants
        ],
        "invariants": list(experiment.invariants),
        "duration_s": experiment.duration_s,
        "seed": experiment.seed,
        "stack": str(experiment.stack.path),
    }


def handle(args: argparse.Namespace) -> int:
    if not Path(args.directory).is_dir():
        raise UsageError(f"{args.directory}: not a folder")
    rows: list[dict[str, Any]] = []
    for path in experiment_files([args.directory]):
        if file_kind(path) != "experiment":
            continue
        try:
            rows.append(summary(load(path, args.stack)))
        except InvalidFile as err:
            rows.append({"file": path, "error": str(err)})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(_line(row))
        if not rows:
            print(f"no experiment files under {args.directory}")
    return EXIT_BAD_INPUT if any("error" in r for r in rows) else EXIT_OK


def _line(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"INVALID  {row['error']}"
    incident = row["incident"]
    where = f"{incident['operator'] or '?'} {incident['date'] or ''}".strip() if incident else "-"
    variants = ", ".join(v["name"] for v in row["variants"])
    invariants = ", ".join(row["invariants"]) or "-"
    return (
        f"{row['name']}  [{where}]  variants: {variants}  invariants: {invariants}  ({row['file']})"
    )
