"""Soak the incident library: N passes per backend, and the flakes per experiment/variant.

    python -m bench.soak --passes 10                      # process, and docker if it answers
    python -m bench.soak --passes 3 --backends process --out runs/soak
    python -m bench.soak --passes 0 --out runs/soak       # only the table of what is there
    make soak N=10 [BACKENDS="process docker"]

Each pass is the gate command, ``tradechaos run experiments/incidents/*.yaml --controls
--jobs 2 --json``, with its run folders under ``OUT/<backend>/pass-<k>``. Passes add up:
a second call with the same ``--out`` continues the numbering, and the table covers every
finished pass in the folder (so passes can be run one at a time, e.g. each under a lock).

A **flake** is a combination (experiment, variant, fault run or control) whose outcome
(status and whether the expectation was met) differs between passes. The table also shows
**verdict drift**: an invariant whose value (held / violated / unknown) differs between
passes of a combination whose outcome did not, with the passes that differ, so a flake in
the making shows before it fails a gate. Exit code: 0 no flake, 1 a flake (or a pass that
did not finish), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PASS_TIMEOUT_S = 1800.0
DOCKER_PROBE_TIMEOUT_S = 10.0
Key = tuple[str, str, str]  # experiment, variant, "faults" | "control"


@dataclass
class Combination:
    """Every pass's result for one (experiment, variant, faults|control)."""

    outcomes: dict[int, str] = field(default_factory=dict)  # pass -> "passed, met"
    verdicts: dict[int, dict[str, str]] = field(default_factory=dict)  # pass -> name -> value
    run_dirs: dict[int, str] = field(default_factory=dict)

    @property
    def flaky(self) -> bool:
        return len(set(self.outcomes.values())) > 1

    def drift(self) -> dict[str, Counter[str]]:
        """Invariants whose value differs between passes: name -> value counts."""
        names = {name for values in self.verdicts.values() for name in values}
        found: dict[str, Counter[str]] = {}
        for name in sorted(names):
            counts = Counter(values.get(name, "absent") for values in self.verdicts.values())
            if len(counts) > 1:
                found[name] = counts
        return found


