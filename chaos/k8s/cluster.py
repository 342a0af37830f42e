"""An exported run on a real API server: apply, status, abort, cleanup (``kubernetes`` client).

Contract
- ``Cluster.connect(kubeconfig, context)`` reads a kubeconfig (``$KUBECONFIG`` or
  ``~/.kube/config``) or, in a pod, the in-cluster config; every request has a timeout.
- ``check_allowed(objects, allow)`` raises ``BadInput`` unless the kube context and every
  object's namespace are on the allow-list (nothing is sent before that).
- ``apply(objects)`` applies server-side (field manager ``tradechaos``), in ``ORDER`` of
  kinds, and returns one ``Applied`` per object: created / configured / unchanged. An
  existing object is first applied as a server-side dry run; when the server's answer
  equals the live object (but for resourceVersion, managedFields and status) nothing is
  sent, so applying the same objects again changes no resourceVersion. ``dry_run=True``
  sends only dry runs ("would be created" / "would be configured"). The run ConfigMap's
  epoch is stamped with the time of the first apply and kept by later ones.
- ``delete_chaos(namespace, run_id)`` deletes the run's Workflows and every Chaos Mesh
  object of it (ours, labelled with the run, and those the Workflow controller made,
  labelled ``chaos-mesh.org/workflow=<run id>``): the abort path, and the first half of
  ``cleanup``, which then deletes every other object labelled with the run. Both find
  objects by label on the server only, so they work after tradechaos was SIGKILLed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from chaos.errors import BadInput, InfrastructureError
from chaos.k8s.manifests import RUN_CONFIGMAP
from chaos.k8s.names import MANAGER, RUN_LABEL

REQUEST_TIMEOUT_S = 20.0
WORKFLOW_LABEL = "chaos-mesh.org/workflow"
CHAOS_GROUP = "chaos-mesh.org"
ORDER = (
    "Namespace", "ConfigMap", "Secret", "ServiceAccount", "Role", "RoleBinding",
    "PersistentVolumeClaim", "Service", "StatefulSet", "Deployment", "Job", "Pod",
)  # fmt: skip
CLEANUP_KINDS = (
    ("batch/v1", "Job"), ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"),
    ("v1", "Pod"), ("v1", "Service"), ("v1", "ConfigMap"), ("v1", "PersistentVolumeClaim"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"), ("rbac.authorization.k8s.io/v1", "Role"),
)  # fmt: skip
_VOLATILE = ("resourceVersion", "managedFields", "generation", "creationTimestamp", "uid")


@dataclass(frozen=True)
class Allow:
    namespaces: tuple[str, ...]
    contexts: tuple[str, ...]


@dataclass(frozen=True)
class Applied:
    kind: str
    name: str
    namespace: str
    outcome: str  # created | configured | unchanged (with dry_run: would be ...)
    resource_version: str = ""

    def describe(self) -> str:
        return f"{self.kind}/{self.name} ({self.namespace}): {self.outcome}"


def rank(obj: dict[str, Any]) -> int:
    kind = str(obj.get("kind"))
    if str(obj.get("apiVersion", "")).startswith(f"{CHAOS_GROUP}/"):
        return len(ORDER) + 1  # chaos last: the stack exists before anything disturbs it
    return ORDER.index(kind) if kind in ORDER else len(ORDER)


def ordered(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(objects, key=rank)  # stable: file order within a kind


def load_objects(paths: Sequence[Any]) -> list[dict[str, Any]]:
    """Every object of the YAML files ``paths`` (in order), skipping empty documents."""
    import yaml

    objects: list[dict[str, Any]] = []
    for path in paths:
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError) as err:
            raise BadInput(f"{path}: cannot read the manifest: {err}") from None
        for index, doc in enumerate(documents):
            if doc is None:
                continue
            if not isinstance(doc, dict) or not doc.get("kind") or not doc.get("metadata"):
                raise BadInput(f"{path}#{index}: not a Kubernetes object")
            objects.append(doc)
    return objects


def check_allowed(objects: Sequence[dict[str, Any]], context: str, allow: Allow) -> None:
    """``BadInput`` unless ``context`` and every object's namespace are allowed."""
    if not allow.contexts:
        raise BadInput(
            f"kube context {context!r} is not allowed: name it with --allow-context {context}"
        )
    if context not in allow.contexts:
        raise BadInput(
            f"kube context {context!r} is not allowed (allowed: {', '.join(allow.contexts)})"
        )
    for obj in objects:
        namespace = str(obj["metadata"].get("namespace", ""))
        if namespace not in allow.namespaces:
            allowed = ", ".join(allow.namespaces) or "none; name one with --allow-namespace"
            raise BadInput(
                f"{obj['kind']}/{obj['metadata'].get('name')}: namespace {namespace!r} "
                f"is not allowed (allowed: {allowed})"
            )


