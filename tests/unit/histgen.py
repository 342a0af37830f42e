"""Synthetic run histories for the checker tests and the checker benchmark.

``Builder`` makes a small, clean history that obeys every invariant under the run's truth
(``chaos.history.truth.RunTruth``): traders with deep collateral trade near the true price,
one thin account is liquidated just below maintenance (a near miss that must pass), the
mode goes post_only and back with fills inside the band, the oracle publishes the true
price and funding, the chain carries the events in hash-linked blocks, and a node loss is
followed by prompt recovery. ``plant_*`` functions then plant one violation each and
return what a checker must report about it. ``write`` lays the files out as a run folder.

``write_bulk`` writes a large clean history fast (templated lines) for ``bench``.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.history.truth import RunTruth
from chaos.world import MAINTENANCE_MARGIN_RATIO, PriceMove

Obj = dict[str, Any]
EPOCH = 1_800_000_000.0
GENESIS = "0" * 64
MARKETS = ("BTC-PERP", "ETH-PERP")
INSURANCE = 0
DEEP = 10_000_000.0  # collateral of ordinary traders: never near maintenance


def canonical(obj: Obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def seal(block: Obj) -> Obj:
    """Set ``block["hash"]`` to the hash of its other fields (docs/checkers.md)."""
    body = {k: v for k, v in block.items() if k != "hash"}
    block["hash"] = hashlib.sha256(canonical(body).encode()).hexdigest()
    return block


@dataclass
class Builder:
    """A clean synthetic history, built in memory (small: up to a few thousand events)."""

    seed: int
    epoch: float = EPOCH
    rng: random.Random = field(init=False)
    truth: RunTruth = field(init=False)
    moves: list[PriceMove] = field(default_factory=list)
    events: list[Obj] = field(default_factory=list)
    client: list[Obj] = field(default_factory=list)
    modes: list[Obj] = field(default_factory=list)
    faults: list[Obj] = field(default_factory=list)
    oracle: list[Obj] = field(default_factory=list)
    blocks: list[Obj] = field(default_factory=list)
    t: float = 0.0
    epoch_no: int = 1
    sequencer: str = "a"
    mode: str = "normal"
    next_order: int = 1
    process: int = 0
    # harmgen's recorded response: events a rollback removed, the chain at the snapshot
    rolled_back: list[Obj] = field(default_factory=list)
    snapshot_blocks: list[Obj] | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.t = self.epoch + 0.5

    def with_move(self, market: str, start: float, duration: float, pct: float) -> None:
        """A world price move (must be added before anything is priced)."""
        self.moves.append(PriceMove(market, self.epoch + start, duration, pct))
        self.faults.append(
            {
                "time": self.epoch + start,
                "id": f"move{len(self.moves)}",
                "action": "price_move",
                "target": None,
                "phase": "world",
                "params": {
                    "market": market,
                    "start": self.epoch + start,
                    "duration": duration,
                    "pct": pct,
                },
            }
        )

    def start(self) -> None:
        self.truth = RunTruth(self.seed, self.epoch, self.moves)

    # -- events ---------------------------------------------------------------------------

    def tick(self, dt: float = 0.01) -> float:
        self.t += dt
        return self.t

    def emit(self, kind: str, **fields: Any) -> Obj:
        event = {
            "seq": len(self.events) + 1,
            "epoch": self.epoch_no,
            "sequencer": self.sequencer,
            "time": round(self.tick(), 6),
            "kind": kind,
            **fields,
        }
        self.events.append(event)
        return event

    def deposit(self, account: int, amount: float) -> Obj:
        return self.emit("deposit", account=account, amount=amount)

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.modes.append({"time": round(self.t + 0.005, 6), "mode": mode, "source": "test"})
        self.emit("mode", mode=mode)

    def order(self, account: int, market: str, side: str, price: float, qty: float) -> Obj:
        """An acknowledged client order: invoke, order_accepted, ok."""
        coid = f"c{account}-{self.next_order}"
        order_id = self.next_order
        self.next_order += 1
        self.process += 1
        op = {
            "process": self.process,
            "f": "order",
            "client_order_id": coid,
            "account": account,
            "market": market,
            "side": side,
            "order_type": "limit",
            "price": price,
            "qty": qty,
            "attempt": 1,
        }
        self.client.append({"type": "invoke", "time": round(self.t + 0.001, 6), **op})
        event = self.emit(
            "order_accepted",
            client_order_id=coid,
            order_id=order_id,
            account=account,
            market=market,
            side=side,
            order_type="limit",
            price=price,
            qty=qty,
        )
        self.client.append(
            {"type": "ok", "time": round(self.t + 0.002, 6), "seq": event["seq"], **op}
        )
        return event

    def fill(
        self,
        market: str,
        price: float,
        qty: float,
        taker: int,
        maker: int,
        taker_side: str = "buy",
        liquidation: bool = False,
        taker_order: Any = None,
        maker_order: Any = None,
        oracle_age: float = 0.2,
    ) -> Obj:
        t = self.t + 0.01
        return self.emit(
            "fill",
            market=market,
            price=price,
            qty=qty,
            taker_side=taker_side,
            maker_account=maker,
            taker_account=taker,
            maker_order_id=maker_order,
            taker_order_id=taker_order,
            liquidation=liquidation,
            oracle_price=round(self.truth.price(market, t - oracle_age), 2),
            oracle_ts=round(t - oracle_age, 6),
            funding_index=self.truth.funding_index(market, t - oracle_age),
        )

    def trade(self, a: int, b: int, market: str, off_bps: float) -> None:
        """Account ``a`` buys 0.1-1 from ``b`` at the true price moved by ``off_bps``."""
        qty = round(self.rng.uniform(0.1, 1.0), 3)
        price = round(self.truth.price(market, self.t + 0.03) * (1 + off_bps / 1e4), 2)
        maker = self.order(b, market, "sell", price, qty)
        taker = self.order(a, market, "buy", price, qty)
        self.fill(
            market,
            price,
            qty,
            taker=a,
            maker=b,
            taker_order=taker["order_id"],
            maker_order=maker["order_id"],
        )

    def near_miss_liquidation(self, account: int, below: float = 0.001) -> Obj:
        """``account`` buys 1 BTC with just enough collateral to sit ``below`` (a fraction)
        under maintenance at the liquidation, then is liquidated: intended, however thin
        the shortfall. The deposit is sized after the fact from the events' own times."""
        market = "BTC-PERP"
        deposit = self.deposit(account, 0.0)
        price = round(self.truth.price(market, self.t + 0.01), 2)
        fill = self.fill(market, price, 1.0, taker=account, maker=1)
        liquidation = self.liquidate(account, market, 1.0)
        t_fill, t_liq = fill["time"], liquidation["time"]
        mark = self.truth.price(market, t_liq)
        accrued = self.truth.funding_index(market, t_liq) - self.truth.funding_index(market, t_fill)
        maintenance = MAINTENANCE_MARGIN_RATIO * mark
        deposit["amount"] = maintenance * (1 - below) - (mark - price) + accrued
        return liquidation

    def liquidate(self, account: int, market: str, qty: float) -> Obj:
        mark = self.truth.price(market, self.t + 0.01)
        event = self.emit(
            "liquidation",
            account=account,
            market=market,
            qty=qty,
            mark_price=round(mark, 2),
            oracle_ts=round(self.t - 0.1, 6),
            funding_index=self.truth.funding_index(market, self.t),
            equity=0.0,
            maintenance=0.0,
        )
        self.fill(
            market,
            round(mark, 2),
            qty,
            taker=account,
            maker=INSURANCE,
            taker_side="sell",
            liquidation=True,
        )
        return event

    # -- a whole clean run ------------------------------------------------------------------

    def clean(self, trades: int = 40, traders: int = 6) -> Builder:
        """The clean scenario (see module doc); deterministic in ``seed``."""
        self.with_move("*", 0.8, 0.4, self.rng.choice([-3.0, 2.0, 4.0]))
        self.start()
        for account in range(1, traders + 1):
            self.deposit(account, DEEP)
        self.deposit(INSURANCE, DEEP)
        for i in range(trades):
            a, b = self.rng.sample(range(1, traders + 1), 2)
            self.trade(a, b, self.rng.choice(MARKETS), self.rng.uniform(-20, 20))
            if i == trades // 3:
                self.set_mode("post_only")
            if i == trades // 3 + 3:
                self.set_mode("normal")
            if i == trades // 2:
                self.near_miss_liquidation(traders + 1)
            if i % 7 == 0:
                self.funding_settle(a)
        self.unknown_outcome_order(1)
        self.node_loss_with_recovery(after=0.5)
        self.trade(1, 2, "BTC-PERP", 0.0)
        self.publish_oracle()
        self.build_chain()
        return self

    def funding_settle(self, account: int) -> None:
        market = self.rng.choice(MARKETS)
        self.emit(
            "funding_settle",
            account=account,
            market=market,
            amount=round(self.rng.uniform(-5, 5), 4),
            funding_index=self.truth.funding_index(market, self.t),
        )

    def unknown_outcome_order(self, account: int) -> None:
        """An order whose reply was lost (info) and that never reached the log: not lost."""
        self.process += 1
        op = {
            "process": self.process,
            "f": "order",
            "client_order_id": f"c{account}-lost-reply",
            "account": account,
            "market": "BTC-PERP",
            "side": "buy",
            "order_type": "limit",
            "price": 1.0,
            "qty": 0.1,
            "attempt": 1,
        }
        self.client.append({"type": "invoke", "time": round(self.tick(), 6), **op})
        self.client.append(
            {"type": "info", "time": round(self.tick(), 6), "error": "timeout", **op}
        )

    def node_loss_with_recovery(self, after: float) -> None:
        self.faults.append(
            {
                "time": round(self.t, 6),
                "id": "loss1",
                "action": "node_loss",
                "target": "a",
                "phase": "begin",
                "params": {"ramp": 0.0},
            }
        )
        self.t += after

    def publish_oracle(self) -> None:
        """One oracle publication per market per second over the run, at truth."""
        k = 0
        while self.epoch + k * 0.5 <= self.t + 1.0:
            ts = round(self.epoch + k * 0.5 + 0.05, 6)
            for market in MARKETS:
                self.oracle.append(
                    {
                        "time": ts,
                        "market": market,
                        "mark_price": round(self.truth.price(market, ts), 4),
                        "funding_index": self.truth.funding_index(market, ts),
                        "interval": self.truth.path.funding_interval(ts),
                        "restored": False,
                    }
                )
            k += 1

    def market_data_at(self, t: float) -> list[Obj]:
        latest: dict[str, Obj] = {}
        for pub in self.oracle:
            if pub["time"] <= t:
                latest[pub["market"]] = pub
        return [
            {
                "market": m,
                "mark_price": p["mark_price"],
                "funding_index": p["funding_index"],
                "ts": p["time"],
            }
            for m, p in sorted(latest.items())
        ]

    def build_chain(self, per_block: int = 25) -> None:
        """Hash-linked blocks of ``per_block`` events each, with the oracle's latest data."""
        self.blocks = []
        prev = GENESIS
        for i in range(0, len(self.events), per_block):
            chunk = [dict(e) for e in self.events[i : i + per_block]]
            t = chunk[-1]["time"] + 0.05
            block = seal(
                {
                    "height": len(self.blocks) + 1,
                    "prev_hash": prev,
                    "first_seq": chunk[0]["seq"],
                    "last_seq": chunk[-1]["seq"],
                    "events": chunk,
                    "market_data": self.market_data_at(t),
                    "time": round(t, 6),
                }
            )
            self.blocks.append(block)
            prev = block["hash"]

    def reseal_from(self, height: int) -> None:
        """Recompute hashes and links from ``height`` on (a consistent, but altered, chain)."""
        prev = self.blocks[height - 2]["hash"] if height > 1 else GENESIS
        for block in self.blocks[height - 1 :]:
            block["prev_hash"] = prev
            seal(block)
            prev = block["hash"]

    # -- output ---------------------------------------------------------------------------

    def write(self, run_dir: Path, compact: bool = True) -> Path:
        """The run folder; ``compact`` JSON lines as the stack's exporter writes them (the
        chain checker's byte-level fast path applies), else json.dumps' default spacing."""
        separators = (",", ":") if compact else (", ", ": ")
        history = run_dir / "history"
        history.mkdir(parents=True, exist_ok=True)
        run = {
            "run_id": "synthetic",
            "experiment": "synthetic",
            "variant": "clean",
            "seed": self.seed,
            "epoch": self.epoch,
            "started_at": self.epoch,
            "mitigations": [],
            "markets": list(MARKETS),
            "params": {},
        }
        (history / "run.json").write_text(json.dumps(run))
        for name, rows in (
            ("events", self.events),
            ("chain", self.blocks),
            ("client", sorted(self.client, key=lambda op: op["time"])),
            ("modes", self.modes),
            ("faults", self.faults),
            ("oracle", self.oracle),
        ):
            with (history / f"{name}.jsonl").open("w") as fh:
                for row in rows:
                    fh.write(json.dumps(row, separators=separators) + "\n")
        return run_dir


