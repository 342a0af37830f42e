"""Invariant checkers: pure functions of a History (docs/checkers.md, contracts section 5).

``REGISTRY`` maps each invariant's name to its checker; ``run_all`` runs a selection.
"""

from __future__ import annotations

from collections.abc import Iterable

from chaos.checkers import (
    band,
    chain,
    liquidations,
    offmarket,
    orders,
    recovery,
    sequence,
    staleness,
)
from chaos.checkers.base import Checker, FunctionChecker, Verdict, unknown
from chaos.checkers.params import CheckParams
from chaos.history.reader import History, HistoryError

REGISTRY: dict[str, Checker] = {
    c.name: c
    for c in (
        FunctionChecker(
            liquidations.NAME, liquidations.check, "liquidations were intended, not caused by harm"
        ),
        FunctionChecker(chain.NAME, chain.check, "chain intact, equal to the db, true data"),
        FunctionChecker(orders.LOST, orders.check_lost, "acknowledged orders are recorded"),
        FunctionChecker(orders.DUPLICATE, orders.check_duplicates, "no intent executed twice"),
        FunctionChecker(sequence.NAME, sequence.check, "gap-free seq, one writer per epoch"),
        FunctionChecker(band.NAME, band.check, "non-normal-mode fills near the true price"),
        FunctionChecker(staleness.NAME, staleness.check, "no execution on a stale price"),
        FunctionChecker(recovery.NAME, recovery.check, "trading resumes within the RTO"),
        FunctionChecker(offmarket.NAME, offmarket.check, "every fill near the true price"),
    )
}

__all__ = ["REGISTRY", "CheckParams", "Checker", "Verdict", "run_all"]


def run_all(
    history: History, names: Iterable[str] | None = None, params: CheckParams | None = None
) -> list[Verdict]:
    """Run the named checkers (all when ``names`` is None) in the order given.

    Raises ValueError for an unknown name. A checker that fails on a malformed history
    gives an "unknown" verdict naming the problem, so one bad source cannot hide the rest.
    """
    chosen = list(REGISTRY) if names is None else list(names)
    for name in chosen:
        if name not in REGISTRY:
            raise ValueError(f"unknown invariant {name!r} (known: {', '.join(REGISTRY)})")
    params = params or CheckParams()
    verdicts = []
    for name in chosen:
        try:
            verdicts.append(REGISTRY[name].check(history, params))
        except HistoryError as err:
            verdicts.append(unknown(name, str(err)))
        except (KeyError, TypeError, ValueError, ArithmeticError) as err:
            verdicts.append(unknown(name, f"malformed history ({type(err).__name__}: {err})"))
    return verdicts