def docker_answers() -> bool:
    """True when a Docker engine answers ``docker info`` within the probe timeout."""
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(
            ["docker", "info"], capture_output=True, timeout=DOCKER_PROBE_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def run_pass(backend_dir: Path, backend: str, number: int, jobs: int) -> dict[str, Any]:
    """One pass of the gate command; its summary is ``pass-<k>/pass.json`` (written last,
    so a pass without it did not finish)."""
    out = backend_dir / f"pass-{number}"
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(str(p) for p in (ROOT / "experiments" / "incidents").glob("*.yaml"))
    argv = [sys.executable, "-m", "chaos", "run", *files, "--controls", "--jobs", str(jobs)]
    argv += ["--json", "--quiet", "--backend", backend, "--out", str(out / "runs")]
    began = time.monotonic()
    try:
        with (out / "stdout.json").open("wb") as stdout, (out / "stderr.log").open("wb") as err:
            code = subprocess.run(
                argv, cwd=ROOT, stdout=stdout, stderr=err, timeout=PASS_TIMEOUT_S, check=False
            ).returncode
    except subprocess.TimeoutExpired:
        code = -1
    summary = {"pass": number, "backend": backend, "exit_code": code, "argv": argv}
    summary["wall_s"] = round(time.monotonic() - began, 1)
    (out / "pass.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def finished_passes(backend_dir: Path) -> list[Path]:
    passes = [p for p in backend_dir.glob("pass-*") if (p / "pass.json").is_file()]
    return sorted(passes, key=lambda p: int(p.name.removeprefix("pass-")))


def next_number(backend_dir: Path) -> int:
    numbers = [int(p.name.removeprefix("pass-")) for p in backend_dir.glob("pass-*")]
    return max(numbers, default=0) + 1


def collect(backend_dir: Path) -> tuple[dict[Key, Combination], list[dict[str, Any]]]:
    """Every finished pass's journals, by combination; and the passes' summaries."""
    combinations: dict[Key, Combination] = defaultdict(Combination)
    summaries = []
    for pass_dir in finished_passes(backend_dir):
        summary = json.loads((pass_dir / "pass.json").read_text())
        summaries.append(summary)
        number = int(summary["pass"])
        for journal_path in sorted((pass_dir / "runs").glob("*/journal.json")):
            try:
                journal = json.loads(journal_path.read_text())
            except (OSError, ValueError):
                continue
            kind = "control" if journal.get("no_faults") else "faults"
            key = (str(journal.get("experiment")), str(journal.get("variant")), kind)
            entry = combinations[key]
            met = "met" if journal.get("expectation_met") is True else "NOT met"
            entry.outcomes[number] = f"{journal.get('status')}, {met}"
            entry.verdicts[number] = {
                str(v.get("invariant")): _value(v) for v in journal.get("verdicts") or []
            }
            entry.run_dirs[number] = str(journal_path.parent)
    return combinations, summaries


def _value(verdict: dict[str, Any]) -> str:
    valid = verdict.get("valid")
    if valid is True:
        return "held"
    if valid is False:
        return "violated"
    return "unknown (no evidence)" if verdict.get("no_evidence") else "unknown"


def report(backend: str, backend_dir: Path) -> int:
    """Print the table of one backend; the number of flaky combinations (and unfinished
    passes, counted as flakes)."""
    combinations, summaries = collect(backend_dir)
    if not summaries:
        print(f"\n== {backend}: no finished pass in {backend_dir}")
        return 0
    walls = sorted(s["wall_s"] for s in summaries)
    codes = Counter(s["exit_code"] for s in summaries)
    print(
        f"\n== {backend}: {len(summaries)} pass(es) in {backend_dir}; pass wall median "
        f"{walls[len(walls) // 2]:.0f} s (max {walls[-1]:.0f} s); exit codes "
        + ", ".join(f"{code}: {n}x" for code, n in sorted(codes.items()))
    )
    print(f"{'experiment':28} {'variant':16} {'run':8} {'met':>6}  outcome")
    flakes = 0
    for key in sorted(combinations):
        entry = combinations[key]
        met = sum(1 for o in entry.outcomes.values() if o.endswith(", met"))
        outcome = "FLAKY" if entry.flaky else "stable"
        flakes += entry.flaky
        name, variant, kind = key
        print(f"{name:28} {variant:16} {kind:8} {met:>3}/{len(entry.outcomes):<2}  {outcome}")
        if entry.flaky:
            for number, text in sorted(entry.outcomes.items()):
                print(f"    pass {number}: {text}  {entry.run_dirs[number]}")
        for invariant, counts in entry.drift().items():
            values = ", ".join(f"{value} {n}x" for value, n in counts.most_common())
            print(f"    verdict drift: {invariant}: {values}")
            rare = counts.most_common()[-1][0]
            for number, verdicts in sorted(entry.verdicts.items()):
                if verdicts.get(invariant, "absent") == rare:
                    print(f"      pass {number} ({rare}): {entry.run_dirs[number]}")
    missing = sum(1 for s in summaries if s["exit_code"] not in (0, 1))
    print(
        f"{backend}: {flakes} flaky combination(s) of {len(combinations)} over "
        f"{len(summaries)} pass(es)"
        + (f"; {missing} pass(es) ended with an infrastructure exit code" if missing else "")
    )
    return flakes + missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--passes", type=int, default=10, help="passes per backend (0: report)")
    parser.add_argument(
        "--backends",
        default="",
        help="e.g. 'process docker' (default: process, and docker when an engine answers)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "soak")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    if args.passes < 0 or args.jobs < 1:
        print("soak: --passes must be >= 0 and --jobs >= 1", file=sys.stderr)
        return 2
    backends = args.backends.replace(",", " ").split()
    if not backends:
        backends = ["process"] + (["docker"] if docker_answers() else [])
    unknown = [b for b in backends if b not in ("process", "docker")]
    if unknown:
        print(f"soak: unknown backend {unknown[0]!r} (known: process, docker)", file=sys.stderr)
        return 2
    for backend in backends:
        backend_dir = args.out / backend
        backend_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(args.passes):
            number = next_number(backend_dir)
            summary = run_pass(backend_dir, backend, number, args.jobs)
            print(
                f"{backend} pass {number}: exit {summary['exit_code']} in {summary['wall_s']} s",
                flush=True,
            )
    return 1 if sum(report(b, args.out / b) for b in backends) else 0


if __name__ == "__main__":
    raise SystemExit(main())
