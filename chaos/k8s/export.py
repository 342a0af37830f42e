"""``tradechaos export k8s``: an experiment variant -> a folder of Kubernetes YAML.

Contract
- ``export_variant(experiment, variant, options, out_dir)`` writes into ``out_dir``:
  ``00-run.yaml`` (the run ConfigMap; RBAC for ``tradechaos step`` when a step needs the
  API), ``10-stack.yaml`` (Services and workloads), ``20-load.yaml`` (Locust master and
  workers), ``30-workflow.yaml`` (the Chaos Mesh Workflow), ``README.md`` (how to apply,
  watch, collect, check and clean up) and ``tradechaos-k8s.json`` (run id, namespace, the
  step table); ``kubectl apply -f DIR`` applies the files in dependency order.
- It raises ``BadInput`` (exit 2) for a step Chaos Mesh cannot express, naming it
  (file:line), before writing anything.
- The output is a pure function of the experiment, the options and ``now`` (the epoch
  and the default run id).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.errors import BadInput
from chaos.experiment.model import Experiment, Variant
from chaos.k8s import manifests, names
from chaos.k8s.chaosmap import Plan
from chaos.k8s.loadgen import LoadSettings, load_objects
from chaos.k8s.manifests import RunSettings, Target
from chaos.k8s.readme import render_readme
from chaos.k8s.result import Exported
from chaos.k8s.stack import k8s_stack
from chaos.k8s.workflow import build_workflow, task_factory
from chaos.stackfile.definition import StackDefinition

FILES = ("00-run.yaml", "10-stack.yaml", "20-load.yaml", "30-workflow.yaml")
MANIFEST = "tradechaos-k8s.json"
# steps whose `tradechaos step` uses the Kubernetes API: db_upgrade moves workloads; the
# runbook's steps keep what later ones read (a snapshot's answer) in the run's ConfigMap
KUBE_ACTIONS = ("db_upgrade", *names.RUNBOOK_ACTIONS)


@dataclass(frozen=True)
class ExportOptions:
    namespace: str
    run_id: str | None = None
    image: str | None = None
    load_workers: int | None = None  # None: the experiment's load.workers (2 when 0)
    cluster_domain: str = "cluster.local"


def default_run_id(experiment: str, variant: str, now: float) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{names.dns_label(experiment, 26)}-{names.dns_label(variant, 16)}-{stamp}"


def check_name(value: str, what: str) -> str:
    if value != names.dns_label(value) or len(value) > 63:
        raise BadInput(f"{what} {value!r} is not a DNS label (lowercase letters, digits, '-')")
    return value


def run_record(
    experiment: Experiment,
    variant: Variant,
    run_id: str,
    seed: int,
    load_seed: int,
    definition: StackDefinition,
) -> dict[str, Any]:
    """run.json as the local runner writes it (docs/contracts.md section 2); the epoch is
    added when the run's ConfigMap is made."""
    from chaos.runner import wiring

    return {
        "run_id": run_id,
        "experiment": experiment.name,
        "variant": variant.name,
        "seed": seed,
        "load_seed": load_seed,
        "mitigations": list(variant.mitigations),
        **wiring.stack_record(definition),
        "no_faults": False,
        "params": wiring.tolerances(experiment.params),
        "invariants": list(experiment.invariants),
        "expected_violations": list(variant.expect_violated),
        "backend": "kubernetes",
    }


def _dump(objects: Sequence[dict[str, Any]]) -> str:
    import yaml

    return yaml.safe_dump_all(objects, sort_keys=False, width=100_000)


