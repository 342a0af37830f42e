"""Generate tests/data/recorded_run: a small synthetic run folder in the contract format
(docs/contracts.md sections 2 and 3). Deterministic; rerun after a contract change:

    .venv/bin/python tests/data/make_recorded_run.py

The story (a Paradex-like funding restore): a 30 s run of the ``vulnerable`` variant. At
10 s the database is upgraded (fault until 16 s) and at 12 s the oracle restarts and
restores BTC-PERP's funding index as 0 (published until 20 s); risk liquidates two BTC
accounts on that index (unintended), one ETH account is liquidated on a real 3 % drop
(intended). The writer stalls while the database is upgraded and catches up afterwards.
Verdicts: the expected no_unintended_liquidations violation is caught (pass), an
unexpected fills_within_band violation (fail), sequence_integrity unknown (fail), and
recovery_within_rto unknown for lack of evidence (no node loss: UNKNOWN, not a failure).
The story's times are seconds from the price epoch; the method's t=0 (``method_t0``, the
time base of every report) is 1 s after it, so reports show the upgrade at t=+9 s.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

from chaos.checkers.chain import block_hash
from chaos.world import PriceMove, PricePath

OUT = Path(__file__).resolve().parent / "recorded_run"
SEED = 7
EPOCH = 1_790_000_000.0
METHOD_T0 = EPOCH + 1.0
DURATION = 30.0
MOVE = PriceMove("ETH-PERP", EPOCH + 3.0, 3.0, -3.0)
MARKETS = ("BTC-PERP", "ETH-PERP")


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    history = OUT / "history"
    history.mkdir(parents=True)
    truth = PricePath(SEED, EPOCH, moves=[MOVE])
    rng = random.Random(SEED)
    run = {
        "run_id": "20260719-120000-paradex-funding-restore-vulnerable",
        "experiment": "paradex-funding-restore",
        "variant": "vulnerable",
        "seed": SEED,
        "epoch": EPOCH,
        "started_at": EPOCH,
        "method_t0": METHOD_T0,
        "mitigations": [],
        "markets": list(MARKETS),
        "params": {"band_bps": 500},
    }
    (history / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    _write(history / "faults.jsonl", _faults())
    _write(history / "modes.jsonl", _modes())
    _write(history / "oracle.jsonl", _oracle(truth, rng))
    events = _events(truth, rng)
    _write(history / "events.jsonl", events)
    _write(history / "chain.jsonl", _chain(events, truth))
    client, load = _client(rng)
    _write(history / "client.jsonl", client)
    _write(history / "load.jsonl", load)
    (OUT / "journal.json").write_text(json.dumps(_journal(events), indent=2) + "\n")


def _write(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def _faults() -> list[dict[str, Any]]:
    def rec(t: float, step: str, action: str, target: str | None, phase: str, **kw: Any) -> Any:
        return {
            "time": EPOCH + t,
            "id": step,
            "action": action,
            "target": target,
            "phase": phase,
            "params": kw.pop("params", {}),
            "evidence": kw,
        }

    move = {"market": MOVE.market, "start": MOVE.start, "duration": MOVE.duration, "pct": MOVE.pct}
    return [
        rec(3.0, "eth-drop", "price_move", None, "world", params=move),
        rec(9.0, "cancel", "trading_mode", "sequencer", "begin", params={"mode": "cancel_only"}),
        rec(9.05, "cancel", "trading_mode", "sequencer", "end"),
        rec(10.0, "upgrade", "db_upgrade", "db", "begin", params={"strategy": "migrate"}),
        rec(10.4, "upgrade", "db_upgrade", "db", "evidence", copy_started=True),
        rec(12.0, "restart-oracle", "restart", "oracle", "begin"),
        rec(12.1, "restart-oracle", "restart", "oracle", "evidence", pid_changed=True),
        rec(13.0, "restart-oracle", "restart", "oracle", "end"),
        rec(16.0, "upgrade", "db_upgrade", "db", "end"),
        rec(16.0, "post", "trading_mode", "sequencer", "begin", params={"mode": "post_only"}),
        rec(16.05, "post", "trading_mode", "sequencer", "end"),
        rec(22.0, "normal", "trading_mode", "sequencer", "begin", params={"mode": "normal"}),
        rec(22.05, "normal", "trading_mode", "sequencer", "end"),
    ]


def _modes() -> list[dict[str, Any]]:
    changes = [(0.0, "normal"), (9.0, "cancel_only"), (16.0, "post_only"), (22.0, "normal")]
    return [{"time": EPOCH + t, "mode": m, "source": "runner"} for t, m in changes]


def _published_funding(truth: PricePath, market: str, t: float) -> float:
    """BTC's funding index is restored as 0 from the oracle restart (12 s) until 20 s."""
    if market == "BTC-PERP" and EPOCH + 12.5 <= t < EPOCH + 20.0:
        return 0.0
    return truth.funding_index(market, t)