def clean_history(seed: int, trades: int = 40) -> Builder:
    return Builder(seed).clean(trades=trades)


# -- planted violations ------------------------------------------------------------------
# Each takes a clean Builder (after ``clean()``), plants one violation, and returns what
# the checker must report. Plants that change events rebuild the chain unless said.


def quiet(b: Builder, seconds: float = 2.5) -> None:
    """Let time pass so that a planted event's truth window holds no price move."""
    b.t += seconds


def plant_unintended_liquidation(b: Builder, above: float = 1.0) -> Obj:
    """An account with equity ``1 + above`` times maintenance is liquidated."""
    quiet(b)
    event = b.near_miss_liquidation(account=50, below=-above)
    b.build_chain()
    return {"seq": event["seq"], "account": 50}


def plant_halted_liquidation(b: Builder) -> Obj:
    """A liquidation that is justified by margin, but executed while halted."""
    quiet(b)
    b.set_mode("halt")
    event = b.near_miss_liquidation(account=51, below=0.01)
    b.set_mode("normal")
    b.build_chain()
    return {"seq": event["seq"], "account": 51, "mode": "halt"}


def plant_zero_funding_on_chain(b: Builder, height: int) -> Obj:
    """Block ``height`` carries BTC-PERP funding index 0.0 (Paradex); chain resealed."""
    entry = next(md for md in b.blocks[height - 1]["market_data"] if md["market"] == "BTC-PERP")
    entry["funding_index"] = 0.0
    b.reseal_from(height)
    return {"height": height, "market": "BTC-PERP", "funding_index": 0.0}


