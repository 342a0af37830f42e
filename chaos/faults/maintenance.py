"""Maintenance procedures: trading-mode changes and database upgrades.

``trading_mode`` (not a fault: kept by ``--no-faults``) posts the mode to every running
sequencer (``sequencer`` and its standbys ``sequencer_*``) directly, not through a link,
so a faulted client link cannot block maintenance. It is not undone at heal.

``db_upgrade``
- ``in_place``: stop the database server, wait ``downtime``, start it again (same data).
- ``migrate``: start a new instance (``new_name``, default ``<db>2``) from the db's
  ServiceSpec via ``backend.add_service``; copy the tables with the stack's copier
  (``chaos.stack.db.copy_tables``, ``copy_delay`` between tables, the copier's order:
  ``market_state`` last) and switch every link whose server is the db to the new instance,
  ``before_copy`` (online migration: services run against a half-copied database, the
  Paradex race) or ``after_copy`` (the safe order).
- ``stack: halted`` stops every other running service first and starts them again, in
  the stack's start order, when the upgrade is done (full downtime).
The upgrade stands after heal (it is not rolled back); heal only brings back services the
procedure stopped, if it was cut short.

Evidence: pids before/after, each link's upstream before/after, the tables copied with
their row counts in the new instance.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from chaos.errors import FaultError
from chaos.faults import http
from chaos.faults.base import Cancelled, FaultContext, RecordedFault, step_target
from chaos.faults.process import ProcessFault, _seconds
from chaos.faults.registry import ActionInfo, StepLike

COPIER = "chaos.stack.db:copy_tables"  # (src_dsn, dst_dsn, delay_s, order) -> None
DB_NAME = "tradechaos"


def sequencers(ctx: FaultContext, names: list[str] | None) -> list[str]:
    if names:
        return names
    return [
        s for s in ctx.definition.service_names if s == "sequencer" or s.startswith("sequencer_")
    ]


MODE_RETRY_S = 5.0  # an operator retries a mode change a sequencer could not write
MODE_RETRY_EVERY_S = 0.25


class TradingMode(RecordedFault):
    def _inject(self) -> None:
        mode = str(self.params["mode"])
        deadline = time.monotonic() + MODE_RETRY_S
        while True:
            answers = self._set_mode(mode)
            taken = any(isinstance(a, dict) and "error" not in a for a in answers.values())
            if taken or time.monotonic() >= deadline:
                break
            self.wait(MODE_RETRY_EVERY_S)  # e.g. the sequencer is reconnecting to its db
        self.evidence(mode=mode, sequencers=answers)
        if not taken:
            raise FaultError(f"no sequencer took trading mode {mode}: {answers}")

    def _set_mode(self, mode: str) -> dict[str, Any]:
        answers: dict[str, Any] = {}
        for service in sequencers(self.ctx, self.target):
            if not self.ctx.backend.is_running(service):
                answers[service] = "not running"
                continue
            url = self.ctx.backend.endpoint(service).url
            try:
                http.call("POST", f"{url}/admin/mode", {"mode": mode})
                answers[service] = http.call("GET", f"{url}/mode")
            except FaultError as err:
                answers[service] = {"error": str(err)}
        return answers

    def _heal(self) -> dict[str, Any]:
        return {}


def load_copier() -> tuple[Callable[..., None], list[str]]:
    """The stack's table copier and its default table order (imported by name: the engine
    does not import the reference stack)."""
    module_name, _, name = COPIER.partition(":")
    module = importlib.import_module(module_name)
    copier: Callable[..., None] = getattr(module, name)
    return copier, [str(t) for t in getattr(module, "COPY_ORDER", ())]


def _row_counts(dsn: str, tables: list[str]) -> dict[str, int]:
    import psycopg

    host, _, port = dsn.rpartition(":")
    counts: dict[str, int] = {}
    with psycopg.connect(
        host=host, port=int(port), user="postgres", dbname=DB_NAME, connect_timeout=5
    ) as conn:
        for table in tables:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            counts[table] = int(row[0]) if row else 0
    return counts


class DbUpgrade(ProcessFault):
    def __init__(
        self,
        ctx: FaultContext,
        step_id: str,
        target: list[str] | None,
        params: Mapping[str, object],
    ) -> None:
        super().__init__(ctx, step_id, "db_upgrade", target or ["db"], params)
        self.db = self.services[0]

    def _inject(self) -> None:
        timeout = _seconds(self.params.get("timeout"), 30.0)
        migrate = self.params["strategy"] == "migrate"
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
        links = [lk.name for lk in self.ctx.definition.links if lk.server == self.db]
        upstream_before = {lk: self._upstream(lk) for lk in links}
        self.evidence(old_endpoint=str(old_endpoint), upstream_before=upstream_before)
        restart_param = self.params.get("restart")
        restart = [str(s) for s in restart_param] if isinstance(restart_param, list) else []
        early_param = self.params.get("early")
        early = {str(s) for s in early_param} if isinstance(early_param, list) else set()
        tables = self.params.get("tables")
        copier, default_order = load_copier()
        order = [str(t) for t in tables] if isinstance(tables, list) else list(default_order)
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
            self._copy(
                copier, old_endpoint, new_endpoint, _seconds(self.params.get("copy_delay")), order
            )
            if last:
                self._switch(last, new_endpoint)
            self._restart(restart_last, timeout)
        finally:
            if restarter is not None:
                restarter.join(timeout + 5.0)
        try:
            rows = _row_counts(str(new_endpoint), order)
        except Exception as err:  # evidence is best-effort
            rows = {"error": str(err)}  # type: ignore[dict-item]
        self.evidence(
            strategy="migrate",
            switch=self.params.get("switch"),
            rows_copied=rows,
            upstream_after={lk: self._upstream(lk) for lk in links},
        )

    def _copy(
        self, copier: Callable[..., None], src: Any, dst: Any, delay: float, tables: list[str]
    ) -> None:
        """Copy ``tables`` (the copier always makes sure the schema exists first)."""
        if not tables:
            return
        try:
            copier(str(src), str(dst), delay, tables, cancel=self.cancel_event)
        except Exception as err:
            if self.cancelled:
                raise Cancelled from err
            raise FaultError(f"db_upgrade could not copy the tables: {err}") from err

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
