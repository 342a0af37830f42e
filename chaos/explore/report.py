"""What an exploration leaves in its folder: ``minimal.yaml``, ``explore.json``, ``explore.html``.

``minimal.yaml`` is an ordinary experiment file (``chaos.experiment.writer``): the backbone
and the minimal schedule, one variant (the explored one) whose ``expect.violated`` lists the
invariants every run of the minimal schedule violated; invariants whose verdict changed
between those runs are left out, so ``tradechaos run minimal.yaml`` gives the same answer
each time it reproduces. It is loaded back with the loader before this module returns.

``explore.json`` (docs/explore.md): every trial (schedule, verdicts, signals, wall time),
the coverage of the space, the finds with their reproduction rates, the shrink path and
the figures (trials per 10 minutes, per-trial overhead).
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaos import __version__
from chaos.errors import InfrastructureError
from chaos.experiment.loader import load
from chaos.experiment.model import Experiment
from chaos.experiment.writer import to_yaml
from chaos.files.atomic import replace_json, replace_text

if TYPE_CHECKING:
    from chaos.explore.confirm import Find
    from chaos.explore.state import ExplorationView

MINIMAL = "minimal.yaml"
JSON = "explore.json"
HTML = "explore.html"


def write(exploration: ExplorationView) -> dict[str, Path]:
    """Write the three files (minimal.yaml only when something was found)."""
    from chaos.explore.html import render

    paths: dict[str, Path] = {}
    minimal = minimal_experiment(exploration)
    if minimal is not None:
        path = exploration.folder / MINIMAL
        replace_text(path, to_yaml(minimal, minimal_header(exploration), path.parent))
        try:
            load(path)
        except Exception as err:  # a bug of ours, never the user's: say so plainly
            raise InfrastructureError(f"{path} does not load back: {err}") from None
        paths[MINIMAL] = path
    paths[JSON] = write_json(exploration)
    html_path = exploration.folder / HTML
    replace_text(html_path, render(exploration, document(exploration)))
    paths[HTML] = html_path
    return paths


def write_json(exploration: ExplorationView) -> Path:
    path = exploration.folder / JSON
    replace_json(path, document(exploration))
    return path


def minimal_experiment(exploration: ExplorationView) -> Experiment | None:
    find, target = exploration.minimal_find, exploration.target
    if find is None or target is None:
        return None
    plan = exploration.plan
    always = set(find.always()) | {target}
    expect = tuple(name for name in plan.invariants if name in always)
    stable = set(find.stable()) | always
    invariants = tuple(name for name in plan.invariants if name in stable)
    experiment = plan.experiment_for(find.candidate, expect)
    description = (
        f"Found by tradechaos explore in {plan.experiment.path} (variant {plan.variant.name}) "
        f"and shrunk: {find.candidate.describe()}. Violates {', '.join(expect)}."
    )
    return replace(
        experiment,
        name=f"{plan.experiment.name[:72]}-minimal",
        description=description,
        invariants=invariants,
        incident=None,
    )


def minimal_header(exploration: ExplorationView) -> list[str]:
    plan, find = exploration.plan, exploration.minimal_find
    assert find is not None
    first = exploration.finds[0] if exploration.finds else find
    target = exploration.target
    runs = find.runs()
    hits = round(find.rate(target) * runs)
    lines = [
        "Minimal regression experiment written by `tradechaos explore` on "
        f"{dt.date.today().isoformat()}.",
        f"Explored {plan.experiment.path}, variant {plan.variant.name}, "
        f"search seed {exploration.settings.seed}.",
    ]
    if exploration.settings.command:
        lines.append(f"Command: {exploration.settings.command}")
    lines += [
        f"First find: trial {first.trials[0]}, {len(first.candidate.steps)} fault step(s): "
        f"{first.candidate.describe()}",
        f"Minimal: trial {find.trials[0]}, {len(find.candidate.steps)} fault step(s), "
        f"reproduced {hits}/{runs}{' (FLAKY)' if hits < runs else ''}.",
        f"`tradechaos run` on this file exits 0 while the stack still violates {target}.",
    ]
    if exploration.status == "interrupted" or (
        exploration.shrunk is not None and not exploration.shrunk.complete
    ):
        lines.append("Shrinking stopped before the end (budget, time or a signal).")
    return lines


def document(exploration: ExplorationView) -> dict[str, Any]:
    plan, settings = exploration.plan, exploration.settings
    return {
        "tradechaos": __version__,
        "command": settings.command,
        "experiment": plan.experiment.name,
        "file": plan.experiment.path,
        "variant": plan.variant.name,
        "status": exploration.status,
        "message": exploration.message,
        "stopped_by": exploration.stop_reason(),
        "seed": settings.seed,
        "budget": settings.budget,
        "time_limit_s": settings.time_s,
        "jobs": settings.jobs,
        "started_at": exploration.started_wall,
        "elapsed_s": round(exploration.elapsed(), 3),
        "space": plan.space.to_dict(),
        "backbone": [{"id": s.id, "step": s.describe()} for s in plan.backbone],
        "target": exploration.target,
        "figures": figures(exploration),
        "coverage": coverage(exploration),
        "trials": [_trial(record) for record in exploration.records],
        "finds": [_find(find, settings.invariant) for find in exploration.finds],
        "shrink": _shrink(exploration),
        "minimal": _minimal(exploration),
    }


def figures(exploration: ExplorationView) -> dict[str, Any]:
    done = [r for r in exploration.records if r.outcome is not None]
    whole = [r for r in done if r.outcome is not None and not r.outcome.interrupted]
    walls = [r.outcome.wall_s for r in whole if r.outcome is not None]
    overheads = [r.outcome.wall_s - r.candidate.duration_s for r in whole if r.outcome is not None]
    elapsed = exploration.elapsed()
    purposes = ("search", "confirm", "shrink", "minimal")
    by_purpose = {p: sum(1 for r in done if r.purpose == p) for p in purposes}
    return {
        "trials": len(done),
        **{f"{purpose}_trials": count for purpose, count in by_purpose.items()},
        "trials_per_10min": round(len(done) * 600.0 / elapsed, 2) if elapsed > 0 and done else None,
        "median_trial_s": round(statistics.median(walls), 3) if walls else None,
        "median_overhead_s": round(statistics.median(overheads), 3) if overheads else None,
    }


def coverage(exploration: ExplorationView) -> dict[str, Any]:
    searcher = exploration.searcher
    combos = sorted(searcher.covered)
    return {
        "covered": len(combos),
        "total": searcher.coverage_total(),
        "phases": list(exploration.plan.phases()),
        "rows": [list(row) for row in searcher.rows()],
        "combinations": [list(c) for c in combos],
    }


def _trial(record: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "number": record.number,
        "purpose": record.purpose,
        "kind": record.kind,
        "parent": record.parent,
        "file": record.file,
        "schedule": record.candidate.describe(),
        "steps": record.candidate.to_dict(),
    }
    if record.outcome is not None:
        entry.update(record.outcome.to_dict())
        entry["overhead_s"] = round(record.outcome.wall_s - record.candidate.duration_s, 3)
    return entry


def _find(find: Find, invariant: str | None) -> dict[str, Any]:
    return {
        "trials": list(find.trials),
        "rate": round(find.rate(invariant), 4),
        "runs": find.runs(),
        "solid": find.solid(invariant),
        "violated": sorted({v for o in find.outcomes for v in o.violated}),
        "always_violated": list(find.always()),
        "schedule": find.candidate.describe(),
        "steps": len(find.candidate.steps),
    }


def _shrink(exploration: ExplorationView) -> dict[str, Any] | None:
    shrunk = exploration.shrunk
    if shrunk is None:
        return None
    return {
        "invariant": exploration.target,
        "trials": shrunk.trials,
        "complete": shrunk.complete,
        "path": [
            {
                "trial": step.trial,
                "reason": step.reason,
                "schedule": step.candidate.describe(),
                "steps": len(step.candidate.steps),
                "duration": step.candidate.duration_s,
                "users": step.candidate.users,
            }
            for step in shrunk.path
        ],
    }


def _minimal(exploration: ExplorationView) -> dict[str, Any] | None:
    find = exploration.minimal_find
    if find is None or exploration.target is None:
        return None
    experiment = minimal_experiment(exploration)
    assert experiment is not None
    first = exploration.finds[0] if exploration.finds else find
    return {
        "file": str(exploration.folder / MINIMAL),
        "trials": list(find.trials),
        "rate": round(find.rate(exploration.target), 4),
        "flaky": not find.solid(exploration.target),
        "expect_violated": list(experiment.variants[0].expect_violated),
        "invariants": list(experiment.invariants),
        "fault_steps": len(find.candidate.steps),
        "method_steps": len(experiment.method),
        "first_find_fault_steps": len(first.candidate.steps),
        "first_find_method_steps": len(exploration.plan.backbone) + len(first.candidate.steps),
        "schedule": find.candidate.describe(),
    }
