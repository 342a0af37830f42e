"""Exported runs against a real Kubernetes API server (kube-apiserver 1.20 + etcd; no pods).

Run: flock /tmp/tradechaos-heavy.lock .venv/bin/python -m pytest tests/k8s -q
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_services import FakeService
from k8s_apiserver import ApiServer

from chaos.k8s.names import RUN_LABEL

REPO = Path(__file__).resolve().parents[2]
INCIDENTS = sorted((REPO / "experiments" / "incidents").glob("*.yaml"))
RESPONSE = REPO / "experiments" / "incidents" / "paradex-2026-response.yaml"
PARADEX = REPO / "experiments" / "incidents" / "paradex-2026-db-upgrade.yaml"
WAIT_S = 60.0


def tradechaos(
    server: ApiServer, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig)}
    return subprocess.run(
        [sys.executable, "-m", "chaos", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


def export(tmp_path: Path, namespace: str, *files: Path, variant: str | None = None) -> Path:
    out = tmp_path / namespace
    args = ["export", "k8s", *map(str, files), "--namespace", namespace, "--out", str(out)]
    args += ["--variant", variant] if variant else []
    from chaos.cli import main

    assert main(args) == 0
    return out


def make_namespace(server: ApiServer, name: str) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        client.CoreV1Api(server.client()).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name)), _request_timeout=20
        )
    except ApiException as err:
        if err.status != 409:
            raise


def labelled(server: ApiServer, namespace: str, run_id: str) -> list[str]:
    """Every object in ``namespace`` carrying the run label (or the Workflow's label)."""
    from chaos.k8s.cluster import Cluster

    cluster = Cluster(server.client(), "local")
    found = [
        f"{kind}/{item['metadata']['name']}"
        for kind, item in cluster.run_objects(namespace, run_id)
    ]
    for resource in cluster.chaos_kinds():
        for item in cluster._items(resource, namespace, f"chaos-mesh.org/workflow={run_id}"):
            found.append(f"{resource.kind}/{item['metadata']['name']}")
    return found


def versions(server: ApiServer, namespace: str, run_id: str) -> dict[str, tuple[str, str]]:
    """kind/name -> (resourceVersion, the managedFields entries as JSON)."""
    from chaos.k8s.cluster import Cluster

    cluster = Cluster(server.client(), "local")
    return {
        f"{kind}/{item['metadata']['name']}": (
            item["metadata"]["resourceVersion"],
            json.dumps(item["metadata"].get("managedFields"), sort_keys=True, default=str),
        )
        for kind, item in cluster.run_objects(namespace, run_id)
    }


def manifest(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "tradechaos-k8s.json").read_text()))


