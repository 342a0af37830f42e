"""``make demo``: run the Paradex incident experiment both ways and show the verdicts.

Runs ``tradechaos run experiments/incidents/paradex-2026-db-upgrade.yaml`` (both variants,
on the embedded default: process backend + embedded proxy), then prints where the reports
are. Exit code is the run's.
"""

from __future__ import annotations

import sys
from pathlib import Path

from chaos.cli import main as cli_main

EXPERIMENT = Path("experiments/incidents/paradex-2026-db-upgrade.yaml")


def main() -> int:
    if not EXPERIMENT.exists():
        sys.stderr.write(
            f"demo: {EXPERIMENT} not found; run `make demo` from the repository root\n"
        )
        return 2
    print("tradechaos demo: Paradex 2026-01-19 database-upgrade race, vulnerable and mitigated")
    print("(vulnerable must show the incident's harms; mitigated must pass every invariant)\n")
    return cli_main(["run", str(EXPERIMENT), "--out", "runs"])


if __name__ == "__main__":
    raise SystemExit(main())
