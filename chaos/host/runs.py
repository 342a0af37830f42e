"""The run folder and its ``state.json``: what a run started, so that a crash can be swept.

Layout (docs/contracts.md section 2)::

    <out>/<YYYYmmdd-HHMMSS>-<name>-<variant>/   never an earlier run's folder
      state.json  logs/  history/  data/

Contract
- ``RunFolder.create`` makes a new folder (a ``-2``, ``-3``... suffix when the name is
  taken) and writes ``state.json`` with status ``running`` before it returns, i.e. before
  anything is started.
- Every ``record_*``/``forget_*`` call rewrites ``state.json`` atomically (temporary file,
  fsync, rename), so a reader sees the old or the new state, never half of one.
- Status moves running -> finished (clean stop) or running -> cleaned (swept after a crash).
- ``start_time`` values are ``/proc/<pid>/stat`` field 22 (see ``chaos.host.processes``).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from chaos.files.atomic import replace_json
from chaos.host import processes

RunStatus = Literal["running", "finished", "cleaned"]
STATE_FILE = "state.json"


@dataclass
class ProcessRecord:
    service: str
    pid: int
    pgid: int
    start_time: int | None


@dataclass
class ProxyRecord:
    url: str
    embedded: bool
    pid: int | None = None
    start_time: int | None = None
    proxies: list[str] = field(default_factory=list)


@dataclass
class RunState:
    run_id: str
    pid: int
    pid_start_time: int | None
    started_at: float
    status: RunStatus = "running"
    processes: list[ProcessRecord] = field(default_factory=list)
    proxy: ProxyRecord | None = None
    data_dirs: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    ended_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RunState:
        proxy = raw.get("proxy")
        return cls(
            run_id=str(raw["run_id"]),
            pid=int(raw["pid"]),
            pid_start_time=raw.get("pid_start_time"),
            started_at=float(raw.get("started_at", 0.0)),
            status=raw.get("status", "running"),
            processes=[ProcessRecord(**p) for p in raw.get("processes", [])],
            proxy=ProxyRecord(**proxy) if proxy else None,
            data_dirs=[str(d) for d in raw.get("data_dirs", [])],
            containers=[str(c) for c in raw.get("containers", [])],
            ended_at=raw.get("ended_at"),
        )

    def runner_alive(self) -> bool:
        """True when the process that owns this run is still the one that started it."""
        return processes.is_same_process(self.pid, self.pid_start_time)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def load_state(run_dir: Path) -> RunState:
    """Read ``run_dir/state.json``. Raises OSError/ValueError/KeyError when it is unusable."""
    raw = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{run_dir / STATE_FILE} is not a JSON object")
    return RunState.from_json(raw)


class RunFolder:
    """One run's folder and its state file; the owner of ``state.json``. Thread-safe."""

    def __init__(self, path: Path, state: RunState) -> None:
        self.path = path
        self._state = state
        self._lock = threading.Lock()

    @classmethod
    def create(
        cls, out_dir: Path | str, name: str, variant: str = "default", now: float | None = None
    ) -> RunFolder:
        """Make a fresh run folder under ``out_dir`` and write its initial state."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        started = time.time() if now is None else now
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
        base = f"{stamp}-{_slug(name)}-{_slug(variant)}"
        path = out / base
        suffix = 1
        while True:
            try:
                path.mkdir()
                break
            except FileExistsError:
                suffix += 1
                path = out / f"{base}-{suffix}"
        for sub in ("logs", "history", "data"):
            (path / sub).mkdir()
        me = os.getpid()
        state = RunState(
            run_id=path.name, pid=me, pid_start_time=processes.start_time(me), started_at=started
        )
        folder = cls(path.resolve(), state)
        folder._write()
        return folder

    @classmethod
    def open(cls, path: Path | str) -> RunFolder:
        """An existing run folder (e.g. to inspect it or take it over)."""
        run_dir = Path(path).resolve()
        return cls(run_dir, load_state(run_dir))

    @property
    def run_id(self) -> str:
        return self._state.run_id

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def history(self) -> Path:
        return self.path / "history"

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def state_path(self) -> Path:
        return self.path / STATE_FILE

    def log_path(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def data_dir(self, service: str) -> Path:
        return self.data / service

    def state(self) -> RunState:
        """A copy of the current state."""
        with self._lock:
            return RunState.from_json(self._state.to_json())

    def _write(self) -> None:
        replace_json(self.state_path, self._state.to_json(), sort_keys=True, durable=True)

    def record_process(self, service: str, pid: int, pgid: int, start_time: int | None) -> None:
        """Remember that ``service`` runs as ``pid`` (replacing an earlier record of it)."""
        with self._lock:
            procs = [p for p in self._state.processes if p.service != service]
            procs.append(ProcessRecord(service, pid, pgid, start_time))
            self._state.processes = procs
            self._write()

    def forget_process(self, service: str) -> None:
        with self._lock:
            self._state.processes = [p for p in self._state.processes if p.service != service]
            self._write()

    def record_proxy(
        self, url: str, embedded: bool, pid: int | None = None, start_time: int | None = None
    ) -> None:
        with self._lock:
            names = self._state.proxy.proxies if self._state.proxy else []
            self._state.proxy = ProxyRecord(url, embedded, pid, start_time, list(names))
            self._write()

    def record_proxy_name(self, name: str) -> None:
        """Remember a proxy (link) created on the Toxiproxy server; ``record_proxy`` first."""
        with self._lock:
            if self._state.proxy is None:
                raise RuntimeError("record_proxy must be called before record_proxy_name")
            if name not in self._state.proxy.proxies:
                self._state.proxy.proxies.append(name)
                self._write()

    def forget_proxy(self) -> None:
        with self._lock:
            self._state.proxy = None
            self._write()

    def record_data_dir(self, path: Path) -> None:
        with self._lock:
            text = str(path)
            if text not in self._state.data_dirs:
                self._state.data_dirs.append(text)
                self._write()

    def forget_data_dir(self, path: Path) -> None:
        with self._lock:
            self._state.data_dirs = [d for d in self._state.data_dirs if d != str(path)]
            self._write()

    def record_container(self, container_id: str) -> None:
        with self._lock:
            if container_id not in self._state.containers:
                self._state.containers.append(container_id)
                self._write()

    def forget_container(self, container_id: str) -> None:
        with self._lock:
            self._state.containers = [c for c in self._state.containers if c != container_id]
            self._write()

    def mark(self, status: RunStatus) -> None:
        """Set the run's status (``finished`` at a clean stop, ``cleaned`` after a sweep)."""
        with self._lock:
            self._state.status = status
            if status != "running":
                self._state.ended_at = time.time()
            self._write()

    def take_over(self) -> None:
        """Make this process the run's owner (e.g. a detached stack's supervisor)."""
        with self._lock:
            me = os.getpid()
            self._state.pid = me
            self._state.pid_start_time = processes.start_time(me)
            self._write()


