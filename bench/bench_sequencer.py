"""The sequencer's order path: ``POST /orders`` throughput and latency (p50/p99).

Starts db, feeds, oracle and the sequencer (every guard on), then drives orders from
``CONCURRENCY`` concurrent clients for ``DURATION_S`` seconds: makers rest limit orders
around the oracle price and takers cross them, so both the resting and the matching path
(fills, positions, funding settlement) are measured, each order committed to the db before
its reply. Measured directly and through the embedded proxy (``python -m chaos.proxy``),
the baseline being the direct figure of the same run. Target: >= 500 orders/s, p99 <= 50 ms.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CONCURRENCY = 16
DURATION_S = 4.0
WARMUP_S = 1.0
PRIME_S = 3.0
ROUNDS = 2
TARGET_RPS = 500.0
TARGET_P99_MS = 50.0


async def _drive(url: str, duration_s: float, concurrency: int) -> dict[str, Any]:
    import aiohttp

    ids = itertools.count(1)
    latencies: list[float] = []
    outcomes = {"accepted": 0, "rejected": 0, "errors": 0}
    timeout = aiohttp.ClientTimeout(total=5.0)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        async with session.get(f"{url}/markets") as resp:
            mark = (await resp.json())["markets"]["ETH-PERP"]["oracle_price"]

        async def worker(index: int) -> None:
            account = 1 + index % 30
            taker = index % 2 == 1
            start = time.perf_counter()
            while (now := time.perf_counter()) - start < duration_s:
                n = next(ids)
                side = "buy" if n % 2 else "sell"
                body: dict[str, Any] = {
                    "client_order_id": f"bench-{n}",
                    "account": account,
                    "market": "ETH-PERP",
                    "side": side,
                    "qty": 0.1,
                }
                if taker:
                    body["type"] = "market"
                else:
                    offset = 0.0005 * (1 + n % 5)
                    body.update(
                        type="limit",
                        price=round(mark * (1 - offset if side == "buy" else 1 + offset), 2),
                    )
                try:
                    async with session.post(f"{url}/orders", json=body) as resp:
                        result = await resp.json() if resp.status == 200 else {}
                except (aiohttp.ClientError, TimeoutError):
                    result = {}
                done = time.perf_counter()
                if now - start >= WARMUP_S:
                    latencies.append(done - now)
                    outcomes[result.get("status", "errors")] = (
                        outcomes.get(result.get("status", "errors"), 0) + 1
                    )

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    latencies.sort()
    measured = duration_s - WARMUP_S
    return {
        "rps": len(latencies) / measured,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
        **outcomes,
    }


def _report(label: str, figures: dict[str, Any], baseline: dict[str, Any] | None) -> None:
    ok = figures["rps"] >= TARGET_RPS and figures["p99_ms"] <= TARGET_P99_MS
    ratio = ""
    if baseline is not None and baseline["rps"]:
        ratio = f"  ({figures['rps'] / baseline['rps']:.2f}x direct throughput)"
    print(
        f"{label:>8}: {figures['rps']:7.0f} orders/s  p50 {figures['p50_ms']:5.1f} ms  "
        f"p99 {figures['p99_ms']:5.1f} ms  accepted {figures['accepted']} rejected "
        f"{figures['rejected']} errors {figures['errors']}  "
        f"[{'meets' if ok else 'misses'} >= {TARGET_RPS:g}/s, p99 <= {TARGET_P99_MS:g} ms]"
        f"{ratio}",
        flush=True,
    )


def _proxied(upstream: str) -> tuple[Any, str] | None:
    """A running embedded proxy with one link to ``upstream``, or None if unavailable."""
    try:
        from tcp_servers import ProxyProcess

        from chaos.proxy.client import ToxiproxyClient
    except ImportError:
        return None
    proxy = ProxyProcess()
    proxy.__enter__()
    client = ToxiproxyClient(proxy.url)
    created = client.create("clients-sequencer", "127.0.0.1:0", upstream)
    return proxy, f"http://{created['listen']}"


def _print_batching(url: str) -> None:
    import requests

    health = requests.get(f"{url}/health", timeout=5).json()
    print(
        f"          group commit: {health['batches']} transactions, "
        f"{health['mean_batch']:.1f} requests each, {health['mean_commit_ms']:.1f} ms each"
    )


def _best_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput (of 2: the slower, to stay conservative)."""
    return sorted(runs, key=lambda r: r["rps"])[(len(runs) - 1) // 2]


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
    from stack_harness import DirectStack

    with tempfile.TemporaryDirectory(prefix="bench-sequencer-") as tmp:
        only = ("db", "feeds", "oracle", "sequencer")
        with DirectStack(Path(tmp), mitigations="all", only=only) as stack:
            print(
                f"stack (db, feeds, oracle, sequencer) healthy in {stack.cold_start_s:.2f} s; "
                f"{CONCURRENCY} clients, {ROUNDS} rounds of {DURATION_S:g} s per path, "
                f"alternating ({WARMUP_S:g} s warm-up each; one {PRIME_S:g} s priming run)"
            )
            direct_url = stack.url("sequencer")
            asyncio.run(_drive(direct_url, PRIME_S, CONCURRENCY))  # caches warm: discarded
            proxied = _proxied(str(stack.endpoints["sequencer"]))
            paths = {"direct": direct_url}
            if proxied is not None:
                paths["proxied"] = proxied[1]
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in paths}
            try:
                for _ in range(ROUNDS):
                    for name, url in paths.items():
                        runs[name].append(asyncio.run(_drive(url, DURATION_S, CONCURRENCY)))
            finally:
                if proxied is not None:
                    proxied[0].__exit__(None, None, None)
            direct = _best_of(runs["direct"])
            _report("direct", direct, None)
            _print_batching(direct_url)
            if proxied is None:
                print("proxied: skipped (chaos.proxy not available)")
            else:
                _report("proxied", _best_of(runs["proxied"]), direct)


if __name__ == "__main__":
    main()
