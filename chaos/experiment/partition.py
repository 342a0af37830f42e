"""Distributed load (``load.workers``): which worker trades for which accounts, under which
client-op process ids. Pure: no locust, no I/O.

Contract
- ``worker_accounts(accounts, workers, index)`` deals the accounts out like cards:
  worker ``i`` of ``N`` trades ``accounts[i::N]``, so no account belongs to two workers and
  the users of a worker never act for another worker's account. With Locust's even split
  of users over the workers, the accounts in use are the ones a single process would use
  (worker 0's users take accounts 1, 3, 5, ..., worker 1's 2, 4, 6, ...). Fewer accounts
  than workers is a ``ValueError``: some worker would have none.
- ``process_id(worker, local)`` is the client-op ``process`` of a worker's ``local``-th user
  (1-based): ``local`` itself in a single process (``worker`` None: today's ids), else
  ``worker * PROCESS_BLOCK + local``. Worker blocks never overlap (at most ``MAX_USERS``
  users per worker) and stay below the faults' traders (``FAULT_PROCESSES``), so process ids,
  and the client_order_ids ``u<process>-<n>`` made from them, are unique across workers.
"""

from __future__ import annotations

from collections.abc import Sequence

PROCESS_BLOCK = 10_000  # client-op process ids of worker w: w * PROCESS_BLOCK + 1 ...
MAX_USERS = PROCESS_BLOCK  # load.users is at most 10000: no worker outgrows its block
MAX_WORKERS = 64
ADVERSARY_PROCESS = 900_000  # the adversarial-orders fault's ids: 900000 + account
TRIGGER_PROCESS = 800_000  # trigger_orders' traders: 800000 + account (chaos.faults.market)
# every id from here up is a fault's trader, not the load's (worker blocks stay below)
FAULT_PROCESSES = min(ADVERSARY_PROCESS, TRIGGER_PROCESS)
DEFAULT_TRADERS = tuple(range(1, 37))  # the accounts traded when nothing says otherwise


def accounts_problem(accounts: int, workers: int) -> str | None:
    """Why ``workers`` workers cannot share ``accounts`` trader accounts (None: they can)."""
    if workers > accounts:
        return (
            f"{workers} load workers need at least {workers} trader accounts (one each at "
            f"least; two workers never trade for the same account), there are {accounts}"
        )
    return None


def worker_accounts(accounts: Sequence[int], workers: int, index: int) -> list[int]:
    """The accounts worker ``index`` (of ``workers``; taken modulo) trades for."""
    if workers < 1:
        raise ValueError(f"a distributed load has at least 1 worker, not {workers}")
    problem = accounts_problem(len(accounts), workers)
    if problem is not None:
        raise ValueError(problem)
    return list(accounts[index % workers :: workers])


def process_id(worker: int | None, local: int) -> int:
    """The client-op process id of a worker's ``local``-th user (see the module doc)."""
    if local < 1:
        raise ValueError(f"user numbers start at 1, not {local}")
    if worker is None:
        return local
    if local > PROCESS_BLOCK:
        raise ValueError(f"worker {worker} runs more than {PROCESS_BLOCK} users")
    process = worker * PROCESS_BLOCK + local
    if worker < 0 or process >= FAULT_PROCESSES:
        last = FAULT_PROCESSES // PROCESS_BLOCK - 1
        raise ValueError(f"worker index {worker} is outside 0..{last}")
    return process
