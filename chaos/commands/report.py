"""``tradechaos report RUN_DIR [--open]``: regenerate junit.xml, report.html and harm.csv of
a run from its journal.json and history/ (e.g. after a tradechaos upgrade, or for a copied
folder)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chaos.errors import EXIT_OK, BadInput

EXAMPLE = """example:
  tradechaos report runs/20260119-101500-paradex-2026-db-upgrade-vulnerable
  tradechaos report runs/<run> --open       # and open report.html in the browser

exit codes: 0 reports written, 2 RUN_DIR has no readable journal.json."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="regenerate junit.xml, report.html and harm.csv of a run folder",
        description=(
            "Regenerate RUN_DIR/junit.xml and RUN_DIR/report.html (and RUN_DIR/harm.csv when "
            "the journal has a harm ledger) from RUN_DIR/journal.json and RUN_DIR/history/. "
            "Missing history files give plots that say 'no data'."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (has journal.json)")
    parser.add_argument("--open", action="store_true", help="open report.html in a browser")
    parser.set_defaults(handler=handle)


def read_journal(run_dir: Path) -> dict[str, Any]:
    """``run_dir/journal.json`` as a dict; ``BadInput`` naming the problem otherwise."""
    path = run_dir / "journal.json"
    if not run_dir.is_dir():
        raise BadInput(f"{run_dir}: not a folder")
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: missing; is {run_dir} a run folder?") from None
    except (OSError, ValueError) as err:
        raise BadInput(f"{path}: unreadable ({err})") from None
    if not isinstance(journal, dict):
        raise BadInput(f"{path}: not a JSON object")
    return journal


def handle(args: argparse.Namespace) -> int:
    from chaos.report import HTML_FILE, write_reports
    from chaos.report.terminal import render_summary

    run_dir = Path(args.run_dir)
    journal = read_journal(run_dir)
    written = write_reports(run_dir, journal)
    shown = {**journal, "run_dir": str(run_dir)}
    sys.stdout.write(render_summary([shown]))
    if args.open:
        import webbrowser

        if not webbrowser.open(written[HTML_FILE].resolve().as_uri()):
            sys.stderr.write(f"tradechaos: no browser to open {written[HTML_FILE]}\n")
    return EXIT_OK
