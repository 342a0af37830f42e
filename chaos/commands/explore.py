"""``tradechaos explore FILE``: search fault schedules for a violation, confirm it, shrink it
to a minimal regression experiment (``chaos.explore``; docs/explore.md)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from chaos.commands.stackargs import add_load_workers_argument, check_load_workers
from chaos.errors import UsageError
from chaos.experiment.loader import load
from chaos.files.durations import parse_duration
from chaos.host.runs import default_out_dir

EXAMPLE = """examples:
  tradechaos explore experiments/incidents/dydx-2025-oracle-restart.yaml --variant vulnerable
  tradechaos explore x.yaml --variant vulnerable --time 15m --jobs 2
  tradechaos explore x.yaml --space my-space.yaml --budget 40 --seed 3
  tradechaos explore x.yaml --dry-run           # the space and the first schedules, run nothing
  tradechaos run runs/<...>-explore/minimal.yaml   # the regression experiment it wrote

The space of schedules is the file's explore: section, or --space SPACE.yaml, or (neither)
every link x network toxics, every service x process faults, every venue x data faults,
around the steps --no-faults keeps. Each trial is an ordinary run on a fresh stack.

exit codes: 1 a violation was found and minimal.yaml written, 0 none within the budget,
2 bad input, 3 infrastructure failure, 130 interrupted (what was found is kept)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explore",
        help="search fault schedules for a violation and shrink it to a minimal experiment",
        description="Search fault schedules around an experiment's fixed steps for a "
        "violation of its invariants; confirm it by re-running, shrink it (fewer, shorter, "
        "weaker, earlier faults; a shorter method; fewer users), and write minimal.yaml, "
        "explore.json and explore.html.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="experiment file")
    parser.add_argument("--variant", metavar="V", help="the variant to explore (default: first)")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("--budget", type=int, metavar="RUNS", help="search trials (default 20)")
    limit.add_argument(
        "--time", metavar="D", help="stop after this long, e.g. 15m (no trial starts after it)"
    )
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="trials at once")
    parser.add_argument(
        "--seed", type=int, metavar="S", help="search seed (default: the experiment's seed)"
    )
    parser.add_argument("--space", metavar="SPACE.yaml", help="the space to search")
    parser.add_argument("--invariant", metavar="NAME", help="search for this invariant only")
    parser.add_argument("--confirm", type=int, metavar="N", help="re-runs of a find (default 2)")
    parser.add_argument(
        "--shrink-budget", type=int, metavar="N", help="trials while shrinking (default 40)"
    )
    parser.add_argument(
        "--out", default=None, metavar="DIR", help="run folders (default: $TRADECHAOS_OUT or runs/)"
    )
    parser.add_argument("--backend", choices=("process", "docker"), default="process")
    parser.add_argument("--toxiproxy-url", metavar="URL", help="use this Toxiproxy server")
    add_load_workers_argument(parser)
    parser.add_argument(
        "--dry-run", action="store_true", help="print the space and the first schedules only"
    )
    parser.add_argument("--json", action="store_true", help="print explore.json's summary")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from chaos.explore.names import stack_names
    from chaos.explore.schedule import Plan
    from chaos.explore.spaceload import load_space
    from chaos.explore.state import Settings

    experiment = load(args.file)
    if args.load_workers is not None:  # every trial (and minimal.yaml) runs with them
        check_load_workers(experiment, args.load_workers)
        load_spec = replace(experiment.load, workers=args.load_workers)
        experiment = replace(experiment, load=load_spec)
    variant = _variant(experiment, args.variant)
    space = load_space(experiment, variant, args.space)
    if args.invariant is not None and args.invariant not in experiment.invariants:
        known = ", ".join(experiment.invariants)
        raise UsageError(f"--invariant {args.invariant!r} is not checked by {args.file} ({known})")
    for name in ("jobs", "budget", "confirm", "shrink_budget"):
        value = getattr(args, name)
        if value is not None and value < (1 if name in ("jobs", "budget") else 0):
            raise UsageError(f"--{name.replace('_', '-')} must not be {value}")
    time_s = _time(args.time)
    settings = Settings(
        budget=None if time_s is not None else (args.budget or 20),
        time_s=time_s,
        jobs=args.jobs,
        seed=experiment.seed if args.seed is None else args.seed,
        confirm=space.confirm if args.confirm is None else args.confirm,
        shrink_budget=space.shrink_budget if args.shrink_budget is None else args.shrink_budget,
        invariant=args.invariant or space.invariant,
        command=shlex.join(["tradechaos", "explore", *sys.argv[2:]]),
    )
    plan = Plan.of(experiment, variant, replace(space), stack_names(experiment, variant))
    if args.dry_run:
        return _dry_run(plan, settings, args.json)
    return _explore(plan, settings, args)


def _variant(experiment: Any, wanted: str | None) -> str:
    names = experiment.variant_names
    if wanted is None:
        return str(names[0])
    if wanted not in names:
        raise UsageError(f"{experiment.path}: no variant {wanted!r} (variants: {', '.join(names)})")
    return wanted


