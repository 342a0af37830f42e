"""The exchange as a state machine over journal entries (pure, synchronous).

Every operation returns an ``Outcome``: the reply for the caller and the journal entries to
write. State changes only by ``apply(entry)``, the same function that ``restore`` uses to
rebuild the exchange from the journal, so the memory after a commit equals a replay of the
journal. The caller writes an outcome's entries in one transaction before it replies; if
that fails the memory is ahead of the journal and the caller must rebuild from the journal.

Guards (settings of the engine, off by default):
- ``max_mark_age_s`` > 0: an order (resting or not) and a liquidation need a mark of its
  symbol at most that old, and the market data shows HALTED while any mark is older
  (``shown_status``): a bid quoted on an old mark would be hit the moment a fresh one
  comes. Off: the engine trades and liquidates on whatever mark it has.
- ``dedupe``: an order whose (acct, cid) was accepted before gets that first reply again.
  Off: a retried order is a new order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from minidex.book import BUY, SELL, Book, Resting
from minidex.entry import Entry, post
from minidex.ledger import Ledger

LIMIT, MARKET = "LIMIT", "MARKET"
OPEN, REDUCE_ONLY, CANCEL_ONLY, HALTED = "OPEN", "REDUCE_ONLY", "CANCEL_ONLY", "HALTED"
STATUSES = (OPEN, REDUCE_ONLY, CANCEL_ONLY, HALTED)
# A liquidation sells (buys) into the book down (up) to 5% from the mark; the insurance
# account takes the rest at the mark.
LIQUIDATION_SLIPPAGE = Decimal("0.05")


@dataclass(frozen=True)
class Mark:
    px: Decimal
    at: float  # when the pricer published it


@dataclass(frozen=True)
class OrderRequest:
    cid: str
    acct: int
    sym: str
    side: str
    kind: str
    px: Decimal | None  # None for a MARKET order
    sz: Decimal
    po: bool = False


@dataclass
class Outcome:
    reply: dict[str, Any]
    entries: list[Entry] = field(default_factory=list)
    http_status: int = 200
    reply_key: tuple[int, str] | None = None  # (acct, cid) whose first reply is kept


class BadRequest(ValueError):
    """The request is malformed (HTTP 400); the message says which field."""


def rejected(why: str) -> dict[str, Any]:
    return {"result": "REJECTED", "txn": None, "trades": [], "why": why}


def decimal(body: dict[str, Any], name: str) -> Decimal:
    """``body[name]``: a positive decimal number sent as a string, like "60000.5"."""
    raw = body.get(name)
    if not isinstance(raw, str):
        raise BadRequest(f'{name} must be a decimal string like "0.01", got {raw!r}')
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise BadRequest(f"{name} must be a decimal string, got {raw!r}") from None
    if not value.is_finite() or value <= 0:
        raise BadRequest(f"{name} must be positive, got {raw!r}")
    return value


def account(value: object, name: str = "acct") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadRequest(f"{name} must be a non-negative integer, got {value!r}")
    return value


def parse_order(body: Any, symbols: tuple[str, ...]) -> OrderRequest:
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    cid = body.get("cid")
    if not isinstance(cid, str) or not cid or len(cid) > 64:
        raise BadRequest("cid must be a string of 1 to 64 characters")
    if body.get("sym") not in symbols:
        raise BadRequest(f"sym must be one of {', '.join(symbols)}, got {body.get('sym')!r}")
    if body.get("side") not in (BUY, SELL):
        raise BadRequest(f"side must be BUY or SELL, got {body.get('side')!r}")
    kind = body.get("kind", LIMIT)
    if kind not in (LIMIT, MARKET):
        raise BadRequest(f"kind must be LIMIT or MARKET, got {kind!r}")
    po = body.get("po", False)
    if not isinstance(po, bool):
        raise BadRequest(f"po must be true or false, got {po!r}")
    return OrderRequest(
        cid,
        account(body.get("acct")),
        body["sym"],
        body["side"],
        kind,
        decimal(body, "px") if kind == LIMIT else None,  # a market order's px is ignored
        decimal(body, "sz"),
        po,
    )


class Exchange:
    def __init__(
        self,
        symbols: tuple[str, ...],
        maint_margin: float = 0.02,
        max_mark_age_s: float = 0.0,
        dedupe: bool = False,
        insurance_acct: int = 0,
    ) -> None:
        self.symbols = symbols
        self.maint_margin = maint_margin
        self.max_mark_age_s = max_mark_age_s
        self.dedupe = dedupe
        self.insurance_acct = insurance_acct
        self.books = {sym: Book() for sym in symbols}
        self.ledger = Ledger()
        self.open: dict[int, Resting] = {}  # journal number of the ORDER -> resting order
        self.marks: dict[str, Mark] = {}
        self.replies: dict[tuple[int, str], dict[str, Any]] = {}  # only with dedupe
        self.status = OPEN
        self.n = 0  # the newest journal number

    # -- state ------------------------------------------------------------------------
    def apply(self, e: Entry) -> None:
        """The effect of one journal entry (live and in replay alike)."""
        self.n = max(self.n, e.n)
        post(self.ledger, e)
        if e.typ == "ORDER" and e.kind == LIMIT and e.sym in self.books:
            assert e.acct is not None and e.sym and e.side and e.px and e.sz and e.cid
            order = Resting(e.n, e.cid, e.acct, e.sym, e.side, e.px, e.sz)
            self.books[e.sym].add(order)
            self.open[e.n] = order
        elif e.typ == "CANCEL" and e.ref in self.open:
            order = self.open.pop(e.ref)
            self.books[order.sym].remove(order)
        elif e.typ == "TRADE" and e.sz is not None:
            for ref in (e.ref, e.cp_ref):
                filled = self.open.get(ref) if ref is not None else None
                if filled is not None:
                    filled.left -= e.sz
                    if filled.left <= 0:
                        del self.open[filled.ref]
                        self.books[filled.sym].remove(filled)
        elif e.typ == "STATUS" and e.status in STATUSES:
            self.status = e.status

    def restore(self, entries: list[Entry], replies: dict[tuple[int, str], dict[str, Any]]) -> None:
        for entry in entries:
            self.apply(entry)
        if self.dedupe:
            self.replies.update(replies)

    def _emit(self, typ: str, at: float, **fields: Any) -> Entry:
        entry = Entry(self.n + 1, at, typ, **fields)
        self.apply(entry)
        return entry

    def mark_refusal(self, sym: str, now: float) -> str | None:
        """Why the mark-age guard forbids trading ``sym`` now, or None."""
        if self.max_mark_age_s <= 0:
            return None
        mark = self.marks.get(sym)
        if mark is None:
            return f"no mark for {sym}"
        age = now - mark.at
        if age > self.max_mark_age_s:
            return f"the {sym} mark is {age:.1f} s old (limit {self.max_mark_age_s:g} s)"
        return None

    def shown_status(self, now: float) -> str:
        """The status the market data shows: HALTED while the guard refuses any symbol."""
        if any(self.mark_refusal(sym, now) is not None for sym in self.books):
            return HALTED
        return self.status

    # -- operations ---------------------------------------------------------------------
    def place(self, req: OrderRequest, now: float) -> Outcome:
        key = (req.acct, req.cid)
        if self.dedupe and key in self.replies:
            return Outcome(self.replies[key])
        why = self._refusal(req, now)
        if why is not None:
            return Outcome(rejected(why))
        order = self._emit(
            "ORDER",
            now,
            acct=req.acct,
            sym=req.sym,
            side=req.side,
            kind=req.kind,
            px=req.px,
            sz=req.sz,
            po=req.po,
            cid=req.cid,
        )
        entries = [order]
        for maker, size in self.books[req.sym].match(req.side, req.px, req.sz):
            entries.append(self._trade(now, req, order.n, maker, size))
        filled = sum((e.sz or Decimal(0) for e in entries[1:]), Decimal(0))
        reply = {
            "result": "RESTING" if req.kind == LIMIT and filled < req.sz else "FILLED",
            "txn": order.n,
            "trades": [{"sz": str(e.sz), "px": str(e.px)} for e in entries[1:]],
            "left": str(req.sz - filled) if req.kind == LIMIT else "0",
        }
        if self.dedupe:
            self.replies[key] = reply
        return Outcome(reply, entries, reply_key=key)

    def _refusal(self, req: OrderRequest, now: float) -> str | None:
        if self.status in (HALTED, CANCEL_ONLY):
            return f"the market is {self.status}: no new orders"
        crosses = self.books[req.sym].crosses(req.side, req.px)
        if req.kind == MARKET and not crosses:
            return "no liquidity for a market order"
        if req.po and crosses:
            return "a post-only order would trade"
        if self.status == REDUCE_ONLY:
            pos = self.ledger.open_positions(req.acct).get(req.sym)
            held = pos.size if pos else Decimal(0)
            if not (held and (held > 0) != (req.side == BUY) and req.sz <= abs(held)):
                return "the market is REDUCE_ONLY: only orders that reduce a position"
        return self.mark_refusal(req.sym, now)

    def _trade(
        self, now: float, req: OrderRequest, ref: int, maker: Resting, size: Decimal
    ) -> Entry:
        mark = self.marks.get(req.sym)
        return self._emit(
            "TRADE",
            now,
            acct=req.acct,
            sym=req.sym,
            side=req.side,
            px=maker.px,
            sz=size,
            cid=req.cid,
            ref=ref,
            counterparty=maker.acct,
            cp_ref=maker.ref,
            mark=mark.px if mark else None,
            mark_at=mark.at if mark else None,
        )

    def cancel(self, acct: int, cid: str, now: float) -> Outcome:
        if self.status == HALTED:
            return Outcome(rejected("the market is HALTED"))
        targets = [o for o in self.open.values() if o.acct == acct and o.cid == cid]
        if not targets:
            return Outcome(rejected(f"no open order {cid} of account {acct}"))
        entries = [self._cancel(o, now) for o in targets]
        return Outcome({"result": "CANCELLED", "txn": entries[-1].n, "trades": []}, entries)

    def _cancel(self, order: Resting, now: float) -> Entry:
        return self._emit(
            "CANCEL",
            now,
            acct=order.acct,
            sym=order.sym,
            side=order.side,
            px=order.px,
            sz=order.left,
            cid=order.cid,
            ref=order.ref,
        )

    def credit(self, acct: int, amount: Decimal, now: float, origin: str) -> Outcome:
        entry = self._emit("CREDIT", now, acct=acct, amount=amount, origin=origin)
        cash = self.ledger.cash.get(acct, 0.0)
        return Outcome({"txn": entry.n, "acct": acct, "cash": repr(cash)}, [entry])

    def set_status(self, status: str, origin: str, now: float) -> Outcome:
        if status not in STATUSES:
            raise BadRequest(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        entry = self._emit("STATUS", now, status=status, origin=origin)
        return Outcome({"status": status, "txn": entry.n}, [entry])

    def liquidate(self, now: float) -> list[Entry]:
        """One pass of the liquidation loop: every account (but the insurance account)
        whose equity at the marks is below its maintenance requirement loses its open
        orders and every position, in the book within the slippage and to the insurance
        account for the rest. Nothing while HALTED; with the guard, nothing on old marks.

        A pass decides from one snapshot, the accounts as the pass begins: an account that
        this pass's liquidations push below maintenance (as the maker of their fills) is
        liquidated by the next pass, on its new state; one they lift above maintenance
        again is spared."""
        if self.status == HALTED:
            return []
        below: list[int] = []
        for acct in list(self.ledger.accounts()):
            held = self.ledger.open_positions(acct)
            if acct == self.insurance_acct or any(self.mark_refusal(s, now) for s in held):
                continue
            margin = self._margin(acct)
            if margin is not None and margin[0] < margin[1]:
                below.append(acct)
        entries: list[Entry] = []
        for acct in below:
            # an earlier liquidation of this pass may have filled this account's resting
            # orders and lifted it above maintenance again: then it is spared
            margin = self._margin(acct)
            if margin is None or margin[0] >= margin[1]:
                continue
            entries += [self._cancel(o, now) for o in list(self.open.values()) if o.acct == acct]
            sizes = {s: p.size for s, p in self.ledger.open_positions(acct).items()}
            for sym, size in sizes.items():
                if sym in self.marks:
                    mark = self.marks[sym]
                    entries += self._liquidate_position(now, acct, sym, size, mark, margin)
        return entries

    def _margin(self, acct: int) -> tuple[float, float] | None:
        """(equity, maintenance) of ``acct`` at the marks now; None when not finite."""
        held = self.ledger.open_positions(acct)
        marks = {s: float(self.marks[s].px) for s in held if s in self.marks}
        margin = self.ledger.margin(acct, marks, self.maint_margin)
        if margin is None or not all(math.isfinite(x) for x in margin):
            return None
        return margin

    def _liquidate_position(
        self,
        now: float,
        acct: int,
        sym: str,
        size: Decimal,
        mark: Mark,
        margin: tuple[float, float],
    ) -> list[Entry]:
        side, left = (SELL if size > 0 else BUY), abs(size)
        common = {"acct": acct, "sym": sym, "side": side, "mark": mark.px, "mark_at": mark.at}
        entries = [self._emit("LIQ", now, sz=left, equity=margin[0], maint=margin[1], **common)]
        factor = 1 - LIQUIDATION_SLIPPAGE if side == SELL else 1 + LIQUIDATION_SLIPPAGE
        for maker, traded in self.books[sym].match(side, mark.px * factor, left):
            entries.append(
                self._emit(
                    "TRADE",
                    now,
                    px=maker.px,
                    sz=traded,
                    liq=True,
                    counterparty=maker.acct,
                    cp_ref=maker.ref,
                    **common,
                )
            )
            left -= traded
        if left > 0:
            entries.append(
                self._emit(
                    "TRADE",
                    now,
                    px=mark.px,
                    sz=left,
                    liq=True,
                    counterparty=self.insurance_acct,
                    **common,
                )
            )
        return entries
