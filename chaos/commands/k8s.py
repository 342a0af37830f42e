"""``tradechaos k8s apply|status|watch|cleanup DIR``: an exported run on a cluster."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from chaos.errors import EXIT_OK, BadInput

EXAMPLE = """examples:
  tradechaos k8s apply k8s/paradex --allow-namespace chaos-lab --allow-context staging
  tradechaos k8s apply k8s/paradex --allow-namespace chaos-lab --allow-context staging --dry-run
  tradechaos k8s status k8s/paradex
  tradechaos k8s watch k8s/paradex        # abort conditions: delete the chaos at once
  tradechaos k8s cleanup k8s/paradex

DIR is a folder written by `tradechaos export k8s`. apply refuses a kube context or a
namespace that is not allowed (--allow-context, --allow-namespace; a stack file's
`kubernetes:` section will carry them). Cleanup finds objects by the run label on the
server, so it works after tradechaos itself was killed.

exit codes: 0 done, 2 bad input or not allowed, 3 the API server failed or refused, 1
watch: the run was aborted."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "k8s",
        help="apply, watch and clean up an exported run on a Kubernetes cluster",
        description="Apply an exported run (server-side, in dependency order), show its\n"
        "status, watch its abort conditions, clean it up by its run label.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("verb", choices=["apply", "status", "watch", "cleanup"])
    parser.add_argument("dir", type=Path, metavar="DIR")
    parser.add_argument("--kubeconfig", default=None, help="default: $KUBECONFIG, ~/.kube/config")
    parser.add_argument("--context", default=None, help="the kube context (default: current)")
    parser.add_argument("--allow-namespace", action="append", default=[], metavar="NS")
    parser.add_argument("--allow-context", action="append", default=[], metavar="CONTEXT")
    parser.add_argument("--dry-run", action="store_true", help="apply: server-side dry run")
    parser.add_argument("--interval", type=float, default=1.0, help="watch: seconds between polls")
    parser.add_argument("--timeout", type=float, default=None, help="watch: give up after this")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=handle)


def read_manifest(folder: Path) -> dict[str, Any]:
    from chaos.k8s.export import MANIFEST

    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise BadInput(
            f"{folder}: not an export folder (no {MANIFEST}; run tradechaos export k8s)"
        ) from None
    except ValueError as err:
        raise BadInput(f"{path}: unreadable: {err}") from None
    if not isinstance(manifest, dict) or "run_id" not in manifest:
        raise BadInput(f"{path}: not a tradechaos export manifest")
    return manifest


def handle(args: argparse.Namespace) -> int:
    from chaos.k8s.cluster import Allow, Cluster, check_allowed, load_objects

    manifest = read_manifest(args.dir)
    namespace, run_id = str(manifest["namespace"]), str(manifest["run_id"])
    cluster = Cluster.connect(args.kubeconfig, args.context)
    if args.verb == "apply":
        objects = load_objects([args.dir / name for name in manifest["files"]])
        granted = manifest.get("allow") or {}
        allow = Allow(
            (*granted.get("namespaces", ()), *args.allow_namespace),
            (*granted.get("contexts", ()), *args.allow_context),
        )
        check_allowed(objects, cluster.context, allow)
        results = cluster.apply(objects, dry_run=args.dry_run)
        changed = [r for r in results if r.outcome != "unchanged"]
        if args.json:
            print(json.dumps([r.__dict__ for r in results], indent=2))
        else:
            for result in results:
                print(result.describe())
            what = "would change" if args.dry_run else "changed"
            print(
                f"{len(results)} objects, {len(changed)} {what} "
                f"(run {run_id}, context {cluster.context})"
            )
        return EXIT_OK
    if args.verb == "cleanup":
        deleted = cluster.cleanup(namespace, run_id)
        print("\n".join(deleted) if deleted else "nothing to clean")
        return EXIT_OK
    if args.verb == "status":
        status = run_status(cluster, namespace, run_id)
        print(json.dumps(status, indent=2) if args.json else render_status(status))
        return EXIT_OK
    return watch(cluster, manifest, args.interval, args.timeout)


