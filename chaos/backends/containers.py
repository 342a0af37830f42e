"""Container operations of the docker backend, one SDK call sequence each, with timeouts.

Every function takes docker SDK objects (the SDK is imported lazily) and turns the SDK's
errors into ``StackError`` naming what could not be done. The client's own timeout
(``chaos.backends.images.docker_client``) bounds every request.

- ``start_container`` creates and starts one container with host networking, docker-init
  and the labels that identify its run; ``on_created`` runs between create and start (the
  backend records the id in ``state.json`` there, before the container can do anything).
- ``container_state`` is the state now ('absent' once removed).
- ``remove_container``: SIGTERM, grace, SIGKILL (or SIGKILL at once), wait, remove;
  idempotent.
- ``sweep_containers`` removes the containers of a run, or of every run, by label.
- ``service_port`` picks a service's port below the ephemeral range (see there).
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chaos.backends import images
from chaos.errors import InfrastructureError, StackError

RUN_LABEL = "tradechaos.run"
SERVICE_LABEL = "tradechaos.service"
ROLE_LABEL = "tradechaos.role"
WAIT_EXIT_S = 30.0
# The container appends its output to $TRADECHAOS_LOG (the run's logs/<service>.log), live.
_LOG_WRAPPER = 'exec "$@" >>"$TRADECHAOS_LOG" 2>&1'


def docker_errors() -> tuple[type[BaseException], ...]:
    """What a failed SDK call raises (the engine's answer or the HTTP request's failure)."""
    import docker
    import requests

    return (docker.errors.DockerException, requests.RequestException)


def call(what: str, action: Callable[[], Any]) -> Any:
    """Run one SDK call; its failure becomes a StackError naming ``what``."""
    try:
        return action()
    except docker_errors() as err:
        raise StackError(f"docker could not {what}: {err}") from None


def start_container(
    client: Any,
    image: str,
    argv: Sequence[str],
    *,
    name: str,
    labels: Mapping[str, str],
    environment: Mapping[str, str],
    mounts: Mapping[str, str],
    working_dir: str,
    log_path: str,
    on_created: Callable[[Any], None],
) -> Any:
    """Create and start a container running ``argv`` with its output appended to
    ``log_path``; ``mounts`` maps host paths to container paths (read-write)."""
    what = f"create container {name}"
    container = call(
        what,
        lambda: client.containers.create(
            image,
            command=["/bin/sh", "-c", _LOG_WRAPPER, "sh", *argv],
            name=name,
            labels=dict(labels),
            environment={**environment, "TRADECHAOS_LOG": log_path},
            network_mode="host",
            init=True,
            volumes={host: {"bind": inside, "mode": "rw"} for host, inside in mounts.items()},
            working_dir=working_dir,
            stop_signal="SIGTERM",
        ),
    )
    on_created(container)
    try:
        call(f"start container {name}", container.start)
    except StackError:
        remove_container(container, 0.0)
        raise
    return container


def container_state(container: Any) -> str:
    """running, paused, exited, created, ...; 'absent' once the container is removed."""
    import docker

    try:
        container.reload()
    except docker.errors.NotFound:
        return "absent"
    except docker_errors() as err:
        raise StackError(f"docker could not inspect {container.name}: {err}") from None
    return str(container.status)


def remove_container(container: Any, grace_s: float) -> None:
    """Stop (SIGTERM, ``grace_s``, SIGKILL; SIGKILL at once when ``grace_s`` <= 0), wait
    for the exit, remove. A container that is already gone is not an error."""
    import docker

    try:
        container.reload()
        if container.status == "paused":
            container.unpause()  # a frozen process cannot act on SIGTERM
        if container.status in ("running", "paused", "restarting"):
            if grace_s <= 0:
                container.kill()
            else:
                container.stop(timeout=max(1, round(grace_s)))
            container.wait(timeout=WAIT_EXIT_S)
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker_errors() as err:
        raise StackError(f"docker could not remove {container.name}: {err}") from None


def sweep_containers(run_id: str | None, client: Any = None) -> list[str]:
    """Remove every container labelled ``tradechaos.run=<run_id>`` (every tradechaos
    container when ``run_id`` is None); return their names. No engine: nothing to sweep."""
    unavailable: tuple[type[BaseException], ...] = (InfrastructureError, *docker_errors())
    try:
        client = client or images.docker_client(timeout_s=20)
        selector = RUN_LABEL if run_id is None else f"{RUN_LABEL}={run_id}"
        found = client.containers.list(all=True, filters={"label": selector})
    except unavailable:
        return []
    removed = []
    for container in found:
        with contextlib.suppress(*docker_errors()):
            container.remove(force=True)
            removed.append(str(container.name))
    return removed


_LOW_PORT = 20000
_reserved: set[int] = set()
_reserved_lock = threading.Lock()


def service_port(host: str = "127.0.0.1") -> int:
    """A free TCP port *below* the kernel's ephemeral range, for a service to bind later.

    A port taken from the ephemeral range (what binding to port 0 returns) can be handed by
    the kernel to anyone binding port 0 or connecting out before our container binds it, and
    containers take a while to start; below the range only explicit binds compete. Ports are
    remembered for the life of this process so that one run never gets the same port twice.
    """
    try:
        low_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low_ephemeral = 32768
    high = max(_LOW_PORT + 1000, low_ephemeral - 1)
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randint(_LOW_PORT, high)
        with _reserved_lock:
            if port in _reserved:
                continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        with _reserved_lock:
            _reserved.add(port)
        return port
    raise StackError(f"no free TCP port between {_LOW_PORT} and {high} after 200 tries")
