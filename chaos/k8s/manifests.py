"""The stack's Kubernetes objects: workloads, Services, the run's ConfigMap, RBAC, Locust.

Contract
- ``stack_objects(stack, target, run)`` returns, per service, a Service and a Deployment
  (a StatefulSet with a volume claim for a database), and per link a Service
  ``link-<name>`` selecting the server's pods; ``{link:A-B}`` resolves to that Service's
  DNS name and port (a migration switches one client's link by re-pointing it).
- Every pod runs the service's command with its ``{placeholders}`` resolved for the pod
  (``$(TRADECHAOS_EPOCH)`` is expanded by Kubernetes from the run ConfigMap), waits for its
  dependencies in an init container (``tradechaos step wait_healthy``), runs its setup
  commands as init containers and its ``after_healthy`` commands in a postStart hook once
  it is healthy, and has a readiness probe from its health check (http: httpGet, tcp:
  tcpSocket, pg: exec pg_isready).
- The load's objects are in ``chaos.k8s.loadgen``.
- Every object is labelled with ``names.labels`` (the run label above all).
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.backends.base import Endpoint
from chaos.backends.placeholders import Placeholders, name_tables
from chaos.k8s import names
from chaos.k8s.stack import CLIENTS, DATA_DIR, RUN_DIR, K8sService, K8sStack

Obj = dict[str, Any]
RUN_CONFIGMAP = "tradechaos-run"
STEP_ROLE = "tradechaos-step"
EPOCH_ENV = "TRADECHAOS_EPOCH"
LOCUST_PORT = 5557
LOAD_MASTER = "load-master"
LOAD_WORKER = "load-worker"
DATA_VOLUME_SIZE = "1Gi"
WAIT_TIMEOUT_S = 300


@dataclass(frozen=True)
class Target:
    """Where the objects go and what names the run."""

    namespace: str
    run_id: str
    cluster_domain: str = "cluster.local"

    def dns(self, k8s_name: str) -> str:
        return f"{k8s_name}.{self.namespace}.svc.{self.cluster_domain}"


@dataclass(frozen=True)
class RunSettings:
    """What a run fixes at export time: seed, mitigations flag, the run record."""

    seed: int
    mitigations: str
    run_record: Mapping[str, Any] = field(default_factory=dict)


def meta(target: Target, stack: K8sStack, name: str, app: str, component: str | None = None) -> Obj:
    return {
        "name": name,
        "namespace": target.namespace,
        "labels": names.labels(stack.name, target.run_id, app, component),
    }


def pod_labels(stack: K8sStack, target: Target, service: K8sService) -> dict[str, str]:
    out = names.labels(stack.name, target.run_id, service.name)
    out[names.SITE_LABEL] = names.label_value(service.site)
    return out


def selector(stack: K8sStack, target: Target, service: str) -> dict[str, str]:
    """The labels selecting the pods of ``service`` (or of the load for ``clients``)."""
    if service == CLIENTS:
        return {names.NAME_LABEL: CLIENTS, names.RUN_LABEL: target.run_id}
    return {names.NAME_LABEL: names.label_value(service), names.RUN_LABEL: target.run_id}


def endpoints(stack: K8sStack, target: Target) -> tuple[dict[str, Endpoint], dict[str, Endpoint]]:
    """(service name -> its Service's DNS endpoint, link name -> its link Service's)."""
    services = {s.name: Endpoint(target.dns(s.k8s_name), s.port) for s in stack.services}
    links = {
        lk.name: Endpoint(target.dns(lk.k8s_name), stack.service(lk.server).port)
        for lk in stack.links
        if lk.server in services
    }
    return services, links


def health_url(service: K8sService, endpoint: Endpoint) -> str:
    """``http://host:port/path``, ``tcp://host:port`` or ``pg://host:port``."""
    if service.health.kind == "http":
        return f"http://{endpoint}{service.health.path}"
    return f"{service.health.kind}://{endpoint}"


class _PodPlaceholders(Placeholders):
    """Placeholders as a pod of the exported stack sees them."""

    def _simple(self, name: str) -> str:
        if name == "epoch":
            return f"$({EPOCH_ENV})"
        if name == "host":
            return str(self.params.get("host", "0.0.0.0"))
        if name == "pg_bin":
            return str(self.params["pg_bin"])
        return super()._simple(name)


