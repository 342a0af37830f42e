"""no_off_market_execution: no fill, in any trading mode, far from the true price.

Holds when every fill (liquidation fills included, whatever the trading mode) is priced
within the true price range of [t - price_lag_s, t] widened by the off-market tolerance
(``CheckParams.off_market_tolerance_bps``: ``off_market_bps`` when set, else the band plus
the venues' quote noise; the rule is ``chaos.checkers.harm.off_market``). Unit: fills;
with no fill there is no evidence (unknown). Counterexamples are the worst fills first
(by |ln(price / true price)|): the price paid, the truth at the fill's time, their ratio.
"""

from __future__ import annotations

from chaos.checkers.base import (
    Findings,
    Verdict,
    fill_parties,
    fills_with_modes,
    rounded,
    since_t0,
    when,
)
from chaos.checkers.harm import off_market
from chaos.checkers.params import CheckParams
from chaos.history.reader import History

NAME = "no_off_market_execution"


def check(history: History, params: CheckParams) -> Verdict:
    found = Findings(NAME, params.max_counterexamples)
    if not history.has("events"):
        return found.verdict("fills", unknown="no events.jsonl in the history")
    truth = history.truth()
    for event, mode in fills_with_modes(history):
        found.checked += 1
        bad = off_market(truth, event, params)
        if bad is None:
            continue
        t, market = event["time"], event["market"]
        found.add(
            {
                "problem": f"seq {event['seq']} ({since_t0(history, t)}): {market} fill at "
                f"{event['price']} is {bad.ratio:.4g}x the true price {rounded(bad.true_price)} "
                f"({bad.off_bps:+.0f} bps; fair range {rounded(bad.low)}..{rounded(bad.high)})",
                "seq": event["seq"],
                "market": market,
                **when(history, t),
                "mode": mode,
                "price": event["price"],
                "true_price": rounded(bad.true_price),
                "ratio": rounded(bad.ratio),
                "off_bps": round(bad.off_bps, 1),
                "fair_low": rounded(bad.low),
                "fair_high": rounded(bad.high),
                "tolerance_bps": bad.tolerance_bps,
                **fill_parties(event),
            },
            severity=bad.severity,
        )
    return found.verdict("fills", nothing="no fill in the event log")
