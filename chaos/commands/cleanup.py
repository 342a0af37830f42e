"""``tradechaos cleanup``: sweep what crashed runs left behind (processes, proxies, data dirs,
containers). Logs, history, journals and reports are never touched."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from chaos.host.runs import default_out_dir


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cleanup",
        help="remove what crashed runs left behind",
        description="Find runs whose state.json says running but whose runner is gone, kill\n"
        "their process groups (after checking each process's identity), delete their\n"
        "proxies (or kill the embedded proxy), remove their temporary data dirs and docker\n"
        "containers, and mark them cleaned. Logs, history/, journal.json and reports stay.",
        epilog="example:\n  tradechaos cleanup --out /tmp/runs --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="runs folder (default: $TRADECHAOS_OUT or ./runs)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object instead")
    k8s = parser.add_argument_group("Kubernetes (exported runs; needs tradechaos[k8s])")
    k8s.add_argument(
        "--kubernetes",
        action="store_true",
        help="instead: delete every object labelled tradechaos.io/run, chaos objects first",
    )
    k8s.add_argument("--namespace", default=None, help="only this namespace (default: all)")
    k8s.add_argument("--run-id", default=None, help="only this run (default: every run)")
    k8s.add_argument("--kubeconfig", default=None)
    k8s.add_argument("--context", default=None)
    parser.set_defaults(handler=run_cleanup)


def run_cleanup(args: argparse.Namespace) -> int:
    if args.kubernetes:
        return _cleanup_kubernetes(args)
    from chaos.runner.cleanup import sweep_dead_runs, sweep_stale_stack_file

    out = Path(args.out if args.out is not None else default_out_dir())
    removed = sweep_dead_runs(out)
    removed += sweep_stale_stack_file(out)
    if args.json:
        print(json.dumps({"out": str(out), "removed": removed}, indent=2))
    elif removed:
        print("\n".join(removed))
    else:
        print("nothing to clean")
    return 0


def _cleanup_kubernetes(args: argparse.Namespace) -> int:
    from chaos.k8s.cluster import Cluster

    cluster = Cluster.connect(args.kubeconfig, args.context)
    removed = cluster.cleanup(args.namespace, args.run_id)
    if args.json:
        print(json.dumps({"context": cluster.context, "removed": removed}, indent=2))
    else:
        print("\n".join(removed) if removed else "nothing to clean")
    return 0
