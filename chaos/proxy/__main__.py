"""``python -m chaos.proxy --host H --port P [--port-file PATH] [--allow-remote]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from chaos.errors import ChaosError


def add_arguments(parser: argparse.ArgumentParser, *, default_port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=default_port, help=f"API port, 0 = any (default {default_port})"
    )
    parser.add_argument(
        "--port-file",
        type=Path,
        default=None,
        help="once listening, write the bound API port to this file (atomically)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow upstreams and listen addresses that are not loopback",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.proxy", description="Toxiproxy-compatible proxy server."
    )
    add_arguments(parser, default_port=0)
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a port number (0-65535)")
    from chaos.proxy.daemon import run

    try:
        return run(args.host, args.port, allow_remote=args.allow_remote, port_file=args.port_file)
    except ChaosError as err:
        sys.stderr.write(f"python -m chaos.proxy: {err}\n")
        return err.exit_code
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
