"""``tradechaos run FILE...``: run experiments, one fresh stack per variant."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chaos.commands.stackargs import (
    add_load_workers_argument,
    add_stack_argument,
    check_load_workers,
)
from chaos.errors import EXIT_INTERRUPTED, EXIT_OK, UsageError
from chaos.experiment.loader import load
from chaos.experiment.model import Experiment
from chaos.experiment.steps import planned_times
from chaos.files.durations import format_duration
from chaos.host.runs import default_out_dir

EXAMPLE = """examples:
  tradechaos run experiments/incidents/paradex-2026-db-upgrade.yaml
  tradechaos run experiments/incidents/*.yaml --variant mitigated --seed 7
  tradechaos run x.yaml --no-faults          # control run: same timeline, faults skipped
  tradechaos run x.yaml --dry-run            # print each variant's timeline, run nothing
  tradechaos run experiments/incidents/*.yaml --controls --jobs 2   # the library as a CI gate
  tradechaos run my-exp.yaml --stack my-stack.yaml   # on another stack file
  tradechaos run x.yaml --load-workers 2     # the load as a Locust master and 2 workers

exit codes: 0 every variant met its expectation, 1 an expectation was not met,
2 bad input, 3 infrastructure failure, 130 interrupted (everything healed and stopped)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run experiments (each variant on a fresh stack) and check the history",
        description="Run experiment files: start the stack, drive load, inject the faults on "
        "schedule, heal, check the invariants, write journal.json and reports.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="experiment file(s)")
    parser.add_argument("--variant", metavar="V", help="run only this variant")
    add_stack_argument(parser)
    parser.add_argument("--backend", choices=("process", "docker"), default="process")
    parser.add_argument("--seed", type=int, metavar="N", help="replay with this seed")
    parser.add_argument(
        "--no-faults", action="store_true", help="control run: skip the fault steps"
    )
    parser.add_argument(
        "--controls",
        action="store_true",
        help="also run every variant as a control (as --no-faults does) after its fault run",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="run up to N variants at once, each on its own stack (default 1; 2 suits a 2-core "
        "machine)",
    )
    parser.add_argument(
        "--out", default=None, metavar="DIR", help="run folders (default: $TRADECHAOS_OUT or runs/)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the timelines only")
    parser.add_argument("--toxiproxy-url", metavar="URL", help="use this Toxiproxy server")
    add_load_workers_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the journals as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--no-ticker", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(handler=handle)


def _selected(experiment: Experiment, variant: str | None) -> list[str]:
    if variant is None:
        return list(experiment.variant_names)
    if variant not in experiment.variant_names:
        known = ", ".join(experiment.variant_names)
        raise UsageError(f"{experiment.path}: no variant {variant!r} (variants: {known})")
    return [variant]


def timeline(experiment: Experiment, variant: str, no_faults: bool) -> list[dict[str, Any]]:
    """The planned timeline of one variant (offsets assume each step takes no time)."""
    steps = experiment.steps_for(variant)
    times = planned_times(steps)
    return [
        {
            "id": step.id,
            "action": step.action,
            "target": list(step.targets),
            "params": dict(step.params),
            "at": times[step.id][0],
            "for": step.for_s,
            "after": step.after,
            "delay": step.at_s,
            "fault": step.fault,
            "skipped": no_faults and step.fault,
        }
        for step in steps
    ]


def _modes(args: argparse.Namespace) -> tuple[bool, ...]:
    """The ``no_faults`` value of each run of a variant: one run, or a fault run and a control."""
    if args.controls and args.no_faults:
        raise UsageError("--controls already adds a control run per variant; drop --no-faults")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be 1 or more, not {args.jobs}")
    return (False, True) if args.controls else (bool(args.no_faults),)


def _dry_run(
    experiments: list[tuple[Experiment, list[str]]],
    args: argparse.Namespace,
    modes: tuple[bool, ...],
) -> int:
    plans = []
    for experiment, variants in experiments:
        for name, no_faults in ((n, m) for n in variants for m in modes):
            variant = experiment.variant(name)
            plans.append(
                {
                    "file": experiment.path,
                    "experiment": experiment.name,
                    "variant": name,
                    "seed": experiment.seed if args.seed is None else args.seed,
                    "duration": experiment.duration_s,
                    "mitigations": list(variant.mitigations),
                    "no_faults": no_faults,
                    "expected_violations": [] if no_faults else list(variant.expect_violated),
                    "invariants": list(experiment.invariants),
                    "steady_state": [p.describe() for p in experiment.steady_state],
                    "abort_when": [c.describe() for c in experiment.abort_when],
                    "timeline": timeline(experiment, name, no_faults),
                }
            )
    if args.json:
        print(json.dumps(plans, indent=2))
        return EXIT_OK
    for plan in plans:
        print(_render_plan(plan))
    return EXIT_OK


def _render_plan(plan: dict[str, Any]) -> str:
    mitigations = ", ".join(plan["mitigations"]) or "none"
    lines = [
        f"{plan['experiment']} / {plan['variant']}{' (control)' if plan['no_faults'] else ''}"
        f"  ({plan['file']})",
        f"  seed {plan['seed']}, method {format_duration(plan['duration'])}, "
        f"mitigations: {mitigations}",
        f"  steady state: {'; '.join(plan['steady_state']) or '-'}",
        f"  abort when: {'; '.join(plan['abort_when']) or '-'}",
    ]
    for entry in plan["timeline"]:
        start = f"+{format_duration(entry['at'])}"
        after = ""
        if entry["after"]:
            after = f" (= {format_duration(entry['delay'])} after {entry['after']} ends)"
        target = f" {','.join(entry['target'])}" if entry["target"] else ""
        params = " ".join(f"{k}={v}" for k, v in entry["params"].items())
        span = f" for {format_duration(entry['for'])}" if entry["for"] else ""
        kind = "fault" if entry["fault"] else "kept"
        if entry["skipped"]:
            kind = "fault, SKIPPED under --no-faults"
        lines.append(
            f"  {start:>8}{after}  {entry['id']}: {entry['action']}{target} {params}{span} [{kind}]"
        )
    expected = ", ".join(plan["expected_violations"]) or "none"
    lines.append(f"  invariants: {', '.join(plan['invariants'])}; expect violated: {expected}")
    return "\n".join(lines)


def handle(args: argparse.Namespace) -> int:
    modes = _modes(args)
    experiments = [
        (e, _selected(e, args.variant)) for e in (load(f, args.stack) for f in args.files)
    ]
    for experiment, _variants in experiments:
        check_load_workers(experiment, args.load_workers)
    if args.dry_run:
        return _dry_run(experiments, args, modes)
    from dataclasses import replace

    from chaos.runner.jobs import Job, run_jobs
    from chaos.runner.runner import RunOptions, RunResult, execute_variant, exit_code_of
    from chaos.runner.signals import SignalGuard

    out = Path(args.out) if args.out is not None else default_out_dir()
    _sweep(out, args.quiet)
    options = RunOptions(
        out,
        args.backend,
        args.seed,
        args.no_faults,
        args.toxiproxy_url,
        args.quiet,
        ticker=not args.no_ticker,
        stack=Path(args.stack).resolve() if args.stack else None,
        load_workers=args.load_workers,
    )
    runs = [(e, v, m) for e, variants in experiments for v in variants for m in modes]
    results: list[RunResult] = []
    with SignalGuard() as guard:
        if args.jobs > 1 and len(runs) > 1:
            jobs = [Job(str(e.path), e.name, v, m) for e, v, m in runs]
            results = run_jobs(jobs, options, args.jobs, guard)
        else:
            for experiment, variant, no_faults in runs:
                run_options = replace(options, no_faults=no_faults)
                results.append(execute_variant(experiment, variant, run_options, guard=guard))
                if results[-1].exit_code == EXIT_INTERRUPTED:
                    break
    journals = [r.journal for r in results]
    if args.json:
        print(json.dumps(journals, indent=2, default=str))
    else:
        print(_summary(journals))
    return EXIT_INTERRUPTED if guard.interrupted else exit_code_of(results)


def _sweep(out: Path, quiet: bool) -> None:
    try:
        from chaos.runner.cleanup import sweep_dead_runs
    except ModuleNotFoundError:
        return
    for line in sweep_dead_runs(out):
        if not quiet:
            sys.stderr.write(f"tradechaos: swept a dead run: {line}\n")


def _summary(journals: list[dict[str, Any]]) -> str:
    try:
        from chaos.report.terminal import render_summary

        return render_summary(journals)
    except ModuleNotFoundError:
        pass
    lines = []
    for journal in journals:
        error = f" ({journal['error']})" if journal.get("error") else ""
        lines.append(
            f"{journal['experiment']} / {journal['variant']}: {journal['status']}{error}"
            f"  {journal.get('run_dir') or ''}"
        )
    return "\n".join(lines)