# ---------------------------------------------------------------------------- the stack file
CURRENT_STACK_FILE = "current-stack.json"


def default_out_dir() -> Path:
    """Where runs go unless ``--out`` says otherwise: ``$TRADECHAOS_OUT`` or ``./runs``."""
    return Path(os.environ.get("TRADECHAOS_OUT") or "runs")


@dataclass
class StackService:
    endpoint: str  # host:port
    pid: int | None
    site: str
    health_kind: str = "http"
    health_path: str = "/health"


@dataclass
class CurrentStack:
    """``<out>/current-stack.json``: the stack ``tradechaos stack up`` keeps running, so that
    ``stack status|down`` and ``tradechaos fault`` (other processes) can find it.

    ``pid``/``pid_start_time`` identify the owner (the foreground ``stack up`` or the detached
    supervisor); the file is stale when that process is gone. The owner rewrites it when a
    service's pid changes.
    """

    run_dir: str
    pid: int
    pid_start_time: int | None
    backend: str
    toxiproxy_url: str
    services: dict[str, StackService]
    links: dict[str, str]
    seed: int = 0
    mitigations: str = "all"
    started_at: float = 0.0
    status: Literal["starting", "up", "stopping"] = "up"
    control_url: str | None = None  # chaos.backends.control API of the owner
    stack_file: str | None = None  # the stack file it runs (None: the reference stack)
    options: dict[str, Any] = field(default_factory=dict)  # its option values

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CurrentStack:
        services = {
            name: StackService(**entry) for name, entry in dict(raw.get("services", {})).items()
        }
        fields = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        fields["services"] = services
        fields["links"] = {str(k): str(v) for k, v in dict(raw.get("links", {})).items()}
        return cls(**fields)

    def owner_alive(self) -> bool:
        return processes.is_same_process(self.pid, self.pid_start_time)


def current_stack_path(out_dir: Path | str) -> Path:
    return Path(out_dir) / CURRENT_STACK_FILE


def write_current_stack(out_dir: Path | str, stack: CurrentStack) -> None:
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    replace_json(current_stack_path(out_dir), stack.to_json(), durable=True)


def read_current_stack(out_dir: Path | str) -> CurrentStack | None:
    """The stack file under ``out_dir``, or None when there is none.

    Raises ``ValueError`` naming the file when it exists but cannot be read.
    """
    path = current_stack_path(out_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        return CurrentStack.from_json(raw)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise ValueError(f"{path}: unreadable stack file ({err})") from None


def remove_current_stack(out_dir: Path | str, owner_pid: int | None = None) -> bool:
    """Delete the stack file (only if ``owner_pid`` owns it, when given); True if deleted."""
    path = current_stack_path(out_dir)
    if owner_pid is not None:
        try:
            current = read_current_stack(out_dir)
        except ValueError:
            current = None
        if current is None or current.pid != owner_pid:
            return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
