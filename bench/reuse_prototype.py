"""PROTOTYPE (issue 17), bench only: a started stack lent to successive runs and reset
between them, to measure what stack reuse would save an exploration. Not a product path:
it stands in for the ``ResettableBackend.checkpoint``/``reset`` interface proposed in
docs/explore.md, which belongs in chaos/backends (owned by the stack refactor, untouched).

How: the runner's ``Deps.backend`` seam gets ``LentStack.lease``; the first lease starts the
stack as usual and checkpoints the database (``CREATE DATABASE ... TEMPLATE``, the other
services stopped for it); every later lease resets instead of starting: the proxy reset
(toxics removed, links enabled), every service but the database stopped, the database
re-created from its template, their data dirs emptied, and the services started again
with the new run's parameters (seed, epoch, mitigations), a dependency level at a time. A
run's ``stop_stack`` leaves the stack up; ``LentStack.close`` stops it.

Stand-ins the stack file will one day declare (reference stack only): the stateful
service is the one whose health check is ``pg`` and its database is ``tradechaos``; the
backend's launch parameters are set through its private ``_params``.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

DATABASE = "tradechaos"
TEMPLATE = "tradechaos_explore_template"


class LentStack:
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.backend: Any = None
        self.resets: list[float] = []

    def lease(
        self, name: str, definition: Any, folder: Any, params: Mapping[str, str], url: str | None
    ) -> Any:
        """``Deps.backend``: the started stack for one run (started on first use)."""
        if self.backend is None:
            from chaos.backends.factory import make_backend
            from chaos.host.runs import RunFolder

            home = RunFolder.create(self.out_dir, "lent-stack", "shared")
            self.backend = make_backend(name, definition, home, dict(params), toxiproxy_url=url)
            return _Lease(self, params, first=True)
        return _Lease(self, params, first=False)

    def close(self) -> None:
        if self.backend is not None:
            self.backend.stop_stack()
            self.backend = None

    # -- the stack's state -----------------------------------------------------------------

    def database(self) -> str:
        return next(s.name for s in self.backend.definition.services if s.health.kind == "pg")

    def others(self) -> list[str]:
        order = list(self.backend.definition.start_order())
        return [name for name in order if name != self.database() and self._wanted(name)]

    def _wanted(self, name: str) -> bool:
        return not self.backend.definition.service(name).optional

    def _sql(self, *statements: str) -> None:
        import psycopg

        endpoint = self.backend.endpoint(self.database())
        dsn = f"host={endpoint.host} port={endpoint.port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            for statement in statements:
                conn.execute(statement)

    def checkpoint(self) -> None:
        self._stop_others()
        self._sql(
            f"DROP DATABASE IF EXISTS {TEMPLATE}", f"CREATE DATABASE {TEMPLATE} TEMPLATE {DATABASE}"
        )
        self._start_others()

    def reset(self, params: Mapping[str, str]) -> None:
        began = time.monotonic()
        from chaos.proxy.client import ToxiproxyClient

        with ToxiproxyClient(self.backend.toxiproxy_url) as proxy:
            proxy.reset()
        self._stop_others()
        self._sql(
            f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)",
            f"CREATE DATABASE {DATABASE} TEMPLATE {TEMPLATE}",
        )
        for name in self.others():
            data = Path(self.backend.run.data_dir(name))
            if data.is_dir():
                for entry in data.iterdir():
                    if entry.is_dir():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
        self.backend._params.update(params)  # PROTOTYPE: the new run's seed, epoch, mitigations
        self._start_others()
        self.resets.append(time.monotonic() - began)

    def _stop_others(self) -> None:
        for name in reversed(self.others()):
            self.backend.stop(name, grace_s=2.0)

    def _start_others(self) -> None:
        done = {self.database()}
        pending = self.others()
        with ThreadPoolExecutor(4) as pool:
            while pending:
                level = [
                    n for n in pending if set(self.backend.definition.service(n).depends_on) <= done
                ]
                if not level:
                    raise RuntimeError(f"cannot order {pending}")
                list(pool.map(lambda n: self.backend.start(n, 30.0), level))
                done.update(level)
                pending = [n for n in pending if n not in done]


class _Lease:
    """The lent stack as one run's backend: ``start_stack`` resets, ``stop_stack`` keeps."""

    def __init__(self, lent: LentStack, params: Mapping[str, str], first: bool) -> None:
        self._lent = lent
        self._params = dict(params)
        self._first = first

    def start_stack(self) -> None:
        if self._first:
            self._lent.backend.start_stack()
            self._lent.checkpoint()
        else:
            self._lent.reset(self._params)

    def stop_stack(self) -> None:
        return None  # the next lease resets; LentStack.close stops it

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lent.backend, name)


def explore(experiment_file: str, trials: int, out: Path) -> None:
    """``tradechaos explore FILE --budget N --jobs 1`` with every trial on the lent stack."""
    from chaos.experiment.loader import load
    from chaos.explore.engine import Exploration
    from chaos.explore.names import stack_names
    from chaos.explore.schedule import Plan
    from chaos.explore.spaceload import load_space
    from chaos.explore.stacktrials import StackTrials, _no_reports
    from chaos.explore.state import Settings
    from chaos.runner.runner import Deps, RunOptions
    from chaos.runner.signals import SignalGuard

    experiment = load(experiment_file)
    variant = experiment.variant_names[0]
    space = load_space(experiment, variant)
    plan = Plan.of(experiment, variant, space, stack_names(experiment))
    folder = out / f"{time.strftime('%Y%m%d-%H%M%S')}-{experiment.name}-{variant}-explore"
    folder.mkdir(parents=True)
    lent = LentStack(out)
    with SignalGuard() as guard:
        guard.shield()
        try:
            deps = Deps(backend=lent.lease, reports=_no_reports)
            trial_fn = StackTrials(RunOptions(out), 1, guard, deps=deps)
            settings = Settings(budget=trials, seed=experiment.seed)
            Exploration(plan, settings, trial_fn, folder).explore()
        finally:
            lent.close()
    (folder / "resets.txt").write_text("\n".join(f"{r:.3f}" for r in lent.resets) + "\n")


if __name__ == "__main__":
    explore(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
