"""The load on Kubernetes: a Locust master (Deployment + Service) and a worker Deployment
with ``workers`` replicas, the workers labelled as the ``clients`` end of links (so a fault
on ``clients-sequencer`` selects them). Both run ``chaos.load.worker`` (``--role master``
and ``--role worker``), the same processes as a local ``load.workers`` run: Locust's own
distributed protocol, the traders shaped by the stack file's orders binding, each worker
trading for its share of the accounts (Locust's worker index: the replicas are alike) and
printing its client ops on stdout (``--history-stdout``), which the README's collect step
turns into ``client.jsonl`` (``chaos.k8s.records``).
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.k8s import names
from chaos.k8s.manifests import LOAD_MASTER, LOAD_WORKER, LOCUST_PORT, Obj, Target, endpoints
from chaos.k8s.stack import CLIENTS, K8sStack


@dataclass(frozen=True)
class LoadSettings:
    users: int
    spawn_rate: float
    workers: int
    seed: int = 0
    accounts: tuple[int, ...] = tuple(range(1, 37))
    retry_unknown: bool = True


MASTER_START_TIMEOUT_S = 600  # the master waits this long for its workers' pods


def load_objects(stack: K8sStack, target: Target, load: LoadSettings, image: str) -> list[Obj]:
    """A Locust master (Deployment + Service) and ``workers`` worker replicas."""
    services, links = endpoints(stack, target)
    host = links[stack.load_links[0]].url if stack.load_links else ""
    venues = [v for v in stack.definition.builtins("venues") if v in services]
    master_labels = names.labels(stack.name, target.run_id, LOAD_MASTER, "locust-master")
    worker_labels = names.labels(stack.name, target.run_id, CLIENTS, "locust-worker")
    common = [
        "--seed", str(load.seed), "--users", str(load.users),
        "--spawn-rate", f"{load.spawn_rate:g}", "--accounts", ",".join(map(str, load.accounts)),
        "--workers", str(load.workers), "--master-port", str(LOCUST_PORT),
        *stack_file_flag(stack),
    ]  # fmt: skip
    if not load.retry_unknown:
        common.append("--no-retry-unknown")
    if len(stack.load_links) > 1:
        common += ["--failover", links[stack.load_links[1]].url]
    if venues:  # the traders' prices when the stack shows none (chaos.load.locustfile)
        common += ["--venues", services[venues[0]].url]
    master_cmd = [
        stack.python, "-m", "chaos.load.worker", "--role", "master", "--host", host, *common,
        "--master-bind-host", "0.0.0.0", "--start-timeout", str(MASTER_START_TIMEOUT_S),
    ]  # fmt: skip
    worker_cmd = [
        stack.python, "-m", "chaos.load.worker", "--role", "worker", *common,
        "--master-host", target.dns(LOAD_MASTER), "--history-stdout",
    ]  # fmt: skip

    def deployment(name: str, labels: dict[str, str], replicas: int, command: list[str]) -> Obj:
        select = {names.NAME_LABEL: labels[names.NAME_LABEL], names.RUN_LABEL: target.run_id}
        select[names.COMPONENT_LABEL] = labels[names.COMPONENT_LABEL]
        container: Obj = {"name": "locust", "image": image, "command": command}
        container["env"] = [{"name": "PYTHONUNBUFFERED", "value": "1"}]
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": target.namespace, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": select},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            },
        }

    master_service: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": LOAD_MASTER, "namespace": target.namespace, "labels": master_labels},
        "spec": {
            "selector": {
                names.NAME_LABEL: LOAD_MASTER,
                names.RUN_LABEL: target.run_id,
                names.COMPONENT_LABEL: "locust-master",
            },
            "ports": [
                {
                    "name": "locust",
                    "port": LOCUST_PORT,
                    "targetPort": LOCUST_PORT,
                    "protocol": "TCP",
                }
            ],
        },
    }
    return [
        master_service,
        deployment(LOAD_MASTER, master_labels, 1, master_cmd),
        deployment(LOAD_WORKER, worker_labels, load.workers, worker_cmd),
    ]


def stack_file_flag(stack: K8sStack) -> list[str]:
    """``--stack FILE`` when the stack is not the reference one (the image carries both)."""
    flags = list(stack.stack_flags)
    if "--stack" in flags:
        at = flags.index("--stack")
        return flags[at : at + 2]
    return []
