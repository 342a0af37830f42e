"""Sweeping what crashed runs left behind (testcontainers' reaper, done at the next start).

A run is *dead* when its ``state.json`` says ``running`` but the runner process it names is
gone (or its pid now belongs to another process: the start times differ). For a dead run
``clean_run`` kills the recorded process groups (only after checking each one's identity),
removes its proxies from an external Toxiproxy (or kills the embedded proxy), deletes its
temporary data dirs and its docker containers (label ``tradechaos.run=<run_id>``), and marks
the state ``cleaned``. It never deletes ``journal.json``, ``history/``, ``logs/`` or reports:
only directories under the run's ``data/`` (or under the system temp dir) are removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from chaos.errors import ProxyError
from chaos.host import processes
from chaos.host.runs import RunFolder, RunState, load_state


def find_dead_runs(out_dir: Path | str) -> list[tuple[Path, RunState]]:
    """Run folders under ``out_dir`` whose state is ``running`` but whose runner is gone."""
    dead = []
    out = Path(out_dir)
    if not out.is_dir():
        return []
    for state_path in sorted(out.glob("*/state.json")):
        try:
            state = load_state(state_path.parent)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable or not ours: leave it alone
        if state.status == "running" and not state.runner_alive():
            dead.append((state_path.parent, state))
    return dead


def sweep_dead_runs(out_dir: Path | str) -> list[str]:
    """Clean every dead run under ``out_dir``; one line per removed item."""
    removed: list[str] = []
    for run_dir, state in find_dead_runs(out_dir):
        removed.extend(clean_run(run_dir, state))
    return removed


def clean_run(run_dir: Path, state: RunState) -> list[str]:
    """Remove what a dead run left behind (see module doc); one line per removed item."""
    removed: list[str] = []
    for record in state.processes:
        if processes.kill_foreign_group(record.pgid, record.start_time):
            removed.append(f"{state.run_id}: killed {record.service} (process group {record.pgid})")
    removed.extend(_clean_proxy(state))
    removed.extend(_clean_data_dirs(run_dir, state))
    removed.extend(_clean_containers(state))
    RunFolder.open(run_dir).mark("cleaned")
    return removed


def _clean_proxy(state: RunState) -> list[str]:
    proxy = state.proxy
    if proxy is None:
        return []
    if proxy.embedded:
        if proxy.pid is not None and processes.kill_foreign_group(proxy.pid, proxy.start_time):
            return [f"{state.run_id}: killed the embedded proxy (pid {proxy.pid})"]
        return []
    from chaos.backends.proxyadmin import ProxyAdmin

    admin = ProxyAdmin(proxy.url)
    removed = []
    for name in proxy.proxies:
        try:
            admin.delete(name)
        except ProxyError:
            continue  # the external Toxiproxy is gone too: nothing of ours is left on it
        removed.append(f"{state.run_id}: deleted proxy {name} on {proxy.url}")
    return removed


def _is_within(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True


def _clean_data_dirs(run_dir: Path, state: RunState) -> list[str]:
    removed = []
    data_root = run_dir / "data"
    temp_root = Path(tempfile.gettempdir())
    for text in state.data_dirs:
        path = Path(text)
        inside_run = _is_within(path, data_root) and path.resolve() != data_root.resolve()
        in_temp = _is_within(path, temp_root) and not _is_within(run_dir, path)
        if not (inside_run or in_temp) or not path.exists():
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(f"{state.run_id}: removed data dir {path}")
    if data_root.is_dir() and not any(data_root.iterdir()):
        data_root.rmdir()
    return removed


def _clean_containers(state: RunState) -> list[str]:
    """Remove containers labelled ``tradechaos.run=<run_id>`` (``sweep_containers`` of the
    docker backend); skipped silently without an engine or the docker SDK."""
    if not state.containers and not _docker_engine_likely():
        return []
    try:
        from chaos.backends.docker import sweep_containers
    except ImportError:  # no docker SDK (or no docker backend): nothing we can sweep
        return []
    return [f"{state.run_id}: removed container {name}" for name in sweep_containers(state.run_id)]


def _docker_engine_likely() -> bool:
    host = os.environ.get("DOCKER_HOST", "")
    return bool(host) or Path("/var/run/docker.sock").exists()


def sweep_stale_stack_file(out_dir: Path | str) -> list[str]:
    """Remove ``<out>/current-stack.json`` when the process that wrote it is gone."""
    from chaos.host.runs import read_current_stack, remove_current_stack

    try:
        current = read_current_stack(out_dir)
    except ValueError:
        current = None
    if current is None or current.owner_alive():
        return []
    if remove_current_stack(out_dir):
        return [f"removed the stale stack file of pid {current.pid} ({current.run_dir})"]
    return []
