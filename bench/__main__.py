"""Run the benchmarks: ``python -m bench`` (all) or ``python -m bench proxy checkers``.

Each ``bench/bench_<topic>.py`` exposes ``main() -> None`` and prints its own figures,
always as medians and as ratios against a baseline measured in the same run.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    topics = sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(here)])
        if m.name.startswith("bench_")
    )
    chosen = argv or topics
    unknown = [t for t in chosen if t not in topics]
    if unknown:
        print(f"bench: unknown topic {unknown[0]!r} (known: {', '.join(topics)})", file=sys.stderr)
        return 2
    for topic in chosen:
        print(f"\n== bench {topic}", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"bench.bench_{topic}").main()
        print(f"== bench {topic} took {time.perf_counter() - started:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
