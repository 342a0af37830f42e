"""The harm ledger of a run: per account, what each harm cost it (docs/harm.md). Pure: a
function of the History (and the truth it implies), like a checker.

    from chaos.harm import harm_ledger
    ledger = harm_ledger(History.open(run_dir), CheckParams())
    ledger.to_dict()   # the journal's "harm" section; ledger.csv_rows() for harm.csv

Kinds (``chaos.harm.replay`` says how each is valued): ``unintended_liquidation``,
``off_market_fill``, ``duplicate_execution`` (quote currency, negative = won), and
``lost_order`` (an order acknowledged ``ok`` to a client that no log holds: counted, with
its notional; not valued, as nobody knows what it would have done). Accounts are sorted by
what they lost. The insurance fund (``run.json`` ``insurance_fund``) has its own line: what
it won and lost in harmful events, and its equity change over the run at true prices.

With rollbacks, an item whose event a rollback removed was **made whole** by it; the rest is
**owed**. Acknowledged orders a rollback removed (and nothing accepted again) are listed per
account as reverted, for the operator to tell those clients; they are not losses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.checkers.params import CheckParams
from chaos.harm.replay import HarmItem, HarmParams, HarmReplayer
from chaos.history.events import ClientOp
from chaos.history.reader import History
from chaos.history.response import RollbackRecord, response_log
from chaos.history.timeline import replay_as_written

MONEY_KINDS = ("unintended_liquidation", "off_market_fill", "duplicate_execution")
KINDS = (*MONEY_KINDS, "lost_order")
CENT = 0.005  # below half a cent an amount is no harm (float noise of the replay)


def cents(x: float) -> float:
    return round(x + 0.0, 2)


@dataclass
class AccountHarm:
    account: int
    insurance_fund: bool = False
    by_kind: dict[str, float] = field(default_factory=lambda: dict.fromkeys(MONEY_KINDS, 0.0))
    lost_orders: int = 0
    lost_notional: float = 0.0
    made_whole: float = 0.0
    harmed: bool = False  # lost something itself (not only the other side of a harm)

    @property
    def total(self) -> float:
        return sum(self.by_kind.values())

    def row(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "insurance_fund": self.insurance_fund,
            **{k: cents(v) for k, v in self.by_kind.items()},
            "lost_orders": self.lost_orders,
            "lost_notional": cents(self.lost_notional),
            "total": cents(self.total),
            "made_whole": cents(self.made_whole),
            "owed": cents(self.total - self.made_whole),
        }


@dataclass
class HarmLedger:
    params: HarmParams
    insurance_fund: int | None
    accounts: dict[int, AccountHarm]
    items: list[HarmItem]
    rollbacks: list[RollbackRecord]
    reverted_orders: dict[int, dict[int, int]]  # rollback index -> account -> orders
    fund_equity_change: float | None
    events: int
    unknown: list[str]

    def rows(self) -> list[dict[str, Any]]:
        """Per-account rows, the insurance fund first, then by total loss (descending)."""
        ordered = sorted(
            self.accounts.values(), key=lambda a: (not a.insurance_fund, -a.total, a.account)
        )
        return [a.row() for a in ordered if a.insurance_fund or _nonzero(a)]

    def totals(self) -> dict[str, Any]:
        """What the accounts (the insurance fund aside) lost: each column adds the accounts'
        positive amounts (a loss); ``won`` adds what the others won (their negative totals)."""
        victims = [a for a in self.accounts.values() if not a.insurance_fund]
        row = {k: cents(sum(max(a.by_kind[k], 0.0) for a in victims)) for k in MONEY_KINDS}
        return {
            **row,
            "lost_orders": sum(a.lost_orders for a in victims),
            "lost_notional": cents(sum(a.lost_notional for a in victims)),
            "total": cents(sum(max(a.total, 0.0) for a in victims)),
            "made_whole": cents(sum(max(a.made_whole, 0.0) for a in victims)),
            "owed": cents(sum(max(a.total - a.made_whole, 0.0) for a in victims)),
            "won": cents(sum(max(-a.total, 0.0) for a in victims)),
        }

    def to_dict(self, max_items: int = 50) -> dict[str, Any]:
        """The journal's ``harm`` section (docs/harm.md)."""
        worst = sorted(self.items, key=lambda i: (i.counterparty, -i.loss))[:max_items]
        return {
            "currency": "quote",
            "tolerances": {
                "off_market_bps": self.params.off_market_bps,
                "margin_tolerance": self.params.margin_tolerance,
                "price_lag_s": self.params.price_lag_s,
            },
            "insurance_fund": self.insurance_fund,
            "kinds": list(KINDS),
            "events": self.events,
            "affected_accounts": sum(
                1 for a in self.accounts.values() if a.harmed and not a.insurance_fund
            ),
            "totals": self.totals(),
            "accounts": self.rows(),
            "insurance_fund_side": self._fund_side(),
            "rollbacks": [self._rollback(i, r) for i, r in enumerate(self.rollbacks)],
            "items": [_item(i) for i in worst],
            "item_count": len(self.items),
            "unknown": self.unknown,
        }

    def csv_rows(self) -> list[dict[str, Any]]:
        """``harm.csv``: the per-account rows and a ``total`` row (insurance fund excluded)."""
        return [*self.rows(), {"account": "total", "insurance_fund": False, **self.totals()}]

    def _fund_side(self) -> dict[str, Any] | None:
        if self.insurance_fund is None:
            return None
        fund = [i for i in self.items if i.account == self.insurance_fund]
        return {
            "account": self.insurance_fund,
            "won": cents(-sum(i.loss for i in fund if i.loss < 0)),
            "lost": cents(sum(i.loss for i in fund if i.loss > 0)),
            "equity_change": None
            if self.fund_equity_change is None
            else cents(self.fund_equity_change),
        }

    def _rollback(self, index: int, rollback: RollbackRecord) -> dict[str, Any]:
        whole: dict[int, float] = {}
        for item in self.items:
            if item.reverted_by is rollback and not item.counterparty:
                whole[item.account] = whole.get(item.account, 0.0) + item.loss
        return {
            "rollback": rollback.rollback,
            "step": rollback.step,
            "snapshot": rollback.snapshot,
            "to_seq": rollback.to_seq,
            "time": rollback.time,
            "made_whole": cents(sum(v for a, v in whole.items() if a != self.insurance_fund)),
            "made_whole_by_account": {
                str(a): cents(v) for a, v in sorted(whole.items()) if abs(v) >= CENT
            },
            "reverted_orders": {
                str(a): n for a, n in sorted(self.reverted_orders.get(index, {}).items())
            },
        }