def _time(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as err:
        raise UsageError(f"--time: {err}") from None
    if seconds <= 0:
        raise UsageError("--time must be longer than 0s")
    return seconds


def _explore(plan: Any, settings: Any, args: argparse.Namespace) -> int:
    from chaos.explore.engine import Exploration
    from chaos.explore.progress import ExploreProgress
    from chaos.explore.stacktrials import StackTrials
    from chaos.runner.cleanup import sweep_dead_runs
    from chaos.runner.runner import RunOptions
    from chaos.runner.signals import SignalGuard

    out = Path(args.out) if args.out is not None else default_out_dir()
    for line in sweep_dead_runs(out):
        if not args.quiet:
            sys.stderr.write(f"tradechaos: swept a dead run: {line}\n")
    folder = _folder(out, plan.experiment.name, plan.variant.name)
    label = f"explore {plan.experiment.name}/{plan.variant.name}"
    options = RunOptions(out, args.backend, toxiproxy_url=args.toxiproxy_url)
    with SignalGuard() as guard:
        guard.shield()  # between trials a signal is recorded; during one, the run heals
        trials = StackTrials(options, settings.jobs, guard)
        result = Exploration(
            plan,
            settings,
            trials,
            folder,
            interrupted=lambda: guard.interrupted,
            progress=ExploreProgress(label, args.quiet),
        ).explore()
    summary = json.loads((folder / "explore.json").read_text(encoding="utf-8"))
    if args.json:
        keys = ("status", "message", "target", "figures", "minimal", "finds", "coverage")
        print(json.dumps({k: summary.get(k) for k in keys} | {"folder": str(folder)}, indent=2))
    else:
        print(_summary(summary, result.paths))
    return result.exit_code


def _folder(out: Path, name: str, variant: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = out / f"{stamp}-{name}-{variant}-explore"
    folder, n = base, 1
    while True:
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            n += 1
            folder = base.with_name(f"{base.name}-{n}")


def _summary(doc: dict[str, Any], paths: dict[str, Path]) -> str:
    figures = doc.get("figures") or {}
    lines = [
        f"== {doc['experiment']} / {doc['variant']}: explore {doc['status'].upper()}"
        + (f" ({doc['message']})" if doc.get("message") else ""),
        f"   {figures.get('trials')} trial(s) ({figures.get('search_trials')} search, "
        f"{figures.get('confirm_trials')} confirm, {figures.get('shrink_trials')} shrink, "
        f"{figures.get('minimal_trials')} minimal) in {doc.get('elapsed_s')} s; "
        f"{figures.get('trials_per_10min')} trials per 10 min; median per-trial overhead "
        f"{figures.get('median_overhead_s')} s",
        f"   coverage: {doc['coverage']['covered']} of {doc['coverage']['total']} "
        "(fault, target, phase) combinations",
    ]
    minimal = doc.get("minimal")
    if minimal:
        flaky = " FLAKY" if minimal["flaky"] else ""
        lines += [
            f"   violated: {', '.join(minimal['expect_violated'])} (reproduced "
            f"{round(100 * minimal['rate'])}%{flaky})",
            f"   first find: {minimal['first_find_fault_steps']} fault step(s); minimal: "
            f"{minimal['fault_steps']}: {minimal['schedule']}",
        ]
    for name, path in paths.items():
        lines.append(f"   {name}: {path}")
    return "\n".join(lines)


def _dry_run(plan: Any, settings: Any, as_json: bool) -> int:
    from chaos.explore.search import Searcher

    searcher = Searcher(plan, settings.seed)
    count = min(settings.budget or 10, 10)
    proposals = [searcher.propose() for _ in range(count)]
    if as_json:
        doc = {
            "space": plan.space.to_dict(),
            "backbone": [s.id for s in plan.backbone],
            "phases": list(plan.phases()),
            "coverage_total": searcher.coverage_total(),
            "proposals": [
                {"number": p.number, "kind": p.kind, **p.candidate.to_dict()} for p in proposals
            ],
        }
        print(json.dumps(doc, indent=2))
        return 0
    space = plan.space
    lines = [
        f"{plan.experiment.name} / {plan.variant.name}: {space.origin}",
        f"  fixed steps: {', '.join(s.id for s in plan.backbone) or 'none'}",
        f"  {space.min_steps}-{space.max_steps} fault steps starting in "
        f"[{space.window[0]:g}s, {space.window[1]:g}s]; phases: {', '.join(plan.phases())}",
        f"  {len(space.faults)} fault entries, {searcher.coverage_total()} (fault, target, "
        "phase) combinations:",
    ]
    lines += [f"    {option.describe()}" for option in space.faults]
    lines.append(f"  the first {count} schedules (seed {settings.seed}, before signals steer):")
    lines += [f"    {p.number:>3} {p.kind:8} {p.candidate.describe()}" for p in proposals]
    print("\n".join(lines))
    return 0
