"""Command-line pieces shared by the commands that touch a stack: ``--stack FILE``,
``--option NAME=VALUE`` and ``--load-workers N``."""

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


def _workers(text: str) -> int:
    from chaos.experiment.partition import MAX_WORKERS

    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 0 to {MAX_WORKERS} (0: one load process), got {text!r}"
        )
    return value


def add_load_workers_argument(parser: argparse.ArgumentParser) -> None:
    """``--load-workers N``: the load as a Locust master and N workers (0: one process),
    instead of the experiment's ``load.workers``."""
    parser.add_argument(
        "--load-workers",
        type=_workers,
        default=None,
        metavar="N",
        help="run the load as a Locust master and N worker processes (0: one process; "
        "default: the experiment's load.workers)",
    )


def check_load_workers(experiment: Any, workers: int | None) -> None:
    """``UsageError`` when ``--load-workers`` cannot give each worker accounts of its own
    (the experiment's ``load.accounts``, else its stack's traders)."""
    if not workers:
        return
    from chaos.experiment.partition import DEFAULT_TRADERS, accounts_problem
    from chaos.stackfile import load

    accounts = experiment.load.accounts
    if accounts is None:
        binding = load(experiment.stack.path).bindings.accounts
        accounts = len(binding.traders) if binding is not None else len(DEFAULT_TRADERS)
    problem = accounts_problem(accounts, workers)
    if problem is not None:
        raise UsageError(f"--load-workers {workers} for {experiment.path}: {problem}")