def plant_chain_event_tampered(b: Builder, height: int) -> Obj:
    """An event of block ``height`` differs from the db in one field; chain resealed."""
    event = b.blocks[height - 1]["events"][-1]
    event["time"] = event["time"] + 1.0
    b.reseal_from(height)
    return {"height": height, "seq": event["seq"], "field": "time"}


def plant_fork(b: Builder, height: int) -> Obj:
    """A second, different block at ``height`` follows the first."""
    twin = json.loads(json.dumps(b.blocks[height - 1]))
    twin["time"] = twin["time"] + 0.5
    seal(twin)
    b.blocks.insert(height, twin)
    return {"height": height}


def plant_bad_hash(b: Builder, height: int) -> Obj:
    """Block ``height``'s contents change after it was hashed (not resealed)."""
    b.blocks[height - 1]["market_data"][0]["mark_price"] += 1.0
    return {"height": height}


def plant_acked_order_missing(b: Builder) -> Obj:
    """A client saw ``ok`` for an order the event log never had."""
    b.process += 1
    op = {
        "process": b.process,
        "f": "order",
        "client_order_id": "ghost-1",
        "account": 3,
        "market": "ETH-PERP",
        "side": "sell",
        "order_type": "limit",
        "price": 3000.0,
        "qty": 0.2,
        "attempt": 1,
    }
    b.client.append({"type": "invoke", "time": round(b.tick(), 6), **op})
    b.client.append({"type": "ok", "time": round(b.tick(), 6), **op})
    return {"client_order_id": "ghost-1", "account": 3, "missing_from": "the db event log"}


