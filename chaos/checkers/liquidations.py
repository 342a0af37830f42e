"""no_unintended_liquidations: every liquidation was of an account truly below maintenance.

The event log is replayed into accounts at true prices and true funding
(``chaos.history.truth.Ledger``). A liquidation at time t is intended when, with the
account's positions and collateral just before it, at some instant of
[t - price_lag_s, t] the true equity was below the true maintenance requirement times
(1 + margin_tolerance). Liquidations are allowed in every trading mode but ``halt``; a
liquidation while halted is a violation whatever the margin. The margin risk computed
(``equity``/``maintenance`` on the event) is shown in counterexamples, never used.

State "just before" a liquidation: the sequencer writes a liquidation and its fills as one
contiguous run of events, in either order; fills of the run that precede the liquidation
event are not counted in the state it is judged on.

One decision, several positions: risk liquidates every open position of an account from one
margin snapshot. A liquidation of an account that was liquidated within the last
price_lag_s, with nothing but liquidation fills touching the account since, is judged on the
state before that first liquidation (closing one leg does not make the next leg unintended).
A deposit or an ordinary trade of the account in between starts a new decision.
"""

from __future__ import annotations

from chaos.checkers.base import Findings, ModeTracker, Verdict, rounded
from chaos.checkers.params import CheckParams
from chaos.history.events import LiquidationEvent
from chaos.history.reader import History
from chaos.history.truth import Account, Ledger, Margin

NAME = "no_unintended_liquidations"


def check(history: History, params: CheckParams) -> Verdict:
    found = Findings(NAME, params.max_counterexamples)
    if not history.has("events"):
        return found.verdict("liquidations", unknown="no events.jsonl in the history")
    ledger = Ledger(history.truth())
    modes = ModeTracker(history)
    before_run: dict[int, Account] = {}  # accounts as they were before a run of liquidation fills
    decisions: dict[int, tuple[float, Account]] = {}  # account -> first liquidation's (t, state)
    for event in history.events():
        if event["kind"] == "fill":
            taker, maker = event["taker_account"], event["maker_account"]
            if event.get("liquidation"):
                for acct in (taker, maker):
                    if acct not in before_run:
                        before_run[acct] = ledger.account(acct).copy()
            else:
                decisions.pop(taker, None)
                decisions.pop(maker, None)
                if before_run:
                    before_run.clear()
            signed = event["qty"] if event.get("taker_side") == "buy" else -event["qty"]
            t = event["time"]
            ledger.trade(taker, event["market"], signed, event["price"], t)
            ledger.trade(maker, event["market"], -signed, event["price"], t)
            continue
        if event["kind"] == "liquidation":
            found.checked += 1
            acct = event["account"]
            state = before_run.get(acct) or ledger.account(acct).copy()
            earlier = decisions.get(acct)
            if earlier is not None and event["time"] - earlier[0] <= params.price_lag_s:
                state = earlier[1]
            else:
                decisions[acct] = (event["time"], state)
            _judge(found, ledger, state, event, modes.at(event["time"]), params)
        elif event["kind"] == "deposit":
            decisions.pop(event["account"], None)
            ledger.deposit(event["account"], event["amount"])
        elif event["kind"] == "mode":
            modes.observe_mode_event(event["mode"])
        before_run.clear()
    return found.verdict("liquidations")


def _judge(
    found: Findings,
    ledger: Ledger,
    state: Account,
    event: LiquidationEvent,
    mode: str,
    params: CheckParams,
) -> None:
    t = event["time"]
    truth = ledger.truth
    margins = [ledger.margin(state, s) for s in truth.instants(t - params.price_lag_s, t)]
    intended = any(m.equity < m.maintenance * (1 + params.margin_tolerance) for m in margins)
    if intended and mode != "halt":
        return
    closest = min(margins, key=_cushion)
    at_t = margins[-1]
    market = event["market"]
    true_price = truth.price(market, t) if market in truth.markets else None
    true_funding = truth.funding_index(market, t) if market in truth.markets else None
    if intended:
        why = "while trading was halted"
    else:
        why = (
            f"with true equity {rounded(closest.equity)} >= maintenance "
            f"{rounded(closest.maintenance)} x {1 + params.margin_tolerance:g} throughout "
            f"[t-{params.price_lag_s:g}s, t]"
        )
    found.add(
        {
            "problem": f"account {event['account']} liquidated at seq {event['seq']} "
            f"(t={t - truth.path.epoch:+.3f}s) {why}; risk used {market} mark "
            f"{rounded(event.get('mark_price'))} (true {rounded(true_price)}), funding index "
            f"{rounded(event.get('funding_index'))} (true {rounded(true_funding)})",
            "seq": event["seq"],
            "account": event["account"],
            "market": market,
            "time": t,
            "mode": mode,
            "qty": event.get("qty"),
            "mark_price_used": event.get("mark_price"),
            "true_price": rounded(true_price),
            "funding_index_used": event.get("funding_index"),
            "true_funding_index": rounded(true_funding),
            "true_equity": rounded(at_t.equity),
            "true_maintenance": rounded(at_t.maintenance),
            "true_margin_ratio": _ratio(at_t),
            "lowest_margin_ratio": _ratio(closest),
            "lowest_at": closest.t,
            "service_equity": event.get("equity"),
            "service_maintenance": event.get("maintenance"),
            "collateral_true": rounded(state.collateral),
            "positions": {
                m: {"size": p.size, "entry_price": rounded(p.entry_price)}
                for m, p in state.positions.items()
                if p.size
            },
        }
    )


def _cushion(m: Margin) -> float:
    return m.equity - m.maintenance


def _ratio(m: Margin) -> float | None:
    return rounded(m.equity / m.maintenance) if m.maintenance > 0 else None
