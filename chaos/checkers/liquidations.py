"""no_unintended_liquidations: every liquidation was of an account truly below maintenance,
and not only because of earlier harm.

The event log is replayed into accounts at true prices and true funding
(``chaos.history.truth.Ledger``). A liquidation at time t is intended when, with the
account's positions and collateral just before it, at some instant of
[t - price_lag_s, t] the true equity was below the true maintenance requirement times
(1 + margin_tolerance). Liquidations are allowed in every trading mode but ``halt``; a
liquidation while halted is a violation whatever the margin. The margin risk computed
(``equity``/``maintenance`` on the event) is shown in counterexamples, never used.

Causal harm (``chaos.checkers.harm``): the log is replayed a second time, alongside, with
the harm taken out (off-market fills at the true price; duplicate executions, unintended
and consequential liquidations not at all). An intended liquidation of an account that
earlier harm touched is **consequential** when, in that fair replay, the account would
hold no position in the market or would not be below maintenance (same rule, same
window): it only happened because of the harm. It is a violation, reported with its
causes (the harm events, in order).

State "just before" a liquidation: the sequencer writes a liquidation and its fills as one
contiguous run of events, in either order; the account's own liquidation fills of the run
that precede the liquidation event are not counted in the state it is judged on (in either
replay). Its fills as the maker of another account's liquidation earlier in the run are:
they happened before its own liquidation was decided.

One decision, several positions: risk liquidates every open position of an account from one
margin snapshot. A liquidation of an account that was liquidated within the last
price_lag_s, with nothing but liquidation fills touching the account since, is judged on the
state before that first liquidation (closing one leg does not make the next leg unintended).
A deposit or an ordinary trade of the account in between starts a new decision.

Unit: liquidations; with none in the log there is no evidence (unknown).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chaos.checkers import orders
from chaos.checkers.base import Findings, ModeTracker, Verdict, rel, rounded, since_t0, when
from chaos.checkers.harm import (
    CONSEQUENTIAL,
    DUPLICATE,
    OFF_MARKET,
    UNINTENDED,
    Cause,
    FairWorld,
    off_market,
)
from chaos.checkers.params import CheckParams
from chaos.history.events import FillEvent, LiquidationEvent
from chaos.history.reader import History
from chaos.history.truth import Account, Ledger, Margin

NAME = "no_unintended_liquidations"
_SHOWN_CAUSES = 5


def check(history: History, params: CheckParams) -> Verdict:
    found = Findings(NAME, params.max_counterexamples)
    if not history.has("events"):
        return found.verdict("liquidations", unknown="no events.jsonl in the history")
    nothing = "no liquidation in the event log"
    # First the actual replay alone: only an account with an intended liquidation can have
    # a consequential one, so without any the causal replay has nothing to find.
    replay = _Replay(history, params, frozenset(), follow=None)
    replay.run()
    if not replay.intended_accounts:
        return replay.found.verdict("liquidations", nothing=nothing)
    follow = frozenset(replay.intended_accounts)
    replay = _Replay(history, params, frozenset(), follow)
    replay.run()
    repeated = replay.tracker.repeated_intents()
    if repeated:  # rare: an intent accepted twice; its second order's fills are harm too
        again = frozenset(a.order_id for a in orders.reacceptances(history, repeated))
        if again:
            replay = _Replay(history, params, again, follow)
            replay.run()
    return replay.found.verdict("liquidations", nothing=nothing)


@dataclass(frozen=True)
class _Decision:
    """The first leg of one liquidation decision: when, and the states it was judged on."""

    t: float
    state: Account
    fair_state: Account | None


@dataclass(frozen=True)
class _Harm:
    """A fill's own harm: a duplicate execution (skipped in the fair world) or an
    off-market price (the fill stands at ``true_price`` there)."""

    cause: Cause
    true_price: float | None  # None: skip the fill


class _Replay:
    """One pass over the log: the actual replay, the fair one, and the verdicts.

    ``follow``: the accounts the fair replay follows (None: none, and no harm is looked
    for; the pass then only judges liquidations and notes ``intended_accounts``)."""

    def __init__(
        self,
        history: History,
        params: CheckParams,
        reaccepted: frozenset[object],
        follow: frozenset[int] | None,
    ):
        self.history = history
        self.params = params
        self.found = Findings(NAME, params.max_counterexamples)
        self.truth = history.truth()
        self.ledger = Ledger(self.truth)
        self.causal = follow is not None
        self.fair = FairWorld(self.truth, follow or frozenset())
        self.intended_accounts: set[int] = set()
        self.modes = ModeTracker(history)
        self.tracker = orders.ExecutionTracker()
        self.reaccepted = reaccepted
        self.before_run: dict[int, Account] = {}  # accounts before this run of liq. fills
        # each liquidated account before its own liquidation fills of this run (its maker
        # fills in another account's liquidation earlier in the run do count)
        self.before_own: dict[int, Account] = {}
        self.decisions: dict[int, _Decision] = {}  # account -> its decision's first leg
        self.pending: list[tuple[FillEvent, _Harm | None]] = []  # liq. fills before their event
        self.fate: dict[tuple[int, str], Cause | None] = {}  # judged liquidations: their harm

    def run(self) -> None:
        for event in self.history.events():
            if event["kind"] == "fill":
                self._fill(event)
                continue
            if event["kind"] == "liquidation":
                self._liquidation(event)
            else:
                self._end_run()
                if event["kind"] == "deposit":
                    self.decisions.pop(event["account"], None)
                    self.ledger.deposit(event["account"], event["amount"])
                    self.fair.deposit(event["account"], event["amount"])
                elif event["kind"] == "mode":
                    self.modes.observe_mode_event(event["mode"])
                elif event["kind"] == "order_accepted" and self.causal:
                    self.tracker.accept(event)
                elif event["kind"] == "order_cancelled" and self.causal:
                    self.tracker.cancel(event)
            self.before_run.clear()
            self.before_own.clear()
        self._end_run()

    # -- fills -----------------------------------------------------------------------------

    def _fill(self, event: FillEvent) -> None:
        taker, maker = event["taker_account"], event["maker_account"]
        harm = self._own_harm(event) if self.causal else None
        if event.get("liquidation"):
            key = (taker, event["market"])
            if key in self.fate:  # its liquidation came first and was judged
                self._fair_apply(event, harm, self.fate[key], self.ledger.account)
            else:
                self.pending.append((event, harm))
            for acct in (taker, maker):
                if acct not in self.before_run:
                    self.before_run[acct] = self.ledger.account(acct).copy()
            if taker not in self.before_own:
                self.before_own[taker] = self.ledger.account(taker).copy()
        else:
            self._end_run()
            self.decisions.pop(taker, None)
            self.decisions.pop(maker, None)
            self.before_run.clear()
            self.before_own.clear()
            self._fair_apply(event, harm, None, self.ledger.account)
        signed = event["qty"] if event.get("taker_side") == "buy" else -event["qty"]
        t = event["time"]
        self.ledger.trade(taker, event["market"], signed, event["price"], t)
        self.ledger.trade(maker, event["market"], -signed, event["price"], t)

    def _own_harm(self, event: FillEvent) -> _Harm | None:
        """The fill's own harm, if any (it must be called once per fill, in log order: it
        counts the fill against its orders)."""
        again = [order_id for _, order_id in self.tracker.fill(event)]
        if not self.fair.follows(event["taker_account"], event["maker_account"]):
            return None  # harm to accounts never liquidated as intended changes no verdict
        if self.reaccepted:
            again += [
                order_id
                for order_id in (event.get("taker_order_id"), event.get("maker_order_id"))
                if order_id is not None and order_id in self.reaccepted
            ]
        bad = None if again else off_market(self.truth, event, self.params)
        if not again and bad is None:
            return None
        base: Cause = {
            "seq": event["seq"],
            "t": rel(self.history, event["time"]),
            "market": event["market"],
        }
        if bad is None:
            return _Harm({"kind": DUPLICATE, **base, "order_id": again[0]}, None)
        cause: Cause = {
            "kind": OFF_MARKET,
            **base,
            "price": event["price"],
            "true_price": rounded(bad.true_price),
            "ratio": rounded(bad.ratio),
        }
        return _Harm(cause, bad.true_price)

    def _fair_apply(
        self,
        event: FillEvent,
        harm: _Harm | None,
        liquidation_cause: Cause | None,
        source: Callable[[int], Account],
    ) -> None:
        """Apply one fill to the fair world; a harmful one first forks both accounts
        (from ``source(account)``, their actual state just before the fill) unless they
        already diverged."""
        cause = liquidation_cause or (harm.cause if harm is not None else None)
        if cause is None:
            self.fair.trade(event)
            return
        for acct in (event["taker_account"], event["maker_account"]):
            if not self.fair.diverged(acct):
                self.fair.fork(acct, source(acct))
            self.fair.note(acct, cause)
        if liquidation_cause is None and harm is not None and harm.true_price is not None:
            self.fair.trade(event, price=harm.true_price)

    def _end_run(self, owner: tuple[int, str] | None = None, cause: Cause | None = None) -> None:
        """Replay the run's pending liquidation fills in the fair world: those of
        ``owner`` (account, market) with that liquidation's ``cause``, others as fills.
        Accounts a harmful one touches are forked first, from before the run."""
        self.fate.clear()
        if not self.pending:
            return
        pending, self.pending = self.pending, []

        def before(acct: int) -> Account:
            return self.before_run.get(acct) or self.ledger.account(acct)

        plan = []
        for fill, harm in pending:
            mine = owner == (fill["taker_account"], fill["market"])
            liquidation_cause = cause if mine else None
            plan.append((fill, harm, liquidation_cause))
            if liquidation_cause is not None or harm is not None:
                for acct in (fill["taker_account"], fill["maker_account"]):
                    self.fair.fork(acct, before(acct))
        for fill, harm, liquidation_cause in plan:
            self._fair_apply(fill, harm, liquidation_cause, before)

    # -- liquidations ----------------------------------------------------------------------

    def _liquidation(self, event: LiquidationEvent) -> None:
        self.found.checked += 1
        acct, market, t = event["account"], event["market"], event["time"]
        own = self.before_own.get(acct)
        state = own if own is not None else self.ledger.account(acct).copy()
        fair_now = self.fair.state(acct)
        fair_state = fair_now.copy() if fair_now is not None else None
        earlier = self.decisions.get(acct)
        if earlier is not None and t - earlier.t <= self.params.price_lag_s:
            state, fair_state = earlier.state, earlier.fair_state
        else:
            self.decisions[acct] = _Decision(t, state, fair_state)
        mode = self.modes.at(t)
        margins = self._margins(self.ledger, state, t)
        intended = any(self._below(m) for m in margins)
        harm: Cause | None = None
        base: Cause = {"seq": event["seq"], "t": rel(self.history, t), "market": market}
        if not intended or mode == "halt":
            self._unintended(event, state, margins, intended, mode)
            harm = {"kind": UNINTENDED, **base}
        else:
            self.intended_accounts.add(acct)
            if fair_state is not None and self._consequential(event, state, fair_state, mode):
                harm = {"kind": CONSEQUENTIAL, **base}
        if harm is not None:
            self.fair.fork(acct, self.before_run.get(acct) or self.ledger.account(acct))
            self.fair.note(acct, harm)
        self._end_run((acct, market), harm)
        self.fate = {(acct, market): harm}

    def _margins(self, ledger: Ledger, state: Account, t: float) -> list[Margin]:
        return [
            ledger.margin(state, s) for s in self.truth.instants(t - self.params.price_lag_s, t)
        ]

    def _below(self, m: Margin) -> bool:
        return m.equity < m.maintenance * (1 + self.params.margin_tolerance)

    def _consequential(
        self, event: LiquidationEvent, state: Account, fair_state: Account, mode: str
    ) -> bool:
        """True (and reported) when the account, without the harm, would not have been
        liquidated: no position in the market, or not below maintenance."""
        market, t = event["market"], event["time"]
        position = fair_state.positions.get(market)
        fair_margins = self._margins(self.fair.ledger, fair_state, t)
        if position is not None and position.size and any(self._below(m) for m in fair_margins):
            return False
        acct = event["account"]
        causes = self.fair.causes.get(acct, [])
        total = self.fair.cause_counts.get(acct, len(causes))
        actual = self.ledger.margin(state, t)
        fair_at_t = fair_margins[-1]
        if position is None or not position.size:
            without = f"it would hold no {market} position"
        else:
            closest = min(fair_margins, key=_cushion)
            without = (
                f"its true equity would be {rounded(closest.equity)} >= maintenance "
                f"{rounded(closest.maintenance)} x {1 + self.params.margin_tolerance:g} "
                f"throughout [t-{self.params.price_lag_s:g}s, t]"
            )
        more = f" (+{total - 1} more)" if total > 1 else ""
        first = describe_cause(causes[0]) if causes else "earlier harm"
        self.found.add(
            {
                "problem": f"account {acct} liquidated at seq {event['seq']} "
                f"({since_t0(self.history, t)}) was below maintenance under true prices only "
                f"because of earlier harm: {first}{more}; without it {without}",
                "harm": "consequential",
                "seq": event["seq"],
                "account": acct,
                "market": market,
                **when(self.history, t),
                "mode": mode,
                "qty": event.get("qty"),
                "caused_by": causes[:_SHOWN_CAUSES],
                "causes_total": total,
                "true_equity": rounded(actual.equity),
                "true_maintenance": rounded(actual.maintenance),
                "true_margin_ratio": _ratio(actual),
                "fair_equity": rounded(fair_at_t.equity),
                "fair_maintenance": rounded(fair_at_t.maintenance),
                "fair_margin_ratio": _ratio(fair_at_t),
                "mark_price_used": event.get("mark_price"),
            }
        )
        return True

    def _unintended(
        self,
        event: LiquidationEvent,
        state: Account,
        margins: list[Margin],
        intended: bool,
        mode: str,
    ) -> None:
        t = event["time"]
        truth = self.truth
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
                f"{rounded(closest.maintenance)} x {1 + self.params.margin_tolerance:g} "
                f"throughout [t-{self.params.price_lag_s:g}s, t]"
            )
        self.found.add(
            {
                "problem": f"account {event['account']} liquidated at seq {event['seq']} "
                f"({since_t0(self.history, t)}) {why}; risk used {market} mark "
                f"{rounded(event.get('mark_price'))} (true {rounded(true_price)}), funding "
                f"index {rounded(event.get('funding_index'))} (true {rounded(true_funding)})",
                "harm": "halted" if intended else "unintended",
                "seq": event["seq"],
                "account": event["account"],
                "market": market,
                **when(self.history, t),
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
                "lowest_t": rel(self.history, closest.t),
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


def describe_cause(cause: Cause) -> str:
    """One harm event in words, e.g. ``off-market fill seq 12 (t=+3.100s) ...``."""
    kind, seq, t = cause.get("kind"), cause.get("seq"), cause.get("t")
    at = f" (t={t:+.3f}s)" if isinstance(t, int | float) else ""
    if kind == OFF_MARKET:
        return (
            f"off-market fill seq {seq}{at} of {cause.get('market')} at {cause.get('price')}, "
            f"{cause.get('ratio')}x the true price {cause.get('true_price')}"
        )
    if kind == DUPLICATE:
        return f"duplicate execution seq {seq}{at} of order {cause.get('order_id')}"
    if kind == UNINTENDED:
        return f"unintended liquidation seq {seq}{at}"
    return f"consequential liquidation seq {seq}{at}"


def _cushion(m: Margin) -> float:
    return m.equity - m.maintenance


def _ratio(m: Margin) -> float | None:
    return rounded(m.equity / m.maintenance) if m.maintenance > 0 else None
