"""``tradechaos stack import docker-compose.yml [-o stack.yaml] [--venues NAME]``: a
stack-file draft from a Compose project (``chaos.stackfile.compose_import``).

Thin: parses, imports, checks the draft with the stack-file loader, writes it. Exit 0 with
the draft written; 2 for an unreadable Compose file (one sentence naming the file, line and
key), a ``--venues`` name the file lacks, or an output file that exists (unless --force).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chaos.errors import EXIT_OK, BadInput, UsageError

EXAMPLE = """examples:
  tradechaos stack import docker-compose.yml -o stack.yaml
  tradechaos stack import docker-compose.yml --venues feeds -o stack.yaml
  tradechaos stack import compose/docker-compose.yml        # the draft on stdout

The draft validates as written: what cannot be inferred (the bindings, markets, mitigations,
values the import could not place) is a # TODO comment. Then: edit the bindings,
`tradechaos validate stack.yaml`, `tradechaos stack check --stack stack.yaml`."""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "import",
        help="draft a stack file from a docker-compose file",
        description="Read a Compose file and write a commented stack-file draft: every\n"
        "service, health from its healthcheck, links from the addresses services are\n"
        "given, PostgreSQL as the builtin postgres, a # TODO for each binding.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("compose_file", metavar="COMPOSE_FILE", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=None, help="file (default: stdout)")
    parser.add_argument(
        "--venues",
        action="append",
        default=[],
        metavar="SERVICE",
        help="a service that stands in for real exchanges' price APIs: replace it with "
        "tradechaos's builtin venues (repeatable)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from chaos.stackfile.compose_import import check_draft, import_compose

    output: Path | None = args.output
    if output is not None and output.exists() and not args.force:
        raise UsageError(f"-o {output}: the file exists (use --force to replace it)")
    try:
        draft = import_compose(args.compose_file, tuple(args.venues), output)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
    where = (output.parent if output is not None else Path.cwd()).resolve()
    try:
        found = check_draft(draft.text, where)
    except OSError as err:  # the folder is not writable: the draft is still written
        found = []
        print(f"tradechaos: could not check the draft in {where}: {err.strerror}",
              file=sys.stderr)  # fmt: skip
    if found:  # a bug of the importer, or a build context the Compose file names but lacks
        raise BadInput(f"{args.compose_file}: the draft does not validate: {found[0]}")
    if output is None:
        sys.stdout.write(draft.text)
    else:
        output.write_text(draft.text)
    target = output if output is not None else "stdout"
    print(f"wrote {target}: {len(draft.services)} services, {len(draft.links)} links, "
          f"{draft.todos} TODO comments to review", file=sys.stderr)  # fmt: skip
    return EXIT_OK
