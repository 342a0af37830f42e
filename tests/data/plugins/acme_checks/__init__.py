"""A user's own checkers, registered under the entry-point group ``tradechaos.checkers`` by
the dist-info beside this package (tests put this folder on sys.path / PYTHONPATH). Each is
a pure function of the History, like tradechaos's built-ins."""

from __future__ import annotations

from chaos.checkers.base import Findings, Verdict
from chaos.checkers.params import CheckParams
from chaos.history.reader import History


class DepositsPositive:
    """Every deposit credits a positive amount (a class: the Checker protocol)."""

    name = "deposits_positive"

    def check(self, history: History, params: CheckParams) -> Verdict:
        found = Findings(self.name, params.max_counterexamples)
        for event in history.events():
            if event["kind"] != "deposit":
                continue
            found.checked += 1
            if not event["amount"] > 0:
                found.add(
                    {
                        "seq": event["seq"],
                        "account": event["account"],
                        "amount": event["amount"],
                        "problem": "deposit not positive",
                    }
                )
        return found.verdict("deposits")


def no_self_trades(history: History, params: CheckParams) -> Verdict:
    """No fill has the same account on both sides (a function taking history, params)."""
    found = Findings("no_self_trades", params.max_counterexamples)
    for event in history.events():
        if event["kind"] != "fill":
            continue
        found.checked += 1
        if event["maker_account"] == event["taker_account"]:
            found.add(
                {
                    "seq": event["seq"],
                    "account": event["taker_account"],
                    "problem": "maker and taker are the same account",
                }
            )
    return found.verdict("fills")
