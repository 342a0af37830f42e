"""``tradechaos stack up|status|down``: run the reference stack by hand (game days, demos).

``up`` starts the stack, prints where everything listens, writes ``<out>/current-stack.json``
(see ``chaos.runner.state.CurrentStack``) and keeps the stack until Ctrl-C/SIGTERM; with
``--detach`` a supervisor process (``stack up`` itself, in its own session) keeps it and the
command returns once the stack is healthy. ``status`` probes every service; ``down`` stops
the owner and makes sure nothing is left (sweeping the run if the owner had crashed).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from chaos.backends.base import Backend, Endpoint
from chaos.backends.health import strategy_for
from chaos.errors import BadInput, Interrupted, StackError, UsageError
from chaos.runner import procutil
from chaos.runner.state import (
    CurrentStack,
    RunFolder,
    StackService,
    current_stack_path,
    default_out_dir,
    read_current_stack,
    remove_current_stack,
    write_current_stack,
)
from chaos.stackdef import HealthCheck, StackDefinition

EXIT_NO_STACK = 2
EXIT_UNHEALTHY = 3
DETACH_TIMEOUT_S = 120.0
DOWN_TIMEOUT_S = 60.0
SUPERVISOR_LOG = "stack-supervisor.log"


def register(subparsers: Any) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = subparsers.add_parser(
        "stack",
        help="start, inspect or stop the reference trading stack by hand",
        description="Run the reference trading stack by hand (game days, demos, debugging).",
        epilog="example:\n  tradechaos stack up --detach && tradechaos stack status && "
        "tradechaos stack down",
        formatter_class=raw,
    )
    sub = parser.add_subparsers(dest="stack_command", metavar="ACTION", required=True)

    up = sub.add_parser(
        "up",
        help="start the stack and keep it until Ctrl-C (or --detach)",
        description="Start every service of the reference stack behind its proxy links, print\n"
        "where they listen and write <out>/current-stack.json for `stack status|down` and\n"
        "`tradechaos fault`. Waits for Ctrl-C/SIGTERM, then stops everything (exit 0).",
        epilog="examples:\n  tradechaos stack up --mitigations none --seed 7\n"
        "  tradechaos stack up --detach --standby --out /tmp/runs",
        formatter_class=raw,
    )
    up.add_argument(
        "--mitigations",
        default="all",
        help="guards that are ON: all, none, or a,b,c (default: all)",
    )
    up.add_argument(
        "--standby", action="store_true", help="also run the standby sequencer (site b)"
    )
    up.add_argument("--seed", type=int, default=1, help="seed of the price path (default 1)")
    up.add_argument(
        "--backend",
        choices=("process", "docker"),
        default="process",
        help="how services run (default: process)",
    )
    up.add_argument(
        "--toxiproxy-url", default=None, help="use this Toxiproxy instead of the embedded proxy"
    )
    up.add_argument(
        "--detach",
        action="store_true",
        help="leave the stack running under a supervisor process and return",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=DETACH_TIMEOUT_S,
        help=f"--detach: seconds to wait for a healthy stack (default {DETACH_TIMEOUT_S:g})",
    )
    _add_out(up)
    up.set_defaults(handler=run_up)

    status = sub.add_parser(
        "status",
        help="show every service's pid, endpoint and health",
        description="Probe every service of the stack started by `stack up`.\n"
        "Exit 0 when all are healthy, 3 when one is not, 2 when no stack is up.",
        epilog="example:\n  tradechaos stack status --json",
        formatter_class=raw,
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_out(status)
    status.set_defaults(handler=run_status)

    down = sub.add_parser(
        "down",
        help="stop the stack and leave nothing behind",
        description="Stop the stack started by `stack up --detach` (or another shell's\n"
        "`stack up`): its processes, proxy and temporary data; logs are kept.",
        epilog="example:\n  tradechaos stack down --out /tmp/runs",
        formatter_class=raw,
    )
    down.add_argument(
        "--timeout",
        type=float,
        default=DOWN_TIMEOUT_S,
        help=f"seconds to wait for a clean stop before killing (default {DOWN_TIMEOUT_S:g})",
    )
    _add_out(down)
    down.set_defaults(handler=run_down)


def _add_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=None, help="runs folder (default: $TRADECHAOS_OUT or ./runs)"
    )


def _out(args: argparse.Namespace) -> Path:
    return Path(args.out if args.out is not None else default_out_dir()).resolve()


# ------------------------------------------------------------------------------- up
def _definition(args: argparse.Namespace) -> StackDefinition:
    try:
        from chaos.stack.definition import parse_mitigations, reference_stack
    except ModuleNotFoundError as err:
        raise StackError(f"the reference stack is not available ({err})") from None
    try:
        parse_mitigations(args.mitigations)
    except ValueError as err:
        raise UsageError(f"--mitigations: {err}") from None
    return reference_stack(standby=args.standby)


def _refuse_if_up(out: Path) -> None:
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


def run_up(args: argparse.Namespace) -> int:
    out = _out(args)
    _refuse_if_up(out)
    definition = _definition(args)  # bad input is refused here, before any process starts
    if args.detach:
        return _detach(args, out)
    from chaos.backends.control import ControlServer
    from chaos.backends.factory import make_backend
    from chaos.runner.cleanup import sweep_dead_runs

    for line in sweep_dead_runs(out):
        sys.stderr.write(f"tradechaos: swept a dead run: {line}\n")
    run = RunFolder.create(out, "stack", args.mitigations)
    params = {
        "seed": str(args.seed),
        "epoch": f"{time.time():.3f}",
        "mitigations": args.mitigations,
        "run_id": run.run_id,
    }
    backend = make_backend(args.backend, definition, run, params, args.toxiproxy_url)
    stop_signal = _StopSignal()
    stop_signal.install()
    control: ControlServer | None = None
    try:
        started = time.monotonic()
        backend.start_stack()
        elapsed = time.monotonic() - started
        stop_signal.stack_up = True
        control = ControlServer(backend)
        stack = _stack_record(backend, run, args)
        stack.control_url = control.url
        write_current_stack(out, stack)
        print(render_table(stack, definition))
        print(
            f"healthy in {elapsed:.2f} s{_slowest(backend)}; stack file {current_stack_path(out)}"
        )
        print("stop with Ctrl-C or `tradechaos stack down`", flush=True)
        while not stop_signal.requested.wait(1.0):
            _refresh_pids(out, stack, backend)
        print("stopping the stack ...", flush=True)
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
    print("stack stopped", flush=True)
    return 0


class _StopSignal:
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


def _stack_record(backend: Backend, run: RunFolder, args: argparse.Namespace) -> CurrentStack:
    services = {}
    for svc in backend.status():
        if not svc.running or svc.endpoint is None:
            continue
        health = backend.definition.service(svc.name).health
        services[svc.name] = StackService(
            str(svc.endpoint), svc.pid, svc.site, health.kind, health.path
        )
    links = {}
    for link in backend.definition.links:
        links[link.name] = str(backend.link_endpoint(link.name))
    me = os.getpid()
    return CurrentStack(
        run_dir=str(run.path),
        pid=me,
        pid_start_time=procutil.start_time(me),
        backend=args.backend,
        toxiproxy_url=backend.toxiproxy_url,
        services=services,
        links=links,
        seed=args.seed,
        mitigations=args.mitigations,
        standby=args.standby,
        started_at=time.time(),
        status="up",
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


def _detach(args: argparse.Namespace, out: Path) -> int:
    """Start ``stack up`` (without --detach) as a supervisor in its own session; return once
    it has written a healthy stack file."""
    argv = [
        sys.executable,
        "-m",
        "chaos",
        "stack",
        "up",
        "--out",
        str(out),
        "--mitigations",
        args.mitigations,
        "--seed",
        str(args.seed),
        "--backend",
        args.backend,
    ]
    if args.standby:
        argv.append("--standby")
    if args.toxiproxy_url:
        argv += ["--toxiproxy-url", args.toxiproxy_url]
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
    deadline = time.monotonic() + args.timeout
    try:
        while True:
            current = _read_quietly(out)
            if current is not None and current.pid == supervisor.pid and current.status == "up":
                print(render_table(current, None))
                print(
                    f"stack supervisor pid {supervisor.pid} (log {log_path}); "
                    f"stop with `tradechaos stack down --out {out}`"
                )
                return 0
            if supervisor.poll() is not None:
                raise StackError(
                    f"the stack did not start (supervisor exited with {supervisor.returncode}); "
                    f"last lines of {log_path}:\n{_tail(log_path)}"
                )
            if time.monotonic() >= deadline:
                raise StackError(
                    f"the stack was not healthy after {args.timeout:g} s; last lines of "
                    f"{log_path}:\n{_tail(log_path)}"
                )
            time.sleep(0.05)
    except BaseException:
        if supervisor.poll() is None:  # it cleans up after itself on SIGTERM
            procutil.terminate(supervisor, grace_s=DOWN_TIMEOUT_S)
        raise


def _read_quietly(out: Path) -> CurrentStack | None:
    try:
        return read_current_stack(out)
    except ValueError:
        return None


def _tail(path: Path, lines: int = 30) -> str:
    from chaos.runner.procutil import log_tail

    return log_tail(path, lines)


# ------------------------------------------------------------------------------- status
def _probe(entry: StackService) -> tuple[bool, str]:
    if entry.pid is None or not procutil.is_same_process(entry.pid, None):
        return False, "down (no process)"
    host, _, port = entry.endpoint.rpartition(":")
    check = HealthCheck(kind=entry.health_kind, path=entry.health_path)  # type: ignore[arg-type]
    reason = strategy_for(check, Endpoint(host, int(port))).probe()
    return (True, "healthy") if reason is None else (False, f"unhealthy: {reason}")


def _current_or_exit(out: Path) -> CurrentStack | None:
    try:
        current = read_current_stack(out)
    except ValueError as err:
        raise BadInput(str(err)) from None
    if current is None:
        sys.stderr.write(
            f"tradechaos: no stack is up in {out} (no {current_stack_path(out).name}"
            f"); start one with `tradechaos stack up --detach`\n"
        )
        return None
    if not current.owner_alive():
        sys.stderr.write(
            f"tradechaos: no stack is up in {out}: its owner (pid {current.pid}) is "
            "gone; `tradechaos stack down` or `tradechaos cleanup` sweeps what "
            "it left\n"
        )
        return None
    return current


def run_status(args: argparse.Namespace) -> int:
    out = _out(args)
    current = _current_or_exit(out)
    if current is None:
        return EXIT_NO_STACK
    health = {name: _probe(entry) for name, entry in current.services.items()}
    if args.json:
        report = current.to_json()
        report["healthy"] = all(ok for ok, _ in health.values())
        for name, (ok, text) in health.items():
            report["services"][name]["healthy"] = ok
            report["services"][name]["health"] = text
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(render_table(current, None, {n: text for n, (_, text) in health.items()}))
    return 0 if all(ok for ok, _ in health.values()) else EXIT_UNHEALTHY


# ------------------------------------------------------------------------------- down
def run_down(args: argparse.Namespace) -> int:
    out = _out(args)
    try:
        current = read_current_stack(out)
    except ValueError as err:
        raise BadInput(str(err)) from None
    if current is None:
        print(f"no stack is up in {out}; nothing to stop")
        return 0
    if current.owner_alive():
        os.kill(current.pid, signal.SIGTERM)
        if not _wait_gone(current, args.timeout):
            os.kill(current.pid, signal.SIGKILL)
            _wait_gone(current, 5.0)
            print(
                f"the stack owner (pid {current.pid}) did not stop in {args.timeout:g} s; killed it"
            )
    from chaos.runner.cleanup import clean_run
    from chaos.runner.state import load_state

    run_dir = Path(current.run_dir)
    try:
        state = load_state(run_dir)
    except (OSError, ValueError, KeyError, TypeError):
        state = None
    if state is not None and state.status == "running":
        for line in clean_run(run_dir, state):
            print(line)
    remove_current_stack(out)
    print(f"stack stopped (run {run_dir}; logs kept in {run_dir / 'logs'})")
    return 0


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
