"""What ``tradechaos step db_upgrade`` asks of the Kubernetes API inside the run's namespace.

Contract (``chaos.k8s.stepbackend.KubeControl``)
- ``scale(service, n, timeout_s)`` sets the service's Deployment/StatefulSet to ``n``
  replicas and waits until ``n`` are ready (0: until no pod of it is left); ``StackError``
  when the timeout expires.
- ``copy_service(source, new, timeout_s)`` creates a copy of ``source``'s workload and
  Service named for ``new`` (labels re-pointed, postStart hooks dropped: an empty instance)
  and waits until it is ready; returns its Service endpoint.
- ``point_link(link, server)`` re-points the link's Service at ``server``'s pods;
  ``link_server(link)`` says where it points now.
- ``read_runbook()`` / ``write_runbook(entries)``: what the runbook's steps tell later ones
  (``"snapshot:<label>"`` -> its answer), kept in the run's runbook ConfigMap, one data key
  per entry (created empty by the export; a Task step runs in its own pod, so nothing else
  carries it from one step to the next). ``StackError`` when it is missing or unreadable.
Objects are found by the run label and the ``app.kubernetes.io/name`` label; every call
has a timeout. Needs the Role the export adds (``tradechaos-step``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from typing import Any

from chaos.backends.base import Endpoint
from chaos.errors import StackError
from chaos.k8s import names

POLL_S = 0.5
REQUEST_TIMEOUT_S = 20.0


class KubeOps:
    def __init__(
        self, api_client: Any, namespace: str, run_id: str, domain: str = "cluster.local"
    ) -> None:
        from kubernetes import client

        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.run_id = run_id
        self.domain = domain

    @classmethod
    def connect(cls, namespace: str, run_id: str) -> KubeOps:
        from chaos.k8s.cluster import Cluster

        return cls(Cluster.connect().api_client, namespace, run_id)

    def _selector(self, service: str) -> str:
        return f"{names.NAME_LABEL}={names.label_value(service)},{names.RUN_LABEL}={self.run_id}"

    def _workload(self, service: str) -> tuple[str, Any]:
        for kind in ("deployment", "stateful_set"):
            found = getattr(self.apps, f"list_namespaced_{kind}")(
                self.namespace,
                label_selector=self._selector(service),
                _request_timeout=REQUEST_TIMEOUT_S,
            ).items
            if found:
                return kind, found[0]
        raise StackError(f"no workload of {service!r} in run {self.run_id} ({self.namespace})")

    def replicas(self, service: str) -> int:
        _kind, workload = self._workload(service)
        return int(workload.spec.replicas or 0)

    def scale(self, service: str, replicas: int, timeout_s: float) -> None:
        kind, workload = self._workload(service)
        body = {"spec": {"replicas": replicas}}
        getattr(self.apps, f"patch_namespaced_{kind}")(
            workload.metadata.name, self.namespace, body, _request_timeout=REQUEST_TIMEOUT_S
        )
        self._wait(service, replicas, timeout_s)

    def _wait(self, service: str, replicas: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if replicas == 0:
                pods = self.core.list_namespaced_pod(
                    self.namespace,
                    label_selector=self._selector(service),
                    _request_timeout=REQUEST_TIMEOUT_S,
                ).items
                done = not pods
            else:
                _kind, workload = self._workload(service)
                done = int((workload.status and workload.status.ready_replicas) or 0) >= replicas
            if done:
                return
            if time.monotonic() >= deadline:
                raise StackError(
                    f"{service}: not at {replicas} ready replicas after {timeout_s:g}s"
                )
            time.sleep(POLL_S)  # polling a condition until its deadline

    def copy_service(self, source: str, new_name: str, timeout_s: float) -> Endpoint:
        kind, workload = self._workload(source)
        service = self.core.read_namespaced_service(
            workload.metadata.name, self.namespace, _request_timeout=REQUEST_TIMEOUT_S
        )
        k8s_name = names.dns_label(new_name)
        body = self.apps.api_client.sanitize_for_serialization(workload)
        body = copy.deepcopy(body)
        for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
            body["metadata"].pop(key, None)
        body.pop("status", None)
        body["metadata"]["name"] = k8s_name
        for labels in (
            body["metadata"]["labels"],
            body["spec"]["selector"]["matchLabels"],
            body["spec"]["template"]["metadata"]["labels"],
        ):
            labels[names.NAME_LABEL] = names.label_value(new_name)
        for container in body["spec"]["template"]["spec"]["containers"]:
            container.pop("lifecycle", None)
        if kind == "stateful_set":
            body["spec"]["serviceName"] = k8s_name
            body["spec"]["replicas"] = 1
        live: Any = self.core.api_client.sanitize_for_serialization(service)
        svc: Any = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": k8s_name,
                "namespace": self.namespace,
                "labels": {
                    **live["metadata"]["labels"],
                    names.NAME_LABEL: names.label_value(new_name),
                },
            },
            "spec": {
                "selector": {
                    **live["spec"]["selector"],
                    names.NAME_LABEL: names.label_value(new_name),
                },
                "ports": live["spec"]["ports"],
            },
        }
        self.core.create_namespaced_service(self.namespace, svc, _request_timeout=REQUEST_TIMEOUT_S)
        getattr(self.apps, f"create_namespaced_{kind}")(
            self.namespace, body, _request_timeout=REQUEST_TIMEOUT_S
        )
        self._wait(new_name, 1, timeout_s)
        port = int(svc["spec"]["ports"][0]["port"])
        return Endpoint(f"{k8s_name}.{self.namespace}.svc.{self.domain}", port)

    def _link_service(self, link: str) -> Any:
        found = self.core.list_namespaced_service(
            self.namespace,
            label_selector=f"{names.RUN_LABEL}={self.run_id},{names.COMPONENT_LABEL}=link",
            _request_timeout=REQUEST_TIMEOUT_S,
        ).items
        for service in found:
            annotations = (service.metadata.annotations if service.metadata else None) or {}
            if annotations.get("tradechaos.io/link") == link:
                return service
        raise StackError(f"no Service for link {link!r} in run {self.run_id}")

    def point_link(self, link: str, server: str) -> None:
        service = self._link_service(link)
        body = {
            "spec": {
                "selector": {
                    names.NAME_LABEL: names.label_value(server),
                    names.RUN_LABEL: self.run_id,
                }
            }
        }
        self.core.patch_namespaced_service(
            service.metadata.name, self.namespace, body, _request_timeout=REQUEST_TIMEOUT_S
        )

    def link_server(self, link: str) -> str | None:
        try:
            service = self._link_service(link)
        except StackError:
            return None
        return str((service.spec.selector or {}).get(names.NAME_LABEL) or "") or None

    def read_runbook(self) -> dict[str, dict[str, Any]]:
        try:
            found = self.core.read_namespaced_config_map(
                names.RUNBOOK_CONFIGMAP, self.namespace, _request_timeout=REQUEST_TIMEOUT_S
            )
        except Exception as err:  # ApiException or a connection error: one sentence
            raise StackError(
                f"the runbook ConfigMap {names.RUNBOOK_CONFIGMAP} of run {self.run_id} "
                f"({self.namespace}) could not be read: {_reason(err)}"
            ) from None
        entries: dict[str, dict[str, Any]] = {}
        for data_key, text in sorted((found.data or {}).items()):
            try:
                item = json.loads(text)
            except json.JSONDecodeError as err:
                raise StackError(
                    f"the runbook ConfigMap's entry {data_key} is not JSON: {err}"
                ) from None
            if isinstance(item, dict) and isinstance(item.get("answer"), dict):
                entries[str(item.get("key"))] = item["answer"]
        return entries

    def write_runbook(self, entries: dict[str, dict[str, Any]]) -> None:
        """Add (or replace) ``entries``, each under a data key of its own: a merge patch,
        so steps in parallel branches of the Workflow never undo each other's."""
        if not entries:
            return
        data = {
            _data_key(key): json.dumps({"key": key, "answer": answer}, default=str)
            for key, answer in entries.items()
        }
        try:
            self.core.patch_namespaced_config_map(
                names.RUNBOOK_CONFIGMAP,
                self.namespace,
                {"data": data},
                _request_timeout=REQUEST_TIMEOUT_S,
            )
        except Exception as err:
            raise StackError(
                f"the runbook ConfigMap {names.RUNBOOK_CONFIGMAP} of run {self.run_id} "
                f"could not be written: {_reason(err)}"
            ) from None


def _data_key(key: str) -> str:
    """A ConfigMap data key (``[-._a-zA-Z0-9]+``) for a runbook key such as ``snapshot:pre``:
    its readable part and a digest of the whole (two keys never share one)."""
    readable = re.sub(r"[^-._a-zA-Z0-9]+", "-", key).strip("-.")[:200] or "entry"
    return f"{readable}.{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _reason(err: Exception) -> str:
    reason = getattr(err, "reason", None)
    status = getattr(err, "status", None)
    return f"{status} {reason}" if status is not None else str(err)