def _oracle(truth: PricePath, rng: random.Random) -> list[dict[str, Any]]:
    records = []
    for i in range(int(DURATION / 0.25)):
        t = EPOCH + i * 0.25
        if EPOCH + 12.0 <= t < EPOCH + 12.5:
            continue  # the oracle is restarting
        for market in MARKETS:
            mark = truth.price(market, t) * (1 + rng.uniform(-2e-4, 2e-4))
            records.append(
                {
                    "time": round(t, 3),
                    "market": market,
                    "mark_price": round(mark, 4),
                    "funding_index": round(_published_funding(truth, market, t), 6),
                    "interval": truth.funding_interval(t),
                    "inputs": [round(mark, 2)] * 3,
                    "restored": market == "BTC-PERP" and abs(t - EPOCH - 12.5) < 1e-6,
                }
            )
    return records


def _events(truth: PricePath, rng: random.Random) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    def add(t: float, kind: str, **fields: Any) -> None:
        events.append(
            {
                "seq": len(events) + 1,
                "epoch": 1,
                "sequencer": "a",
                "time": round(EPOCH + t, 3),
                "kind": kind,
                **fields,
            }
        )

    for account in range(1, 7):
        add(0.1 * account, "deposit", account=account, amount=100_000.0)
    liquidations = {6.2: (5, "ETH-PERP"), 13.2: (2, "BTC-PERP"), 13.8: (3, "BTC-PERP")}
    t = 1.0
    while t < DURATION:
        market = MARKETS[int(t * 3) % 2]
        price = round(truth.price(market, EPOCH + t), 2)
        for when, (account, liq_market) in liquidations.items():
            if t <= when < t + 0.4:
                _liquidation(add, truth, when, account, liq_market)
        if not (EPOCH + 10.0 <= EPOCH + t < EPOCH + 16.0) or rng.random() < 0.3:
            oid = len(events) + 1
            add(
                t,
                "order_accepted",
                client_order_id=f"c{oid}",
                order_id=oid,
                account=rng.randint(1, 6),
                market=market,
                side=rng.choice(["buy", "sell"]),
                order_type="limit",
                price=price,
                qty=0.1,
            )
            add(
                t + 0.01,
                "fill",
                market=market,
                price=price,
                qty=0.1,
                taker_side="buy",
                maker_account=1,
                taker_account=4,
                maker_order_id=oid - 1,
                taker_order_id=oid,
                liquidation=False,
                oracle_price=price,
                oracle_ts=EPOCH + t,
                funding_index=0.0,
            )
        t += 0.4
    return events


def _liquidation(add: Any, truth: PricePath, when: float, account: int, market: str) -> None:
    t = EPOCH + when
    mark = round(truth.price(market, t), 2)
    add(
        when,
        "liquidation",
        account=account,
        market=market,
        qty=1.0,
        mark_price=mark,
        oracle_ts=t - 0.1,
        funding_index=round(_published_funding(truth, market, t), 6),
        equity=-150.0,
        maintenance=1200.0,
    )


def _chain(events: list[dict[str, Any]], truth: PricePath) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    cursor = 0
    prev = "0" * 64
    t = 1.0
    while t <= DURATION + 0.5:
        stalled = 10.5 <= t < 17.0  # the writer cannot reach the database being upgraded
        batch = [e for e in events[cursor:] if e["time"] <= EPOCH + t]
        if batch and not stalled:
            market_data = [
                {
                    "market": m,
                    "mark_price": round(truth.price(m, EPOCH + t), 2),
                    "funding_index": round(truth.funding_index(m, EPOCH + t), 6),
                    "ts": EPOCH + t,
                }
                for m in MARKETS
            ]
            block = {
                "height": len(blocks) + 1,
                "prev_hash": prev,
                "first_seq": batch[0]["seq"],
                "last_seq": batch[-1]["seq"],
                "events": batch,
                "market_data": market_data,
                "time": round(EPOCH + t, 3),
            }
            digest = block_hash(block)  # the documented canonical form (docs/history.md)
            blocks.append({**block, "hash": digest})
            prev = digest
            cursor += len(batch)
        t += 0.5
    return blocks


