"""``tradechaos stack check [--stack FILE] [--option ...] [--backend ...]``: exercise every
binding of a stack once and print a table (``chaos.runner.stackcheck``).

Exit 0 when every binding holds (OK or not declared), 1 when one FAILs, 2 for bad input,
3 when the stack does not start.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from chaos.commands.stackargs import add_option_argument, option_values
from chaos.errors import EXIT_EXPECTATION_NOT_MET, EXIT_OK

EXAMPLE = """examples:
  tradechaos stack check                                # the reference stack
  tradechaos stack check --stack my-stack.yaml --option standby=true
  tradechaos stack up --stack my-stack.yaml --detach && tradechaos stack check --stack my-stack.yaml

With a stack up in --out (`tradechaos stack up`), it is checked where it runs, with the
bindings of --stack (edit them and check again, no restart); else one is started and
stopped. It funds one account, submits a tiny order that does not fill and cancels it,
reads and sets the trading mode and sets it back, checks the db_upgrade database, exports
the history and reads one record of each kind, and runs each SQL check once.
exit codes: 0 every binding holds, 1 a binding FAILs, 2 bad input, 3 the stack did not start."""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "check",
        help="exercise every binding of a stack once, before its first experiment",
        description="Start the stack (or attach to the one `stack up` keeps) and exercise\n"
        "each binding once; for a failure, say what was sent, what came back and which key\n"
        "of the stack file to fix.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--stack",
        metavar="FILE",
        default=None,
        help="the stack file (default: the running stack's, else the reference)",
    )
    add_option_argument(parser)
    parser.add_argument("--mitigations", default="all", help="guards ON: all, none or a,b")
    parser.add_argument(
        "--backend",
        choices=("process", "docker"),
        default="process",
        help="how services run when one is started (default: process)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="runs folder (default: $TRADECHAOS_OUT or ./runs)"
    )
    parser.add_argument(
        "--fresh", action="store_true", help="start a stack even when one is up in --out"
    )
    parser.add_argument("--toxiproxy-url", default=None, help="use this Toxiproxy")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from chaos.host.runs import default_out_dir
    from chaos.runner.stackcheck import CheckOptions, check_stack, render

    options = CheckOptions(
        stack_file=Path(args.stack).resolve() if args.stack else None,
        options=option_values(args.options),
        mitigations=args.mitigations,
        backend=args.backend,
        out=Path(args.out if args.out is not None else default_out_dir()).resolve(),
        fresh=args.fresh,
        toxiproxy_url=args.toxiproxy_url,
    )
    report = check_stack(options, say=(lambda _line: None) if args.json else print)
    if args.json:
        print(
            json.dumps(
                {
                    "stack": report.stack,
                    "ok": report.ok,
                    "attached": report.attached,
                    "folder": str(report.folder),
                    "results": [r.to_dict() for r in report.results],
                },
                indent=2,
            )
        )
    else:
        print(render(report))
    return EXIT_OK if report.ok else EXIT_EXPECTATION_NOT_MET
