"""The docker backend against a tiny two-service stack (fast: no database, no trading)."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tinystack import server, tiny_stack

from chaos.backends.base import Endpoint
from chaos.backends.docker import RUN_LABEL, SERVICE_LABEL, DockerBackend, sweep_containers
from chaos.errors import StackError
from chaos.host.runs import RunFolder
from chaos.stackfile.definition import HealthCheck, ServiceSpec, StackDefinition


def get(endpoint: Endpoint, timeout_s: float = 5.0) -> dict[str, Any]:
    with urllib.request.urlopen(f"{endpoint.url}/health", timeout=timeout_s) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def run_containers(client: Any, run_id: str) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}))


@pytest.fixture
def run(tmp_path: Path) -> RunFolder:
    return RunFolder.create(tmp_path, "tiny")


@pytest.fixture
def stack(run: RunFolder, stack_image: str, docker_client: Any) -> Iterator[DockerBackend]:
    backend = DockerBackend(tiny_stack(), run, image=stack_image, client=docker_client)
    backend.start_stack()
    try:
        yield backend
    finally:
        backend.stop_stack()
    assert run_containers(docker_client, run.run_id) == []


def test_every_service_runs_in_its_own_labelled_container_behind_the_proxy(
    stack: DockerBackend, run: RunFolder, docker_client: Any
) -> None:
    containers = run_containers(docker_client, run.run_id)
    services = sorted(c.labels[SERVICE_LABEL] for c in containers)
    assert services == ["alpha", "beta", "proxy"]
    for container in containers:
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
    assert get(stack.link_endpoint("clients-alpha"))["service"] == "alpha"
    assert get(stack.endpoint("beta"))["service"] == "beta"
    assert "serving alpha" in (run.logs / "alpha.log").read_text()  # written live
    assert (run.data_dir("alpha") / "setup-ran").exists()  # setup ran in its own container
    assert sorted(run.state().containers) == sorted(c.id for c in containers)
    assert all(s.running and s.healthy for s in stack.status())


def test_kill_start_restart_and_signal_replace_or_reach_the_container(
    stack: DockerBackend,
) -> None:
    first = stack.pid("alpha")
    stack.kill("alpha")
    assert not stack.is_running("alpha") and stack.pid("alpha") is None
    stack.start("alpha")
    second = stack.pid("alpha")
    assert second is not None and second != first
    stack.restart("alpha")
    assert stack.pid("alpha") not in (None, second)
    assert get(stack.link_endpoint("clients-alpha"))["service"] == "alpha"
    stack.signal("beta", signal.SIGTERM)  # the service exits: docker-init forwards it
    stack._get("beta").container.wait(timeout=30)
    assert not stack.is_running("beta")


def test_pause_freezes_and_resume_thaws(stack: DockerBackend) -> None:
    stack.pause("alpha")
    assert stack.is_running("alpha")
    with pytest.raises(OSError):
        get(stack.endpoint("alpha"), timeout_s=1.0)
    stack.resume("alpha")
    stack.wait_healthy("alpha", timeout_s=10)
    assert get(stack.endpoint("alpha"))["service"] == "alpha"


def test_throttle_sets_and_clears_the_cfs_quota(stack: DockerBackend) -> None:
    def quota() -> int:
        container = stack._get("alpha").container
        container.reload()
        return int(container.attrs["HostConfig"]["CpuQuota"])

    stack.throttle("alpha", 0.25)
    assert quota() == 25_000
    stack.throttle("alpha", None)
    assert quota() <= 0
    assert get(stack.endpoint("alpha"))["service"] == "alpha"


def test_add_service_and_point_a_link_at_it(stack: DockerBackend) -> None:
    endpoint = stack.add_service(server("gamma"))
    stack.set_link_upstream("clients-alpha", endpoint)
    assert get(stack.link_endpoint("clients-alpha"))["service"] == "gamma"


def test_a_service_that_dies_at_start_fails_the_start_with_its_log_and_leaves_nothing(
    run: RunFolder, stack_image: str, docker_client: Any
) -> None:
    broken = StackDefinition(
        name="broken",
        services=(
            server("alpha"),
            ServiceSpec(
                name="doomed",
                command=("{python}", "-c", "import sys; print('doomed: no config'); sys.exit(3)"),
                health=HealthCheck(kind="tcp", timeout_s=20),
                depends_on=("alpha",),
            ),
        ),
        links=(),
    )
    backend = DockerBackend(broken, run, image=stack_image, client=docker_client)
    with pytest.raises(StackError, match="doomed") as caught:
        backend.start_stack()
    assert "doomed: no config" in str(caught.value)
    assert run_containers(docker_client, run.run_id) == []
    assert run.state().containers == []


def test_sweep_removes_the_containers_of_a_run_that_was_never_stopped(
    run: RunFolder, stack_image: str, docker_client: Any
) -> None:
    backend = DockerBackend(tiny_stack(), run, image=stack_image, client=docker_client)
    backend.start_stack()  # and then the runner "dies": no stop_stack
    assert len(run_containers(docker_client, run.run_id)) == 3
    removed = sweep_containers(run.run_id)
    assert len(removed) == 3
    assert run_containers(docker_client, run.run_id) == []


@pytest.mark.parametrize("kind", ["ours", "real"])
def test_an_external_toxiproxy_gets_the_links_and_keeps_running_after_the_stack(
    run: RunFolder, stack_image: str, docker_client: Any, kind: str
) -> None:
    """``kind``: our proxy as an outside server, or the real Toxiproxy 2.12.0 (skipped
    without one, except in CI). Containers reach it on 127.0.0.1 (host networking)."""
    from real_toxiproxy import RealToxiproxy, find_server, missing_reason
    from tcp_servers import ProxyProcess

    from chaos.proxy.client import ToxiproxyClient

    external: ProxyProcess | RealToxiproxy = ProxyProcess()
    if kind == "real":
        path = find_server()
        if path is None:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI=true but {missing_reason()} (.ci/run should have built it)")
            pytest.skip(missing_reason())
        external = RealToxiproxy(path)
    with external, ToxiproxyClient(external.url) as api:
        api.wait_ready(15)
        backend = DockerBackend(
            tiny_stack(), run, toxiproxy_url=external.url, image=stack_image, client=docker_client
        )
        backend.start_stack()
        try:
            assert backend.toxiproxy_url == external.url
            assert set(api.proxies()) == {"clients-alpha", "beta-alpha"}
            assert get(backend.link_endpoint("clients-alpha"))["service"] == "alpha"
            services = sorted(
                c.labels[SERVICE_LABEL] for c in run_containers(docker_client, run.run_id)
            )
            assert services == ["alpha", "beta"]  # no proxy container of our own
            api.update("clients-alpha", enabled=False)  # a fault, through that server
            with pytest.raises(OSError):
                get(backend.link_endpoint("clients-alpha"), timeout_s=2)
            api.update("clients-alpha", enabled=True)
            assert get(backend.link_endpoint("clients-alpha"))["service"] == "alpha"
        finally:
            backend.stop_stack()
        with urllib.request.urlopen(f"{external.url}/proxies", timeout=5) as response:
            assert json.loads(response.read()) == {}  # our links were removed from it