def _client(rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ops: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    n = 0
    for second in range(int(DURATION)):
        in_fault = 10 <= second < 16
        for k in range(10):
            n += 1
            t = EPOCH + second + k * 0.1
            latency = rng.uniform(0.2, 0.9) if in_fault else rng.uniform(0.004, 0.02)
            outcome = rng.choices(["ok", "fail", "info"], [6, 2, 2] if in_fault else [1, 0, 0])[0]
            base = {
                "process": k,
                "f": "order",
                "client_order_id": f"o{n}",
                "account": k % 6 + 1,
                "market": MARKETS[k % 2],
                "side": "buy",
                "order_type": "limit",
                "price": 100.0,
                "qty": 0.1,
                "attempt": 1,
            }
            ops.append({**base, "type": "invoke", "time": round(t, 3)})
            done = {
                **base,
                "type": outcome,
                "time": round(t + latency, 3),
                "latency": round(latency, 4),
            }
            if outcome != "ok":
                done["error"] = "timeout" if outcome == "info" else "503 not ready"
            ops.append(done)
        samples.append(
            {
                "time": EPOCH + second + 1,
                "rps": 10.0,
                "p50": 450.0 if in_fault else 9.0,
                "p99": 880.0 if in_fault else 19.0,
                "errors": 4 if in_fault else 0,
            }
        )
    samples.append({"time": EPOCH + DURATION, "final": True, "requests": n, "failures": 24})
    return ops, samples


def _journal(events: list[dict[str, Any]]) -> dict[str, Any]:
    liqs = [e for e in events if e["kind"] == "liquidation" and e["market"] == "BTC-PERP"]
    unintended = [
        {
            "seq": e["seq"],
            "account": e["account"],
            "market": e["market"],
            "problem": "liquidated on a funding index of 0 restored after the oracle restart; "
            "under the true funding index the account was above maintenance margin",
            "funding_index_used": e["funding_index"],
            "true_equity": 2350.0,
            "maintenance": e["maintenance"],
            "t": round(e["time"] - METHOD_T0, 3),
            "wall_time": e["time"],
        }
        for e in liqs
    ]
    return {
        "tradechaos": "0.1.0",
        "status": "failed",
        "experiment": "paradex-funding-restore",
        "file": "experiments/incidents/paradex.yaml",
        "variant": "vulnerable",
        "seed": SEED,
        "no_faults": False,
        "started_at": EPOCH,
        "method_t0": METHOD_T0,
        "ended_at": EPOCH + DURATION + 2.0,
        "run_dir": "runs/20260719-120000-paradex-funding-restore-vulnerable",
        "backend": "process",
        "expected_violations": ["no_unintended_liquidations"],
        "expectation_met": False,
        "steady_state": {
            "before": {
                "ok": True,
                "probes": [
                    {"probe": "health", "ok": True},
                    {"probe": "error_rate", "ok": True, "value": 0.0},
                ],
            },
            "after": {"ok": True, "probes": [{"probe": "health", "ok": True}]},
        },
        "timeline": [
            {
                "id": "cancel",
                "action": "trading_mode",
                "target": "sequencer",
                "scheduled": EPOCH + 9.0,
                "started": EPOCH + 9.0,
                "ended": EPOCH + 9.05,
                "lateness_ms": 3,
                "fault": False,
                "skipped": False,
            },
            {
                "id": "upgrade",
                "action": "db_upgrade",
                "target": "db",
                "scheduled": EPOCH + 10.0,
                "started": EPOCH + 10.0,
                "ended": EPOCH + 16.0,
                "lateness_ms": 5,
                "fault": True,
                "skipped": False,
            },
            {
                "id": "restart-oracle",
                "action": "restart",
                "target": "oracle",
                "scheduled": EPOCH + 12.0,
                "started": EPOCH + 12.0,
                "ended": EPOCH + 13.0,
                "lateness_ms": 2,
                "fault": True,
                "skipped": False,
            },
            {
                "id": "post",
                "action": "trading_mode",
                "target": "sequencer",
                "scheduled": EPOCH + 16.0,
                "started": EPOCH + 16.0,
                "ended": EPOCH + 16.05,
                "lateness_ms": 1,
                "fault": False,
                "skipped": False,
            },
            {
                "id": "normal",
                "action": "trading_mode",
                "target": "sequencer",
                "scheduled": EPOCH + 22.0,
                "started": EPOCH + 22.0,
                "ended": EPOCH + 22.05,
                "lateness_ms": 1,
                "fault": False,
                "skipped": False,
            },
        ],
        "verdicts": [
            {
                "invariant": "no_unintended_liquidations",
                "valid": False,
                "count": 2,
                "checked": 3,
                "unit": "liquidations",
                "no_evidence": False,
                "counterexamples": unintended,
                "message": "2 of 3 liquidations were not justified under true prices and funding",
            },
            {
                "invariant": "no_corrupt_chain_writes",
                "valid": True,
                "count": 0,
                "checked": 24,
                "unit": "blocks",
                "no_evidence": False,
                "counterexamples": [],
                "message": "24 blocks hash-linked and equal to the event log",
            },
            {
                "invariant": "fills_within_band",
                "valid": False,
                "count": 1,
                "checked": 40,
                "unit": "fills outside normal mode",
                "no_evidence": False,
                "counterexamples": [
                    {
                        "seq": 61,
                        "market": "BTC-PERP",
                        "price": 63900.0,
                        "true_price": 60012.5,
                        "band_bps": 500,
                        "mode": "post_only",
                        "problem": "fill 6.5% above the true price while post_only",
                    }
                ],
                "message": "1 fill outside the +-500 bps band",
            },
            {
                "invariant": "sequence_integrity",
                "valid": "unknown",
                "count": 0,
                "checked": 0,
                "counterexamples": [],
                "message": "events.jsonl ends before the final flush: history incomplete",
            },
            {
                "invariant": "recovery_within_rto",
                "valid": "unknown",
                "count": 0,
                "checked": 0,
                "unit": "node losses",
                "no_evidence": True,
                "counterexamples": [],
                "message": "no evidence: no node loss or sequencer kill in faults.jsonl",
            },
        ],
    }


if __name__ == "__main__":
    main()
