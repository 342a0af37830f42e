"""``tradechaos export k8s FILE...``: experiments compiled to Kubernetes YAML (Chaos Mesh)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chaos.errors import EXIT_OK, BadInput

EXAMPLE = """examples:
  tradechaos export k8s experiments/incidents/paradex-2026-db-upgrade.yaml \\
      --variant vulnerable --namespace chaos-lab --out k8s/paradex
  tradechaos export k8s experiments/incidents/*.yaml --namespace chaos-lab --out k8s/

One (file, variant) writes into DIR itself; several write DIR/<experiment>-<variant>/ each.
Every step is printed with the Chaos Mesh resource (or Task) it became; DIR/README.md says
how to apply, watch, collect the history, check it and clean up (docs/kubernetes.md).

exit codes: 0 exported, 2 bad input (a step Chaos Mesh cannot express is named file:line)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="compile experiments for another platform (k8s: Chaos Mesh + manifests)",
        description="Compile experiments into Kubernetes YAML: the stack (Deployments,\n"
        "StatefulSets, Services), the method as a Chaos Mesh Workflow, the load as a\n"
        "Locust master and workers.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("platform", choices=["k8s"], help="k8s: Kubernetes with Chaos Mesh")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--namespace", required=True, help="the namespace the objects go to")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument("--variant", default=None, help="one variant (default: every variant)")
    parser.add_argument(
        "--stack", default="reference", help="the stack (only 'reference' until stack files)"
    )
    parser.add_argument("--run-id", default=None, help="the run label (one file and variant)")
    parser.add_argument("--image", default=None, help="the stack image (tradechaos/stack:latest)")
    parser.add_argument(
        "--load-workers",
        type=int,
        default=None,
        help="Locust worker replicas (default: the experiment's load.workers, at least 1; 2 "
        "when it has none)",
    )
    parser.add_argument("--cluster-domain", default="cluster.local")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    import time

    from chaos.experiment.loader import load
    from chaos.k8s.export import ExportOptions, export_variant, table

    if args.stack != "reference":
        raise BadInput(f"--stack {args.stack!r}: only the reference stack until stack files land")
    if args.load_workers is not None and args.load_workers < 1:
        raise BadInput("--load-workers must be at least 1")
    experiments = [load(path) for path in args.files]
    pairs = []
    for experiment in experiments:
        if args.variant is not None and args.variant not in experiment.variant_names:
            known = ", ".join(experiment.variant_names)
            raise BadInput(f"{experiment.path}: no variant {args.variant!r} (known: {known})")
        for variant in experiment.variants:
            if args.variant in (None, variant.name):
                pairs.append((experiment, variant))
    if args.run_id and len(pairs) > 1:
        raise BadInput("--run-id names one run: give one FILE and --variant")
    options = ExportOptions(
        namespace=args.namespace,
        run_id=args.run_id,
        image=args.image,
        load_workers=args.load_workers,
        cluster_domain=args.cluster_domain,
    )
    now = time.time()
    results = []
    for experiment, variant in pairs:
        folder = args.out if len(pairs) == 1 else args.out / f"{experiment.name}-{variant.name}"
        results.append(export_variant(experiment, variant, options, folder, now))
    for result in results:
        print(
            f"{result.experiment} / {result.variant} -> {result.out_dir} "
            f"(run {result.run_id}, {result.objects} objects)"
        )
        print(table(result))
        print()
    return EXIT_OK