def plant_acked_order_not_on_chain(b: Builder) -> Obj:
    """An acknowledged order reached the db after the chain's last block (not rebuilt)."""
    event = b.order(2, "BTC-PERP", "buy", 1000.0, 0.1)
    return {"client_order_id": event["client_order_id"], "missing_from": "the chain"}


def plant_duplicate_acceptance(b: Builder) -> Obj:
    """An order's client_order_id is accepted a second time (a retried request)."""
    first = next(e for e in b.events if e["kind"] == "order_accepted")
    fields = {
        k: v for k, v in first.items() if k not in ("seq", "epoch", "sequencer", "time", "kind")
    }
    fields["order_id"] = 999_999
    again = b.emit("order_accepted", **fields)
    b.build_chain()
    return {
        "client_order_id": first["client_order_id"],
        "first_seq": first["seq"],
        "seq": again["seq"],
    }


def plant_overfill(b: Builder) -> Obj:
    """An order is filled a second time in full (executed twice)."""
    fill = next(e for e in b.events if e["kind"] == "fill" and e["taker_order_id"] is not None)
    again = b.fill(
        fill["market"],
        fill["price"],
        fill["qty"],
        taker=fill["taker_account"],
        maker=fill["maker_account"],
        taker_order=fill["taker_order_id"],
    )
    b.build_chain()
    return {"order_id": fill["taker_order_id"], "seq": again["seq"]}


