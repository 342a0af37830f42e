"""no_stale_price_execution: no fill or liquidation on an oracle price older than the limit.

Holds when every fill and every liquidation whose event records the oracle timestamp it
used (``oracle_ts``) executed at most ``stale_after_s`` after that timestamp. Executions
that record no ``oracle_ts`` cannot be judged; if none of the executions records one, the
verdict is unknown; with no execution at all there is no evidence (unknown). Unit:
executions that record their oracle_ts.
"""

from __future__ import annotations

from chaos.checkers.base import Findings, Verdict, rel, rounded, since_t0, when
from chaos.checkers.params import CheckParams
from chaos.history.reader import History

NAME = "no_stale_price_execution"


def check(history: History, params: CheckParams) -> Verdict:
    found = Findings(NAME, params.max_counterexamples)
    if not history.has("events"):
        return found.verdict("executions", unknown="no events.jsonl in the history")
    truth = history.truth()
    unjudged = 0
    for event in history.events():
        if event["kind"] == "fill":
            who = f"accounts {event.get('taker_account')}/{event.get('maker_account')}"
            used = event.get("oracle_price")
        elif event["kind"] == "liquidation":
            who = f"account {event.get('account')}"
            used = event.get("mark_price")
        else:
            continue
        oracle_ts = event.get("oracle_ts")
        if oracle_ts is None:
            unjudged += 1
            continue
        found.checked += 1
        t, market = event["time"], event["market"]
        age = t - oracle_ts
        if age <= params.stale_after_s:
            continue
        true_now = truth.price(market, t) if market in truth.markets else None
        found.add(
            {
                "problem": f"seq {event['seq']} ({since_t0(history, t)}): {event['kind']} of "
                f"{who} on {market} used an "
                f"oracle price {age:.2f}s old (limit {params.stale_after_s:g}s): "
                f"{rounded(used)} vs true {rounded(true_now)}",
                "seq": event["seq"],
                "kind": event["kind"],
                "market": market,
                **when(history, t),
                "oracle_t": rel(history, oracle_ts),
                "age_s": round(age, 3),
                "oracle_price_used": used,
                "true_price": rounded(true_now),
                "accounts": who,
            }
        )
    if found.checked == 0 and unjudged:
        return found.verdict(
            "executions", unknown=f"none of {unjudged} executions recorded its oracle_ts"
        )
    return found.verdict("executions", nothing="no fill or liquidation in the event log")
