"""Owning child processes: spawn each in its own process group, tied to our life, and stop
it by the protocol SIGTERM -> grace -> SIGKILL -> reap.

Contract
- ``spawn`` starts ``argv`` as the leader of a new session (so of a new process group whose
  id is its pid), with stdout and stderr appended to ``log_path``, and with
  ``PR_SET_PDEATHSIG(SIGKILL)``: if the spawning thread's process dies, the leader is
  killed by the kernel. Linux ties the death signal to the *thread* that forked, so spawns
  from other threads are funnelled through one long-lived spawner thread.
- ``terminate`` returns only when the leader has been reaped (or ``kill_timeout_s`` has
  passed after SIGKILL, which only happens for an unkillable process); the whole group gets
  every signal, and a stopped group is continued so that it can act on SIGTERM.
- ``start_time`` reads field 22 of ``/proc/<pid>/stat`` (clock ticks since boot): together
  with the pid it identifies one process, so a reused pid is never mistaken for ours.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PR_SET_PDEATHSIG = 1
_CLK_TCK = os.sysconf("SC_CLK_TCK")

_spawner: ThreadPoolExecutor | None = None
_spawner_lock = threading.Lock()


def _libc_prctl() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    prctl = getattr(libc, "prctl", None)
    return prctl if callable(prctl) else None


_PRCTL = _libc_prctl()


def die_with_parent(parent_pid: int, signum: signal.Signals = signal.SIGKILL) -> Callable[[], None]:
    """A preexec function: send ``signum`` to this child when the thread that forked it (see
    the module doc) dies; exit now if the parent is already gone."""

    def preexec() -> None:
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died between fork and prctl
            os._exit(1)

    return preexec


def _spawn_here(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None, cwd: Path | None
) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab", buffering=0) as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=str(cwd) if cwd is not None else None,
            start_new_session=True,
            preexec_fn=die_with_parent(os.getpid()),
            close_fds=True,
        )


def spawn(
    argv: Sequence[str],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as a process-group leader that dies with this process (see module doc).

    Raises ``OSError`` when the program cannot be executed.
    """
    if threading.current_thread() is threading.main_thread():
        return _spawn_here(argv, log_path, env, cwd)
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tradechaos-spawner")
        spawner = _spawner
    return spawner.submit(_spawn_here, argv, log_path, env, cwd).result(timeout=30.0)


def start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot, or None if there is no such pid."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); start time is field 22
    return int(fields[19])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time used by ``pid`` so far, or None if there is no such pid."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def proc_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` (R, S, T, Z, ...) or None if there is no such pid."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rindex(")") + 2]


def is_same_process(pid: int, recorded_start_time: int | None) -> bool:
    """True when ``pid`` is alive (not a zombie) and is the process that had
    ``recorded_start_time`` (any process with that pid, when None)."""
    current = start_time(pid)
    if current is None or proc_state(pid) == "Z":
        return False
    return recorded_start_time is None or current == recorded_start_time


def group_exists(pgid: int) -> bool:
    """True while any process (including a zombie) is in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to every process in ``pgid``; False when the group no longer exists."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


def _wait_reaped(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    try:
        proc.wait(timeout=max(timeout_s, 0.0))
    except subprocess.TimeoutExpired:
        return False
    return True


def live_members(pgid: int) -> list[int]:
    """Pids of the processes in group ``pgid`` that are not zombies (scans /proc)."""
    members: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _wait_group_gone(pgid: int, timeout_s: float) -> bool:
    """Wait until no live (non-zombie) process is left in ``pgid``."""
    deadline = time.monotonic() + timeout_s
    while group_exists(pgid) and live_members(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def terminate(
    proc: subprocess.Popen[bytes],
    grace_s: float = 5.0,
    kill_timeout_s: float = 5.0,
    stop_signal: int = signal.SIGTERM,
) -> int | None:
    """Stop the group led by ``proc``: ``stop_signal`` (SIGTERM; +SIGCONT), ``grace_s``,
    SIGKILL; reap.

    Returns the leader's exit status (None only if even SIGKILL did not end it in time).
    Idempotent: an already reaped process is returned at once. Other members of the group
    get SIGKILL once the leader is gone, so nothing of the group outlives this call.
    """
    pgid = proc.pid
    if proc.poll() is None:
        if grace_s > 0:
            signal_group(pgid, stop_signal)
            signal_group(pgid, signal.SIGCONT)
        if grace_s <= 0 or not _wait_reaped(proc, grace_s):
            signal_group(pgid, signal.SIGKILL)
            _wait_reaped(proc, kill_timeout_s)
    if group_exists(pgid):  # stragglers (e.g. children that ignored SIGTERM)
        signal_group(pgid, signal.SIGKILL)
        _wait_group_gone(pgid, kill_timeout_s)
    return proc.returncode


def kill(proc: subprocess.Popen[bytes], kill_timeout_s: float = 5.0) -> int | None:
    """SIGKILL the whole group led by ``proc`` now and reap the leader."""
    return terminate(proc, grace_s=0.0, kill_timeout_s=kill_timeout_s)


def kill_foreign_group(pgid: int, leader_start_time: int | None, timeout_s: float = 5.0) -> bool:
    """SIGKILL a process group we did not spawn (a crashed run's), if it is still ours.

    The group is ours when its leader is alive with the recorded start time, or when the
    leader is gone (Linux never hands a pid out while a group of that id exists, so a group
    without a live ``pid == pgid`` is still the old one). Returns True if it killed something.
    """
    leader_start = start_time(pgid)
    if (
        leader_start is not None
        and leader_start_time is not None
        and (leader_start != leader_start_time)
    ):
        return False
    if not signal_group(pgid, signal.SIGKILL):
        return False
    _wait_group_gone(pgid, timeout_s)
    return True


class DutyCycle:
    """Limit a process group to ``fraction`` of the CPU by SIGCONT/SIGSTOP in a fixed period.

    Runs in a daemon thread from ``start()`` until ``stop()``, which returns once the thread
    has ended and the group has been continued (unless ``paused()`` says the group is paused
    on purpose; then it stays stopped). Signals are sent while holding ``lock`` and only when
    ``paused()`` is False, so an explicit pause is never undone by the cycle.
    """

    def __init__(
        self,
        pgid: int,
        fraction: float,
        lock: threading.Lock,
        paused: Callable[[], bool],
        period_s: float = 0.1,
    ) -> None:
        self.pgid = pgid
        self.fraction = fraction
        self.period_s = period_s
        self._lock = lock
        self._paused = paused
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"tradechaos-throttle-{pgid}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def _send(self, signum: int) -> None:
        with self._lock:
            if not self._paused():
                signal_group(self.pgid, signum)

    def _run(self) -> None:
        run_s = self.fraction * self.period_s
        try:
            while not self._stop.is_set():
                self._send(signal.SIGCONT)
                if self._stop.wait(run_s):
                    break
                self._send(signal.SIGSTOP)
                if self._stop.wait(self.period_s - run_s):
                    break
        finally:
            self._send(signal.SIGCONT)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)


def wait_stopped(pid: int, stopped: bool, timeout_s: float = 2.0) -> bool:
    """Poll until ``pid`` is (``stopped=True``) or is no longer (False) in the stopped state
    'T'; signals are delivered asynchronously. False at the timeout; True if pid is gone."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = proc_state(pid)
        if state is None or state == "Z" or (state in ("T", "t")) == stopped:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


def log_tail(path: Path, lines: int = 50) -> str:
    """The last ``lines`` lines of a log file (at most its last 64 KiB; '' if absent)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