def plant_seq_gap(b: Builder, index: int) -> Obj:
    """The event at ``index`` vanishes from the log (chain not rebuilt)."""
    gone = b.events.pop(index)
    return {"seq": gone["seq"] + 1, "expected_seq": gone["seq"]}


def plant_seq_duplicate(b: Builder, index: int) -> Obj:
    """The event at ``index`` is written twice."""
    b.events.insert(index + 1, dict(b.events[index]))
    return {"seq": b.events[index]["seq"]}


def plant_second_writer(b: Builder, index: int) -> Obj:
    """Sequencer b writes one event in sequencer a's epoch."""
    b.events[index]["sequencer"] = "b"
    return {"seq": b.events[index]["seq"], "sequencer": "b"}


def plant_deposed_writer(b: Builder, index: int) -> Obj:
    """Epoch 2 (sequencer b) takes over at ``index``; a's epoch-1 write follows it."""
    for event in b.events[index:]:
        event["epoch"], event["sequencer"] = 2, "b"
    late = b.events[min(index + 1, len(b.events) - 1)]
    late["epoch"], late["sequencer"] = 1, "a"
    return {"seq": late["seq"], "epoch": 1, "newer_epoch": 2}


def plant_fill_outside_band(b: Builder, off_bps: float = 800.0) -> Obj:
    """A post_only-mode fill ``off_bps`` away from the true price."""
    b.set_mode("post_only")
    b.trade(1, 2, "BTC-PERP", off_bps)
    fill = b.events[-1]
    b.set_mode("normal")
    b.build_chain()
    return {"seq": fill["seq"], "mode": "post_only"}


def plant_stale_fill(b: Builder, age: float = 10.0) -> Obj:
    """A fill on an oracle price ``age`` seconds old."""
    fill = b.fill(
        "ETH-PERP", round(b.truth.price("ETH-PERP", b.t), 2), 0.1, taker=1, maker=2, oracle_age=age
    )
    b.build_chain()
    return {"seq": fill["seq"], "kind": "fill"}


def plant_slow_recovery(b: Builder, downtime: float = 15.0) -> Obj:
    """A node loss after which the first successful client order comes ``downtime`` later."""
    b.faults.append(
        {
            "time": round(b.t, 6),
            "id": "loss2",
            "action": "node_loss",
            "target": "a",
            "phase": "begin",
            "params": {"ramp": 0.0},
        }
    )
    lost_at = b.t
    b.t += downtime
    b.trade(3, 4, "ETH-PERP", 0.0)
    b.build_chain()
    return {"fault_id": "loss2", "wall_time": round(lost_at, 6)}


