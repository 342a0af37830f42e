"""Kubernetes names, labels, selectors and durations used by every exported object.

Contract
- ``dns_label(text)`` is a DNS-1035 label (lowercase, ``_``/``.`` -> ``-``, starts with a
  letter, at most 63 characters; a stable hash suffix keeps shortened names distinct).
- Every object carries ``labels(stack, run_id, name)``: ``app.kubernetes.io/name``,
  ``app.kubernetes.io/part-of``, ``app.kubernetes.io/managed-by: tradechaos`` and
  ``tradechaos.io/run``; cleanup finds every object of a run by ``RUN_LABEL`` alone.
- ``go_duration(seconds)`` is accepted by Go's ``time.ParseDuration`` and by Chaos Mesh's
  latency pattern (one number, one unit): whole seconds as ``"5s"``, else milliseconds.
"""

from __future__ import annotations

import hashlib
import math
import re

NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
RUN_LABEL = "tradechaos.io/run"
SITE_LABEL = "tradechaos.io/site"
STEP_LABEL = "tradechaos.io/step"
MANAGER = "tradechaos"
# what the runbook's Task steps tell later ones (a snapshot's answer): one ConfigMap per run
RUNBOOK_CONFIGMAP = "tradechaos-runbook"
# runbook steps whose answers later steps read (chaos.faults.response)
RUNBOOK_ACTIONS = ("snapshot", "chain_rollback", "replay")

_NOT_ALLOWED = re.compile(r"[^a-z0-9-]+")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def dns_label(text: str, limit: int = 63) -> str:
    """``text`` as a DNS-1035 label of at most ``limit`` characters (see the module doc)."""
    name = _NOT_ALLOWED.sub("-", text.lower().replace("_", "-").replace(".", "-"))
    name = re.sub("-{2,}", "-", name).strip("-")
    if not name or not name[0].isalpha():
        name = f"x-{name}".rstrip("-")
    if len(name) > limit:
        digest = hashlib.sha256(text.encode()).hexdigest()[:6]
        name = name[: limit - 7].rstrip("-") + "-" + digest
    return name


def label_value(text: str) -> str:
    """``text`` if it is a valid label value, else a DNS label made from it."""
    return text if len(text) <= 63 and _LABEL_VALUE.match(text) else dns_label(text)


def labels(stack: str, run_id: str, name: str, component: str | None = None) -> dict[str, str]:
    out = {
        NAME_LABEL: label_value(name),
        PART_OF_LABEL: label_value(stack),
        MANAGED_BY_LABEL: MANAGER,
        RUN_LABEL: run_id,
    }
    if component:
        out[COMPONENT_LABEL] = component
    return out


def run_selector(run_id: str) -> str:
    """The label selector (text) matching every object of one run."""
    return f"{RUN_LABEL}={run_id}"


def go_duration(seconds: float) -> str:
    """``seconds`` (>= 0) as a Go duration string; see the module doc."""
    if seconds < 0 or math.isnan(seconds):
        raise ValueError(f"negative duration {seconds!r}")
    millis = round(seconds * 1000)
    if millis % 1000 == 0:
        return f"{millis // 1000}s"
    return f"{millis}ms"
