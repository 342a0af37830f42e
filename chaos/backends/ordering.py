"""Running an action over services in dependency order, independent ones concurrently.

``run_in_order(names, deps, action)`` calls ``action(name)`` for every name, each only after
``action`` has returned for all of its dependencies (dependencies outside ``names`` are
ignored). As soon as one call raises, no further call starts, ``on_error()`` runs once (e.g.
to kill what is in flight so the other calls end quickly), every running call is waited for,
and the first error is re-raised. ``reverse_deps`` turns "a needs b" into "b waits for a",
the order for stopping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait


def reverse_deps(
    names: Sequence[str], deps: Mapping[str, Iterable[str]]
) -> dict[str, tuple[str, ...]]:
    """For each name, the names that depend on it."""
    dependents: dict[str, list[str]] = {name: [] for name in names}
    for name in names:
        for dep in deps.get(name, ()):
            if dep in dependents:
                dependents[dep].append(name)
    return {name: tuple(users) for name, users in dependents.items()}


def run_in_order(
    names: Sequence[str],
    deps: Mapping[str, Iterable[str]],
    action: Callable[[str], None],
    on_error: Callable[[], None] | None = None,
    thread_name: str = "tradechaos-order",
) -> None:
    """See the module doc. Raises ValueError on a dependency cycle among ``names``."""
    pending = list(names)
    wanted = set(names)
    done: set[str] = set()
    running: dict[Future[None], str] = {}
    if not pending:
        return
    with ThreadPoolExecutor(max_workers=len(pending), thread_name_prefix=thread_name) as pool:
        try:
            while pending or running:
                for name in list(pending):
                    if all(d in done or d not in wanted for d in deps.get(name, ())):
                        pending.remove(name)
                        running[pool.submit(action, name)] = name
                if not running:
                    raise ValueError(f"dependency cycle among: {', '.join(pending)}")
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    error = future.exception()
                    if error is not None:
                        raise error
                    done.add(name)
        except BaseException:
            if on_error is not None:
                on_error()
            raise
