"""``tradechaos proxy [--host 127.0.0.1] [--port 8474]``: run the Toxiproxy-compatible proxy."""

from __future__ import annotations

import argparse
from typing import Any

from chaos.errors import UsageError
from chaos.proxy.__main__ import add_arguments


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "proxy",
        help="run the embedded Toxiproxy-compatible proxy server",
        description=(
            "Run the embedded proxy: Toxiproxy 2.x HTTP API (toxiproxy clients work with it), "
            "with the toxics latency, bandwidth, slow_close, timeout, reset_peer, slicer and "
            "limit_data. Stops cleanly on SIGTERM or Ctrl-C."
        ),
    )
    add_arguments(parser, default_port=8474)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a port number (0-65535)")
    from chaos.proxy.daemon import run

    try:
        return run(args.host, args.port, allow_remote=args.allow_remote, port_file=args.port_file)
    except KeyboardInterrupt:
        return 0