def placeholders(
    stack: K8sStack, target: Target, run: RunSettings, service: K8sService, host: str = "0.0.0.0"
) -> Placeholders:
    services, links = endpoints(stack, target)
    databases, venues = name_tables(stack.definition)
    return _PodPlaceholders(
        python=stack.python,
        port=service.port,
        run_dir=Path(RUN_DIR),
        data_dir=Path(DATA_DIR),
        params={
            "seed": str(run.seed),
            "mitigations": run.mitigations,
            "run_id": target.run_id,
            "host": host,
            "pg_bin": stack.pg_bin,
        },
        links=links,
        services=services,
        stack_dir=stack.definition.stack_dir,
        databases=databases,
        venue_counts=venues,
    )


def _probe(service: K8sService, pg_bin: str) -> Obj:
    check = service.health
    timing = {
        "periodSeconds": max(1, math.ceil(check.interval_s)),
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }
    if check.kind == "http":
        return {"httpGet": {"path": check.path, "port": service.port}, **timing}
    if check.kind == "tcp":
        return {"tcpSocket": {"port": service.port}, **timing}
    command = [f"{pg_bin}/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(service.port)]
    return {"exec": {"command": command}, **timing}


def _epoch_env() -> Obj:
    return {
        "name": EPOCH_ENV,
        "valueFrom": {"configMapKeyRef": {"name": RUN_CONFIGMAP, "key": "epoch"}},
    }


def wait_command(
    stack: K8sStack, urls: Mapping[str, str], timeout_s: float = WAIT_TIMEOUT_S
) -> list[str]:
    """``tradechaos step wait_healthy`` for the services in ``urls`` (name -> health URL)."""
    argv = [stack.tradechaos, "step", "wait_healthy", "--timeout", f"{timeout_s:g}"]
    for name, url in urls.items():
        argv += ["--service-url", f"{name}={url}"]
    return argv


def _volumes(service: K8sService) -> tuple[list[Obj], list[Obj]]:
    mounts = [{"name": "run", "mountPath": RUN_DIR}, {"name": "data", "mountPath": DATA_DIR}]
    volumes: list[Obj] = [{"name": "run", "emptyDir": {}}]
    if not service.stateful:
        volumes.append({"name": "data", "emptyDir": {}})
    return mounts, volumes


def _pod_spec(stack: K8sStack, target: Target, run: RunSettings, service: K8sService) -> Obj:
    fill = placeholders(stack, target, run, service)
    services, _ = endpoints(stack, target)
    env = [{"name": "PYTHONUNBUFFERED", "value": "1"}, _epoch_env()]
    env += [{"name": k, "value": fill.fill(v)} for k, v in service.env.items()]
    mounts, volumes = _volumes(service)
    init: list[Obj] = []
    deps = {d: health_url(stack.service(d), services[d]) for d in service.depends_on}
    if deps:
        init.append(
            {
                "name": "wait-dependencies",
                "image": service.image,
                "command": wait_command(stack, deps),
            }
        )
    for index, command in enumerate(service.setup):
        init.append(
            {
                "name": f"setup-{index}",
                "image": service.image,
                "command": fill.argv(command),
                "env": env,
                "volumeMounts": mounts,
            }
        )
    container: Obj = {
        "name": "service",
        "image": service.image,
        "command": fill.argv(service.command),
        "env": env,
        "ports": [{"name": "serve", "containerPort": service.port, "protocol": "TCP"}],
        "readinessProbe": _probe(service, stack.pg_bin),
        "volumeMounts": mounts,
    }
    if service.after_healthy:
        container["lifecycle"] = {
            "postStart": {"exec": {"command": _after_healthy(stack, target, run, service)}}
        }
    spec: Obj = {
        "terminationGracePeriodSeconds": max(1, math.ceil(service.stop_grace_s)),
        "containers": [container],
        "volumes": volumes,
    }
    if init:
        spec["initContainers"] = init
    return spec


def _after_healthy(
    stack: K8sStack, target: Target, run: RunSettings, service: K8sService
) -> list[str]:
    """Wait until the service answers inside its pod, then run its after_healthy commands
    (they connect to the service on 127.0.0.1 here, so ``{host}`` is 127.0.0.1)."""
    fill = placeholders(stack, target, run, service, host="127.0.0.1")
    own = health_url(service, Endpoint("127.0.0.1", service.port))
    commands = [fill.argv(c) for c in service.after_healthy]
    then = (
        commands[0]
        if len(commands) == 1
        else ["sh", "-c", " && ".join(shlex.join(c) for c in commands)]
    )
    return [*wait_command(stack, {service.name: own}), "--then", *then]


def service_objects(
    stack: K8sStack, target: Target, run: RunSettings, service: K8sService
) -> list[Obj]:
    """The Service and the workload of one service."""
    labels = pod_labels(stack, target, service)
    svc: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(target, stack, service.k8s_name, service.name),
        "spec": {
            "selector": selector(stack, target, service.name),
            "ports": [
                {
                    "name": "serve",
                    "port": service.port,
                    "targetPort": service.port,
                    "protocol": "TCP",
                }
            ],
        },
    }
    workload: Obj = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet" if service.stateful else "Deployment",
        "metadata": meta(target, stack, service.k8s_name, service.name),
        "spec": {
            "replicas": 0 if service.optional else 1,
            "selector": {"matchLabels": selector(stack, target, service.name)},
            "template": {
                "metadata": {"labels": labels},
                "spec": _pod_spec(stack, target, run, service),
            },
        },
    }
    if service.stateful:
        workload["spec"]["serviceName"] = service.k8s_name
        workload["spec"]["volumeClaimTemplates"] = [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": DATA_VOLUME_SIZE}},
                },
            }
        ]
    else:
        workload["spec"]["strategy"] = {"type": "Recreate"}
    return [svc, workload]


