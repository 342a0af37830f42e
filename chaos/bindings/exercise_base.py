"""What ``tradechaos stack check``'s exercises (``chaos.bindings.exercise``) share: the
result of one binding and what one exercise leaves for the next."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Result:
    binding: str  # e.g. orders.submit
    status: str  # OK | FAIL | SKIP
    detail: str
    sent: str = ""
    got: str = ""
    fix: str = ""  # the stack-file key to fix

    def to_dict(self) -> dict[str, str]:
        return {
            "binding": self.binding,
            "status": self.status,
            "detail": self.detail,
            "sent": self.sent,
            "got": self.got,
            "fix": self.fix,
        }


@dataclass
class State:
    """What one exercise leaves for the next (the order to cancel and to find)."""

    account: int = 1
    client_order_id: str = ""
    accepted: bool = False
    mode_set: str | None = None


def http_failure(binding: str, sent: str, status: int, text: str, fix: str) -> Result:
    got = f"HTTP {status} {' '.join(text.split())[:300]}".rstrip()
    return Result(binding, "FAIL", f"the stack answered HTTP {status}", sent, got, fix)
