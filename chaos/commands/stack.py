"""``tradechaos stack up|status|down|schema|compose|import|check|history``: run a stack by
hand (game days, demos), print the stack file's JSON Schema, write a Compose file for it,
draft a stack file from a Compose file (``chaos.commands.stack_import``), exercise its
bindings (``chaos.commands.stack_check``), or export its records as a History
(``chaos.commands.stack_history``).

Thin: parses, validates, and calls ``chaos.runner.manual`` (which documents the behaviour).
``--stack FILE`` names the stack file (default: the reference stack).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chaos.commands.stackargs import (
    add_option_argument,
    add_stack_argument,
    option_values,
    stack_path,
)
from chaos.errors import BadInput, UsageError
from chaos.host.runs import CurrentStack, current_stack_path, default_out_dir, read_current_stack
from chaos.stackfile.definition import StackDefinition

EXIT_NO_STACK = 2
EXIT_UNHEALTHY = 3
DETACH_TIMEOUT_S = 120.0
DOWN_TIMEOUT_S = 60.0


def register(subparsers: Any) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = subparsers.add_parser(
        "stack",
        help="start, inspect or stop a trading stack by hand; print the stack-file schema",
        description="Run a stack by hand (game days, demos, debugging). The stack is the\n"
        "reference stack unless --stack names another stack file (docs/stack-file.md).",
        epilog="example:\n  tradechaos stack up --detach && tradechaos stack status && "
        "tradechaos stack down\n  tradechaos stack schema > stack.schema.json",
        formatter_class=raw,
    )
    sub = parser.add_subparsers(dest="stack_command", metavar="ACTION", required=True)

    up = sub.add_parser(
        "up",
        help="start the stack and keep it until Ctrl-C (or --detach)",
        description="Start every service of the stack behind its proxy links, print\n"
        "where they listen and write <out>/current-stack.json for `stack status|down` and\n"
        "`tradechaos fault`. Waits for Ctrl-C/SIGTERM, then stops everything (exit 0).",
        epilog="examples:\n  tradechaos stack up --mitigations none --seed 7\n"
        "  tradechaos stack up --detach --option standby=true --out /tmp/runs\n"
        "  tradechaos stack up --stack examples/minidex/stack.yaml --detach",
        formatter_class=raw,
    )
    up.add_argument(
        "--mitigations",
        default="all",
        help="guards that are ON: all, none, or a,b,c (default: all)",
    )
    add_stack_argument(up)
    add_option_argument(up)
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

    schema = sub.add_parser(
        "schema",
        help="print the stack file's JSON Schema (for editors)",
        description="Print the JSON Schema every stack file is validated against\n"
        "(docs/stack-file.md); what it cannot say is checked by `tradechaos validate`.",
        epilog="example:\n  tradechaos stack schema > stack.schema.json",
        formatter_class=raw,
    )
    schema.set_defaults(handler=run_schema)

    compose = sub.add_parser(
        "compose",
        help="write a docker-compose file for the stack (to run it by hand)",
        description="Write a docker-compose file that runs the stack as the docker backend\n"
        "does (host networking, every link through the proxy, fixed ports).",
        epilog="examples:\n  tradechaos stack compose -o compose/docker-compose.yml\n"
        "  tradechaos stack compose --stack examples/minidex/stack.yaml -o minidex-compose.yml",
        formatter_class=raw,
    )
    add_stack_argument(compose)
    add_option_argument(compose)
    compose.add_argument("-o", "--output", type=Path, default=None, help="file (default: stdout)")
    compose.add_argument("--mitigations", default="all", help=argparse.SUPPRESS)
    compose.set_defaults(handler=run_compose)

    from chaos.commands import stack_check, stack_history, stack_import

    stack_import.register(sub)
    stack_check.register(sub)
    stack_history.register(sub)


def _add_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=None, help="runs folder (default: $TRADECHAOS_OUT or ./runs)"
    )


def _out(args: argparse.Namespace) -> Path:
    return Path(args.out if args.out is not None else default_out_dir()).resolve()


def _definition(args: argparse.Namespace) -> tuple[StackDefinition, dict[str, object]]:
    """The stack to run (bad input refused before any process starts) and its options."""
    from chaos.stackfile import load, resolve

    stack = load(stack_path(args))
    options = option_values(args.options)
    text = args.mitigations.strip().lower()
    if text == "all":
        on = list(stack.mitigation_names)
    elif text in ("none", ""):
        on = []
    else:
        on = [m.strip() for m in text.split(",") if m.strip()]
        unknown = [m for m in on if m not in stack.mitigation_names]
        if unknown:
            known = ", ".join(stack.mitigation_names) or "none"
            raise UsageError(
                f"--mitigations: unknown mitigation {unknown[0]!r} (known: all, none, {known})"
            )
    try:
        return resolve(stack, options, on), options
    except ValueError as err:
        raise UsageError(f"--option: {err}") from None


def run_compose(args: argparse.Namespace) -> int:
    from chaos.backends.compose_gen import generate

    definition, _values = _definition(args)
    text = generate(definition, args.output)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def run_schema(_args: argparse.Namespace) -> int:
    from chaos.stackfile.schema import schema_json

    sys.stdout.write(schema_json())
    return 0


def run_up(args: argparse.Namespace) -> int:
    from chaos.runner import manual

    out = _out(args)
    manual.refuse_if_up(out)
    definition, values = _definition(args)  # bad input is refused here, before any start
    assert definition.source is not None
    options = manual.StackOptions(
        definition.source, values, args.mitigations, args.seed, args.backend, args.toxiproxy_url
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