def export_variant(
    experiment: Experiment,
    variant: Variant,
    options: ExportOptions,
    out_dir: Path,
    now: float | None = None,
) -> Exported:
    now = time.time() if now is None else now
    namespace = check_name(options.namespace, "namespace")
    run_id = check_name(
        options.run_id or default_run_id(experiment.name, variant.name, now), "run id"
    )
    stack = k8s_stack(experiment, variant, options.image)
    target = Target(namespace, run_id, options.cluster_domain)
    master = random.Random(experiment.seed)
    load_seed, fault_seed = master.getrandbits(31), master.getrandbits(63)
    run = RunSettings(
        experiment.seed,
        variant.mitigations_flag,
        run_record(experiment, variant, run_id, experiment.seed, load_seed, stack.definition),
    )
    services, links = manifests.endpoints(stack, target)
    health_urls = {
        s.name: manifests.health_url(s, services[s.name]) for s in stack.services if not s.optional
    }
    link_urls = {name: f"http://{endpoint}" for name, endpoint in links.items()}
    step_labels = names.labels(stack.name, run_id, "tradechaos-step", "step")
    factory = task_factory(
        stack, namespace, run_id, fault_seed, health_urls, link_urls, step_labels
    )
    plan = Plan(stack, target, experiment.path, experiment.duration_s, {}, factory)
    workflow_meta = manifests.meta(target, stack, run_id, "tradechaos", "workflow")
    workflow, rows, outside = build_workflow(
        experiment, variant, stack, plan, run_id, workflow_meta, health_urls
    )
    steps = experiment.steps_for(variant.name)
    rbac = any(step.action in KUBE_ACTIONS for step in steps)
    runbook = any(step.action in names.RUNBOOK_ACTIONS for step in steps)
    load = LoadSettings(
        experiment.load.users,
        experiment.load.spawn_rate,
        options.load_workers or experiment.load.workers or 2,
        seed=load_seed,
        accounts=_load_accounts(experiment, stack.definition),
        retry_unknown=experiment.load.retry_unknown,
    )
    groups = [
        manifests.run_objects(stack, target, run, round(now, 3), rbac, runbook=runbook),
        manifests.stack_objects(stack, target, run),
        # no orders binding, no traders (as locally: wiring.load gives no load then)
        load_objects(stack, target, load, stack.image) if stack.load_links else [],
        [workflow],
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    result = Exported(
        experiment.name, variant.name, run_id, out_dir, rows, outside, sum(map(len, groups))
    )
    for file_name, objects in zip(FILES, groups, strict=True):
        path = out_dir / file_name
        path.write_text(_dump(objects), encoding="utf-8")
        result.files.append(path)
    manifest = {
        "run_id": run_id,
        "namespace": namespace,
        "experiment": experiment.name,
        "file": experiment.path,
        "variant": variant.name,
        "files": list(FILES),
        "workflow": run_id,
        "abort_outside_cluster": outside,
        "abort_when": [
            {"kind": c.kind, "for_s": c.for_s, "above": c.above, "mode": c.mode}
            for c in experiment.abort_when
        ],
        "steps": [row.__dict__ for row in rows],
        # the stack file's kubernetes: allow-lists (tradechaos k8s apply adds its flags')
        "allow": {
            "namespaces": list(stack.allowed_namespaces),
            "contexts": list(stack.allowed_contexts),
        },
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    (out_dir / "README.md").write_text(
        render_readme(result, stack, namespace, rbac), encoding="utf-8"
    )
    return result


def table(result: Exported) -> str:
    """The step -> resource table (plain text, also in README.md as Markdown)."""
    width = max([4, *(len(r.step) for r in result.rows)])
    lines = [f"{'step':<{width}}  {'line':>4}  {'action':<17}  became"]
    for row in result.rows:
        lines.append(
            f"{row.step:<{width}}  {row.line:>4}  {row.action:<17}  "
            f"{row.resources} [{row.template}]"
        )
    return "\n".join(lines)


def _load_accounts(experiment: Experiment, definition: StackDefinition) -> tuple[int, ...]:
    """The traders' accounts, as a local run deals them (``chaos.runner.wiring.load``)."""
    if experiment.load.accounts:
        return tuple(range(1, experiment.load.accounts + 1))
    accounts = definition.bindings.accounts
    return tuple(accounts.traders) if accounts is not None else tuple(range(1, 37))
