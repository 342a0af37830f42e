"""The ``tradechaos`` command: parses, calls the library, maps outcomes to exit codes.

Each subcommand lives in ``chaos/commands/<name>.py`` and exposes
``register(subparsers) -> None``; the parser it adds sets ``handler`` to a function
``(argparse.Namespace) -> int`` returning the exit code. Handlers raise ``ChaosError``
subclasses for failures a user can cause or meet; this module turns them into one line on
stderr and the matching exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from chaos import __version__
from chaos.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, ChaosError

COMMANDS = (
    "run",
    "explore",
    "validate",
    "list",
    "check",
    "report",
    "stack",
    "fault",
    "proxy",
    "cleanup",
    "export",
    "k8s",
    "step",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"tradechaos: error: {message}\n")
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tradechaos",
        description=(
            "Chaos experiments for trading infrastructure: start a local trading stack, drive "
            "load, inject faults while a maintenance procedure runs, and check the history."
        ),
        epilog=(
            "exit codes: 0 every variant met its expectation, 1 an expectation was not met, "
            "2 bad input or usage, 3 infrastructure failure, 130 interrupted"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tradechaos {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"chaos.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"chaos.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(handler(args))
    except ChaosError as err:
        sys.stderr.write(f"tradechaos: {err}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("tradechaos: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (`tradechaos check RUN | head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
