"""Command-line pieces shared by the commands that touch a stack: ``--stack FILE`` and
``--option NAME=VALUE``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chaos.errors import UsageError


def add_stack_argument(parser: argparse.ArgumentParser) -> None:
    """``--stack FILE``: the stack file to use instead of the experiment's own."""
    parser.add_argument(
        "--stack",
        metavar="FILE",
        default=None,
        help="the stack file (default: the experiment's stack.file, else the reference stack)",
    )


def add_option_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--option",
        dest="options",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a stack option (repeatable), e.g. --option standby=true",
    )


def stack_path(args: argparse.Namespace) -> Path:
    """The ``--stack`` file, or the reference stack's."""
    from chaos.stackfile import reference_stack_path

    return Path(args.stack).resolve() if getattr(args, "stack", None) else reference_stack_path()


def option_values(assignments: list[str]) -> dict[str, Any]:
    """``--option NAME=VALUE`` items as a mapping (YAML values: true, 3, 2.5, text)."""
    import yaml

    values: dict[str, Any] = {}
    for item in assignments:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--option {item!r}: expected NAME=VALUE")
        try:
            values[name] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            raise UsageError(f"--option {name}: unreadable value {raw!r}") from None
    return values