def run_status(cluster: Any, namespace: str, run_id: str) -> dict[str, Any]:
    """The Workflow's phase, each chaos object and each workload's readiness."""
    objects: dict[str, list[dict[str, Any]]] = {}
    for kind, item in cluster.run_objects(namespace, run_id):
        objects.setdefault(kind, []).append(item)
    workflow = next(iter(objects.get("Workflow", [])), None)
    conditions = (workflow or {}).get("status", {}).get("conditions") or []
    return {
        "run_id": run_id,
        "namespace": namespace,
        "workflow": {
            "name": (workflow or {}).get("metadata", {}).get("name"),
            "conditions": {c.get("type"): c.get("status") for c in conditions},
            "nodes": len((workflow or {}).get("status", {}).get("nodes") or []),
        }
        if workflow
        else None,
        "chaos": [
            {"kind": kind, "name": item["metadata"]["name"], "phase": _chaos_phase(item)}
            for kind, items in objects.items()
            if kind not in ("Workflow",) and item_is_chaos(items)
            for item in items
        ],
        "workloads": {
            item["metadata"]["name"]: workload_ready(item)
            for kind in ("Deployment", "StatefulSet")
            for item in objects.get(kind, [])
        },
    }


def item_is_chaos(items: list[dict[str, Any]]) -> bool:
    return bool(items) and str(items[0].get("apiVersion", "")).startswith("chaos-mesh.org/")


def _chaos_phase(item: dict[str, Any]) -> str:
    status = item.get("status") or {}
    experiment = status.get("experiment") or {}
    return str(experiment.get("desiredPhase") or "not reconciled (no Chaos Mesh controller?)")


def workload_ready(item: dict[str, Any]) -> bool:
    wanted = int((item.get("spec") or {}).get("replicas") or 0)
    ready = int((item.get("status") or {}).get("readyReplicas") or 0)
    return ready >= wanted


def render_status(status: dict[str, Any]) -> str:
    lines = [f"run {status['run_id']} in {status['namespace']}"]
    workflow = status["workflow"]
    lines.append(
        f"workflow: {workflow['name']} {workflow['conditions'] or 'no status yet'}"
        if workflow
        else "workflow: none"
    )
    for chaos in status["chaos"]:
        lines.append(f"  {chaos['kind']}/{chaos['name']}: {chaos['phase']}")
    for name, ready in sorted(status["workloads"].items()):
        lines.append(f"  {name}: {'ready' if ready else 'NOT ready'}")
    return "\n".join(lines)


def watch(cluster: Any, manifest: dict[str, Any], interval: float, timeout: float | None) -> int:
    """Poll the run's ``health`` abort conditions (workload readiness); when one holds for
    its duration, delete the run's chaos objects at once and return 1."""
    from chaos.k8s.abort import HealthAbort

    conditions = [c for c in manifest.get("abort_when", []) if c.get("kind") == "health"]
    if not conditions:
        print("no health abort condition to watch")
        return EXIT_OK
    namespace, run_id = str(manifest["namespace"]), str(manifest["run_id"])
    watcher = HealthAbort(min(float(c["for_s"]) for c in conditions))
    deadline = None if timeout is None else time.monotonic() + timeout
    while deadline is None or time.monotonic() < deadline:
        status = run_status(cluster, namespace, run_id)
        was_armed = watcher.armed
        reason = watcher.update(status["workloads"], time.monotonic())
        if watcher.armed and not was_armed:
            print("watching: every workload is ready", flush=True)
        if reason is not None:
            deleted = cluster.delete_chaos(namespace, run_id)
            print(f"aborted: {reason}; deleted {len(deleted)} chaos objects")
            for label in deleted:
                print(f"  {label}")
            return 1
        workflow = status["workflow"]
        if workflow is None:
            print("the run's Workflow is gone; nothing to watch")
            return EXIT_OK
        time.sleep(interval)  # a poll interval, not a readiness wait
    print(f"watched until the timeout ({timeout:g}s); no abort")
    return EXIT_OK
