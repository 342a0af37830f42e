"""``tradechaos run --toxiproxy-url URL`` end to end with the real Toxiproxy 2.12.0.

The test starts the real server, runs the Cloudflare incident (the shortest) both ways
through it, and watches the server's own API during the run: every link of the stack is
created there, the flapping ``reset_peer`` toxic comes and goes on ``clients-sequencer``,
both variants meet their expectations (vulnerable: duplicates; mitigated: none), and
afterwards the server holds none of the run's proxies. Skipped without a real server,
except in CI (proxy_servers.py).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import requests
from proxy_servers import HEADERS, started
from run_cli_helpers import REPO, processes_mentioning, tradechaos
from stack_harness import reference_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CLOUDFLARE = REPO / "experiments" / "incidents" / "cloudflare-2025-edge.yaml"
FLAPPED = "clients-sequencer"


class Watcher:
    """Polls ``GET /proxies`` of a Toxiproxy in a thread: which proxies and toxics it saw."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.proxies: set[str] = set()
        self.toxics: dict[str, set[str]] = defaultdict(set)
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="toxiproxy-watcher", daemon=True)

    def _watch(self) -> None:
        with requests.Session() as session:
            while not self._stop.wait(0.05):
                try:
                    listing = session.get(f"{self.url}/proxies", headers=HEADERS, timeout=2)
                    proxies: dict[str, Any] = listing.json()
                except (requests.RequestException, ValueError):
                    continue
                self.polls += 1
                for name, proxy in proxies.items():
                    self.proxies.add(name)
                    self.toxics[name].update(str(t["name"]) for t in proxy["toxics"])

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def faults(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "history" / "faults.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_the_cloudflare_incident_both_ways_through_the_real_toxiproxy(tmp_path: Path) -> None:
    links = {link.name for link in reference_stack().links}
    with started("real") as real, Watcher(real.url) as watcher:
        done = tradechaos(
            "run", str(CLOUDFLARE), "--toxiproxy-url", real.url,
            "--out", str(tmp_path / "runs"), "--json", "--quiet", timeout=900,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        left = requests.get(f"{real.url}/proxies", headers=HEADERS, timeout=5).json()
    assert watcher.polls > 10
    assert links <= watcher.proxies, f"never created on the real server: {links - watcher.proxies}"
    assert left == {}, f"left on the real server: {sorted(left)}"
    flap_toxics = {
        name for name in watcher.toxics[FLAPPED] if name.endswith("reset_peer-downstream")
    }
    assert flap_toxics, f"no reset_peer toxic seen on {FLAPPED}: {dict(watcher.toxics)}"
    assert all(not toxics for name, toxics in watcher.toxics.items() if name != FLAPPED)

    journals = {j["variant"]: j for j in json.loads(done.stdout)}
    assert set(journals) == {"vulnerable", "mitigated"}
    for variant, journal in journals.items():
        assert journal["status"] == "passed", (variant, journal.get("error"))
        assert journal["expectation_met"] is True, variant
        verdicts = {v["invariant"]: v["valid"] for v in journal["verdicts"]}
        assert verdicts["no_duplicate_orders"] is (variant == "mitigated"), verdicts
        assert verdicts["no_lost_acked_orders"] is True, verdicts
        run_dir = Path(journal["run_dir"])
        flap = [r for r in faults(run_dir) if r["action"] == "flap"]
        assert [r["phase"] for r in flap] == ["begin", "evidence", "end"], flap
        healed = flap[-1]["evidence"]
        assert healed["bad_periods"] >= 3 and "error" not in healed, healed
        assert healed["links"] == [FLAPPED]
        assert healed["stats"] == {FLAPPED: None}  # the real server has no /stats
        assert processes_mentioning(str(run_dir)) == []