# -- bulk histories for the benchmark ----------------------------------------------------

_EVENT = (
    '{{"epoch":1,"kind":"fill","liquidation":false,"maker_account":{maker},'
    '"maker_order_id":{mo},"market":"{market}","oracle_price":{price},"oracle_ts":{ots},'
    '"price":{price},"qty":0.5,"seq":{seq},"sequencer":"a","taker_account":{taker},'
    '"taker_order_id":{to},"taker_side":"buy","time":{t}}}'
)
_ORDER = (
    '{{"account":{account},"client_order_id":"c{oid}","epoch":1,"kind":"order_accepted",'
    '"market":"{market}","order_id":{oid},"order_type":"limit","price":{price},"qty":0.5,'
    '"seq":{seq},"sequencer":"a","side":"{side}","time":{t}}}'
)


def _bulk_events(n: int, epoch: float, truth: RunTruth) -> Iterator[tuple[int, float, str]]:
    """(seq, time, canonical line) for ``n`` events: deposits, then order, order, fill."""
    seq = 0
    for account in range(1, 11):
        seq += 1
        t = epoch + seq * 1e-3
        yield (
            seq,
            t,
            (
                f'{{"account":{account},"amount":10000000.0,"epoch":1,"kind":"deposit",'
                f'"seq":{seq},"sequencer":"a","time":{t!r}}}'
            ),
        )
    step_price: dict[tuple[str, int], float] = {}
    oid = 0
    while seq < n:
        market = MARKETS[(seq // 3) % 2]
        t = round(epoch + (seq + 1) * 1e-3, 6)
        key = (market, int((t - epoch) * 10))
        price = step_price.get(key)
        if price is None:
            price = step_price[key] = round(truth.price(market, t), 2)
        a, b = 1 + seq % 10, 1 + (seq + 3) % 10
        for i in range(3):
            seq += 1
            if seq > n:
                return
            tt = repr(round(t + i * 1e-4, 6))
            if i < 2:
                oid += 1
                account, side = (b, "sell") if i == 0 else (a, "buy")
                yield (
                    seq,
                    t,
                    _ORDER.format(
                        account=account,
                        oid=oid,
                        market=market,
                        price=price,
                        seq=seq,
                        side=side,
                        t=tt,
                    ),
                )
            else:
                yield (
                    seq,
                    t,
                    _EVENT.format(
                        maker=b,
                        mo=oid - 1,
                        market=market,
                        price=price,
                        ots=repr(round(t - 0.2, 6)),
                        seq=seq,
                        taker=a,
                        to=oid,
                        t=tt,
                    ),
                )


def write_bulk(run_dir: Path, n_events: int, seed: int = 11, per_block: int = 100) -> Path:
    """A clean history of ``n_events`` events (about 1 ms apart) with its chain, fast."""
    history = run_dir / "history"
    history.mkdir(parents=True, exist_ok=True)
    truth = RunTruth(seed, EPOCH)
    run = {
        "run_id": "bulk",
        "experiment": "bulk",
        "variant": "clean",
        "seed": seed,
        "epoch": EPOCH,
        "started_at": EPOCH,
        "mitigations": [],
        "markets": list(MARKETS),
        "params": {},
    }
    (history / "run.json").write_text(json.dumps(run))
    prev = GENESIS
    height = 0
    chunk: list[str] = []
    first = 0
    buf = 1 << 20
    with (
        (history / "events.jsonl").open("w", buffering=buf) as events,
        (history / "chain.jsonl").open("w", buffering=buf) as chain,
    ):
        for seq, t, line in _bulk_events(n_events, EPOCH, truth):
            events.write(line + "\n")
            if not chunk:
                first = seq
            chunk.append(line)
            if len(chunk) == per_block or seq == n_events:
                height += 1
                prev = _write_block(chain, truth, height, prev, first, seq, chunk, t + 0.05)
                chunk = []
    return run_dir


def _write_block(
    fh: Any,
    truth: RunTruth,
    height: int,
    prev: str,
    first: int,
    last: int,
    events: list[str],
    t: float,
) -> str:
    ts = round(t - 0.3, 6)
    market_data = ",".join(
        canonical(
            {
                "funding_index": truth.funding_index(m, ts),
                "market": m,
                "mark_price": round(truth.price(m, ts), 4),
                "ts": ts,
            }
        )
        for m in MARKETS
    )
    head = f'{{"events":[{",".join(events)}],"first_seq":{first},'
    tail = (
        f'"height":{height},"last_seq":{last},"market_data":[{market_data}],'
        f'"prev_hash":"{prev}","time":{round(t, 6)!r}}}'
    )
    digest = hashlib.sha256((head + tail).encode()).hexdigest()
    fh.write(f'{head}"hash":"{digest}",{tail}\n')
    return digest


# -- harm: off-market fills and their consequences ----------------------------------------


def plant_off_market_fill(b: Builder, ratio: float = 10.0, account: int = 70) -> Obj:
    """In normal mode, ``account`` (deep collateral) buys 1 BTC at ``ratio`` x the true price
    from account 1: an off-market execution, nothing else."""
    quiet(b)
    b.deposit(account, DEEP)
    price = round(b.truth.price("BTC-PERP", b.t + 0.01) * ratio, 2)
    fill = b.fill("BTC-PERP", price, 1.0, taker=account, maker=1)
    b.build_chain()
    return {"seq": fill["seq"], "mode": "normal", "taker_account": account}


def plant_harm_chain(
    b: Builder, ratio: float = 10.0, account: int = 71, fills_first: bool = False
) -> Obj:
    """A chain of harm: ``account``, healthy with half a BTC's price as collateral, trades 1
    BTC at ``ratio`` x the true price (buys when ratio > 1, sells when < 1) and is then
    liquidated. Under true prices the liquidation is justified (the bad price took its
    equity), but without the bad fill the account would be far above maintenance: the
    liquidation is consequential, caused by the fill. ``fills_first``: the stack writes the
    liquidation's fill before the liquidation event."""
    quiet(b)
    market = "BTC-PERP"
    b.deposit(account, round(0.5 * b.truth.price(market, b.t), 2))
    price = round(b.truth.price(market, b.t + 0.01) * ratio, 2)
    side = "buy" if ratio > 1 else "sell"
    bad = b.fill(market, price, 1.0, taker=account, maker=1, taker_side=side)
    b.tick(0.2)
    liquidation = b.liquidate(account, market, 1.0)
    if side == "sell":  # a short is closed by buying
        b.events[-1]["taker_side"] = "buy"
    if fills_first:
        fill = b.events.pop()
        b.events.insert(b.events.index(liquidation), fill)
        for seq, e in enumerate(b.events, 1):
            e["seq"] = seq
    b.build_chain()
    return {
        "fill_seq": bad["seq"],
        "liquidation_seq": liquidation["seq"],
        "account": account,
        "ratio": ratio,
    }


def plant_duplicate_harm_chain(b: Builder, account: int = 72) -> Obj:
    """A duplicate execution leads to a liquidation: ``account`` buys 1 BTC with collateral
    at 1.9x the maintenance of 1 BTC; its order is filled twice (2 BTC: below maintenance),
    and it is liquidated. Without the duplicate execution it would not have been."""
    quiet(b)
    market = "BTC-PERP"
    price = round(b.truth.price(market, b.t + 0.05), 2)
    b.deposit(account, round(1.9 * MAINTENANCE_MARGIN_RATIO * price, 2))
    maker = b.order(1, market, "sell", price, 2.0)
    taker = b.order(account, market, "buy", price, 1.0)
    for _ in range(2):
        b.fill(
            market,
            price,
            1.0,
            taker=account,
            maker=1,
            taker_order=taker["order_id"],
            maker_order=maker["order_id"],
        )
    again = b.events[-1]
    liquidation = b.liquidate(account, market, 2.0)
    b.build_chain()
    return {"duplicate_seq": again["seq"], "liquidation_seq": liquidation["seq"]}