def journal_section(run_dir: str | Path, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The journal's ``harm`` section for the run in ``run_dir`` (``params``: the
    experiment's check parameters, as for the checkers)."""
    history = History.open(run_dir)
    return harm_ledger(history, CheckParams.from_mapping(params)).to_dict()


def harm_ledger(history: History, params: CheckParams | None = None) -> HarmLedger:
    """The harm ledger of ``history`` (see the module)."""
    params = params or CheckParams()
    harm_params = HarmParams(
        off_market_bps=params.harm_off_market_bps,
        margin_tolerance=params.margin_tolerance,
        price_lag_s=params.price_lag_s,
    )
    fund = history.run.insurance_fund
    response = response_log(history)
    unknown = list(response.problems)
    if fund is None:
        unknown.append("run.json names no insurance_fund account: its side is not shown")
    if not history.has("events"):
        unknown.append("no events.jsonl in the history: no harm can be computed")
    replayer = HarmReplayer(history.truth(), harm_params)
    timeline = replay_as_written(
        history.events,
        history.rolled_back if history.has("rolled_back") else None,
        response.rollbacks,
        replayer,
    )
    unknown += timeline.problems
    items = replayer.finish()
    lost, reverted = _order_fates(history, response.rollbacks)
    items += lost
    accounts = _per_account(items, fund)
    change = None
    if fund is not None and replayer.events:
        acct = replayer.ledger.account(fund)
        change = replayer.ledger.margin(acct, replayer.end_time).equity - replayer.deposited.get(
            fund, 0.0
        )
    return HarmLedger(
        harm_params,
        fund,
        accounts,
        items,
        list(response.rollbacks),
        reverted,
        change,
        replayer.events,
        unknown,
    )


def _per_account(items: list[HarmItem], fund: int | None) -> dict[int, AccountHarm]:
    accounts: dict[int, AccountHarm] = {}
    for item in items:
        acct = accounts.get(item.account)
        if acct is None:
            acct = accounts[item.account] = AccountHarm(item.account, item.account == fund)
        if item.kind == "lost_order":
            acct.lost_orders += 1
            acct.lost_notional += float(item.details.get("notional") or 0.0)
            acct.harmed = True
            continue
        acct.by_kind[item.kind] += item.loss
        if item.reverted_by is not None:
            acct.made_whole += item.loss
        if item.loss >= CENT and not item.counterparty:
            acct.harmed = True
    if fund is not None and fund not in accounts:
        accounts[fund] = AccountHarm(fund, True)
    return accounts


def _order_fates(
    history: History, rollbacks: list[RollbackRecord]
) -> tuple[list[HarmItem], dict[int, dict[int, int]]]:
    """Acknowledged orders in no log (lost items) and those only a rollback removed."""
    acked: dict[str, ClientOp] = {}
    for op in history.client_ops():
        if op.get("type") == "ok" and op.get("f") == "order":
            acked.setdefault(str(op.get("client_order_id")), op)
    if not acked:
        return [], {}
    by_seq = {op["seq"]: coid for coid, op in acked.items() if isinstance(op.get("seq"), int)}
    for event in history.events():
        if event["kind"] == "order_accepted":
            acked.pop(str(event.get("client_order_id")), None)
            if not rollbacks and event["seq"] in by_seq:  # seqs are reused after a rollback
                acked.pop(by_seq[event["seq"]], None)
    reverted: dict[int, dict[int, int]] = {}
    index = {str(r.rollback): i for i, r in enumerate(rollbacks)}
    for event in history.rolled_back() if rollbacks else ():
        found = acked.get(str(event.get("client_order_id")))
        if event["kind"] == "order_accepted" and found is not None:
            i = index.get(str(event.get("rollback")), 0)
            per = reverted.setdefault(i, {})
            per[int(found["account"])] = per.get(int(found["account"]), 0) + 1
            del acked[str(event.get("client_order_id"))]
    truth = history.truth()
    lost = []
    for coid, op in acked.items():
        market, qty = op.get("market"), float(op.get("qty") or 0.0)
        price = op.get("price")
        if price is None and isinstance(market, str) and market in truth.markets:
            price = truth.price(market, float(op["time"]))
        lost.append(
            HarmItem(
                "lost_order",
                int(op["account"]),
                0.0,
                op.get("seq"),
                float(op["time"]),
                market,
                None,
                False,
                {"client_order_id": coid, "qty": qty, "notional": qty * float(price or 0.0)},
            )
        )
    return lost, reverted


def _nonzero(acct: AccountHarm) -> bool:
    return acct.harmed or any(abs(v) >= CENT for v in acct.by_kind.values())


def _item(item: HarmItem) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "account": item.account,
        "loss": cents(item.loss),
        "seq": item.seq,
        "time": item.time,
        "market": item.market,
        "counterparty": item.counterparty,
        "made_whole_by": None if item.reverted_by is None else item.reverted_by.step,
        **{k: _plain(v) for k, v in item.details.items()},
    }


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
