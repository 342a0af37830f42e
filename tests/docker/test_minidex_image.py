"""The example stack's image: examples/minidex/Dockerfile builds offline from a wheelhouse
on the base tradechaos uses (python:3.11-slim, or the local Debian base), holds no
tradechaos, and its services run in containers (host network) against a real database.

Run under ``flock /tmp/tradechaos-heavy.lock flock /tmp/tradechaos-docker.lock``.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from minidex_harness import EXAMPLE, Client, Minidex

from chaos.backends import images
from chaos.errors import InfrastructureError

IMAGE = "minidex:dev"
REQUIREMENTS = ["psycopg[binary]>=3.1", "aiohttp>=3.9"]  # the stack file's build.wheelhouse


@pytest.fixture(scope="module")
def minidex_image(docker_client: Any) -> str:
    """Built by the docker backend's own builder from the stack file's ``build:`` (its
    context, BASE from {base_image}, the wheelhouse made on the host)."""
    from chaos.stackfile import load, resolve

    spec = resolve(load(EXAMPLE / "stack.yaml")).service("engine")
    assert spec.image == IMAGE and spec.build is not None
    assert set(spec.build.wheelhouse) == set(REQUIREMENTS)
    try:
        images.build_service_image(IMAGE, spec.build, docker_client, lambda line: None)
    except InfrastructureError as err:
        pytest.skip(f"no wheelhouse (pip wheel needs the package index): {err}")
    return IMAGE


class Container:
    """A minidex service in a container on the host network; stop() removes it."""

    def __init__(self, client: Any, service: str, env: dict[str, str]) -> None:
        only = {k: v for k, v in env.items() if k.startswith("MINIDEX_")}
        self.container = client.containers.run(
            IMAGE,
            ["python3", "-m", f"minidex.{service}"],
            environment=only,
            network_mode="host",
            detach=True,
            name=f"minidex-test-{service}-{uuid.uuid4().hex[:8]}",
        )

    def alive(self) -> bool:
        self.container.reload()
        return self.container.status in ("created", "running")

    def stop(self, grace_s: float = 10.0) -> None:
        try:
            self.container.stop(timeout=int(grace_s))
        finally:
            self.container.remove(force=True)

    def tail(self) -> str:
        return str(self.container.logs(tail=40).decode(errors="replace"))


class ContainerMinidex(Minidex):
    def __init__(self, root: Path, client: Any) -> None:
        super().__init__(root)
        self.client = client

    def launch(self, service: str, env: dict[str, str]) -> Container:
        return Container(self.client, service, env)


@pytest.fixture
def stack(tmp_path: Path, docker_client: Any, minidex_image: str) -> Iterator[Minidex]:
    with ContainerMinidex(tmp_path, docker_client) as stack:
        yield stack
    leftovers = docker_client.containers.list(all=True, filters={"name": "minidex-test-"})
    assert leftovers == []


def test_the_image_holds_minidex_and_not_tradechaos(docker_client: Any, minidex_image: str) -> None:
    probe = (
        "import importlib.util as u; print(*(bool(u.find_spec(m)) for m in ('minidex', 'chaos')))"
    )
    out = docker_client.containers.run(minidex_image, ["python3", "-c", probe], remove=True)
    assert out.decode().split() == ["True", "False"]


def test_the_services_trade_in_containers(stack: Minidex) -> None:
    client = Client(stack.url("engine"))
    for acct in (1, 2):
        stack.credit(acct, "100000")
    px, _ = stack.mark()
    resting = client.order("m", 1, "SELL", "1", f"{px * 1.001:.2f}")
    assert resting is not None and resting["result"] == "RESTING"
    filled = client.order("t", 2, "BUY", "0.5")
    assert filled is not None and filled["result"] == "FILLED"
    kinds = [typ for (typ,) in stack.rows("SELECT typ FROM journal ORDER BY n")]
    assert kinds == ["CREDIT", "CREDIT", "ORDER", "ORDER", "TRADE"]
