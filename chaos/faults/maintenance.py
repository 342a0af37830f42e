"""Maintenance procedures: trading-mode changes and database upgrades, through the stack
file's bindings.

``trading_mode`` (not a fault: kept by ``--no-faults``) sets the mode through
``bindings.trading_mode`` on every running service the binding names (or the step's
targets), directly, not through a link, so a faulted client link cannot block maintenance.
A mode change a service cannot take yet (it is reconnecting to its database) is retried
for ``MODE_RETRY_S``. It is not undone at heal.

``db_upgrade`` acts on ``bindings.db_upgrade.database`` (a built-in postgres):
- ``in_place``: stop the database server, wait ``downtime``, start it again (same data).
- ``migrate``: start a new instance (``new_name``, default ``<db>2``) from the database's
  ServiceSpec via ``backend.add_service``; copy the schema (``pg_dump --schema-only``,
  unless the instance already has it) and the tables one by one in the binding's order (or
  the step's ``tables``), ``copy_delay`` between tables; and switch the client links (the
  binding's ``clients``, default every link whose server is the database) to the new
  instance, ``before_copy`` (online migration: services run against a half-copied
  database, the Paradex race) or ``after_copy`` (the safe order).
- ``command``: start the new instance, run the binding's ``command`` (the stack's own
  migration, ``{old}``/``{new}`` as host:port), then switch the links.
- ``stack: halted`` stops every other running service first and starts them again, in
  the stack's start order, when the upgrade is done (full downtime).
The upgrade stands after heal (it is not rolled back); heal only brings back services the
procedure stopped, if it was cut short.

Evidence: pids before/after, each link's upstream before/after, the tables copied with
their row counts in the new instance.
"""

from __future__ import annotations

import dataclasses
import subprocess
import threading
import time
from collections.abc import Mapping
from typing import Any

from chaos.bindings.modes import set_mode
from chaos.builtins import postgres
from chaos.errors import FaultError
from chaos.experiment.actions import ActionInfo, StepLike
from chaos.faults.base import Cancelled, FaultContext, RecordedFault, step_target
from chaos.faults.process import ProcessFault, _seconds
from chaos.stackfile.bindings import DbUpgradeBinding, TradingModeBinding

MODE_RETRY_S = 5.0  # an operator retries a mode change a service could not write
MODE_RETRY_EVERY_S = 0.25
COMMAND_TIMEOUT_S = 300.0


def mode_binding(ctx: FaultContext) -> TradingModeBinding:
    binding = ctx.definition.bindings.trading_mode
    if binding is None:
        raise FaultError(f"stack {ctx.definition.name} declares no bindings.trading_mode")
    return binding


class TradingMode(RecordedFault):
    def _inject(self) -> None:
        binding = mode_binding(self.ctx)
        if self.target:
            binding = dataclasses.replace(binding, services=tuple(self.target))
        mode = str(self.params["mode"])
        deadline = time.monotonic() + MODE_RETRY_S
        while True:
            answers = set_mode(binding, self.ctx.places, mode, self.ctx.backend.is_running)
            taken = any(isinstance(a, dict) and "error" not in a for a in answers.values())
            if taken or time.monotonic() >= deadline:
                break
            self.wait(MODE_RETRY_EVERY_S)  # e.g. the sequencer is reconnecting to its db
        self.evidence(mode=mode, services=answers)
        if not taken:
            raise FaultError(f"no service took trading mode {mode}: {answers}")

    def _heal(self) -> dict[str, Any]:
        return {}


def upgrade_binding(ctx: FaultContext) -> DbUpgradeBinding:
    binding = ctx.definition.bindings.db_upgrade
    if binding is None:
        raise FaultError(f"stack {ctx.definition.name} declares no bindings.db_upgrade")
    return binding


