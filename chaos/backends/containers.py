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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chaos.backends import images
from chaos.errors import InfrastructureError, StackError
from chaos.host import ports

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
    stop_signal: str = "TERM",
) -> Any:
    """Create and start a container running ``argv`` with its output appended to
    ``log_path``; ``mounts`` maps host paths to container paths (read-write; a host path
    ending in ``:ro`` is mounted read-only)."""
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
            volumes={
                host.removesuffix(":ro"): {
                    "bind": inside,
                    "mode": "ro" if host.endswith(":ro") else "rw",
                }
                for host, inside in mounts.items()
            },
            working_dir=working_dir,
            stop_signal=f"SIG{stop_signal}",
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


def service_port(host: str = "127.0.0.1") -> int:
    """A free TCP port below the ephemeral range for a service to bind later (containers
    take a while to start): ``chaos.host.ports.free_port``."""
    return ports.free_port(host)
