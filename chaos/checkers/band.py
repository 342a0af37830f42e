"""fills_within_band: while not in normal mode, every fill is near the true price.

Holds when every fill (liquidation fills included) executed while the trading mode was not
``normal`` is priced within +-``band_bps`` of the true price at the fill's time. The mode
in force is taken from the log's ``mode`` events (exact, by seq) or, if the log has none,
from ``modes.jsonl`` by time. Unit: fills outside normal mode; with none, there is no
evidence (unknown).
"""

from __future__ import annotations

from chaos.checkers.base import (
    Findings,
    Verdict,
    bps,
    fill_parties,
    fills_with_modes,
    rounded,
    since_t0,
    when,
)
from chaos.checkers.params import CheckParams
from chaos.history.reader import History

NAME = "fills_within_band"


def check(history: History, params: CheckParams) -> Verdict:
    found = Findings(NAME, params.max_counterexamples)
    if not history.has("events"):
        return found.verdict("fills", unknown="no events.jsonl in the history")
    truth = history.truth()
    for event, mode in fills_with_modes(history):
        t = event["time"]
        if mode == "normal":
            continue
        found.checked += 1
        market, price = event["market"], event["price"]
        true_price = truth.price(market, t)
        off = bps(price, true_price)
        if abs(off) > params.band_bps:
            found.add(
                {
                    "problem": f"seq {event['seq']} ({since_t0(history, t)}): {market} fill at "
                    f"{price} in {mode} mode is "
                    f"{off:+.0f} bps from the true price {rounded(true_price)} "
                    f"(band +-{params.band_bps:g} bps)",
                    "seq": event["seq"],
                    "market": market,
                    **when(history, t),
                    "mode": mode,
                    "price": price,
                    "true_price": rounded(true_price),
                    "off_bps": round(off, 1),
                    **fill_parties(event),
                }
            )
    return found.verdict(
        "fills outside normal mode", nothing="no fill while the trading mode was not normal"
    )
