"""One experiment variant, start to finish, in one ExitStack.

Order (each undone in reverse on success, failure, exception, SIGINT, SIGTERM):
run folder -> backend.start_stack -> recorder (run.json) -> load -> steady state before ->
method (faults on the schedule; abort watcher) -> heal all -> steady state after ->
stop load -> export history (and run the SQL checks) -> [stack stopped] -> checkers ->
harm ledger -> journal.json -> reports.

``run_variant`` never raises for a run that went wrong: it returns a ``RunResult`` whose
journal (docs/contracts.md section 3) is also written to the run folder in every case
where the folder exists. Modules are reached through ``Deps`` so tests can inject fakes.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from chaos import __version__
from chaos.errors import (
    EXIT_BAD_INPUT,
    EXIT_EXPECTATION_NOT_MET,
    EXIT_INFRASTRUCTURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ChaosError,
    InfrastructureError,
)
from chaos.experiment.model import Experiment, Variant
from chaos.files.atomic import replace_json
from chaos.history.recorder import Recorder
from chaos.report.outcomes import invariants_met
from chaos.runner import wiring
from chaos.runner.probes import AbortWatcher, ProbeEnv, steady_state
from chaos.runner.progress import Progress
from chaos.runner.schedule import Clock, Schedule, StepRun
from chaos.runner.signals import SignalGuard, Terminated

if TYPE_CHECKING:
    from chaos.backends.base import Backend
    from chaos.experiment.model import LoadSpec, Step
    from chaos.faults.base import Fault, FaultContext
    from chaos.host.runs import RunFolder
    from chaos.load.driver import LoadSample
    from chaos.stackfile.definition import StackDefinition


@dataclass
class RunOptions:
    out_dir: Path = Path("runs")
    backend: str = "process"
    seed: int | None = None
    no_faults: bool = False
    toxiproxy_url: str | None = None
    quiet: bool = False
    steady_within_s: float = 20.0
    recover_within_s: float = 30.0
    ticker: bool = True  # the once-a-second progress line (off in --jobs children)
    stack: Path | None = None  # --stack: the stack file instead of the experiment's own
    load_workers: int | None = None  # --load-workers: instead of the experiment's load.workers


class RunLoad(Protocol):
    """What a run asks of its load (``chaos.load.driver.LoadDriver``)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def sample(self) -> LoadSample: ...
    def summary(self) -> dict[str, Any]: ...


@dataclass
class Deps:
    """The seams to the other modules (defaults in ``chaos.runner.wiring``)."""

    definition: Callable[[Experiment, Variant], StackDefinition] = wiring.definition
    run_folder: Callable[[Path, str, str], RunFolder] = wiring.run_folder
    backend: Callable[[str, StackDefinition, RunFolder, Mapping[str, str], str | None], Backend] = (
        wiring.backend
    )
    fund_accounts: Callable[[Backend, StackDefinition], int] = wiring.fund_accounts
    load: Callable[[Backend, StackDefinition, RunFolder, int, LoadSpec], RunLoad | None] = (
        wiring.load
    )
    fault_context: Callable[
        [Backend, Recorder, StackDefinition, random.Random, RunLoad | None], FaultContext
    ] = wiring.fault_context
    fault: Callable[[Step, FaultContext], Fault] = wiring.fault
    export_history: Callable[[StackDefinition, Path, Backend], None] = wiring.export_history
    export_checks: Callable[[Experiment, StackDefinition, Path, Backend], int] = (
        wiring.export_checks
    )
    check: Callable[[Path, tuple[str, ...], Mapping[str, Any]], list[dict[str, Any]]] = wiring.check
    reports: Callable[[Path, Mapping[str, Any]], Mapping[str, Path]] = wiring.reports
    harm: Callable[[Path, Mapping[str, Any]], dict[str, Any]] = field(
        default=lambda run_dir, params: _harm(run_dir, params)
    )


@dataclass
class RunResult:
    journal: dict[str, Any]
    exit_code: int
    run_dir: Path | None = None


@dataclass
class _Run:
    """What the lifecycle has reached, read by the cleanup and the journal."""

    journal: dict[str, Any]
    runs: list[StepRun] = field(default_factory=list)
    run_dir: Path | None = None
    folder: Any = None
    exported: bool = False
    error: str | None = None
    exit_code: int = EXIT_OK


