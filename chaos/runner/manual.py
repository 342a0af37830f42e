"""A stack kept up by hand (``tradechaos stack up|status|down``): the library behind the
command.

Contract
- ``keep_up`` starts the stack, writes ``<out>/current-stack.json`` (see
  ``chaos.host.runs.CurrentStack``) with the address of its control API
  (``chaos.backends.control``), keeps the file's pids current, and on SIGINT/SIGTERM stops
  everything and removes the file. A signal during the start aborts it (``Interrupted``)
  after the backend stopped what it had started.
- ``start_detached`` runs ``stack up`` (no ``--detach``) as a supervisor in its own session
  and returns once the supervisor wrote a healthy stack file; if it fails, the supervisor
  is stopped and ``StackError`` carries its log tail.
- ``take_down`` stops the owner (SIGTERM, then SIGKILL after the timeout) and sweeps the run
  if the owner left anything behind, so that nothing of the stack remains.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from chaos.backends.base import Backend, Endpoint
from chaos.backends.health import strategy_for
from chaos.errors import BadInput, Interrupted, StackError
from chaos.host import processes
from chaos.host.runs import (
    CurrentStack,
    RunFolder,
    StackService,
    current_stack_path,
    load_state,
    read_current_stack,
    remove_current_stack,
    write_current_stack,
)
from chaos.stackfile.definition import HealthCheck, StackDefinition

SUPERVISOR_LOG = "stack-supervisor.log"


@dataclass(frozen=True)
class StackOptions:
    """How ``stack up`` runs a stack: its stack file and option values, the mitigations
    that are on (``all``, ``none`` or ``a,b``), the price path's seed, the backend."""

    stack_file: Path
    options: Mapping[str, Any] = field(default_factory=dict)
    mitigations: str = "all"
    seed: int = 1
    backend: str = "process"
    toxiproxy_url: str | None = None

    def argv(self) -> list[str]:
        """These options as ``tradechaos stack up`` arguments."""
        args = ["--stack", str(self.stack_file), "--mitigations", self.mitigations]
        args += ["--seed", str(self.seed), "--backend", self.backend]
        for name, value in self.options.items():
            args += ["--option", f"{name}={json.dumps(value)}"]
        return args + (["--toxiproxy-url", self.toxiproxy_url] if self.toxiproxy_url else [])


def refuse_if_up(out: Path) -> None:
    """BadInput when a live stack owns ``out``; a stale stack file is removed."""
    try:
        current = read_current_stack(out)
    except ValueError:
        current = None
    if current is not None and current.owner_alive():
        raise BadInput(
            f"a stack is already up (pid {current.pid}, run {current.run_dir}); "
            f"stop it with `tradechaos stack down --out {out}`"
        )
    if current is not None:
        remove_current_stack(out)


# ------------------------------------------------------------------------------- up
class StopSignal:
    """SIGINT/SIGTERM handler: while the stack starts, abort the start (``Interrupted``, so
    the backend stops what it started); once it is up, ask the wait loop to stop."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.stack_up = False
        self._previous: dict[int, Any] = {}

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        first = not self.requested.is_set()
        self.requested.set()
        if first and not self.stack_up:
            raise Interrupted(f"interrupted by signal {signum} while starting the stack")

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self)

    def ignore(self) -> None:
        """A second Ctrl-C must not cut the stop short."""
        for sig in self._previous:
            signal.signal(sig, signal.SIG_IGN)

    def restore(self) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)


def keep_up(
    definition: StackDefinition,
    out: Path,
    options: StackOptions,
    say: Callable[[str], None] = print,
) -> None:
    """Start the stack, keep it until SIGINT/SIGTERM, stop it (see the module doc)."""
    from chaos.backends.control import ControlServer
    from chaos.backends.factory import make_backend
    from chaos.runner.cleanup import sweep_dead_runs

    for line in sweep_dead_runs(out):
        sys.stderr.write(f"tradechaos: swept a dead run: {line}\n")
    run = RunFolder.create(out, "stack", options.mitigations)
    params = {
        "seed": str(options.seed),
        "epoch": f"{time.time():.3f}",
        "mitigations": options.mitigations,
        "run_id": run.run_id,
    }
    backend = make_backend(options.backend, definition, run, params, options.toxiproxy_url)
    stop_signal = StopSignal()
    stop_signal.install()
    control: ControlServer | None = None
    try:
        started = time.monotonic()
        backend.start_stack()
        elapsed = time.monotonic() - started
        stop_signal.stack_up = True
        control = ControlServer(backend)
        stack = stack_record(backend, run, options, control.url)
        write_current_stack(out, stack)
        say(render_table(stack, definition))
        say(f"healthy in {elapsed:.2f} s{_slowest(backend)}; stack file {current_stack_path(out)}")
        say("stop with Ctrl-C or `tradechaos stack down`")
        while not stop_signal.requested.wait(1.0):
            _refresh_pids(out, stack, backend)
        say("stopping the stack ...")
        stack.status = "stopping"
        write_current_stack(out, stack)
    finally:
        stop_signal.ignore()
        try:
            if control is not None:
                control.close()
            backend.stop_stack()
            remove_current_stack(out, owner_pid=os.getpid())
        finally:
            stop_signal.restore()
    say("stack stopped")


def stack_record(
    backend: Backend, run: RunFolder, options: StackOptions, control_url: str | None
) -> CurrentStack:
    """The stack file's content for a started ``backend`` owned by this process."""
    services = {}
    for svc in backend.status():
        if not svc.running or svc.endpoint is None:
            continue
        health = backend.definition.service(svc.name).health
        services[svc.name] = StackService(
            str(svc.endpoint), svc.pid, svc.site, health.kind, health.path
        )
    links = {lk.name: str(backend.link_endpoint(lk.name)) for lk in backend.definition.links}
    me = os.getpid()
    return CurrentStack(
        run_dir=str(run.path),
        pid=me,
        pid_start_time=processes.start_time(me),
        backend=options.backend,
        toxiproxy_url=backend.toxiproxy_url,
        services=services,
        links=links,
        seed=options.seed,
        mitigations=options.mitigations,
        started_at=time.time(),
        status="up",
        control_url=control_url,
        stack_file=str(options.stack_file),
        options=dict(options.options),
    )


