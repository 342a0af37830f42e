"""``tradechaos stack up|status|down``: run the reference stack by hand (game days, demos).

Thin: parses, validates, and calls ``chaos.runner.manual`` (which documents the behaviour).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chaos.errors import BadInput, StackError, UsageError
from chaos.runner.state import CurrentStack, current_stack_path, default_out_dir, read_current_stack
from chaos.stackdef import StackDefinition

EXIT_NO_STACK = 2
EXIT_UNHEALTHY = 3
DETACH_TIMEOUT_S = 120.0
DOWN_TIMEOUT_S = 60.0


def register(subparsers: Any) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = subparsers.add_parser(
        "stack",
        help="start, inspect or stop the reference trading stack by hand",
        description="Run the reference trading stack by hand (game days, demos, debugging).",
        epilog="example:\n  tradechaos stack up --detach && tradechaos stack status && "
        "tradechaos stack down",
        formatter_class=raw,
    )
    sub = parser.add_subparsers(dest="stack_command", metavar="ACTION", required=True)

    up = sub.add_parser(
        "up",
        help="start the stack and keep it until Ctrl-C (or --detach)",
        description="Start every service of the reference stack behind its proxy links, print\n"
        "where they listen and write <out>/current-stack.json for `stack status|down` and\n"
        "`tradechaos fault`. Waits for Ctrl-C/SIGTERM, then stops everything (exit 0).",
        epilog="examples:\n  tradechaos stack up --mitigations none --seed 7\n"
        "  tradechaos stack up --detach --standby --out /tmp/runs",
        formatter_class=raw,
    )
    up.add_argument(
        "--mitigations",
        default="all",
        help="guards that are ON: all, none, or a,b,c (default: all)",
    )
    up.add_argument(
        "--standby", action="store_true", help="also run the standby sequencer (site b)"
    )
    up.add_argument("--seed", type=int, default=1, help="seed of the price path (default 1)")
    up.add_argument(
        "--backend",
        choices=("process", "docker"),
        default="process",
        help="how services run (default: process)",
    )
    up.add_argument(
        "--toxiproxy-url", default=None, help="use this Toxiproxy instead of the embedded proxy"
    )
    up.add_argument(
        "--detach",
        action="store_true",
        help="leave the stack running under a supervisor process and return",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=DETACH_TIMEOUT_S,
        help=f"--detach: seconds to wait for a healthy stack (default {DETACH_TIMEOUT_S:g})",
    )
    _add_out(up)
    up.set_defaults(handler=run_up)

    status = sub.add_parser(
        "status",
        help="show every service's pid, endpoint and health",
        description="Probe every service of the stack started by `stack up`.\n"
        "Exit 0 when all are healthy, 3 when one is not, 2 when no stack is up.",
        epilog="example:\n  tradechaos stack status --json",
        formatter_class=raw,
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_out(status)
    status.set_defaults(handler=run_status)

    down = sub.add_parser(
        "down",
        help="stop the stack and leave nothing behind",
        description="Stop the stack started by `stack up --detach` (or another shell's\n"
        "`stack up`): its processes, proxy and temporary data; logs are kept.",
        epilog="example:\n  tradechaos stack down --out /tmp/runs",
        formatter_class=raw,
    )
    down.add_argument(
        "--timeout",
        type=float,
        default=DOWN_TIMEOUT_S,
        help=f"seconds to wait for a clean stop before killing (default {DOWN_TIMEOUT_S:g})",
    )
    _add_out(down)
    down.set_defaults(handler=run_down)


def _add_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=None, help="runs folder (default: $TRADECHAOS_OUT or ./runs)"
    )


def _out(args: argparse.Namespace) -> Path:
    return Path(args.out if args.out is not None else default_out_dir()).resolve()


def _definition(args: argparse.Namespace) -> StackDefinition:
    try:
        from chaos.stack.definition import parse_mitigations, reference_stack
    except ModuleNotFoundError as err:
        raise StackError(f"the reference stack is not available ({err})") from None
    try:
        parse_mitigations(args.mitigations)
    except ValueError as err:
        raise UsageError(f"--mitigations: {err}") from None
    return reference_stack(standby=args.standby)


def run_up(args: argparse.Namespace) -> int:
    from chaos.runner import manual

    out = _out(args)
    manual.refuse_if_up(out)
    definition = _definition(args)  # bad input is refused here, before any process starts
    options = manual.StackOptions(
        args.mitigations, args.standby, args.seed, args.backend, args.toxiproxy_url
    )
    if not args.detach:
        manual.keep_up(definition, out, options, say=lambda line: print(line, flush=True))
        return 0
    stack, log_path = manual.start_detached(out, options, args.timeout, DOWN_TIMEOUT_S)
    print(manual.render_table(stack, definition))
    print(
        f"stack supervisor pid {stack.pid} (log {log_path}); "
        f"stop with `tradechaos stack down --out {out}`"
    )
    return 0


def _current_or_none(out: Path) -> CurrentStack | None:
    """The live stack of ``out``, or None after saying on stderr why there is none."""
    try:
        current = read_current_stack(out)
    except ValueError as err:
        raise BadInput(str(err)) from None
    if current is None:
        sys.stderr.write(
            f"tradechaos: no stack is up in {out} (no {current_stack_path(out).name}); "
            "start one with `tradechaos stack up --detach`\n"
        )
        return None
    if not current.owner_alive():
        sys.stderr.write(
            f"tradechaos: no stack is up in {out}: its owner (pid {current.pid}) is gone; "
            "`tradechaos stack down` or `tradechaos cleanup` sweeps what it left\n"
        )
        return None
    return current


def run_status(args: argparse.Namespace) -> int:
    from chaos.runner import manual

    current = _current_or_none(_out(args))
    if current is None:
        return EXIT_NO_STACK
    health = {name: manual.probe(entry) for name, entry in current.services.items()}
    healthy = all(ok for ok, _ in health.values())
    if args.json:
        report = current.to_json()
        report["healthy"] = healthy
        for name, (ok, text) in health.items():
            report["services"][name]["healthy"] = ok
            report["services"][name]["health"] = text
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(manual.render_table(current, None, {n: text for n, (_, text) in health.items()}))
    return 0 if healthy else EXIT_UNHEALTHY


def run_down(args: argparse.Namespace) -> int:
    from chaos.runner import manual

    out = _out(args)
    try:
        current = read_current_stack(out)
    except ValueError as err:
        raise BadInput(str(err)) from None
    if current is None:
        print(f"no stack is up in {out}; nothing to stop")
        return 0
    for line in manual.take_down(current, out, args.timeout):
        print(line)
    return 0
