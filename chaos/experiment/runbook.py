"""What the response steps of a method say about each other (issue 21), checked when the
experiment is loaded: in every variant a step runs in,
- a ``chain_rollback`` with ``to: LABEL`` follows (in the method's order, and not planned
  to start before it) a ``snapshot`` step that takes snapshot LABEL (its ``label``, or its
  id when it gives none);
- a ``replay`` with ``rollback: ID`` follows the ``chain_rollback`` step ID;
- no two ``snapshot`` steps take the same label (a stack keeps one snapshot per name).
Each problem names the step's field and line, and the variant when others are fine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from chaos.experiment.model import Step, Variant
from chaos.files.fields import Reader
from chaos.files.yamlsource import LineDict, LineList


def snapshot_label(step: Step) -> str:
    """The label a ``snapshot`` step takes: its ``label``, else its id."""
    label = step.params.get("label")
    return label if isinstance(label, str) and label else step.id


def check_runbook(
    r: Reader,
    items: LineList,
    steps: Sequence[Step],
    variants: Sequence[Variant],
    times: Mapping[str, tuple[float, float]],
) -> None:
    names = [v.name for v in variants]
    for position, step in enumerate(steps):
        item = items[step.index]
        if not isinstance(item, LineDict):
            continue
        earlier = steps[:position]
        problems: dict[str, tuple[str, list[str]]] = {}  # field -> (first text, variants)
        runs = [v for v in names if step.runs_in(v)]
        for variant in runs:
            problem = _problem(step, [s for s in earlier if s.runs_in(variant)], times)
            if problem is not None:
                problems.setdefault(problem[0], (problem[1], []))[1].append(variant)
        for field, (text, where) in problems.items():
            suffix = "" if len(where) == len(runs) else f" (variant {', '.join(where)})"
            line = item.line_of(field) if field in item else item.line
            r.fail(line, f"method[{step.index}].{field}", text + suffix)


def _problem(
    step: Step, earlier: list[Step], times: Mapping[str, tuple[float, float]]
) -> tuple[str, str] | None:
    if step.action == "snapshot":
        label = snapshot_label(step)
        twin = next((s for s in earlier if s.action == "snapshot" and snapshot_label(s) == label),
                    None)  # fmt: skip
        if twin is not None:
            return "label", f"step {twin.id!r} takes snapshot {label!r} already (one per name)"
        return None
    if step.action == "chain_rollback" and isinstance(step.params.get("to"), str):
        label = str(step.params["to"])
        taken = [s for s in earlier if s.action == "snapshot"]
        source = next((s for s in reversed(taken) if snapshot_label(s) == label), None)
        if source is None:
            known = ", ".join(sorted({snapshot_label(s) for s in taken})) or "none"
            return "to", (f"no earlier snapshot step takes snapshot {label!r} (snapshots "
                          f"taken before this step: {known})")  # fmt: skip
        return _not_before(step, source, times, "to")
    if step.action == "replay" and isinstance(step.params.get("rollback"), str):
        wanted = str(step.params["rollback"])
        rollbacks = [s for s in earlier if s.action == "chain_rollback"]
        source = next((s for s in rollbacks if s.id == wanted), None)
        if source is None:
            known = ", ".join(s.id for s in rollbacks) or "none"
            return "rollback", (f"no earlier chain_rollback step has id {wanted!r} "
                                f"(earlier chain_rollback steps: {known})")  # fmt: skip
        return _not_before(step, source, times, "rollback")
    return None


def _not_before(
    step: Step, source: Step, times: Mapping[str, tuple[float, float]], field: str
) -> tuple[str, str] | None:
    start, source_start = times[step.id][0], times[source.id][0]
    if source_start > start:
        return field, (f"step {source.id!r} is planned at {source_start:g}s, after this step "
                       f"({start:g}s)")  # fmt: skip
    return None