class DbUpgrade(ProcessFault):
    def __init__(
        self,
        ctx: FaultContext,
        step_id: str,
        target: list[str] | None,
        params: Mapping[str, object],
    ) -> None:
        binding = upgrade_binding(ctx)
        super().__init__(ctx, step_id, "db_upgrade", target or [binding.database], params)
        self.binding = binding
        self.db = self.services[0]
        self.dbname = ctx.definition.service(self.db).database or "postgres"

    def _inject(self) -> None:
        timeout = _seconds(self.params.get("timeout"), 30.0)
        migrate = self.params["strategy"] in ("migrate", "command")
        # the new instance is provisioned before any downtime, as operators do
        new_endpoint = self._provision(timeout) if migrate else None
        halted = self._halt_others() if self.params.get("stack") == "halted" else []
        if new_endpoint is not None:
            self._migrate(new_endpoint, timeout)
        else:
            before = self.ctx.backend.pid(self.db)
            self.take_down(self.db, "term")
            self.wait(_seconds(self.params.get("downtime")))
            self.start_in_order([self.db], timeout=timeout)
            self.evidence(
                strategy="in_place", pid_before=before, pid_after=self.ctx.backend.pid(self.db)
            )
        if halted:
            self.wait(0)
            self.evidence(restarted=self.start_in_waves(halted, timeout))

    def _halt_others(self) -> list[str]:
        running = [
            s
            for s in self.ctx.definition.start_order()
            if s != self.db and self.ctx.backend.is_running(s)
        ]
        self.take_down_all(running)
        self.evidence(halted=list(reversed(running)))
        return running

    def _provision(self, timeout: float) -> Any:
        new_name = str(self.params.get("new_name") or f"{self.db}2")
        # An empty instance: no after_healthy commands (they would write the genesis); the
        # copier creates the schema and brings the data.
        spec = dataclasses.replace(
            self.ctx.definition.service(self.db), name=new_name, after_healthy=()
        )
        endpoint = self.ctx.backend.add_service(spec, timeout_s=timeout)
        self.evidence(new_instance=new_name, new_endpoint=str(endpoint))
        return endpoint

    def _migrate(self, new_endpoint: Any, timeout: float) -> None:
        old_endpoint = self.ctx.backend.endpoint(self.db)
        links = list(self.binding.clients) or [
            lk.name for lk in self.ctx.definition.links if lk.server == self.db
        ]
        upstream_before = {lk: self._upstream(lk) for lk in links}
        self.evidence(old_endpoint=str(old_endpoint), upstream_before=upstream_before)
        restart_param = self.params.get("restart")
        restart = [str(s) for s in restart_param] if isinstance(restart_param, list) else []
        early_param = self.params.get("early")
        early = {str(s) for s in early_param} if isinstance(early_param, list) else set()
        tables = self.params.get("tables")
        if isinstance(tables, list):
            order = [str(t) for t in tables]
        else:
            order = list(self.binding.tables) or postgres.table_names(
                str(old_endpoint), self.dbname
            )
        # Links switched before the copy: the early services' (their restart then races the
        # copy), and every link when the switch comes first (online); the rest after it.
        switch_first = self.params.get("switch") == "before_copy"
        clients = {lk.name: lk.client for lk in self.ctx.definition.links}
        first = [lk for lk in links if switch_first or clients[lk] in early]
        last = [lk for lk in links if lk not in first]
        restart_first = [s for s in restart if switch_first or s in early]
        restart_last = [s for s in restart if s not in restart_first]
        restarter: threading.Thread | None = None
        try:
            if first:
                self._switch(first, new_endpoint)
                restarter = threading.Thread(
                    target=self._restart_quietly,
                    args=(restart_first, timeout),
                    name="db-upgrade-restart",
                )
                restarter.start()
            if self.params["strategy"] == "command":
                self._command(old_endpoint, new_endpoint)
            else:
                self._copy(
                    old_endpoint, new_endpoint, _seconds(self.params.get("copy_delay")), order
                )
            if last:
                self._switch(last, new_endpoint)
            self._restart(restart_last, timeout)
        finally:
            if restarter is not None:
                restarter.join(timeout + 5.0)
        try:
            rows = postgres.row_counts(str(new_endpoint), self.dbname, order)
        except Exception as err:  # evidence is best-effort
            rows = {"error": str(err)}  # type: ignore[dict-item]
        self.evidence(
            strategy="migrate",
            switch=self.params.get("switch"),
            rows_copied=rows,
            upstream_after={lk: self._upstream(lk) for lk in links},
        )

    def _copy(self, src: Any, dst: Any, delay: float, tables: list[str]) -> None:
        """The schema (when the new instance lacks it), then ``tables`` one by one."""
        try:
            postgres.copy_schema(str(src), str(dst), self.dbname)
            if tables:
                postgres.copy_tables(
                    str(src), str(dst), self.dbname, tables, delay, cancel=self.cancel_event
                )
        except Exception as err:
            if self.cancelled:
                raise Cancelled from err
            raise FaultError(f"db_upgrade could not copy the tables: {err}") from err

    def _command(self, src: Any, dst: Any) -> None:
        """The stack's own migration (``bindings.db_upgrade.command``) from src to dst."""
        argv = [
            a.replace("{old}", str(src)).replace("{new}", str(dst)) for a in self.binding.command
        ]
        if not argv:
            raise FaultError("strategy command needs bindings.db_upgrade.command")
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False,
                cwd=self.ctx.definition.stack_dir,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as err:
            raise FaultError(f"db_upgrade command {argv[0]} did not run: {err}") from err
        self.evidence(command=argv, exit_code=done.returncode, output=done.stdout[-500:])
        if done.returncode != 0:
            raise FaultError(f"db_upgrade command {argv[0]} exited {done.returncode}: "
                             f"{done.stderr.strip()[-300:]}")  # fmt: skip

    def _restart_quietly(self, services: list[str], timeout: float) -> None:
        """``_restart`` in a helper thread: a heal that cancels the procedure ends it (heal
        brings the services back); any other failure is recorded as evidence."""
        try:
            self._restart(services, timeout)
        except Cancelled:
            pass
        except Exception as err:
            self.evidence(restart_failed=f"{type(err).__name__}: {err}")

    def _restart(self, services: list[str], timeout: float) -> None:
        """Restart ``services`` one by one (the procedure's restart after the switch)."""
        for service in services:
            before = self.ctx.backend.pid(service)
            self.take_down(service, "term")
            self.start_in_order([service], timeout=timeout)
            self.evidence(
                restarted=service, pid_before=before, pid_after=self.ctx.backend.pid(service)
            )

    def _switch(self, links: list[str], endpoint: Any) -> None:
        for link in links:
            self.ctx.backend.set_link_upstream(link, endpoint)
        self.evidence(switched=links, upstream=str(endpoint))

    def _upstream(self, link: str) -> str | None:
        try:
            return str(self.ctx.proxy.get(link).get("upstream"))
        except Exception:
            return None

    def _heal(self) -> dict[str, Any]:
        return self.bring_back()


def build(
    step: StepLike, info: ActionInfo, params: dict[str, object], ctx: FaultContext
) -> RecordedFault:
    targets = step_target(step.target)
    if info.name == "trading_mode":
        return TradingMode(ctx, step.id, info.name, targets, params)
    return DbUpgrade(ctx, step.id, targets, params)
