"""recovered_state_matches_replay: after recovery, the stack's positions and balances equal a
replay of the kept events under true prices (docs/checkers.md, "After the response").

Each response step that reported the stack's accounts (a ``chain_rollback`` or a ``replay``
answer's ``accounts`` at ``at_seq``) is compared with the log as it stood then, replayed
from the History (``chaos.history.timeline``: the log as written, rollbacks included) with
the fair books of ``chaos.history.books``: the same fills, funding settled at the TRUE funding
index of the instant of the price the stack used. Per account:
- the open positions: the same markets, sizes within 1e-9 (relative, at least absolute),
  entry prices within 1e-6 relative;
- the collateral within 0.01 + ``funding_tolerance`` x the funding the account settled
  (the oracle's own funding index is allowed that far from the truth); a kept event that
  settled funding at a corrupt index (a snapshot taken too late, a replay of a bad event)
  shows as a difference of that funding.
An account absent from one side counts as collateral 0 with no positions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from chaos.checkers.base import Findings, Verdict, rounded
from chaos.checkers.params import CheckParams
from chaos.history.books import BookAccount, Books
from chaos.history.events import Event
from chaos.history.reader import History
from chaos.history.response import RollbackRecord, StateReport, response_log
from chaos.history.timeline import replay_as_written

NAME = "recovered_state_matches_replay"


class _StateReplayer:
    """Replays the fair books and compares them with each state report at its point."""

    def __init__(
        self, history: History, reports: list[StateReport], rollbacks: list[RollbackRecord]
    ) -> None:
        self.books = Books(history.truth())
        self.segment = 0
        self.pending: list[tuple[int, StateReport]] = []
        self.at_rollback: dict[str, list[StateReport]] = {}
        for report in reports:
            if report.action == "chain_rollback":
                self.at_rollback.setdefault(report.step, []).append(report)
            else:
                segment = sum(1 for r in rollbacks if r.time < report.time)
                self.pending.append((segment, report))
        self.compared: list[tuple[StateReport, dict[int, BookAccount]]] = []

    def apply(self, event: Event, reverted_by: RollbackRecord | None) -> None:
        self._due(lambda at_seq: at_seq < event["seq"])
        if event["kind"] == "deposit":
            self.books.deposit(int(event["account"]), float(event["amount"]))
        elif event["kind"] == "fill":
            self.books.fill(event)

    def checkpoint(self) -> Any:
        return {a: acct.copy() for a, acct in self.books.accounts.items()}

    def restore(self, saved: Any, rollback: RollbackRecord) -> None:
        self._due(lambda at_seq: True)
        if saved is not None:
            self.books.accounts = {a: acct.copy() for a, acct in saved.items()}
        self.segment += 1
        for report in self.at_rollback.pop(rollback.step, []):
            self._take(report)

    def finish(self) -> None:
        self._due(lambda at_seq: True)
        for reports in self.at_rollback.values():
            for report in reports:
                self._take(report)
        self.at_rollback.clear()
        for _, report in self.pending:
            self._take(report)
        self.pending.clear()

    def _due(self, passed: Any) -> None:
        due = [(s, r) for s, r in self.pending if s == self.segment and passed(r.at_seq)]
        for item in due:
            self.pending.remove(item)
            self._take(item[1])

    def _take(self, report: StateReport) -> None:
        self.compared.append((report, {a: acct.copy() for a, acct in self.books.accounts.items()}))


def check(history: History, params: CheckParams) -> Verdict:
    found = Findings(NAME, params.max_counterexamples)
    response = response_log(history)
    if not response.state_reports:
        return found.verdict("accounts", nothing="no response step reported the recovered accounts")
    replayer = _StateReplayer(history, response.state_reports, response.rollbacks)
    timeline = replay_as_written(
        history.events,
        history.rolled_back if history.has("rolled_back") else None,
        response.rollbacks,
        replayer,
    )
    replayer.finish()
    for report, books in replayer.compared:
        _compare(found, report, books, params)
    if timeline.problems:
        return found.verdict("accounts", unknown="; ".join(timeline.problems))
    return found.verdict("accounts")


def _compare(
    found: Findings,
    report: StateReport,
    books: dict[int, BookAccount],
    params: CheckParams,
) -> None:
    reported = {int(a): v for a, v in report.accounts.items()}
    for account in sorted(set(reported) | set(books)):
        found.checked += 1
        mine = books.get(account, BookAccount())
        theirs = reported.get(account, {})
        collateral = float(theirs.get("collateral") or 0.0)
        allowed = 0.01 + params.funding_tolerance * mine.funding_moved
        problems = []
        if not math.isfinite(collateral) or abs(collateral - mine.fair) > allowed:
            problems.append(
                f"collateral {collateral:.2f} where the replay under true prices gives "
                f"{mine.fair:.2f} (the log's own funding gives {mine.book:.2f})"
            )
        problems += _position_problems(theirs.get("positions") or {}, mine)
        if problems:
            found.add(
                {
                    "problem": f"{report.step} ({report.action}): account {account}: "
                    + "; ".join(problems),
                    "step": report.step,
                    "account": account,
                    "at_seq": report.at_seq,
                    "collateral_reported": collateral,
                    "collateral_replayed": round(mine.fair, 2),
                    "collateral_booked_by_the_log": round(mine.book, 2),
                    "difference": round(collateral - mine.fair, 2),
                    "positions_reported": dict(theirs.get("positions") or {}),
                    "positions_replayed": {
                        m: {"size": p.size, "entry_price": rounded(p.entry_price)}
                        for m, p in mine.positions.items()
                        if p.size != 0.0
                    },
                }
            )


def _position_problems(reported: Mapping[str, Any], mine: BookAccount) -> list[str]:
    problems = []
    held = {m: p for m, p in mine.positions.items() if p.size != 0.0}
    for market in sorted(set(reported) | set(held)):
        pos = reported.get(market) or {}
        size, entry = float(pos.get("size") or 0.0), float(pos.get("entry_price") or 0.0)
        replayed = held.get(market)
        want_size = replayed.size if replayed else 0.0
        want_entry = replayed.entry_price if replayed else 0.0
        if abs(size - want_size) > 1e-9 * max(1.0, abs(want_size)):
            problems.append(f"{market} size {size} where the replay gives {want_size}")
        elif want_size and abs(entry - want_entry) > 1e-6 * max(1.0, abs(want_entry)):
            problems.append(
                f"{market} entry price {rounded(entry)} where the replay gives "
                f"{rounded(want_entry)}"
            )
    return problems
