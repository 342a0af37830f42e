"""The accounts binding at work: fund every trader and adversary account once the stack is
healthy (when the binding says how; otherwise the stack's own setup funds them)."""

from __future__ import annotations

from chaos.bindings.client import BindingError, send
from chaos.bindings.http import render
from chaos.bindings.places import Places
from chaos.bindings.sql import execute
from chaos.stackfile.bindings import AccountsBinding


def fund_accounts(binding: AccountsBinding, places: Places) -> int:
    """Fund each account with ``collateral``; the number funded (0 when the binding has no
    ``fund``). ``BindingError`` naming the account and the answer when one is refused."""
    accounts = [*binding.traders, *binding.adversaries]
    if binding.fund_sql is not None:
        for account in accounts:
            execute(places, binding.fund_sql.database, binding.fund_sql.run,
                    {"account": account, "amount": binding.collateral})  # fmt: skip
        return len(accounts)
    request = binding.fund
    if request is None:
        return 0
    target = request.via or request.service
    assert target is not None  # the loader requires one
    base = places.url(target)
    for account in accounts:
        rendered = render(request, {"account": account, "amount": binding.collateral})
        status, text = send(base, rendered, request.timeout_s)
        if not 200 <= status < 300:
            raise BindingError(
                f"funding account {account} ({rendered.describe()}) was refused: HTTP {status} "
                f"{text.strip()[:200]} (check bindings.accounts.fund)"
            )
    return len(accounts)
