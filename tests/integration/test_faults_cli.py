"""``tradechaos fault`` by hand against a stack started by ``tradechaos stack up --detach``:
the fault takes effect, is recorded in the stack's history, and is healed; behind our proxy
(``[ours]``) and behind the real Toxiproxy 2.12.0 (``[real]``)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from proxy_servers import HEADERS, KINDS, started

pytestmark = pytest.mark.integration


def tradechaos(*args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaos", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module", params=KINDS)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A detached stack behind our proxy (or ``TRADECHAOS_TOXIPROXY_URL``), or (``[real]``)
    behind the real Toxiproxy 2.12.0, which must hold none of its proxies afterwards."""
    out = tmp_path_factory.mktemp("gameday")
    with contextlib.ExitStack() as servers:
        url = os.environ.get("TRADECHAOS_TOXIPROXY_URL")
        if request.param == "real":
            url = servers.enter_context(started("real")).url
        extra = ["--toxiproxy-url", url] if url else []
        up = tradechaos("stack", "up", "--detach", "--out", str(out), *extra, timeout=150)
        assert up.returncode == 0, up.stderr
        try:
            data = json.loads((out / "current-stack.json").read_text())
            data["out"] = str(out)
            yield data
        finally:
            down = tradechaos("stack", "down", "--out", str(out))
            assert down.returncode == 0, down.stderr
        if request.param == "real":
            assert requests.get(f"{url}/proxies", headers=HEADERS, timeout=5).json() == {}


def faults(stack: dict[str, Any]) -> list[dict[str, Any]]:
    path = Path(stack["run_dir"]) / "history" / "faults.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_latency_by_hand_is_applied_recorded_and_healed(stack: dict[str, Any]) -> None:
    link = stack["links"]["clients-sequencer"]
    began = time.monotonic()
    done = tradechaos(
        "fault",
        "latency",
        "clients-sequencer",
        "latency=200ms",
        "direction=downstream",
        "--for",
        "1s",
        "--out",
        stack["out"],
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - began >= 1.0
    phases = [r["phase"] for r in faults(stack) if r["action"] == "latency"]
    assert phases == ["begin", "evidence", "end"]
    evidence = next(r for r in faults(stack) if r["phase"] == "evidence")["evidence"]
    assert evidence["after"]["clients-sequencer"]["toxics"][0]["attributes"]["latency"] == 200
    toxics = requests.get(f"{stack['toxiproxy_url']}/proxies/clients-sequencer/toxics", timeout=5)
    assert toxics.json() == []
    assert requests.get(f"http://{link}/health", timeout=5).status_code == 200


def test_kill_by_hand_is_healed_by_the_owner(stack: dict[str, Any]) -> None:
    before = stack["services"]["risk"]["pid"]
    done = tradechaos("fault", "kill", "risk", "--for", "500ms", "--out", stack["out"])
    assert done.returncode == 0, done.stderr
    status = tradechaos("stack", "status", "--json", "--out", stack["out"])
    risk = json.loads(status.stdout)["services"]["risk"]
    assert risk["pid"] != before
    assert requests.get(f"http://{risk['endpoint']}/health", timeout=5).status_code == 200


def test_bad_parameters_are_one_clear_sentence(stack: dict[str, Any]) -> None:
    done = tradechaos("fault", "latency", "nowhere", "latency=1s", "--out", stack["out"])
    assert done.returncode == 2
    assert "unknown link or service 'nowhere'" in done.stderr and "Traceback" not in done.stderr
