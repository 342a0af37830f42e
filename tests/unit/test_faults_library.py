"""Faults against a fake backend and a fake Toxiproxy: effects, evidence, complete heals."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from chaos.backends.base import Endpoint, ServiceStatus
from chaos.builtins import postgres
from chaos.errors import StackError
from chaos.faults.base import FaultContext
from chaos.faults.build import build
from chaos.stackfile.bindings import Bindings, DbUpgradeBinding
from chaos.stackfile.definition import LinkSpec, ServiceSpec, StackDefinition

SERVICES = [
    ("db", "core", ()),
    ("feeds", "core", ()),
    ("oracle", "a", ("db", "feeds")),
    ("sequencer", "a", ("db",)),
    ("risk", "core", ("db", "oracle", "sequencer")),
]
LINKS = [
    ("clients-sequencer", "clients", "sequencer"),
    ("sequencer-db", "sequencer", "db"),
    ("oracle-db", "oracle", "db"),
    ("oracle-feeds", "oracle", "feeds"),
    ("risk-db", "risk", "db"),
    ("risk-oracle", "risk", "oracle"),
    ("risk-sequencer", "risk", "sequencer"),
]
DEFINITION = StackDefinition(
    "test",
    tuple(
        ServiceSpec(n, ("true",), depends_on=d, site=s, builtin="postgres" if n == "db" else None)
        for n, s, d in SERVICES
    ),
    tuple(LinkSpec(*lk) for lk in LINKS),
    bindings=Bindings(db_upgrade=DbUpgradeBinding("db")),
)
_pids = itertools.count(1000)


class FakeBackend:
    name = "fake"
    definition = DEFINITION

    def __init__(self) -> None:
        self.pids: dict[str, int | None] = {s: next(_pids) for s, _, _ in SERVICES}
        self.paused: set[str] = set()
        self.throttles: dict[str, float | None] = {}
        self.calls: list[tuple[str, str]] = []
        self.upstreams: dict[str, str] = {}
        self.added: list[ServiceSpec] = []

    def start(self, service: str, timeout_s: float = 30.0) -> None:
        self.calls.append(("start", service))
        self.pids[service] = next(_pids)

    def stop(self, service: str, grace_s: float | None = None) -> None:
        self.calls.append(("stop", service))
        self.pids[service] = None

    def kill(self, service: str) -> None:
        self.calls.append(("kill", service))
        self.pids[service] = None

    def pause(self, service: str) -> None:
        self.paused.add(service)

    def resume(self, service: str) -> None:
        self.paused.discard(service)

    def throttle(self, service: str, cpu_fraction: float | None) -> None:
        if self.pids[service] is None:
            raise StackError(f"cannot throttle {service}: it is not running")
        self.throttles[service] = cpu_fraction

    def is_running(self, service: str) -> bool:
        return self.pids.get(service) is not None

    def pid(self, service: str) -> int | None:
        return self.pids.get(service)

    def endpoint(self, service: str) -> Endpoint:
        return Endpoint("127.0.0.1", 5000 + sorted(self.pids).index(service))

    def link_endpoint(self, link: str) -> Endpoint:
        return Endpoint("127.0.0.1", 6000)

    def add_service(self, spec: ServiceSpec, timeout_s: float = 30.0) -> Endpoint:
        self.added.append(spec)
        self.pids[spec.name] = next(_pids)
        return Endpoint("127.0.0.1", 7777)

    def set_link_upstream(self, link: str, upstream: Endpoint) -> None:
        self.calls.append(("switch", link))
        self.upstreams[link] = str(upstream)

    # the rest of the Backend protocol: no fault under test reaches it
    def start_stack(self) -> None:
        raise AssertionError("start_stack: not part of a fault")

    def stop_stack(self) -> None:
        raise AssertionError("stop_stack: not part of a fault")

    def signal(self, service: str, signum: int) -> None:
        raise AssertionError(f"signal {service}: not faked")

    def restart(self, service: str, downtime_s: float = 0.0, timeout_s: float = 30.0) -> None:
        raise AssertionError(f"restart {service}: not faked")

    def wait_healthy(self, service: str, timeout_s: float = 30.0) -> None:
        raise AssertionError(f"wait_healthy {service}: not faked")

    def status(self) -> list[ServiceStatus]:
        raise AssertionError("status: not faked")

    def logs(self, service: str, tail: int = 50) -> str:
        raise AssertionError(f"logs {service}: not faked")

    @property
    def toxiproxy_url(self) -> str:
        raise AssertionError("toxiproxy_url: faults talk to ctx.proxy")


@dataclass
class FakeProxy:
    toxic_sets: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    enabled: dict[str, bool] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, proxy: str) -> dict[str, Any]:
        return {"name": proxy, "enabled": self.enabled.get(proxy, True), "upstream": "x:1"}

    def update(self, proxy: str, **fields: Any) -> None:
        if "enabled" in fields:
            self.enabled[proxy] = bool(fields["enabled"])

    def add_toxic(
        self,
        proxy: str,
        name: str,
        type: str,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: Any = None,
    ) -> None:
        with self.lock:
            toxics = self.toxic_sets.setdefault(proxy, {})
            assert name not in toxics, f"toxic {name} already exists on {proxy}"
            toxics[name] = {
                "name": name,
                "type": type,
                "stream": stream,
                "toxicity": toxicity,
                "attributes": dict(attributes or {}),
            }

    def remove_toxic(self, proxy: str, name: str) -> None:
        with self.lock:
            del self.toxic_sets[proxy][name]

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.toxic_sets.get(proxy, {}).values())

    def stats(self, proxy: str) -> dict[str, Any]:
        raise RuntimeError("no stats on this proxy")

    def clean(self) -> bool:
        return not any(self.toxic_sets.values()) and all(self.enabled.values())


class FakeRecorder:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def record(self, stream: str, obj: dict[str, Any]) -> None:
        self.records.append((stream, obj))

    def phases(self) -> list[str]:
        return [r["phase"] for s, r in self.records if s == "faults"]


@dataclass
class Step:
    action: str
    target: str | list[str] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    id: str = "s1"
    for_s: float | None = None


def patch_copier(monkeypatch: pytest.MonkeyPatch, copier: Any, tables: list[str]) -> None:
    """The migration's database work replaced: ``copier(src, dst, delay, tables, cancel=)``
    for the table copy, ``tables`` as the database's tables (in the module the migration
    calls)."""
    monkeypatch.setattr(postgres, "copy_schema", lambda src, dst, dbname: None)
    monkeypatch.setattr(postgres, "table_names", lambda hostport, dbname: list(tables))
    monkeypatch.setattr(
        postgres,
        "copy_tables",
        lambda src, dst, dbname, order, delay=0.0, cancel=None: copier(
            src, dst, delay, list(order), cancel=cancel
        ),
    )


def fake_backend(ctx: FaultContext) -> FakeBackend:
    assert isinstance(ctx.backend, FakeBackend)
    return ctx.backend


def fake_proxy(ctx: FaultContext) -> FakeProxy:
    assert isinstance(ctx.proxy, FakeProxy)
    return ctx.proxy


def fake_recorder(ctx: FaultContext) -> FakeRecorder:
    assert isinstance(ctx.recorder, FakeRecorder)
    return ctx.recorder


@pytest.fixture
def ctx() -> FaultContext:
    return FaultContext(FakeBackend(), FakeProxy(), FakeRecorder(), DEFINITION)


def test_latency_on_a_service_covers_all_its_links_in_both_directions(ctx: FaultContext) -> None:
    fault = build(Step("latency", "oracle", {"latency": "200ms", "jitter": "20ms"}), ctx)
    fault.inject()
    proxy = fake_proxy(ctx)
    for link in ("oracle-db", "oracle-feeds", "risk-oracle"):
        toxics = proxy.toxics(link)
        assert sorted(t["stream"] for t in toxics) == ["downstream", "upstream"]
        assert all(t["attributes"] == {"latency": 200, "jitter": 20} for t in toxics)
    assert proxy.toxics("sequencer-db") == []
    fault.heal()
    fault.heal()  # idempotent
    assert proxy.clean()
    assert fake_recorder(ctx).phases() == ["begin", "evidence", "end"]


def test_one_direction_and_heal_before_inject(ctx: FaultContext) -> None:
    fault = build(Step("reset_peer", "clients-sequencer", {"direction": "downstream"}), ctx)
    fault.heal()  # before inject: nothing to undo, nothing recorded
    assert fake_recorder(ctx).phases() == []
    fault.inject()
    proxy = fake_proxy(ctx)
    assert [t["stream"] for t in proxy.toxics("clients-sequencer")] == ["downstream"]
    fault.heal()
    assert proxy.clean()


def test_heal_leaves_other_faults_toxics_alone(ctx: FaultContext) -> None:
    a = build(Step("latency", "oracle-db", {"latency": 1}, id="a"), ctx)
    b = build(Step("latency", "oracle-db", {"latency": 2}, id="b"), ctx)
    a.inject()
    b.inject()
    a.heal()
    proxy = fake_proxy(ctx)
    assert {t["attributes"]["latency"] for t in proxy.toxics("oracle-db")} == {2000}
    b.heal()
    assert proxy.clean()


def test_partition_cuts_exactly_the_links_between_the_sets(ctx: FaultContext) -> None:
    fault = build(Step("partition", None, {"between": ["oracle"], "and": ["feeds", "risk"]}), ctx)
    fault.inject()
    proxy = fake_proxy(ctx)
    assert {k for k, v in proxy.enabled.items() if not v} == {"oracle-feeds", "risk-oracle"}
    fault.heal()
    assert proxy.clean()


def test_flap_alternates_and_heal_stops_it_clean(ctx: FaultContext) -> None:
    proxy = fake_proxy(ctx)
    fault = build(
        Step(
            "flap",
            "clients-sequencer",
            {
                "period": 0.1,
                "bad_fraction": 0.5,
                "fault": {"action": "reset_peer", "direction": "downstream"},
            },
        ),
        ctx,
    )
    fault.inject()
    states: list[bool] = []  # bad (toxic present) or good, each change once
    deadline = time.monotonic() + 5
    while len(states) < 3 and time.monotonic() < deadline:
        bad = bool(proxy.toxics("clients-sequencer"))
        if not states or states[-1] != bad:
            states.append(bad)
        time.sleep(0.005)
    fault.heal()
    assert states == [True, False, True]
    assert proxy.clean()
    end = next(r for s, r in fake_recorder(ctx).records if r.get("phase") == "end")
    assert end["evidence"]["bad_periods"] >= 2


def test_kill_then_heal_starts_it_again(ctx: FaultContext) -> None:
    backend = fake_backend(ctx)
    fault = build(Step("kill", "oracle"), ctx)
    fault.inject()
    assert not backend.is_running("oracle")
    fault.heal()
    assert backend.is_running("oracle")
    fault.heal()
    assert backend.calls.count(("start", "oracle")) == 1


def test_restart_changes_the_pid(ctx: FaultContext) -> None:
    backend = fake_backend(ctx)
    before = backend.pid("sequencer")
    build(Step("restart", ["sequencer"], {"downtime": 0.01}), ctx).inject()
    assert backend.pid("sequencer") not in (None, before)
    evidence = next(r for s, r in fake_recorder(ctx).records if r.get("phase") == "evidence")
    assert evidence["evidence"]["pid_changed"] == {"sequencer": True}


def test_pause_and_throttle_are_undone_by_heal(ctx: FaultContext) -> None:
    backend = fake_backend(ctx)
    pause = build(Step("pause", "risk"), ctx)
    throttle = build(Step("throttle", "oracle", {"cpu": 0.2}, id="t"), ctx)
    pause.inject()
    throttle.inject()
    assert backend.paused == {"risk"} and backend.throttles["oracle"] == 0.2
    pause.heal()
    throttle.heal()
    assert backend.paused == set() and backend.throttles["oracle"] is None


def test_full_restart_starts_in_order_with_the_oracle_late(ctx: FaultContext) -> None:
    backend = fake_backend(ctx)
    fault = build(
        Step(
            "full_restart",
            None,
            {"order": ["db", "feeds", "sequencer", "risk", "oracle"], "delays": {"oracle": 0.2}},
        ),
        ctx,
    )
    began = time.monotonic()
    fault.inject()
    starts = [s for verb, s in backend.calls if verb == "start"]
    assert starts == ["db", "feeds", "sequencer", "risk", "oracle"]
    assert time.monotonic() - began >= 0.2
    stops = [s for verb, s in backend.calls if verb == "stop"]
    assert stops == ["risk", "sequencer", "oracle", "feeds", "db"]


def test_stop_then_start_with_delays(ctx: FaultContext) -> None:
    backend = fake_backend(ctx)
    stop = build(Step("stop", ["sequencer", "risk", "oracle"], id="halt"), ctx)
    stop.inject()
    assert not any(backend.is_running(s) for s in ("sequencer", "risk", "oracle"))
    start = build(
        Step("start", ["sequencer", "risk", "oracle"], {"delays": {"oracle": 0.1}}, id="go"), ctx
    )
    start.inject()
    assert all(backend.is_running(s) for s in ("sequencer", "risk", "oracle"))
    stop.heal()  # nothing left to start
    assert [s for verb, s in backend.calls if verb == "start"] == ["sequencer", "risk", "oracle"]


def test_node_loss_kills_exactly_the_site_and_heal_recovers(ctx: FaultContext) -> None:
    backend = fake_backend(ctx)
    proxy = fake_proxy(ctx)
    others = {s: backend.pid(s) for s in ("db", "feeds", "risk")}
    fault = build(
        Step("node_loss", "a", {"ramp": 0.05, "steps": 3, "max_latency": 0.3, "min_cpu": 0.1}), ctx
    )
    fault.inject()
    assert not backend.is_running("oracle") and not backend.is_running("sequencer")
    assert {s: backend.pid(s) for s in others} == others
    assert proxy.enabled["clients-sequencer"] is False and proxy.enabled["oracle-db"] is False
    assert {t["attributes"]["latency"] for t in proxy.toxics("oracle-db")} == {300}
    fault.heal()
    assert backend.is_running("oracle") and backend.is_running("sequencer")
    assert proxy.clean()
    lost = [r["evidence"] for s, r in fake_recorder(ctx).records if r["evidence"].get("lost")]
    assert lost[0]["others_unchanged"] is True and lost[0]["site_running"] == []


def test_heal_cancels_a_running_procedure(ctx: FaultContext) -> None:
    backend = fake_backend(ctx)
    fault = build(Step("restart", "oracle", {"downtime": 30}), ctx)
    worker = threading.Thread(target=fault.inject)
    worker.start()
    deadline = time.monotonic() + 5
    while backend.is_running("oracle") and time.monotonic() < deadline:
        time.sleep(0.005)
    began = time.monotonic()
    fault.heal()
    worker.join(5)
    assert time.monotonic() - began < 5
    assert backend.is_running("oracle")


def test_db_migrate_switches_before_copy_in_the_online_order(
    ctx: FaultContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = fake_backend(ctx)
    copied: list[tuple[Any, ...]] = []

    def copier(*args: Any, cancel: Any = None) -> None:
        backend.calls.append(("copy", str(args[1])))
        copied.append(args)

    order = ["events", "orders", "market_state"]
    patch_copier(monkeypatch, copier, order)
    fault = build(Step("db_upgrade", None, {"strategy": "migrate", "copy_delay": 0.5}), ctx)
    fault.inject()
    assert backend.added[0].name == "db2"
    verbs = [v for v, _ in backend.calls]
    assert verbs.index("switch") < verbs.index("copy")
    assert {lk for v, lk in backend.calls if v == "switch"} == {
        "sequencer-db",
        "oracle-db",
        "risk-db",
    }
    assert copied[0][1:] == ("127.0.0.1:7777", 0.5, order)

    safe = build(
        Step(
            "db_upgrade",
            None,
            {"strategy": "migrate", "switch": "after_copy", "new_name": "db3"},
            id="s2",
        ),
        ctx,
    )
    backend.calls.clear()
    safe.inject()
    verbs = [v for v, _ in backend.calls]
    assert verbs.index("copy") < verbs.index("switch")


def test_db_upgrade_with_the_stack_halted_provisions_first_and_restarts_everything(
    ctx: FaultContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = fake_backend(ctx)

    def copier(*args: Any, cancel: Any = None) -> None:
        backend.calls.append(("copy", ""))

    patch_copier(monkeypatch, copier, ["events", "market_state"])
    fault = build(
        Step(
            "db_upgrade", None, {"strategy": "migrate", "switch": "after_copy", "stack": "halted"}
        ),
        ctx,
    )
    fault.inject()
    verbs = [v for v, _ in backend.calls]
    assert backend.added[0].after_healthy == ()  # an empty instance: no genesis
    assert verbs.index("copy") < verbs.index("switch") < verbs.index("start")
    stopped = {s for v, s in backend.calls if v == "stop"}
    assert stopped == {"feeds", "oracle", "sequencer", "risk"}
    assert all(backend.is_running(s) for s in stopped)
    starts = [s for v, s in backend.calls if v == "start"]
    assert starts.index("risk") > max(starts.index("oracle"), starts.index("sequencer"))


def test_heal_stops_a_table_copy_under_way(
    ctx: FaultContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """heal (a timed step ending, Ctrl-C) must not wait for tables x copy_delay."""
    copying = threading.Event()

    def copier(*args: Any, cancel: threading.Event) -> None:
        copying.set()
        if cancel.wait(30):  # what copy_tables does between two tables
            raise RuntimeError("copy cancelled")

    patch_copier(monkeypatch, copier, ["events"])
    fault = build(Step("db_upgrade", None, {"strategy": "migrate", "copy_delay": 5}), ctx)
    worker = threading.Thread(target=fault.inject)
    worker.start()
    assert copying.wait(5)
    began = time.monotonic()
    fault.heal()
    worker.join(10)
    assert not worker.is_alive()
    assert time.monotonic() - began < 3


def test_db_migrate_moves_early_services_before_the_copy_and_the_rest_after(
    ctx: FaultContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """early: [oracle]: the oracle's link is switched and the oracle restarted onto the new
    instance before the copy (the Paradex race); every other link follows the copy."""
    backend = fake_backend(ctx)
    copy_done = threading.Event()

    def copier(*args: Any, cancel: Any = None) -> None:
        backend.calls.append(("copy", ",".join(args[3])))
        copy_done.set()

    order = ["events", "orders", "market_state"]
    patch_copier(monkeypatch, copier, order)
    params = {"strategy": "migrate", "switch": "after_copy", "early": ["oracle"],
              "restart": ["oracle"]}  # fmt: skip
    build(Step("db_upgrade", None, params), ctx).inject()
    switches = [(i, x) for i, (v, x) in enumerate(backend.calls) if v == "switch"]
    copy_at = next(i for i, (v, _) in enumerate(backend.calls) if v == "copy")
    assert switches[0][1] == "oracle-db" and switches[0][0] < copy_at
    assert {x for i, x in switches if i > copy_at} == {"sequencer-db", "risk-db"}
    assert ("start", "oracle") in backend.calls  # restarted onto the new instance
    assert copy_done.is_set()
