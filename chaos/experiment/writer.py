"""``Experiment`` -> experiment file text: the inverse of ``chaos.experiment.loader``.

``to_yaml(experiment)`` writes the fields the loader reads (docs/experiment-format.md), in
the order the incident files use, each method step on one line. Contract: for every
``Experiment`` the loader built, ``load(to_yaml(e))`` equals ``e`` except for ``path`` and
the line numbers. Defaults are left out (no ``stack:`` for the reference stack without
options). The stack file is named relative to ``base_dir`` (where the text will be
written) when given, else by its absolute path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from chaos.experiment.model import (
    AbortCondition,
    Experiment,
    Incident,
    LoadSpec,
    Probe,
    StackRef,
    Step,
    Variant,
)


def duration_text(seconds: float) -> str:
    """``seconds`` (to the millisecond) as an experiment file writes a duration: ``250ms``,
    ``1.5s``, ``20s``; ``parse_duration`` reads it back."""
    seconds = round(float(seconds), 3)
    if 0 < seconds < 1:
        return f"{_short(round(seconds * 1000, 3))}ms"
    return f"{_short(seconds)}s"


def _short(number: float) -> str:
    return str(int(number)) if number.is_integer() else repr(number)


class _Flow(dict[str, Any]):
    """A mapping written on one line (``{at: 1s, action: stop}``)."""


class _FlowList(list[Any]):
    """A list written on one line (``[a, b]``)."""


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # list items indented under their key


def _flow_map(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


def _flow_list(dumper: yaml.SafeDumper, data: _FlowList) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


def _plain_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items())


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = ">" if len(data) > 80 and "\n" not in data.rstrip("\n") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _text)
_Dumper.add_representer(_Flow, _flow_map)
_Dumper.add_representer(_FlowList, _flow_list)
_Dumper.add_representer(dict, _plain_dict)


def to_yaml(
    experiment: Experiment, header: Iterable[str] = (), base_dir: Path | None = None
) -> str:
    """The experiment file text; each line of ``header`` becomes a leading comment."""
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header)
    doc = to_document(experiment, base_dir)
    method, invariants = doc.pop("method"), doc.pop("invariants")
    body = _dump(doc, width=100)
    steps = "".join(f"  - {_dump(step, width=1_000_000)}" for step in method)
    return f"{comments}{body}method:\n{steps}{_dump({'invariants': invariants}, 1_000_000)}"


def _dump(value: Any, width: int) -> str:
    return yaml.dump(
        value,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=width,
    )


def to_document(experiment: Experiment, base_dir: Path | None = None) -> dict[str, Any]:
    """The experiment as the plain mapping an experiment file holds."""
    doc: dict[str, Any] = {"name": experiment.name}
    if experiment.description:
        doc["description"] = experiment.description
    if experiment.incident is not None:
        doc["incident"] = _incident(experiment.incident)
    doc["seed"] = experiment.seed
    doc["duration"] = duration_text(experiment.duration_s)
    if experiment.stack != StackRef():
        doc["stack"] = _stack(experiment.stack, base_dir)
    doc["load"] = _load(experiment.load)
    if experiment.params:
        doc["params"] = _Flow(_plain(experiment.params))
    if experiment.steady_state:
        doc["steady_state"] = {"probes": [_probe(p) for p in experiment.steady_state]}
    if experiment.abort_when:
        doc["safety"] = {"abort_when": [_abort(c) for c in experiment.abort_when]}
    doc["variants"] = {v.name: _variant(v, experiment.stack) for v in experiment.variants}
    doc["method"] = [_step(step) for step in experiment.method]
    doc["invariants"] = _FlowList(experiment.invariants)
    return doc


def _incident(incident: Incident) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key in ("date", "operator"):
        if getattr(incident, key) is not None:
            doc[key] = getattr(incident, key)
    if incident.sources:
        doc["sources"] = list(incident.sources)
    for key in ("mechanism", "assumptions"):
        if getattr(incident, key) is not None:
            doc[key] = getattr(incident, key)
    return doc


def _load(load: LoadSpec) -> _Flow:
    doc = _Flow(users=load.users, spawn_rate=_number(load.spawn_rate))
    if load.retry_unknown is not LoadSpec().retry_unknown:
        doc["retry_unknown"] = load.retry_unknown
    if load.accounts is not None:
        doc["accounts"] = load.accounts
    if load.workers:
        doc["workers"] = load.workers
    return doc


def _probe(probe: Probe) -> _Flow:
    doc = _Flow(probe=probe.kind)
    if probe.kind == "error_rate":
        doc["max"] = probe.limit
    elif probe.kind == "p99_latency":
        doc["max"] = duration_text(probe.limit or 0.0)
    elif probe.kind == "trading_mode":
        doc["mode"] = probe.mode
    return doc


def _abort(condition: AbortCondition) -> _Flow:
    doc = _Flow(probe=condition.kind)
    if condition.kind == "error_rate":
        doc["above"] = condition.above
    elif condition.kind == "p99_latency":
        doc["above"] = duration_text(condition.above or 0.0)
    elif condition.kind == "trading_mode":
        doc["mode"] = condition.mode
    doc["for"] = duration_text(condition.for_s)
    return doc


def _stack(stack: StackRef, base_dir: Path | None) -> _Flow:
    doc = _Flow()
    if stack.path != StackRef().path:
        path = Path(stack.path)
        doc["file"] = os.path.relpath(path, base_dir) if base_dir is not None else str(path)
    if stack.options:
        doc["options"] = _Flow(_plain(stack.options))
    return doc


def _variant(variant: Variant, stack: StackRef) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "mitigations": _FlowList(variant.mitigations) if variant.mitigations else "none"
    }
    own = {k: v for k, v in variant.options.items() if stack.options.get(k, object()) != v}
    if own:
        doc["options"] = _Flow(_plain(own))
    if variant.expect_violated:
        doc["expect"] = _Flow(violated=_FlowList(variant.expect_violated))
    return doc


def _step(step: Step) -> _Flow:
    doc = _Flow(id=step.id)
    if step.after is not None:
        doc["after"] = step.after
        if step.at_s:
            doc["at"] = duration_text(step.at_s)
    else:
        doc["at"] = duration_text(step.at_s)
    if step.for_s is not None:
        doc["for"] = duration_text(step.for_s)
    doc["action"] = step.action
    if step.target is not None:
        doc["target"] = step.target if isinstance(step.target, str) else _FlowList(step.target)
    for key, value in step.params.items():
        doc[key] = _plain(value)
    if step.variants is not None:
        doc["variants"] = _FlowList(step.variants)
    return doc


def _plain(value: Any) -> Any:
    """Plain data with nested mappings and lists on one line."""
    if isinstance(value, Mapping):
        return _Flow({str(k): _plain(v) for k, v in value.items()})
    if isinstance(value, Sequence) and not isinstance(value, str):
        return _FlowList(_plain(v) for v in value)
    return value


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
