"""The docker backend behind the real Toxiproxy 2.12.0: ``tradechaos run --backend docker
--toxiproxy-url URL`` on the Cloudflare incident (its vulnerable variant, the short one).

The containers use host networking, so they reach the real server's proxies on 127.0.0.1;
the run's links are created there, the flapping toxic acts there, and afterwards none of
the run's proxies and none of its containers is left. Skipped without a real server,
except in CI (``CI=true``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from real_toxiproxy import RealToxiproxy, find_server, missing_reason

from chaos.backends.docker import RUN_LABEL, sweep_containers

REPO = Path(__file__).resolve().parents[2]
CLOUDFLARE = REPO / "experiments" / "incidents" / "cloudflare-2025-edge.yaml"


@pytest.fixture
def real_toxiproxy() -> Any:
    path = find_server()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {missing_reason()} (.ci/run should have built it)")
        pytest.skip(missing_reason())
    with RealToxiproxy(path) as server:
        yield server


@pytest.mark.slow
def test_a_docker_run_through_the_real_toxiproxy(
    tmp_path: Path, stack_image: str, docker_client: Any, real_toxiproxy: RealToxiproxy
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chaos", "run", str(CLOUDFLARE), "--backend", "docker",
         "--variant", "vulnerable", "--toxiproxy-url", real_toxiproxy.url,
         "--out", str(tmp_path), "--json", "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    (journal,) = json.loads(done.stdout or "[{}]")
    run_id = Path(str(journal.get("run_dir", "none"))).name
    try:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        assert journal["backend"] == "docker" and journal["expectation_met"] is True
        verdicts = {v["invariant"]: v["valid"] for v in journal["verdicts"]}
        assert verdicts == {"no_duplicate_orders": False, "no_lost_acked_orders": True}
        history = Path(journal["run_dir"]) / "history" / "faults.jsonl"
        flap = [json.loads(line) for line in history.read_text().splitlines()]
        healed = [r for r in flap if r["action"] == "flap" and r["phase"] == "end"]
        assert healed and healed[0]["evidence"]["bad_periods"] >= 3
        with urllib.request.urlopen(f"{real_toxiproxy.url}/proxies", timeout=5) as response:
            assert json.loads(response.read()) == {}
        labelled = docker_client.containers.list(
            all=True, filters={"label": f"{RUN_LABEL}={run_id}"}
        )
        assert labelled == []
    finally:
        sweep_containers(run_id, docker_client)
