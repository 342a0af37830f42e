"""tests/docker: need a Docker engine and the stack image.

Without an engine these tests are skipped with the reason, except in CI (``CI=true``),
where a missing engine is a failure: .ci/docker.sh is supposed to have started one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaos.backends import images
from chaos.errors import InfrastructureError

HERE = Path(__file__).parent
# the shared harnesses (stack_harness, tcp_servers, real_toxiproxy...)
sys.path.insert(0, str(HERE.parent / "integration"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.docker)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason} (.ci/docker.sh should have started dockerd)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    try:
        client = images.docker_client(timeout_s=30)
    except InfrastructureError as err:
        _unavailable(f"no Docker engine: {err}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def stack_image(docker_client: Any) -> str:
    """The stack image, current with the sources (built now when missing or stale)."""
    try:
        return images.build(client=docker_client).image
    except InfrastructureError as err:
        _unavailable(f"the stack image could not be built: {err}")
        raise
