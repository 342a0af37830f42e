"""A real Kubernetes API server for tests/k8s (no cluster): the ``apiserver`` fixture.

The ``apiserver`` fixture builds kube-apiserver 1.20.2 + etcd with
``shared/tools/k8s-apiserver/build.sh`` (cached under ``$K8S_APISERVER_DIR`` or
``~/.cache/tradechaos/k8s-apiserver``; about 3 minutes cold), starts them with ``up.sh``
on free ports in a private folder, applies the Chaos Mesh CRDs (the three a 1.20 server
refuses with their ``default: ""`` lines removed) and stops them with ``down.sh``. When it
cannot (no tools, no build), the tests that need it are skipped, except in CI
(``CI=true``), where that is a failure: .ci/k8s.sh builds it there.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # kubernetes is imported where it is used (a heavy import)
    from kubernetes.client import ApiClient

HERE = Path(__file__).parent
REPO = HERE.parent.parent
DATA = REPO / "tests" / "k8s" / "data" / "chaos-mesh"
CRD_FILE = DATA / "crd-v2.8.3.yaml"
VALIDATOR = DATA / "validate-chaos-mesh.py"
START_TIMEOUT_S = 120
CRD_TIMEOUT_S = 60.0


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason} (.ci/k8s.sh should have built the API server)")
    pytest.skip(reason)


def tools_dir() -> Path | None:
    candidates = [os.environ.get("TRADECHAOS_K8S_TOOLS")]
    candidates += [
        str(up / "shared" / "tools" / "k8s-apiserver") for up in (REPO.parent, REPO.parent.parent)
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "up.sh").is_file():
            return Path(candidate)
    return None


def _free_base() -> int:
    """A port P with P, P+1, P+2 free (etcd client, peer, metrics)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base > 65000:
            continue
        try:
            for port in (base + 1, base + 2):
                with socket.socket() as other:
                    other.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no three free consecutive ports")


def _free_port(avoid: int) -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in (avoid, avoid + 1, avoid + 2):
            return port


@dataclass
class ApiServer:
    kubeconfig: Path
    folder: Path

    def client(self) -> ApiClient:
        from kubernetes import config

        # kubernetes.config carries no annotations (the generated client does)
        api_client: ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig)
        )
        return api_client


def crd_documents() -> list[dict[str, Any]]:
    """The CRDs as a 1.20 server takes them (``default: ""`` lines removed)."""
    import yaml

    text = re.sub(r'(?m)^ *default: ""\n', "", CRD_FILE.read_text(encoding="utf-8"))
    return [d for d in yaml.safe_load_all(text) if d]


def _install_crds(server: ApiServer) -> None:
    from kubernetes import client

    api = client.ApiextensionsV1Api(server.client())
    for crd in crd_documents():
        # the generated client serializes any JSON body; its annotation names only the model
        api.create_custom_resource_definition(crd, _request_timeout=30)  # type: ignore[arg-type]
    deadline = time.monotonic() + CRD_TIMEOUT_S
    wanted = {crd["metadata"]["name"] for crd in crd_documents()}
    while True:
        established: set[str] = set()
        for item in api.list_custom_resource_definition(_request_timeout=30).items:
            assert item.metadata is not None and item.metadata.name is not None
            conditions = (item.status.conditions if item.status else None) or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                established.add(item.metadata.name)
        if wanted <= established:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"CRDs not Established after {CRD_TIMEOUT_S:g}s: {sorted(wanted - established)}"
            )
        time.sleep(0.2)  # polling a condition with a deadline


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    tools = tools_dir()
    if tools is None:
        _unavailable("no shared/tools/k8s-apiserver (set TRADECHAOS_K8S_TOOLS)")
    assert tools is not None
    pytest.importorskip("kubernetes")
    built = subprocess.run(
        ["bash", str(tools / "build.sh")], capture_output=True, text=True, timeout=1800
    )
    if built.returncode != 0:
        _unavailable(f"kube-apiserver could not be built: {built.stderr.strip()[-300:]}")
    bin_dir = Path(built.stdout.strip().splitlines()[-1])
    folder = tmp_path_factory.mktemp("apiserver")
    (folder / "bin").symlink_to(bin_dir)
    base = _free_base()
    env = {**os.environ, "ETCD_PORT": str(base), "APISERVER_PORT": str(_free_port(base))}
    try:
        up = subprocess.run(
            ["bash", str(tools / "up.sh"), str(folder)],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            env=env,
        )
        line = next((x for x in up.stdout.splitlines() if x.startswith("KUBECONFIG=")), None)
        if up.returncode != 0 or line is None:
            log = folder / "runtime" / "apiserver.log"
            tail = log.read_text()[-500:] if log.is_file() else ""
            pytest.fail(f"up.sh failed: {up.stderr.strip()[-300:]} {tail}")
        server = ApiServer(Path(line.partition("=")[2]), folder)
        _install_crds(server)
        yield server
    finally:
        subprocess.run(
            ["bash", str(tools / "down.sh"), str(folder)], capture_output=True, timeout=60
        )