def _slowest(backend: Backend, count: int = 3) -> str:
    """' (slowest: db setup 1.02 s, ...)' from the backend's start timings, if it has any."""
    timings: dict[str, dict[str, float]] = getattr(backend, "timings", {})
    phases = [(secs, f"{name} {phase}") for name, t in timings.items() for phase, secs in t.items()]
    if not phases:
        return ""
    top = sorted(phases, reverse=True)[:count]
    return " (slowest: " + ", ".join(f"{what} {secs:.2f} s" for secs, what in top) + ")"


def _refresh_pids(out: Path, stack: CurrentStack, backend: Backend) -> None:
    """Rewrite the stack file when a service's pid changed (a restart by a fault) or it went
    down (None: a reused pid must never be taken for the service)."""
    changed = False
    for name, entry in stack.services.items():
        pid = backend.pid(name)
        if pid != entry.pid:
            entry.pid = pid
            changed = True
    if changed:
        write_current_stack(out, stack)


def start_detached(
    out: Path, options: StackOptions, timeout_s: float, stop_timeout_s: float = 60.0
) -> tuple[CurrentStack, Path]:
    """Start a supervisor (``stack up`` in its own session); return its healthy stack file
    and the supervisor's log path."""
    argv = [sys.executable, "-m", "chaos", "stack", "up", "--out", str(out), *options.argv()]
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / SUPERVISOR_LOG
    with open(log_path, "ab", buffering=0) as log:
        supervisor = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            current = _read_quietly(out)
            if current is not None and current.pid == supervisor.pid and current.status == "up":
                return current, log_path
            if supervisor.poll() is not None:
                raise StackError(
                    f"the stack did not start (supervisor exited with {supervisor.returncode}); "
                    f"last lines of {log_path}:\n{processes.log_tail(log_path, 30)}"
                )
            if time.monotonic() >= deadline:
                raise StackError(
                    f"the stack was not healthy after {timeout_s:g} s; last lines of "
                    f"{log_path}:\n{processes.log_tail(log_path, 30)}"
                )
            time.sleep(0.05)
    except BaseException:
        if supervisor.poll() is None:  # it stops what it started on SIGTERM
            processes.terminate(supervisor, grace_s=stop_timeout_s)
        raise


def _read_quietly(out: Path) -> CurrentStack | None:
    try:
        return read_current_stack(out)
    except ValueError:
        return None


# ------------------------------------------------------------------------------- status
def probe(entry: StackService) -> tuple[bool, str]:
    """(healthy, 'healthy' | 'down (no process)' | 'unhealthy: reason') of one service."""
    if entry.pid is None or not processes.is_same_process(entry.pid, None):
        return False, "down (no process)"
    host, _, port = entry.endpoint.rpartition(":")
    check = HealthCheck(kind=entry.health_kind, path=entry.health_path)  # type: ignore[arg-type]
    reason = strategy_for(check, Endpoint(host, int(port))).probe()
    return (True, "healthy") if reason is None else (False, f"unhealthy: {reason}")


# ------------------------------------------------------------------------------- down
def take_down(current: CurrentStack, out: Path, timeout_s: float) -> list[str]:
    """Stop the stack's owner and sweep what it left; one line per thing done."""
    from chaos.runner.cleanup import clean_run

    done: list[str] = []
    if current.owner_alive():
        os.kill(current.pid, signal.SIGTERM)
        if not _wait_gone(current, timeout_s):
            os.kill(current.pid, signal.SIGKILL)
            _wait_gone(current, 5.0)
            done.append(
                f"the stack owner (pid {current.pid}) did not stop in {timeout_s:g} s; killed it"
            )
    run_dir = Path(current.run_dir)
    try:
        state = load_state(run_dir)
    except (OSError, ValueError, KeyError, TypeError):
        state = None
    if state is not None and state.status == "running":
        done.extend(clean_run(run_dir, state))
    remove_current_stack(out)
    done.append(f"stack stopped (run {run_dir}; logs kept in {run_dir / 'logs'})")
    return done


def _wait_gone(current: CurrentStack, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while current.owner_alive():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


# ------------------------------------------------------------------------------- table
def render_table(
    stack: CurrentStack, definition: StackDefinition | None, health: dict[str, str] | None = None
) -> str:
    """Services (name, site, pid, endpoint, the links that lead to it) and the proxy URL."""
    into: dict[str, list[str]] = {}
    for link, listen in stack.links.items():
        server = link.split("-", 1)[1] if "-" in link else link
        if definition is not None:
            server = next((lk.server for lk in definition.links if lk.name == link), server)
        into.setdefault(server, []).append(f"{link}={listen}")
    rows = [("SERVICE", "SITE", "PID", "ENDPOINT", "HEALTH" if health else "LINKS IN")]
    for name, entry in stack.services.items():
        last = health.get(name, "?") if health else " ".join(into.get(name, [])) or "-"
        rows.append((name, entry.site, str(entry.pid or "-"), entry.endpoint, last))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
        for row in rows
    ]
    lines.append(f"toxiproxy: {stack.toxiproxy_url}")
    lines.append(f"run dir:   {stack.run_dir}")
    return "\n".join(line.rstrip() for line in lines)
