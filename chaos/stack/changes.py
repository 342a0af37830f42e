"""The exchange engine's data: what a batch must persist, positions, oracle prices, and the
exceptions a request can end in (each maps to one HTTP status in the sequencer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chaos.stack.book import Order


class NotServing(Exception):
    """The request cannot be served now (halted, not leader): HTTP 503."""


class BadRequest(Exception):
    """The request is malformed: HTTP 400."""


class AccessRefused(Exception):
    """The operator disabled traders' access: HTTP 403 (the order certainly did not happen)."""


@dataclass
class Position:
    size: float = 0.0
    entry_price: float = 0.0
    entry_funding_index: float = 0.0
    realised_pnl: float = 0.0


@dataclass(frozen=True)
class OraclePrice:
    mark_price: float
    funding_index: float
    ts: float


@dataclass
class Changes:
    """What one batch must persist, in one transaction."""

    events: list[tuple[int, int, str, float, str, str]] = field(default_factory=list)
    orders: dict[int, Order] = field(default_factory=dict)
    positions: set[tuple[int, str]] = field(default_factory=set)
    accounts: set[int] = field(default_factory=set)
    idempotency: list[tuple[str, str, int]] = field(default_factory=list)  # coid, result, seq
    mode: str | None = None
    access: tuple[bool, str] | None = None  # (enabled, reason) when it changed

    def empty(self) -> bool:
        return not (
            self.events
            or self.orders
            or self.positions
            or self.accounts
            or self.mode
            or self.access is not None
        )


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))
