"""``tradechaos stack history RUN_DIR [--stack FILE] [--option ...] [--at NAME=HOST:PORT]``:
export a running stack's records into ``RUN_DIR/history`` through its history binding.

Where the stack is: ``--at`` gives the address of each service or link the binding reads
(a port-forward of a Kubernetes Service, a stack on another machine's tunnel); without
``--at`` the stack ``tradechaos stack up`` keeps in ``--out`` is read where it runs. Every
address must be a loopback one (tunnel anything else). Then ``tradechaos check RUN_DIR``
judges the history, given the run's ``run.json`` (a Kubernetes export writes it).

Exit 0 when every source of the binding was written, 1 when some could not be read (each
named), 2 for bad input (an unknown name, an address missing or malformed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaos.commands.stackargs import add_option_argument, option_values
from chaos.errors import EXIT_EXPECTATION_NOT_MET, EXIT_OK, UsageError
from chaos.stackfile.definition import StackDefinition

EXAMPLE = """examples:
  tradechaos stack history runs/k8s-1 --stack my-stack.yaml \\
      --at sequencer-db=127.0.0.1:15432 --at chain=127.0.0.1:18080
  tradechaos stack up --detach && tradechaos stack history runs/by-hand

The addresses to give are those of the names the binding reads (bindings.history: each
sql source's database, each http source's service, each settle reading's); a name left
out is named in the error. exit codes: 0 written, 1 a source could not be read, 2 bad input."""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "history",
        help="export a running stack's records as a History (its history binding)",
        description="Read the stack's records through its history binding and write\n"
        "RUN_DIR/history/*.jsonl, as a run does at its end.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run folder to write")
    parser.add_argument(
        "--stack",
        metavar="FILE",
        default=None,
        help="the stack file (default: the running stack's, else the reference stack)",
    )
    add_option_argument(parser)
    parser.add_argument(
        "--at",
        dest="addresses",
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help="where service or link NAME listens (repeatable); without it: the stack up",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="runs folder of `stack up` (without --at)"
    )
    parser.set_defaults(handler=handle)


class AddressBook:
    """A locator (``chaos.bindings.places.Locator``) of the addresses given on the line."""

    def __init__(self, addresses: Mapping[str, str]) -> None:
        self.addresses = dict(addresses)

    def endpoint(self, service: str) -> str:
        return self._at(service)

    def link_endpoint(self, link: str) -> str:
        return self._at(link)

    def _at(self, name: str) -> str:
        try:
            return self.addresses[name]
        except KeyError:
            raise UsageError(f"--at: no address given for {name!r}") from None


def parse_addresses(items: list[str], definition: StackDefinition) -> dict[str, str]:
    """``NAME=HOST:PORT`` items, each a service or link of the stack at a loopback address."""
    from chaos.proxy.addresses import AddressError, is_loopback, split

    known = (*definition.service_names, *definition.link_names)
    found: dict[str, str] = {}
    for item in items:
        name, sep, address = item.partition("=")
        if not sep or not name or not address:
            raise UsageError(f"--at {item!r}: expected NAME=HOST:PORT")
        if name not in known:
            raise UsageError(
                f"--at {name}: not a service or link of {definition.name} "
                f"(known: {', '.join(known)})"
            )
        try:
            host, port = split(address)
        except AddressError as err:
            raise UsageError(f"--at {name}: {err}") from None
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"--at {name}: {port!r} is not a port number")
        if not is_loopback(host):
            raise UsageError(
                f"--at {name}: {host} is not a loopback address (tunnel it, e.g. "
                "kubectl port-forward, and give 127.0.0.1)"
            )
        found[name] = address
    return found


def handle(args: argparse.Namespace) -> int:
    from chaos.bindings.history import export, provided, reads
    from chaos.bindings.places import Places
    from chaos.host.runs import default_out_dir, read_current_stack
    from chaos.runner.stackcheck import resolve_stack
    from chaos.stackfile import reference_stack_path

    options = option_values(args.options)
    locator: Any
    if args.addresses:
        path = Path(args.stack).resolve() if args.stack else reference_stack_path()
        definition = resolve_stack(path, options, "all")
        addresses = parse_addresses(args.addresses, definition)
        missing = {
            n: k for n, k in reads(definition.bindings.history).items() if n not in addresses
        }
        if missing:
            name, key = next(iter(missing.items()))
            raise UsageError(
                f"--at: the history binding reads {', '.join(missing)} ({key}); "
                f"give --at {name}=HOST:PORT"
            )
        locator = AddressBook(addresses)
    else:
        from chaos.backends.attached import AttachedBackend

        out = Path(args.out if args.out is not None else default_out_dir()).resolve()
        current = read_current_stack(out)
        if current is None:
            raise UsageError(
                f"no stack is up in {out}: give --at NAME=HOST:PORT for what the history "
                "binding reads, or start one with `tradechaos stack up`"
            )
        path = Path(args.stack or current.stack_file or reference_stack_path()).resolve()
        definition = resolve_stack(path, current.options or options, current.mitigations)
        locator = AttachedBackend(out / "current-stack.json", definition)
    wanted = provided(definition.bindings.history)
    if not wanted:
        raise UsageError(f"{path}: the stack has no bindings.history; nothing to export")
    run_dir = args.run_dir.resolve()
    problems: list[str] = []
    written = export(definition, run_dir, Places(definition, locator), say=problems.append)
    for line in problems:
        print(line, file=sys.stderr)
    history = run_dir / "history"
    for name in written:
        print(f"{name}: {_lines(history, name)} records", file=sys.stderr)
    lacking = [name for name in wanted if name not in written]
    if lacking:
        print(f"not exported: {', '.join(lacking)}", file=sys.stderr)
        return EXIT_EXPECTATION_NOT_MET
    print(f"wrote {history}", file=sys.stderr)
    return EXIT_OK


def _lines(history: Path, name: str) -> int:
    from chaos.history.reader import SOURCES

    try:
        with (history / SOURCES[name]).open("rb") as handle:
            return sum(1 for _ in handle)
    except OSError:
        return 0