def _strip(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    clean = json.loads(json.dumps(obj, default=str))
    for key in _VOLATILE:
        clean.get("metadata", {}).pop(key, None)
    clean.pop("status", None)
    return clean


class Cluster:
    """One API server, reached through the ``kubernetes`` package's dynamic client."""

    def __init__(self, api_client: Any, context: str) -> None:
        from kubernetes.dynamic import DynamicClient

        self.api_client = api_client
        self.context = context
        self.dynamic = DynamicClient(api_client)  # type: ignore[no-untyped-call]

    @classmethod
    def connect(cls, kubeconfig: str | None = None, context: str | None = None) -> Cluster:
        try:
            from kubernetes import client, config
        except ImportError:
            raise BadInput(
                "the kubernetes package is missing: pip install 'tradechaos[k8s]'"
            ) from None
        try:
            contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=kubeconfig
            )
            chosen = context or (active or {}).get("name", "")
            api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=chosen
            )
        except config.ConfigException as err:
            if kubeconfig or context:
                raise BadInput(f"cannot use the kubeconfig: {err}") from None
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
            except config.ConfigException:
                raise BadInput(f"no kubeconfig and not in a pod: {err}") from None
            return cls(client.ApiClient(), "in-cluster")
        if not api_client.configuration.verify_ssl:
            import urllib3  # the kubeconfig says insecure-skip-tls-verify: said once, not per call

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        names = [c.get("name") for c in contexts or []]
        if context and context not in names:
            raise BadInput(
                f"no context {context!r} in the kubeconfig (known: {', '.join(map(str, names))})"
            )
        return cls(api_client, str(chosen))

    # -- resources -------------------------------------------------------------------
    def resource(self, api_version: str, kind: str) -> Any:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            raise InfrastructureError(
                f"the API server does not serve {kind} ({api_version}); is Chaos Mesh installed?"
            ) from None

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.dynamic.exceptions import DynamicApiError
        from urllib3.exceptions import HTTPError

        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT_S)
        try:
            return fn(*args, **kwargs)
        except DynamicApiError as err:
            reason = _reason(err)
            raise InfrastructureError(f"{what}: {reason}") from None
        except (HTTPError, OSError) as err:
            raise InfrastructureError(f"{what}: the API server did not answer: {err}") from None

    def get(self, api_version: str, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        resource = self.resource(api_version, kind)
        try:
            found = resource.get(name=name, namespace=namespace, _request_timeout=REQUEST_TIMEOUT_S)
        except NotFoundError:
            return None
        except Exception as err:
            raise InfrastructureError(f"reading {kind}/{name}: {_reason(err)}") from None
        return dict(found.to_dict())

    def list_objects(
        self, api_version: str, kind: str, namespace: str | None, selector: str
    ) -> list[dict[str, Any]]:
        resource = self.resource(api_version, kind)
        found = self._call(
            f"listing {kind}", resource.get, namespace=namespace, label_selector=selector
        )
        return [dict(item) for item in found.to_dict().get("items", [])]

    # -- apply -------------------------------------------------------------------------
    def apply(self, objects: Sequence[dict[str, Any]], dry_run: bool = False) -> list[Applied]:
        results = []
        for obj in ordered(objects):
            results.append(self._apply_one(self._stamped(obj), dry_run))
        return results

    def _stamped(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The run ConfigMap with the epoch of the first apply (kept by later applies)."""
        if obj.get("kind") != "ConfigMap" or obj["metadata"].get("name") != RUN_CONFIGMAP:
            return obj
        live = self.get("v1", "ConfigMap", RUN_CONFIGMAP, obj["metadata"]["namespace"])
        data = dict(obj.get("data") or {})
        if live is not None and live.get("data", {}).get("run_id") == data.get("run_id"):
            data = {
                **data,
                **{k: live["data"][k] for k in ("epoch", "run.json") if k in live["data"]},
            }
        else:
            epoch = round(time.time(), 3)
            record = json.loads(data.get("run.json", "{}"))
            record.update(epoch=epoch, started_at=epoch)
            data.update(
                {"epoch": repr(epoch), "run.json": json.dumps(record, indent=2, sort_keys=True)}
            )
        return {**obj, "data": data}

    def _apply_one(self, obj: dict[str, Any], dry_run: bool) -> Applied:
        kind, meta = str(obj["kind"]), obj["metadata"]
        name, namespace = str(meta["name"]), str(meta.get("namespace", ""))
        resource = self.resource(str(obj["apiVersion"]), kind)
        live = self.get(str(obj["apiVersion"]), kind, name, namespace)
        if live is not None:
            owner = live.get("metadata", {}).get("labels", {}).get(RUN_LABEL)
            mine = meta.get("labels", {}).get(RUN_LABEL)
            if owner != mine:
                raise BadInput(
                    f"{kind}/{name} in {namespace} belongs to run {owner!r}, not {mine!r}: "
                    "clean that run up first (tradechaos cleanup --kubernetes)"
                )

        def server_side_apply(dry: bool) -> dict[str, Any]:
            answer = self._call(
                f"applying {kind}/{name}",
                resource.server_side_apply,
                body=obj,
                name=name,
                namespace=namespace or None,
                field_manager=MANAGER,
                force_conflicts=True,
                dry_run="All" if dry else None,
            )
            return dict(answer.to_dict())

        if live is not None:
            # Ask first: a 1.20 server rewrites a StatefulSet on every apply (only the
            # managedFields time differs), so an apply that changes nothing is not sent.
            after = server_side_apply(True)
            if _strip(after) == _strip(live):
                version = str(live.get("metadata", {}).get("resourceVersion", ""))
                return Applied(kind, name, namespace, "unchanged", version)
            if dry_run:
                return Applied(kind, name, namespace, "would be configured", "")
        after = server_side_apply(dry_run)
        version = str(after.get("metadata", {}).get("resourceVersion", ""))
        if live is None:
            return Applied(
                kind, name, namespace, "would be created" if dry_run else "created", version
            )
        return Applied(kind, name, namespace, "configured", version)

    # -- status --------------------------------------------------------------------------
    def chaos_kinds(self) -> list[Any]:
        """Every chaos-mesh.org resource the server serves (empty without Chaos Mesh)."""
        found = []
        for resource in self.dynamic.resources.search(group=CHAOS_GROUP):
            if getattr(resource, "kind", "").endswith("List") or "/" in getattr(
                resource, "name", ""
            ):
                continue
            found.append(resource)
        return found

    def run_objects(
        self, namespace: str | None, run_id: str | None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(kind, object) of every object labelled with the run (any run when None)."""
        selector = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
        for resource in self.chaos_kinds():
            for item in self._items(resource, namespace, selector):
                yield resource.kind, item
        for api_version, kind in CLEANUP_KINDS:
            for item in self._items(self.resource(api_version, kind), namespace, selector):
                yield kind, item

    def _items(self, resource: Any, namespace: str | None, selector: str) -> list[dict[str, Any]]:
        found = self._call(
            f"listing {resource.kind}", resource.get, namespace=namespace, label_selector=selector
        )
        return [dict(item) for item in found.to_dict().get("items", [])]

    # -- abort and cleanup ---------------------------------------------------------------
    def delete_chaos(self, namespace: str | None, run_id: str | None) -> list[str]:
        """Delete the run's Workflows first, then every chaos object of it; see the module doc."""
        deleted: list[str] = []
        kinds = self.chaos_kinds()
        first = [r for r in kinds if r.kind in ("Workflow", "Schedule")]
        rest = [r for r in kinds if r.kind not in ("Workflow", "Schedule")]
        own = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
        workflows: set[str] = set()
        for resource in first:
            for item in self._items(resource, namespace, own):
                if resource.kind == "Workflow":
                    workflows.add(item["metadata"]["name"])
                deleted += self._delete(resource, item)
        made = f"{WORKFLOW_LABEL} in ({','.join(sorted(workflows))})" if workflows else None
        if run_id and not made:
            made = f"{WORKFLOW_LABEL}={run_id}"
        for resource in rest:
            for selector in [own, made] if made else [own]:
                for item in self._items(resource, namespace, selector):
                    deleted += self._delete(resource, item)
        if made:
            for item in self._items(self.resource("v1", "Pod"), namespace, made):
                deleted += self._delete(self.resource("v1", "Pod"), item)
        return deleted

    def cleanup(self, namespace: str | None, run_id: str | None) -> list[str]:
        """Every object labelled with the run (any run when None), chaos objects first."""
        deleted = self.delete_chaos(namespace, run_id)
        selector = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
        for api_version, kind in CLEANUP_KINDS:
            resource = self.resource(api_version, kind)
            for item in self._items(resource, namespace, selector):
                deleted += self._delete(resource, item)
        return deleted

    def _delete(self, resource: Any, item: dict[str, Any]) -> list[str]:
        from kubernetes.dynamic.exceptions import NotFoundError

        meta = item["metadata"]
        label = f"{resource.kind}/{meta['name']} ({meta.get('namespace', '')})"
        try:
            resource.delete(
                name=meta["name"],
                namespace=meta.get("namespace"),
                body={"propagationPolicy": "Background"},
                _request_timeout=REQUEST_TIMEOUT_S,
            )
        except NotFoundError:
            return []
        except Exception as err:
            raise InfrastructureError(f"deleting {label}: {_reason(err)}") from None
        return [label]


def _reason(err: Any) -> str:
    body = getattr(err, "body", None) or getattr(err, "summary", lambda: None)()
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            message = json.loads(body).get("message")
            if message:
                return str(message)
        except ValueError:
            pass
        return body[:300]
    return str(err)[:300]
