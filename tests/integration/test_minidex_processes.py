"""The example stack minidex as real processes, driven by hand as tradechaos's bindings would
drive it, its journal read through the stack file's history queries and judged by the real
checkers: the two bugs behind switches appear from the mechanism (a cut reply and a retry;
a late pricer restart while the price moved) and disappear with the switch on.

Heavy: run under ``flock /tmp/tradechaos-heavy.lock``.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
import requests
from minidex_harness import EXAMPLE, MARKET, Client, Minidex, export_history, run_record
from stack_harness import free_port, wait_until
from tcp_servers import ProxyProcess

from chaos.checkers import liquidations, orders, staleness
from chaos.checkers.params import CheckParams
from chaos.proxy.client import ToxiproxyClient

pytestmark = pytest.mark.integration
STACK = EXAMPLE / "stack.yaml"
PARAMS = CheckParams()


def newest_mark(stack: Minidex) -> tuple[float, float]:
    sql = "SELECT px, extract(epoch FROM at) FROM marks WHERE sym = %s ORDER BY n DESC LIMIT 1"
    rows = stack.rows(sql, (MARKET,))
    return float(rows[0][0]), float(rows[0][1])


def pass_time_until(t: float) -> None:
    """The scenario's clock (like an experiment's ``at:``), not a wait for readiness."""
    time.sleep(max(0.0, t - time.time()))


def test_a_cut_reply_and_its_retry_make_a_duplicate_unless_cids_are_deduped(
    tmp_path: Path,
) -> None:
    with Minidex(tmp_path) as stack, ProxyProcess() as proxy, ToxiproxyClient(proxy.url) as api:
        listen = f"127.0.0.1:{free_port()}"
        api.create("clients-engine", listen, f"127.0.0.1:{stack.ports['engine']}")
        client = Client(f"http://{listen}")
        for acct in (1, 2, 3):
            assert stack.credit(acct, "100000")["acct"] == acct  # the accounts binding's fund
        px, _ = wait_until(stack.mark, 10, "a mark at the engine")
        resting = client.order("m1", 1, "SELL", "1", f"{px * 1.001:.2f}")
        assert resting is not None and resting["result"] == "RESTING"
        filled = client.order("t1", 2, "BUY", "0.2")
        assert filled is not None and filled["result"] == "FILLED"
        assert filled["trades"] == [{"sz": "0.2", "px": f"{px * 1.001:.2f}"}]

        def cut_then_retry(cid: str) -> dict[str, object]:
            api.add_toxic(
                "clients-engine", "cut", "reset_peer", "downstream", attributes={"timeout": 0}
            )
            assert client.order(cid, 2, "BUY", "0.1") is None  # sent; the reply was reset
            api.remove_toxic("clients-engine", "cut")
            again = client.order(cid, 2, "BUY", "0.1", attempt=2)
            assert again is not None and again["result"] == "FILLED"
            return again

        cut_then_retry("t2")
        assert len(stack.rows("SELECT n FROM journal WHERE typ = 'ORDER' AND cid = 't2'")) == 2

        stack.stop("engine")
        stack.start("engine", MINIDEX_DEDUPE="1")
        again = cut_then_retry("t3")
        placed = stack.rows("SELECT n FROM journal WHERE typ = 'ORDER' AND cid = 't3'")
        assert placed == [(again["txn"],)]  # the retry got the first attempt's reply

        history = export_history(
            STACK,
            stack.dsn,
            tmp_path / "run",
            run_record(stack.seed, stack.epoch),
            client.ops,
            [],
        )
        duplicates = orders.check_duplicates(history, PARAMS)
        assert duplicates.valid is False and duplicates.count == 1, duplicates.message
        assert duplicates.counterexamples[0]["client_order_id"] == "t2"
        lost = orders.check_lost(history, PARAMS)
        assert lost.valid is True and lost.checked == 4, lost.message
        fresh = staleness.check(history, PARAMS)
        assert fresh.valid is True and fresh.checked == 4, fresh.message
        kinds = [e["kind"] for e in history.events()]
        assert kinds[:3] == ["deposit"] * 3 and kinds.count("fill") == 4

        # the settler's ledger catches up: contiguous, hash-linked, cash as the engine's
        last = stack.rows("SELECT max(n) FROM journal")[0][0]
        wait_until(
            lambda: stack.rows("SELECT max(last_n) FROM settlements")[0][0] == last,
            10,
            "settlement",
        )
        batches = stack.rows("SELECT first_n, last_n, digest, prev FROM settlements ORDER BY batch")
        assert batches[0][0] == 1 and batches[0][3] == "0" * 64
        for (_, end, digest, _), (start, _, _, prev) in itertools.pairwise(batches):
            assert (start, prev) == (end + 1, digest)
        for acct, cash in stack.rows("SELECT acct, cash FROM balances WHERE acct IN (1, 2)"):
            shown = stack.get(f"/v1/accounts/{acct}")["cash"]
            assert float(cash) == pytest.approx(float(shown))


def test_a_late_pricer_restart_trades_and_liquidates_on_an_old_mark_unless_guarded(
    tmp_path: Path,
) -> None:
    with Minidex(tmp_path) as stack:
        client = Client(stack.url("engine"))
        stack.credit(1, "10000000")  # the maker
        stack.credit(2, "100000")  # a taker
        world = []

        def halt_drop_and_late_restart(acct: int, guard: dict[str, str]) -> float:
            """A 10x long for ``acct``; the engine stops; the price falls 10% (the pricer
            records it) and the pricer stops; the price recovers 15% while both are down;
            the engine restarts more than 2 s later, the pricer not. The old mark's time."""
            stack.credit(acct, "1000")
            px, _ = wait_until(stack.mark, 10, "a mark at the engine")
            client.order(f"ask{acct}", 1, "SELL", "2", f"{px * 1.0005:.2f}")
            long = client.order(f"long{acct}", acct, "BUY", "0.16")
            assert long is not None and long["result"] == "FILLED"
            stack.stop("engine")
            world.append(stack.move(-10))
            wait_until(lambda: newest_mark(stack)[0] < px * 0.93, 10, "the pricer to see the fall")
            stack.stop("pricer")
            _, old_at = newest_mark(stack)
            world.append(stack.move(15))
            pass_time_until(time.time() + PARAMS.price_lag_s + 0.5)
            stack.start("engine", **guard)
            return old_at

        old_at = halt_drop_and_late_restart(3, {})
        liquidated = "SELECT n FROM journal WHERE typ = 'LIQ' AND acct = %s"
        wait_until(lambda: stack.rows(liquidated, (3,)), 10, "the liquidation on the old mark")
        pass_time_until(old_at + PARAMS.stale_after_s + 0.5)
        stale = client.order("stale", 2, "BUY", "0.1")
        assert stale is not None and stale["result"] == "FILLED"
        guarded_from = stack.rows("SELECT max(n) FROM journal")[0][0]

        stack.start("pricer")
        wait_until(lambda: time.time() - stack.mark()[1] < 1, 10, "a fresh mark at the engine")
        stack.stop("engine")
        stack.start("engine")
        old_at = halt_drop_and_late_restart(4, {"MINIDEX_MAX_MARK_AGE_MS": "3000"})
        pass_time_until(old_at + 3.5)  # older than the guard's 3 s
        refused = client.order("refused", 2, "BUY", "0.1")
        assert refused is not None and "old" in refused["why"]
        stack.start("pricer")
        wait_until(lambda: time.time() - stack.mark()[1] < 0.5, 10, "a fresh mark at the engine")
        after = client.order("after", 2, "BUY", "0.1")  # trading resumes on a fresh mark
        assert after is not None and after["result"] == "FILLED"
        # liquidation passes ran on fresh marks since: account 4 is fine at the true price
        passes = stack.get("/healthz")["passes"]
        wait_until(lambda: stack.get("/healthz")["passes"] >= passes + 2, 5, "liquidation passes")
        assert stack.rows(liquidated, (4,)) == []

        history = export_history(
            STACK,
            stack.dsn,
            tmp_path / "run",
            run_record(stack.seed, stack.epoch),
            client.ops,
            world,
        )
        unintended = liquidations.check(history, PARAMS)
        assert unintended.valid is False, unintended.message
        assert {c["account"] for c in unintended.counterexamples} == {3}
        old = staleness.check(history, PARAMS)
        assert old.valid is False, old.message
        assert all(c["seq"] <= guarded_from for c in old.counterexamples)
        assert any(c["kind"] == "fill" for c in old.counterexamples)