def link_objects(stack: K8sStack, target: Target) -> list[Obj]:
    out: list[Obj] = []
    for link in stack.links:
        if link.server not in stack.service_names:
            continue
        server = stack.service(link.server)
        metadata = meta(target, stack, link.k8s_name, link.server, "link")
        metadata["annotations"] = {"tradechaos.io/link": link.name}
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": metadata,
                "spec": {
                    "selector": selector(stack, target, link.server),
                    "ports": [
                        {
                            "name": "serve",
                            "port": server.port,
                            "targetPort": server.port,
                            "protocol": "TCP",
                        }
                    ],
                },
            }
        )
    return out


def run_objects(
    stack: K8sStack,
    target: Target,
    run: RunSettings,
    epoch: float,
    rbac: bool,
    *,
    runbook: bool = False,
) -> list[Obj]:
    """The run ConfigMap (epoch and run.json), with ``runbook`` the runbook's ConfigMap
    (empty: the runbook's Task steps fill it), and, when ``rbac``, the Role that lets
    ``tradechaos step`` pods scale and re-point this run's workloads and Services and
    read and write the runbook."""
    record = {**run.run_record, "epoch": epoch}
    out: list[Obj] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(target, stack, RUN_CONFIGMAP, "tradechaos", "run"),
            "data": {
                "epoch": repr(epoch),
                "run_id": target.run_id,
                "run.json": json.dumps(record, indent=2, sort_keys=True),
            },
        }
    ]
    if runbook:
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": meta(target, stack, names.RUNBOOK_CONFIGMAP, "tradechaos", "runbook"),
                "data": {},
            }
        )
    if rbac:
        rules = [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [names.RUNBOOK_CONFIGMAP],
                "verbs": ["get", "patch"],
            },
            {
                "apiGroups": [""],
                "resources": ["services"],
                "verbs": ["get", "list", "patch", "create"],
            },
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
            {
                "apiGroups": ["apps"],
                "resources": [
                    "deployments",
                    "statefulsets",
                    "deployments/scale",
                    "statefulsets/scale",
                ],
                "verbs": ["get", "list", "patch", "create"],
            },
        ]
        out.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": meta(target, stack, STEP_ROLE, "tradechaos", "step"),
                "rules": rules,
            }
        )
        out.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": meta(target, stack, STEP_ROLE, "tradechaos", "step"),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": STEP_ROLE,
                },
                # Chaos Mesh runs Task pods with the namespace's default ServiceAccount
                "subjects": [
                    {"kind": "ServiceAccount", "name": "default", "namespace": target.namespace}
                ],
            }
        )
    return out


def stack_objects(stack: K8sStack, target: Target, run: RunSettings) -> list[Obj]:
    out: list[Obj] = []
    for service in stack.services:
        out += service_objects(stack, target, run, service)
    return out + link_objects(stack, target)


def flatten(groups: Sequence[Sequence[Obj]]) -> list[Obj]:
    return [obj for group in groups for obj in group]
