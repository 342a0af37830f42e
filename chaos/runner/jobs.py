"""Several variants at once: ``tradechaos run --jobs N``.

Each job (one variant of one file, with faults or as a control) runs in its own
``tradechaos run FILE --variant V --json`` child, so every run keeps its own process,
signal handling, stack and run folder exactly as in a serial run; at most ``N`` children
run at once, started in job order.

Contract
- Children are started from the main thread, each in a new session, with
  ``PR_SET_PDEATHSIG(SIGTERM)``: if this process is killed, every child still heals and
  stops its stack as on a SIGTERM (and ``tradechaos cleanup`` sweeps what a SIGKILL of a
  child leaves).
- On SIGINT or SIGTERM no further job starts; the signal is forwarded to every running
  child and each is waited for (``stop_timeout_s``, then SIGKILL); the result is 130.
- A child's stdout is its journals as JSON; its stderr is forwarded line by line (ticker
  lines are off in children, their events stay). A child that prints no journal yields an
  ``error`` journal naming its exit code and last stderr line, never a traceback here.
- Results come back in job order, whatever order the children finished in.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from chaos.errors import EXIT_INFRASTRUCTURE
from chaos.host import processes
from chaos.runner.runner import RunOptions, RunResult
from chaos.runner.signals import SignalGuard, Terminated

STOP_TIMEOUT_S = 120.0
_KNOWN_EXITS = {0, 1, 2, 3, 130}


@dataclass(frozen=True)
class Job:
    """One variant of one experiment file, with faults or as a control."""

    file: str
    experiment: str
    variant: str
    no_faults: bool

    @property
    def label(self) -> str:
        return f"{self.experiment}/{self.variant}{' (control)' if self.no_faults else ''}"


def child_argv(job: Job, options: RunOptions) -> list[str]:
    """The ``tradechaos run`` command line that runs ``job`` alone."""
    argv = [sys.executable, "-m", "chaos", "run", job.file, "--variant", job.variant]
    argv += ["--out", str(options.out_dir), "--backend", options.backend, "--json"]
    argv.append("--no-ticker")
    if options.seed is not None:
        argv += ["--seed", str(options.seed)]
    if job.no_faults:
        argv.append("--no-faults")
    if options.toxiproxy_url:
        argv += ["--toxiproxy-url", options.toxiproxy_url]
    if options.stack is not None:
        argv += ["--stack", str(options.stack)]
    if options.load_workers is not None:
        argv += ["--load-workers", str(options.load_workers)]
    if options.quiet:
        argv.append("--quiet")
    return argv


@dataclass
class _Child:
    index: int
    job: Job
    proc: subprocess.Popen[str]
    started: float
    stdout: list[str] = field(default_factory=list)
    last_err: deque[str] = field(default_factory=lambda: deque(maxlen=5))


def run_jobs(
    jobs: Sequence[Job],
    options: RunOptions,
    n: int,
    guard: SignalGuard,
    *,
    argv_of: Callable[[Job, RunOptions], list[str]] = child_argv,
    stderr: TextIO | None = None,
    stop_timeout_s: float = STOP_TIMEOUT_S,
) -> list[RunResult]:
    """Run ``jobs`` with at most ``n`` at once (see module doc); one result per job started.
    After a signal (``guard.interrupted``) the jobs not yet started have no result."""
    out = stderr if stderr is not None else sys.stderr
    pending = deque(enumerate(jobs))
    running: dict[int, _Child] = {}
    finished: queue.Queue[int] = queue.Queue()
    results: dict[int, RunResult] = {}
    lock = threading.Lock()
    total = len(jobs)

    def say(line: str) -> None:
        if not options.quiet:
            with lock:
                out.write(f"tradechaos: {line}\n")
                out.flush()

    def start(index: int, job: Job) -> None:
        argv = argv_of(job, options)
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
                preexec_fn=processes.die_with_parent(os.getpid(), signal.SIGTERM),
                close_fds=True,
            )
        except OSError as err:
            results[index] = _error(
                job, f"the run of {job.label} could not start ({argv[0]}: {err})"
            )
            say(f"[{index + 1}/{total}] error: {results[index].journal['error']}")
            return
        child = _Child(index, job, proc, time.monotonic())
        running[index] = child
        out_thread = threading.Thread(
            target=_drain, args=(proc.stdout, child.stdout.append), daemon=True
        )
        out_thread.start()

        def forward(line: str) -> None:
            child.last_err.append(line.rstrip("\n"))
            with lock:
                out.write(line)
                out.flush()

        err_thread = threading.Thread(target=_drain, args=(proc.stderr, forward), daemon=True)
        err_thread.start()

        def reap() -> None:
            proc.wait()
            out_thread.join(timeout=5.0)  # the journal may still be in the pipe
            err_thread.join(timeout=5.0)
            finished.put(index)

        threading.Thread(target=reap, daemon=True).start()
        say(f"[{index + 1}/{total}] started {job.label} (pid {proc.pid})")

    def collect(index: int) -> None:
        child = running.pop(index)
        child.proc.wait()
        results[index] = _result(child)
        wall = time.monotonic() - child.started
        status = results[index].journal.get("status", "error")
        say(f"[{index + 1}/{total}] {status}: {child.job.label} in {wall:.1f} s")

    try:
        while pending or running:
            while pending and len(running) < n and not guard.interrupted:
                start(*pending.popleft())
            if not running:
                break
            collect(finished.get())
    except (KeyboardInterrupt, Terminated):
        guard.shield()
        signum = guard.received[-1] if guard.received else signal.SIGTERM
        say(
            f"{signal.Signals(signum).name}: stopping {len(running)} running job(s); "
            f"{len(pending)} not started"
        )
        _stop_all(running, signum, stop_timeout_s)
        while running:
            collect(finished.get())
    return [results[i] for i in sorted(results)]


def _drain(stream: IO[str] | None, sink: Callable[[str], None]) -> None:
    if stream is None:
        return
    with stream:
        for line in stream:
            sink(line)


def _stop_all(running: dict[int, _Child], signum: int, timeout_s: float) -> None:
    for child in running.values():
        processes.signal_group(child.proc.pid, signum)
    deadline = time.monotonic() + timeout_s
    for child in running.values():
        try:
            child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            processes.signal_group(child.proc.pid, signal.SIGKILL)


def _result(child: _Child) -> RunResult:
    code = child.proc.returncode
    try:
        journals = json.loads("".join(child.stdout))
    except ValueError:
        journals = None
    if isinstance(journals, list) and len(journals) == 1 and isinstance(journals[0], dict):
        journal: dict[str, Any] = journals[0]
        run_dir = journal.get("run_dir")
        if code in _KNOWN_EXITS:
            return RunResult(journal, code, Path(run_dir) if run_dir else None)
    last = next((line for line in reversed(child.last_err) if line.strip()), "")
    reason = f"the run of {child.job.label} exited with code {code}"
    if code is not None and code < 0:
        reason = f"the run of {child.job.label} was killed by {signal.Signals(-code).name}"
    exit_code = code if code in _KNOWN_EXITS and code != 0 else EXIT_INFRASTRUCTURE
    return _error(child.job, f"{reason}{': ' + last if last else ''}", exit_code)


def _error(job: Job, message: str, exit_code: int = EXIT_INFRASTRUCTURE) -> RunResult:
    """The journal of a job whose child runner gave none."""
    journal = {
        "status": "error",
        "experiment": job.experiment,
        "file": job.file,
        "variant": job.variant,
        "no_faults": job.no_faults,
        "expected_violations": [],
        "expectation_met": False,
        "verdicts": [],
        "run_dir": None,
        "error": message,
    }
    return RunResult(journal, exit_code)
