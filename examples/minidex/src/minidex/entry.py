"""A journal entry and what it does to the accounts (pure).

``Entry`` is one row of the ``journal`` table (its fields are the columns, in order; which
ones each ``typ`` uses is in schema.sql). ``post`` books an entry's effect on cash and
positions: the engine (live and in replay) and the settler share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from minidex.ledger import Ledger


@dataclass
class Entry:
    """One row of the ``journal`` table; which fields a ``typ`` uses is in schema.sql."""

    n: int
    at: float  # wall-clock seconds
    typ: str
    acct: int | None = None
    sym: str | None = None
    side: str | None = None
    kind: str | None = None
    px: Decimal | None = None
    sz: Decimal | None = None
    po: bool | None = None
    cid: str | None = None
    ref: int | None = None
    counterparty: int | None = None
    cp_ref: int | None = None
    liq: bool = False
    mark: Decimal | None = None
    mark_at: float | None = None
    amount: Decimal | None = None
    status: str | None = None
    origin: str | None = None
    equity: float | None = None
    maint: float | None = None


def post(ledger: Ledger, entry: Entry) -> set[int]:
    """Book ``entry`` (a CREDIT or a TRADE) into ``ledger``; the accounts it touched."""
    if entry.typ == "CREDIT" and entry.acct is not None and entry.amount is not None:
        ledger.credit(entry.acct, float(entry.amount))
        return {entry.acct}
    if entry.typ == "TRADE" and entry.acct is not None and entry.counterparty is not None:
        assert entry.sym and entry.sz is not None and entry.px is not None
        signed = entry.sz if entry.side == "BUY" else -entry.sz
        ledger.trade(entry.acct, entry.sym, signed, float(entry.px))
        ledger.trade(entry.counterparty, entry.sym, -signed, float(entry.px))
        return {entry.acct, entry.counterparty}
    return set()