def judge(
    verdicts: Sequence[Mapping[str, Any]],
    checked: Sequence[str],
    expected: Sequence[str],
    required: Sequence[str] = (),
) -> bool:
    """Exactly the expected violations (``chaos.report.outcomes.invariants_met``, the one
    rule): each expected invariant violated, every other checked invariant held or unknown
    for lack of evidence (unless ``required``); missing or undecidable counts as not met."""
    return invariants_met(verdicts, checked, expected, required)


def run_variant(
    experiment: Experiment,
    variant: str,
    *,
    backend: str = "process",
    seed: int | None = None,
    out_dir: Path | str = "runs",
    no_faults: bool = False,
    toxiproxy_url: str | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run one variant and return its journal (for the pytest plugin and other callers)."""
    options = RunOptions(Path(out_dir), backend, seed, no_faults, toxiproxy_url, quiet)
    with SignalGuard() as guard:
        return execute_variant(experiment, variant, options, guard=guard).journal


def execute_variant(
    experiment: Experiment,
    variant_name: str,
    options: RunOptions,
    deps: Deps | None = None,
    guard: SignalGuard | None = None,
) -> RunResult:
    """Run one variant; never raises for a run that went wrong (see the RunResult)."""
    deps = deps or Deps()
    guard = guard or SignalGuard()
    if options.load_workers is not None:
        load_spec = replace(experiment.load, workers=options.load_workers)
        experiment = replace(experiment, load=load_spec)
    if not guard.interrupted:
        guard.unshield()  # a run before this one (same guard) ended shielded
    variant = experiment.variant(variant_name)
    seed = experiment.seed if options.seed is None else options.seed
    label = f"{experiment.name}/{variant.name}{' (control)' if options.no_faults else ''}"
    progress = Progress(label, options.quiet)
    state = _Run(_new_journal(experiment, variant, seed, options))
    progress.event(f"seed {seed} (replay with --seed {seed}); backend {options.backend}")
    if options.ticker:
        progress.start_ticker()
    try:
        with ExitStack() as stack:
            try:
                _lifecycle(stack, state, experiment, variant, seed, options, deps, progress)
            finally:
                guard.shield()
                progress.set_phase("healing and stopping")
        guard.unshield()
        if state.exported and not guard.interrupted:
            progress.set_phase("checking")
            _check(state, experiment, variant, options, deps)
    except (KeyboardInterrupt, Terminated) as err:
        _fail(state, "interrupted", EXIT_INTERRUPTED, f"interrupted by {_signal_name(err)}")
    except ChaosError as err:
        _fail(state, "error", err.exit_code, str(err))
    except Exception as err:
        _fail(state, "error", EXIT_INFRASTRUCTURE, f"{type(err).__name__}: {err}")
    finally:
        guard.shield()
        if guard.interrupted and state.journal["status"] != "interrupted":
            _fail(state, "interrupted", EXIT_INTERRUPTED, "interrupted during cleanup")
        _finish(state, deps, progress)
        progress.close()
    return RunResult(state.journal, state.exit_code, state.run_dir)


def _lifecycle(
    stack: ExitStack,
    state: _Run,
    experiment: Experiment,
    variant: Variant,
    seed: int,
    options: RunOptions,
    deps: Deps,
    progress: Progress,
) -> None:
    state.runs = [
        StepRun(step, fault=step.fault, skipped=options.no_faults and step.fault)
        for step in experiment.steps_for(variant.name)
    ]
    folder_variant = f"{variant.name}-control" if options.no_faults else variant.name
    folder = deps.run_folder(options.out_dir, experiment.name, folder_variant)
    state.folder, state.run_dir = folder, Path(folder.path)
    state.journal["run_dir"] = str(state.run_dir)
    definition = deps.definition(experiment, variant)
    master = random.Random(seed)
    load_seed, fault_seed = master.getrandbits(31), master.getrandbits(63)
    epoch = round(time.time(), 3)
    params = {"seed": str(seed), "epoch": repr(epoch), "mitigations": variant.mitigations_flag}
    backend = deps.backend(options.backend, definition, folder, params, options.toxiproxy_url)
    stack.callback(backend.stop_stack)
    progress.set_phase("starting stack")
    backend.start_stack()
    funded = deps.fund_accounts(backend, definition)
    if funded:
        progress.event(f"funded {funded} accounts (bindings.accounts.fund)")
    recorder = stack.enter_context(Recorder(folder.history))
    run_record = _run_record(
        experiment, variant, seed, epoch, load_seed, options, folder, definition
    )
    recorder.write_run(run_record)
    load = deps.load(backend, definition, folder, load_seed, experiment.load)
    if load is None:
        progress.event("no load: the stack file declares no bindings.orders")
    if load is not None:
        stack.callback(load.stop)
        progress.set_phase("starting load")
        load.start()
        progress.rps = lambda: float(load.sample().rps)
    env = ProbeEnv(backend, load, definition)
    progress.set_phase("steady state before")
    before = steady_state(experiment.steady_state, env, options.steady_within_s)
    state.journal["steady_state"]["before"] = before.to_dict()
    if not before.ok:
        raise InfrastructureError(
            f"steady state did not hold before the method: {before.failures()}"
        )
    needs_faults = any(not run.skipped for run in state.runs)
    rng = random.Random(fault_seed)
    ctx = deps.fault_context(backend, recorder, definition, rng, load) if needs_faults else None
    clock = Clock()

    def build(step: Step) -> Fault:
        assert ctx is not None, "a step runs only when some step is not skipped"
        return deps.fault(step, ctx)

    schedule = Schedule(state.runs, build, clock, progress.event)
    stack.callback(_heal, schedule, state)
    progress.active = lambda: schedule.active
    progress.set_phase("method", experiment.duration_s)
    with AbortWatcher(experiment.abort_when, env, lambda reason: schedule.stop()) as watcher:
        t0 = clock.mono()  # the method's t=0: every report's time base (docs/reports.md)
        run_record["method_t0"] = state.journal["method_t0"] = round(clock.wall(t0), 6)
        recorder.write_run(run_record)
        schedule.run(t0, experiment.duration_s)
    _heal(schedule, state)
    if watcher.reason is not None:
        state.error = f"run aborted: {watcher.reason}"
    elif schedule.errors:
        first = schedule.errors[0]
        state.error = f"step {first.step.id} ({first.step.action}) failed: {first.error}"
    if state.error is None:
        progress.set_phase("steady state after")
        after = steady_state(experiment.steady_state, env, options.recover_within_s)
        state.journal["steady_state"]["after"] = after.to_dict()
    if load is not None:
        progress.set_phase("stopping load")
        load.stop()
        _record_load(state, recorder, run_record, load.summary())
    progress.set_phase("exporting history")
    deps.export_history(definition, folder.path, backend)
    if deps.export_checks(experiment, definition, folder.path, backend):
        progress.event("ran the SQL checks (history/checks.jsonl)")
    state.exported = True


def _record_load(
    state: _Run, recorder: Recorder, run_record: dict[str, Any], summary: dict[str, Any]
) -> None:
    """journal.json and run.json record the load: its workers, its ops, ops per worker."""
    state.journal["load"] = summary
    recorder.write_run({**run_record, "load": {**run_record["load"], **summary}})


def _heal(schedule: Schedule, state: _Run) -> None:
    problems = schedule.heal_all()
    if problems and state.error is None:
        state.error = "; ".join(problems)


def _check(
    state: _Run, experiment: Experiment, variant: Variant, options: RunOptions, deps: Deps
) -> None:
    assert state.run_dir is not None
    verdicts = deps.check(state.run_dir, experiment.invariants, dict(experiment.params))
    state.journal["verdicts"] = verdicts
    try:  # who lost how much: a report of the run, never its verdict
        state.journal["harm"] = deps.harm(state.run_dir, dict(experiment.params))
    except Exception as err:
        state.journal["harm"] = {"error": f"{type(err).__name__}: {err}"}
    expected = () if options.no_faults else variant.expect_violated
    required = experiment.evidence_required(variant.name, options.no_faults)
    met = judge(verdicts, experiment.invariants, expected, required)
    after = state.journal["steady_state"].get("after")
    if not expected and after is not None and not after.get("ok", True):
        met = False  # the stack did not come back: reported as the steady-state case
    state.journal["expectation_met"] = met
    if state.error is not None:
        _fail(state, "error", EXIT_INFRASTRUCTURE, state.error)
    else:
        state.journal["status"] = "passed" if met else "failed"
        state.exit_code = EXIT_OK if met else EXIT_EXPECTATION_NOT_MET


def _fail(state: _Run, status: str, code: int, message: str) -> None:
    state.journal["status"] = status
    state.journal["expectation_met"] = False
    state.journal["error"] = message
    state.exit_code = code


def _finish(state: _Run, deps: Deps, progress: Progress) -> None:
    journal = state.journal
    if journal["status"] == "running":  # the lifecycle ended without a verdict
        _fail(state, "error", EXIT_INFRASTRUCTURE, state.error or "the run ended without checks")
    journal["ended_at"] = time.time()
    journal["timeline"] = [run.to_dict() for run in state.runs]
    if state.run_dir is None:
        progress.event(f"{journal['status']}: {journal.get('error', '')}")
        return
    _write_json(state.run_dir / "journal.json", journal)
    try:
        deps.reports(state.run_dir, journal)
    except Exception as err:  # a report is a convenience; the journal is the record
        progress.event(f"reports not written: {type(err).__name__}: {err}")
    with contextlib.suppress(Exception):
        state.folder.mark("finished")
    progress.event(f"{journal['status']}; journal {state.run_dir / 'journal.json'}")


def _new_journal(
    experiment: Experiment, variant: Variant, seed: int, options: RunOptions
) -> dict[str, Any]:
    return {
        "tradechaos": __version__,
        "status": "running",
        "experiment": experiment.name,
        "file": experiment.path,
        "variant": variant.name,
        "seed": seed,
        "no_faults": options.no_faults,
        "started_at": time.time(),
        "ended_at": None,
        "run_dir": None,
        "backend": options.backend,
        "expected_violations": [] if options.no_faults else list(variant.expect_violated),
        "require_evidence": list(experiment.evidence_required(variant.name, options.no_faults)),
        "expectation_met": False,
        "method_t0": None,
        "steady_state": {"before": None, "after": None},
        "timeline": [],
        "verdicts": [],
    }


def _run_record(
    experiment: Experiment,
    variant: Variant,
    seed: int,
    epoch: float,
    load_seed: int,
    options: RunOptions,
    folder: Any,
    definition: Any,
) -> dict[str, Any]:
    return {
        "time": time.time(),
        "run_id": folder.run_id,
        "experiment": experiment.name,
        "variant": variant.name,
        "seed": seed,
        "load_seed": load_seed,
        "epoch": epoch,
        "started_at": time.time(),
        "mitigations": list(variant.mitigations),
        "load": asdict(experiment.load),
        **wiring.stack_record(definition),
        "no_faults": options.no_faults,
        "params": wiring.tolerances(experiment.params),
        "invariants": list(experiment.invariants),
        "checks": [c.name for c in experiment.sql_checks(definition.checks)],
        "expected_violations": [] if options.no_faults else list(variant.expect_violated),
        "require_evidence": list(experiment.evidence_required(variant.name, options.no_faults)),
    }


def _harm(run_dir: Path, params: Mapping[str, Any]) -> dict[str, Any]:
    from chaos.harm import journal_section

    return journal_section(run_dir, params)


def _signal_name(err: BaseException) -> str:
    text = str(err)
    if text.startswith("SIG"):
        return text
    return "SIGTERM" if isinstance(err, Terminated) else "SIGINT"


def _write_json(path: Path, content: Mapping[str, Any]) -> None:
    replace_json(path, content)


def exit_code_of(results: Sequence[RunResult]) -> int:
    """130 if interrupted, else 2/3 for bad input/infrastructure, 1 for a failed expectation."""
    codes = [r.exit_code for r in results]
    for code in (EXIT_INTERRUPTED, EXIT_BAD_INPUT, EXIT_INFRASTRUCTURE, EXIT_EXPECTATION_NOT_MET):
        if code in codes:
            return code
    return EXIT_OK