SHAPES = ("binance:BTC-PERP=BTCUSDT", "kraken:BTC-PERP=XXBTZUSD", "coinbase:BTC-PERP=BTC-USD")


def test_the_pricer_reads_three_exchanges_apis_and_zeros_make_a_zero_mark_unless_guarded(
    tmp_path: Path,
) -> None:
    """The builtin venues in Binance's, Kraken's and Coinbase's APIs, the pricer told each
    one's API: every reader gives a quote near the true price. Zeros from two of the three
    (a data fault, in each API's own form) make a zero mark with the guard off; with it on,
    the mark is the third venue's quote."""

    def newest() -> tuple[float, list[float], float]:
        sql = "SELECT px, inputs, extract(epoch FROM at) FROM marks ORDER BY n DESC LIMIT 1"
        px, inputs, at = stack.rows(sql)[0]
        return float(px), [float(x) for x in inputs], float(at)

    with Minidex(tmp_path, shapes=SHAPES) as stack:
        wait_until(lambda: len(newest()[1]) == 3, 10, "a mark of three quotes")
        px, inputs, _ = newest()
        truth = stack.true_price()
        assert all(abs(q / truth - 1) < 0.003 for q in inputs), (inputs, truth)
        assert abs(px / truth - 1) < 0.003

        stack.feed_fault(kind="zero", venue=0)
        stack.feed_fault(kind="zero", venue=1)
        wait_until(lambda: newest()[0] == 0.0, 10, "a zero mark (guard off)")
        assert sorted(newest()[1])[:2] == [0.0, 0.0]
        wait_until(lambda: stack.mark()[0] == 0.0, 10, "the engine to mark at zero")

        stack.stop("pricer")
        stack.start("pricer", MINIDEX_QUOTE_GUARD="1")
        started = time.time()
        wait_until(lambda: newest()[2] > started, 10, "a mark from the guarded pricer")
        px, inputs, _ = newest()
        assert len(inputs) == 1 and abs(px / stack.true_price() - 1) < 0.003, (px, inputs)
        health = requests.get(f"{stack.url('pricer')}/healthz", timeout=5).json()
        assert health["left_out"] >= 2 and health["venue_errors"] == 0, health

        stack.feed_fault(kind="drop", venue=2)  # the last sane venue answers 503: no mark
        wait_until(
            lambda: requests.get(f"{stack.url('pricer')}/healthz", timeout=5).json()[
                "venue_errors"] > 0, 10, "the dropped venue's error")  # fmt: skip
        dropped_at = time.time()
        pass_time_until(dropped_at + 0.5)
        assert newest()[2] < dropped_at + 0.2  # nothing published from zeros alone
        stack.heal_feeds()
        wait_until(lambda: len(newest()[1]) == 3, 10, "three quotes again")