def applied_run(
    server: ApiServer,
    tmp_path: Path,
    namespace: str,
    experiment: Path,
    variant: str,
    cleanup_after: list[str],
) -> str:
    """Export one variant into a new namespace, apply it; its run id."""
    make_namespace(server, namespace)
    cleanup_after.append(namespace)
    folder = export(tmp_path, namespace, experiment, variant=variant)
    applied = tradechaos(
        server, "k8s", "apply", str(folder), "--allow-namespace", namespace,
        "--allow-context", "local",
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    return str(manifest(folder)["run_id"])


@pytest.fixture
def cleanup_after(apiserver: ApiServer) -> Iterator[list[str]]:
    namespaces: list[str] = []
    yield namespaces
    for namespace in namespaces:
        tradechaos(apiserver, "cleanup", "--kubernetes", "--namespace", namespace)


def test_apply_succeeds_and_a_second_apply_changes_nothing(
    apiserver: ApiServer, tmp_path: Path, cleanup_after: list[str]
) -> None:
    namespace = "tc-apply"
    make_namespace(apiserver, namespace)
    cleanup_after.append(namespace)
    folder = export(tmp_path, namespace, PARADEX, variant="vulnerable")
    run_id = manifest(folder)["run_id"]
    allow = ["--allow-namespace", namespace, "--allow-context", "local"]
    first = tradechaos(apiserver, "k8s", "apply", str(folder), *allow)
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout and "Workflow/" in first.stdout
    before = versions(apiserver, namespace, run_id)
    assert any(key.startswith("Workflow/") for key in before)
    assert any(key.startswith("StatefulSet/") for key in before)
    second = tradechaos(apiserver, "k8s", "apply", str(folder), *allow)
    assert second.returncode == 0, second.stderr
    assert f"{len(before)} objects, 0 changed" in second.stdout, second.stdout
    assert versions(apiserver, namespace, run_id) == before
    dry = tradechaos(apiserver, "k8s", "apply", str(folder), *allow, "--dry-run")
    assert dry.returncode == 0 and "0 would change" in dry.stdout, dry.stdout + dry.stderr
    status = tradechaos(apiserver, "k8s", "status", str(folder), "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["workflow"]["name"] == run_id


def test_every_exported_resource_is_accepted_by_the_api_server(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    namespace = "tc-dry-run"
    make_namespace(apiserver, namespace)
    out = export(tmp_path, namespace, *INCIDENTS)
    folders = sorted(p.parent for p in out.glob("*/tradechaos-k8s.json"))
    assert len(folders) >= len(INCIDENTS) * 2
    for folder in folders:
        result = tradechaos(
            apiserver,
            "k8s",
            "apply",
            str(folder),
            "--dry-run",
            "--allow-namespace",
            namespace,
            "--allow-context",
            "local",
        )
        assert result.returncode == 0, f"{folder.name}: {result.stderr}"
        assert "would be created" in result.stdout
        assert (
            labelled(apiserver, namespace, manifest(folder)["run_id"]) == []
        )  # a dry run stores nothing


def test_apply_refuses_a_namespace_or_context_not_allowed(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    namespace = "tc-refused"
    make_namespace(apiserver, namespace)
    folder = export(tmp_path, namespace, PARADEX, variant="mitigated")
    run_id = manifest(folder)["run_id"]
    wrong_ns = tradechaos(
        apiserver,
        "k8s",
        "apply",
        str(folder),
        "--allow-namespace",
        "other",
        "--allow-context",
        "local",
    )
    assert wrong_ns.returncode == 2 and "namespace 'tc-refused' is not allowed" in wrong_ns.stderr
    wrong_ctx = tradechaos(
        apiserver,
        "k8s",
        "apply",
        str(folder),
        "--allow-namespace",
        namespace,
        "--allow-context",
        "prod",
    )
    assert wrong_ctx.returncode == 2 and "kube context 'local' is not allowed" in wrong_ctx.stderr
    no_list = tradechaos(apiserver, "k8s", "apply", str(folder), "--allow-namespace", namespace)
    assert no_list.returncode == 2 and "--allow-context local" in no_list.stderr
    assert labelled(apiserver, namespace, run_id) == []


def _wait_for(condition: Any, what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_cleanup_after_sigkill_during_apply_leaves_no_labelled_object(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    namespace = "tc-sigkill"
    make_namespace(apiserver, namespace)
    out = export(tmp_path, namespace, *INCIDENTS, variant="vulnerable")
    folder = next(
        p.parent for p in sorted(out.glob("*/tradechaos-k8s.json")) if "paradex" in str(p)
    )
    run_id = manifest(folder)["run_id"]
    env = {**os.environ, "KUBECONFIG": str(apiserver.kubeconfig)}
    apply = subprocess.Popen(
        [sys.executable, "-m", "chaos", "k8s", "apply", str(folder),
         "--allow-namespace", namespace, "--allow-context", "local"],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert apply.stdout is not None and apply.stderr is not None
    from kubernetes import client

    core = client.CoreV1Api(apiserver.client())

    def first_object() -> bool:  # the run ConfigMap is applied first; one cheap list
        found = core.list_namespaced_config_map(
            namespace, label_selector=f"{RUN_LABEL}={run_id}", _request_timeout=10
        )
        return bool(found.items)

    try:
        _wait_for(first_object, "the first applied object")
        apply.send_signal(signal.SIGKILL)
    finally:
        apply.wait(timeout=30)
        apply.stdout.close()
        apply.stderr.close()
    assert apply.returncode == -signal.SIGKILL, "apply finished before it was killed"
    left = labelled(apiserver, namespace, run_id)
    assert left and not any(x.startswith("Workflow/") for x in left), left  # killed half way
    # another run applied in full (its own namespace: two runs cannot share one), so cleanup
    # of every namespace has a Workflow to delete first
    make_namespace(apiserver, "tc-sigkill-other")
    other = export(tmp_path, "tc-sigkill-other", INCIDENTS[1], variant="vulnerable")
    done = tradechaos(
        apiserver,
        "k8s",
        "apply",
        str(other),
        "--allow-namespace",
        "tc-sigkill-other",
        "--allow-context",
        "local",
    )
    assert done.returncode == 0, done.stderr
    cleaned = tradechaos(apiserver, "cleanup", "--kubernetes")
    assert cleaned.returncode == 0, cleaned.stderr
    lines = cleaned.stdout.splitlines()
    assert lines[0].startswith("Workflow/"), lines[:3]  # chaos objects first
    assert labelled(apiserver, namespace, run_id) == []
    assert labelled(apiserver, "tc-sigkill-other", manifest(other)["run_id"]) == []
    again = tradechaos(apiserver, "cleanup", "--kubernetes")
    assert again.returncode == 0 and again.stdout.strip() == "nothing to clean"


HEALTH_ABORT = """
name: k8s-abort
duration: 30s
steady_state:
  probes: [{probe: health}]
safety:
  abort_when:
    - {probe: health, for: 1s}
variants:
  only: {mitigations: all}
method:
  - {at: 1s, action: latency, target: oracle-db, latency: 300ms, for: 20s}
invariants: [sequence_integrity]
"""


def _set_ready(
    server: ApiServer, namespace: str, run_id: str, ready: bool, only: str | None = None
) -> None:
    from kubernetes import client

    apps = client.AppsV1Api(server.client())
    for kind in ("deployment", "stateful_set"):
        items = getattr(apps, f"list_namespaced_{kind}")(
            namespace, label_selector=f"{RUN_LABEL}={run_id}", _request_timeout=20
        ).items
        for item in items:
            if only and item.metadata.name != only:
                continue
            wanted = item.spec.replicas or 0
            body = {"status": {"replicas": wanted, "readyReplicas": wanted if ready else 0}}
            getattr(apps, f"patch_namespaced_{kind}_status")(
                item.metadata.name, namespace, body, _request_timeout=20
            )


def test_watch_deletes_the_chaos_objects_when_an_abort_condition_holds(
    apiserver: ApiServer, tmp_path: Path, cleanup_after: list[str]
) -> None:
    namespace = "tc-abort"
    make_namespace(apiserver, namespace)
    cleanup_after.append(namespace)
    experiment = tmp_path / "abort.yaml"
    experiment.write_text(HEALTH_ABORT)
    folder = export(tmp_path, namespace, experiment)
    run_id = manifest(folder)["run_id"]
    applied = tradechaos(
        apiserver,
        "k8s",
        "apply",
        str(folder),
        "--allow-namespace",
        namespace,
        "--allow-context",
        "local",
    )
    assert applied.returncode == 0, applied.stderr
    _set_ready(apiserver, namespace, run_id, True)  # no kubelet here: readiness is written by hand
    status = json.loads(tradechaos(apiserver, "k8s", "status", str(folder), "--json").stdout)
    assert status["workloads"] and all(status["workloads"].values()), status
    env = {**os.environ, "KUBECONFIG": str(apiserver.kubeconfig)}
    watch = subprocess.Popen(
        [sys.executable, "-m", "chaos", "k8s", "watch", str(folder),
         "--interval", "0.2", "--timeout", "60"],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert watch.stdout is not None
        assert "every workload is ready" in watch.stdout.readline()
        _set_ready(apiserver, namespace, run_id, False, only="oracle")
        out, err = watch.communicate(timeout=60)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.communicate()
    assert watch.returncode == 1, out + err
    assert "aborted: not ready for 1s: oracle" in out
    left = labelled(apiserver, namespace, run_id)
    assert not any(x.startswith("Workflow/") for x in left)
    assert any(x.startswith("Deployment/") for x in left)  # the stack stays; only the chaos goes


def test_kubeops_moves_links_scales_and_copies_a_database(
    apiserver: ApiServer, tmp_path: Path, cleanup_after: list[str]
) -> None:
    """What `tradechaos step db_upgrade` does through the API (no pods run here, so a
    copy never becomes ready: the wait must time out with a clear error)."""
    from kubernetes import client

    from chaos.errors import StackError
    from chaos.k8s.kubeops import KubeOps

    namespace = "tc-kubeops"
    run_id = applied_run(apiserver, tmp_path, namespace, PARADEX, "vulnerable", cleanup_after)
    ops = KubeOps(apiserver.client(), namespace, run_id)
    assert ops.link_server("oracle-db") == "db"
    with pytest.raises(StackError, match=r"db2: not at 1 ready replicas after 0\.5s"):
        ops.copy_service("db", "db2", timeout_s=0.5)
    apps = client.AppsV1Api(apiserver.client())
    copy = apps.read_namespaced_stateful_set("db2", namespace, _request_timeout=20)
    assert copy.metadata is not None and copy.metadata.labels is not None
    assert copy.spec is not None and copy.spec.template.spec is not None
    assert copy.metadata.labels["app.kubernetes.io/name"] == "db2"
    assert copy.metadata.labels[RUN_LABEL] == run_id
    assert copy.spec.template.spec.containers[0].lifecycle is None  # no genesis in the copy
    ops.point_link("oracle-db", "db2")
    assert ops.link_server("oracle-db") == "db2"
    assert ops.link_server("writer-db") == "db"  # one client's link moved, not the others
    assert ops.replicas("oracle") == 1
    ops.scale("oracle", 0, timeout_s=5)  # no pod is left: returns at once
    assert ops.replicas("oracle") == 0


def test_a_rollback_task_reads_the_snapshot_an_earlier_task_took(
    apiserver: ApiServer, tmp_path: Path, cleanup_after: list[str]
) -> None:
    """Each Task is its own pod: the snapshot step's answer reaches the chain_rollback step
    through the run's runbook ConfigMap (the export creates it; the Role lets steps patch it)."""
    namespace = "tc-runbook"
    run_id = applied_run(apiserver, tmp_path, namespace, RESPONSE, "mitigated", cleanup_after)
    sequencer = FakeService().start()
    try:
        common = ["--namespace", namespace, "--run-id", run_id, "--service-url",
                  f"sequencer={sequencer.url}"]  # fmt: skip
        took = tradechaos(apiserver, "step", "snapshot", "--id", "pre", *common)
        assert took.returncode == 0, took.stderr
        back = tradechaos(
            apiserver, "step", "chain_rollback", "--id", "rollback", "--param", 'to="pre"',
            "--param", 'wait="1s"', *common,
        )  # fmt: skip
        assert back.returncode == 0, back.stderr
    finally:
        sequencer.close()
    rollbacks = sequencer.posted("/admin/rollback")
    assert [(r["snapshot"], r["seq"], r["chain_height"]) for r in rollbacks] == [("pre", 42, 7)]
    from kubernetes import client

    from chaos.k8s.kubeops import KubeOps

    stored = client.CoreV1Api(apiserver.client()).read_namespaced_config_map(
        "tradechaos-runbook", namespace, _request_timeout=20
    )
    assert stored.metadata is not None and stored.metadata.labels is not None
    assert stored.metadata.labels[RUN_LABEL] == run_id  # swept with the run
    assert stored.data is not None and len(stored.data) == 2  # one data key per entry
    ops = KubeOps(apiserver.client(), namespace, run_id)
    entries = ops.read_runbook()
    assert entries["snapshot:pre"]["seq"] == 42 and "rollback:rollback" in entries
    ops.write_runbook({"snapshot:other": {"seq": 1}})  # a step in a parallel branch
    assert set(ops.read_runbook()) == {"snapshot:pre", "rollback:rollback", "snapshot:other"}


def test_a_rollback_without_the_runbook_configmap_fails_in_one_sentence(
    apiserver: ApiServer, cleanup_after: list[str]
) -> None:
    namespace = "tc-runbook-missing"
    make_namespace(apiserver, namespace)
    cleanup_after.append(namespace)
    sequencer = FakeService().start()
    try:
        back = tradechaos(
            apiserver, "step", "chain_rollback", "--param", 'to="pre"', "--namespace", namespace,
            "--run-id", "nope", "--service-url", f"sequencer={sequencer.url}",
        )  # fmt: skip
    finally:
        sequencer.close()
    assert back.returncode != 0 and "Traceback" not in back.stderr
    assert "the runbook ConfigMap tradechaos-runbook of run nope" in back.stderr, back.stderr
    assert sequencer.posted("/admin/rollback") == []
