"""The load on Kubernetes: a Locust master (Deployment + Service) and a worker Deployment
with ``workers`` replicas, the workers labelled as the ``clients`` end of links (so a fault
on ``clients-sequencer`` selects them). When ``chaos.load.worker`` grows a Locust
master/worker mode (issue 18 item 3), only the two commands below change.
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


def load_objects(stack: K8sStack, target: Target, load: LoadSettings, image: str) -> list[Obj]:
    """A Locust master (Deployment + Service) and ``workers`` worker replicas.

    The commands are Locust's own distributed mode on the project's locustfile; the client
    history of each worker is not written by plain ``locust`` (see docs/kubernetes.md)."""
    _, links = endpoints(stack, target)
    host = links[stack.load_links[0]].url if stack.load_links else ""
    master_labels = names.labels(stack.name, target.run_id, LOAD_MASTER, "locust-master")
    worker_labels = names.labels(stack.name, target.run_id, CLIENTS, "locust-worker")
    master_cmd = [
        stack.python, "-m", "locust", "-f", stack.locustfile, "--master", "--headless",
        "--users", str(load.users), "--spawn-rate", f"{load.spawn_rate:g}",
        "--expect-workers", str(load.workers), "--master-bind-port", str(LOCUST_PORT),
        "--host", host,
    ]  # fmt: skip
    worker_cmd = [
        stack.python, "-m", "locust", "-f", stack.locustfile, "--worker",
        "--master-host", target.dns(LOAD_MASTER), "--master-port", str(LOCUST_PORT),
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
