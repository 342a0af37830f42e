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
    recovered_chain,
    recovered_orders,
    recovered_state,
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
        # after the response (issue 21): pure functions of the History's response records
        FunctionChecker(
            recovered_chain.SNAPSHOT, recovered_chain.check_snapshot, "chain = snapshot + valid"
        ),
        FunctionChecker(
            recovered_chain.MARKET_DATA, recovered_chain.check_market_data, "no corrupt data left"
        ),
        FunctionChecker(
            recovered_orders.LOST, recovered_orders.check_lost, "acked orders accounted for"
        ),
        FunctionChecker(
            recovered_orders.SURVIVE, recovered_orders.check_survive, "cancel_all kept TP/SL"
        ),
        FunctionChecker(
            recovered_state.NAME, recovered_state.check, "recovered state = fair replay"
        ),
        FunctionChecker(offmarket.NAME, offmarket.check, "every fill near the true price"),
    )
}

# The History sources each invariant judges that come from the stack's history binding.
NEEDS: dict[str, tuple[str, ...]] = {
    liquidations.NAME: ("events",),
    chain.NAME: ("events", "chain"),
    orders.LOST: ("events",),
    orders.DUPLICATE: ("events",),
    sequence.NAME: ("events",),
    band.NAME: ("events",),
    staleness.NAME: ("events",),
}

# Judge the operator's response (snapshots, rollbacks, cancel_all): "unknown" on a history
# without one, so they are left out where every invariant is expected to hold.
RESPONSE_INVARIANTS: tuple[str, ...] = (
    recovered_chain.SNAPSHOT,
    recovered_chain.MARKET_DATA,
    recovered_orders.LOST,
    recovered_orders.SURVIVE,
    recovered_state.NAME,
)

__all__ = [
    "NEEDS",
    "REGISTRY",
    "RESPONSE_INVARIANTS",
    "CheckParams",
    "Checker",
    "Verdict",
    "run_all",
]


def _broken(name: str, reason: str) -> Checker:
    """A checker whose every verdict is unknown (an entry point that cannot be used)."""
    return FunctionChecker(name, lambda _history, _params: unknown(name, reason))


def run_all(
    history: History, names: Iterable[str] | None = None, params: CheckParams | None = None
) -> list[Verdict]:
    """Run the named checkers (all when ``names`` is None) in the order given.

    A name that is no built-in is a user checker (``chaos.checkers.user``: a SQL check the
    run declared, or a ``tradechaos.checkers`` entry point). Raises ValueError for an
    unknown name. A checker that fails on a malformed history (or a user checker that
    raises or cannot be loaded) gives an "unknown" verdict naming the problem, so one bad
    source cannot hide the rest.
    """
    from chaos.checkers import user

    chosen = list(REGISTRY) if names is None else list(names)
    own: dict[str, Checker] = {}
    params = params or CheckParams()
    for name in chosen:
        if name in REGISTRY:
            continue
        try:
            found = user.find(name, history)
        except user.PluginError as err:
            own[name] = _broken(name, str(err))
            continue
        if found is None:
            builtins = ", ".join(REGISTRY)
            raise ValueError(f"unknown invariant {name!r} (known: {builtins}, the run's SQL "
                             "checks and tradechaos.checkers entry points)")  # fmt: skip
        own[name] = found
    exported = history.run.history_sources
    verdicts = []
    for name in chosen:
        if name in own:
            verdicts.append(user.run_one(own[name], name, history, params))
            continue
        lacking = [s for s in NEEDS.get(name, ()) if exported is not None and s not in exported]
        if lacking:
            reason = ", ".join(f"bindings.history.{s}" for s in lacking)
            stack = history.run.stack.get("name") or "the stack"
            verdicts.append(unknown(name, f"{stack}'s stack file declares no {reason}"))
            continue
        try:
            verdicts.append(REGISTRY[name].check(history, params))
        except HistoryError as err:
            verdicts.append(unknown(name, str(err)))
        except (KeyError, TypeError, ValueError, ArithmeticError) as err:
            verdicts.append(unknown(name, f"malformed history ({type(err).__name__}: {err})"))
    return verdicts
