"""The runner's lifecycle with fake backend, load and faults: order of start and stop,
healing on every way out, the journal in every case, exit codes, SIGTERM/SIGINT."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from chaos.backends.base import Endpoint, ServiceStatus
from chaos.errors import StackError
from chaos.experiment.loader import load
from chaos.experiment.model import Experiment, Step, Variant
from chaos.faults.base import FaultContext
from chaos.load.driver import LoadSample
from chaos.proxy.client import ToxiproxyClient
from chaos.runner.runner import Deps, RunOptions, RunResult, execute_variant, judge
from chaos.runner.signals import SignalGuard
from chaos.stackfile.bindings import AccountsBinding, Bindings
from chaos.stackfile.definition import LinkSpec, ServiceSpec, StackDefinition

EXPERIMENT = """\
name: fake-run
seed: 5
duration: {duration}
steady_state:
  probes:
    - {{probe: health}}
    - {{probe: error_rate, max: 0.5}}
safety:
  abort_when:
    - {{probe: error_rate, above: 0.8, for: 0.3s}}
variants:
  calm: {{mitigations: all}}
  broken: {{mitigations: none, expect: {{violated: [no_duplicate_orders]}}}}
method:
{method}
invariants: [no_duplicate_orders, sequence_integrity]
"""
ONE_FAULT = (
    "  - {id: slow, at: 0.1s, action: latency, target: sequencer-db, latency: 1s, for: 0.2s}"
)


class Events:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.lock = threading.Lock()

    def add(self, text: str) -> None:
        with self.lock:
            self.items.append(text)

    def index(self, text: str) -> int:
        return self.items.index(text)


FAKE_STACK = StackDefinition(
    "fake",
    (ServiceSpec("db", ("true",)),),
    (LinkSpec("clients-sequencer", "c", "db"),),
    bindings=Bindings(accounts=AccountsBinding(traders=(1,), insurance_fund=0)),
)


class FakeBackend:
    name = "fake"

    def __init__(self, events: Events, fail_start: bool = False) -> None:
        self.events = events
        self.fail_start = fail_start
        self.definition = FAKE_STACK
        self.running = False

    def start_stack(self) -> None:
        self.events.add("start_stack")
        if self.fail_start:
            raise StackError("db did not become healthy within 1s")
        self.running = True

    def stop_stack(self) -> None:
        self.events.add("stop_stack")
        self.running = False

    def status(self) -> list[ServiceStatus]:
        return [ServiceStatus("db", self.running, self.running, 1, None, "a")]

    def link_endpoint(self, link: str) -> Endpoint:
        return Endpoint("127.0.0.1", 9)

    # the rest of the Backend protocol: the runner's lifecycle reaches none of it (the
    # faults under test are fakes too)
    def start(self, service: str, timeout_s: float = 30.0) -> None:
        raise AssertionError(f"start {service}: not faked")

    def stop(self, service: str, grace_s: float | None = None) -> None:
        raise AssertionError(f"stop {service}: not faked")

    def kill(self, service: str) -> None:
        raise AssertionError(f"kill {service}: not faked")

    def signal(self, service: str, signum: int) -> None:
        raise AssertionError(f"signal {service}: not faked")

    def pause(self, service: str) -> None:
        raise AssertionError(f"pause {service}: not faked")

    def resume(self, service: str) -> None:
        raise AssertionError(f"resume {service}: not faked")

    def throttle(self, service: str, cpu_fraction: float | None) -> None:
        raise AssertionError(f"throttle {service}: not faked")

    def restart(self, service: str, downtime_s: float = 0.0, timeout_s: float = 30.0) -> None:
        raise AssertionError(f"restart {service}: not faked")

    def wait_healthy(self, service: str, timeout_s: float = 30.0) -> None:
        raise AssertionError(f"wait_healthy {service}: not faked")

    def add_service(self, spec: ServiceSpec, timeout_s: float = 30.0) -> Endpoint:
        raise AssertionError(f"add_service {spec.name}: not faked")

    def is_running(self, service: str) -> bool:
        return self.running

    def pid(self, service: str) -> int | None:
        return None

    def endpoint(self, service: str) -> Endpoint:
        return Endpoint("127.0.0.1", 9)

    def set_link_upstream(self, link: str, upstream: Endpoint) -> None:
        raise AssertionError(f"set_link_upstream {link}: not faked")

    def logs(self, service: str, tail: int = 50) -> str:
        return ""

    @property
    def toxiproxy_url(self) -> str:
        return "http://127.0.0.1:9"


class FakeLoad:
    def __init__(self, events: Events, error_rate: float = 0.0) -> None:
        self.events = events
        self.error_rate = error_rate

    def start(self) -> None:
        self.events.add("load.start")

    def stop(self) -> None:
        self.events.add("load.stop")

    def sample(self) -> LoadSample:
        return LoadSample(rps=5.0, error_rate=self.error_rate, p99_ms=20.0)

    def summary(self) -> dict[str, Any]:
        return {"workers": 2, "users": 4, "ops": 7, "ops_per_worker": {"0": 3, "1": 4}}


class FakeFault:
    def __init__(self, step: Step, events: Events, behaviour: dict[str, Any]) -> None:
        self.step = step
        self.events = events
        self.behaviour = behaviour
        self.healed = threading.Event()

    def inject(self) -> None:
        self.events.add(f"inject {self.step.id}")
        action = self.behaviour.get(self.step.id)
        if action == "raise":
            raise RuntimeError("toxic refused")
        if action == "block":
            self.healed.wait(0.6)  # a procedure that takes 0.6 s
        if callable(action):
            action()

    def heal(self) -> None:
        self.events.add(f"heal {self.step.id}")
        self.healed.set()
        hook = self.behaviour.get(f"heal {self.step.id}")
        if callable(hook):
            hook()

    def describe(self) -> str:
        return self.step.id


def make_deps(
    events: Events,
    verdicts: dict[str, bool | str] | None = None,
    behaviour: dict[str, Any] | None = None,
    error_rate: float = 0.0,
    fail_start: bool = False,
    check_hook: Callable[[], None] | None = None,
) -> Deps:
    valid = verdicts or {"no_duplicate_orders": True, "sequence_integrity": True}

    def check(
        run_dir: Path, invariants: tuple[str, ...], params: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        events.add("check")
        if check_hook is not None:
            check_hook()
        return [_verdict(n, valid[n]) for n in invariants]

    def reports(run_dir: Path, journal: Mapping[str, Any]) -> dict[str, Path]:
        events.add("reports")
        return {}

    return Deps(
        definition=lambda experiment, variant: FAKE_STACK,
        backend=lambda *a: FakeBackend(events, fail_start),
        fund_accounts=lambda *a: 0,
        load=lambda *a: FakeLoad(events, error_rate),
        fault_context=lambda backend, recorder, definition, rng, load: FaultContext(
            backend, ToxiproxyClient(backend.toxiproxy_url), recorder, definition, rng=rng
        ),
        fault=lambda step, ctx: FakeFault(step, events, behaviour or {}),
        export_history=lambda definition, run_dir, backend: events.add("export"),
        check=check,
        reports=reports,
    )


def _verdict(name: str, valid: bool | str) -> dict[str, Any]:
    """A verdict; ``"no evidence"`` stands for an unknown with nothing to check."""
    if valid == "no evidence":
        return {"invariant": name, "valid": "unknown", "no_evidence": True, "count": 0,
                "checked": 0, "message": "no evidence: nothing to check"}  # fmt: skip
    return {"invariant": name, "valid": valid, "count": 0, "checked": 1}


def experiment(
    tmp_path: Path, method: str = ONE_FAULT, duration: str = "0.5s", extra: str = ""
) -> Experiment:
    path = tmp_path / "fake.yaml"
    path.write_text(EXPERIMENT.format(method=method, duration=duration) + extra)
    return load(path)


def run(
    tmp_path: Path, deps: Deps, variant: str = "calm", no_faults: bool = False, **kw: Any
) -> RunResult:
    exp = kw.pop("exp", None) or experiment(tmp_path, **kw)
    options = RunOptions(tmp_path / "runs", "process", None, no_faults, None, quiet=True)
    options.recover_within_s = 0.5
    with SignalGuard() as guard:
        result = execute_variant(exp, variant, options, deps, guard)
    assert result.run_dir is not None
    on_disk = json.loads((result.run_dir / "journal.json").read_text())
    assert on_disk["status"] == result.journal["status"]
    return result


def test_a_clean_run_passes_and_undoes_everything_in_reverse_order(tmp_path: Path) -> None:
    events = Events()
    result = run(tmp_path, make_deps(events))
    assert result.exit_code == 0, result.journal.get("error")
    journal = result.journal
    assert journal["status"] == "passed" and journal["expectation_met"] is True
    assert journal["seed"] == 5 and journal["steady_state"]["before"]["ok"] is True
    assert journal["steady_state"]["after"]["ok"] is True
    order = ["start_stack", "load.start", "inject slow", "heal slow", "load.stop", "export",
             "stop_stack", "check", "reports"]  # fmt: skip
    assert [events.index(e) for e in order] == sorted(events.index(e) for e in order)
    (step,) = journal["timeline"]
    assert step["id"] == "slow" and step["fault"] is True and step["skipped"] is False
    assert step["lateness_ms"] is not None and step["lateness_ms"] < 200
    assert step["ended"] - step["started"] == pytest.approx(0.2, abs=0.15)
    assert result.run_dir is not None
    run_json = json.loads((result.run_dir / "history" / "run.json").read_text())
    assert run_json["seed"] == 5 and run_json["mitigations"] and "epoch" in run_json


def test_expectation_not_met_fails_with_exit_1(tmp_path: Path) -> None:
    result = run(tmp_path, make_deps(Events()), variant="broken")
    assert (result.exit_code, result.journal["status"]) == (1, "failed")
    assert result.journal["expected_violations"] == ["no_duplicate_orders"]


def test_expected_violation_found_passes(tmp_path: Path) -> None:
    deps = make_deps(Events(), {"no_duplicate_orders": False, "sequence_integrity": True})
    result = run(tmp_path, deps, variant="broken")
    assert (result.exit_code, result.journal["status"]) == (0, "passed")


def test_no_faults_skips_fault_steps_and_ignores_expectations(tmp_path: Path) -> None:
    events = Events()
    result = run(tmp_path, make_deps(events), variant="broken", no_faults=True)
    assert (result.exit_code, result.journal["status"]) == (0, "passed")
    assert result.journal["expected_violations"] == []
    (step,) = result.journal["timeline"]
    assert step["skipped"] is True and step["started"] is None
    assert "inject slow" not in events.items


def test_stack_failure_is_error_exit_3_with_journal(tmp_path: Path) -> None:
    events = Events()
    result = run(tmp_path, make_deps(events, fail_start=True))
    assert (result.exit_code, result.journal["status"]) == (3, "error")
    assert "db did not become healthy" in result.journal["error"]
    assert "stop_stack" in events.items and "check" not in events.items


def test_failed_inject_is_error_and_still_heals(tmp_path: Path) -> None:
    events = Events()
    result = run(tmp_path, make_deps(events, behaviour={"slow": "raise"}))
    assert (result.exit_code, result.journal["status"]) == (3, "error")
    assert "toxic refused" in result.journal["error"]
    assert "toxic refused" in result.journal["timeline"][0]["error"]
    assert "heal slow" in events.items and "stop_stack" in events.items


def test_abort_condition_stops_the_run_and_heals(tmp_path: Path) -> None:
    events = Events()
    exp = experiment(tmp_path, duration="30s")
    deps = make_deps(events, error_rate=0.9)
    deps.load = lambda *a: AbortingLoad(events)
    started = time.monotonic()
    result = run(tmp_path, deps, exp=exp)
    assert time.monotonic() - started < 10
    assert (result.exit_code, result.journal["status"]) == (3, "error")
    assert "abort condition held: error_rate > 0.8" in result.journal["error"]
    assert "heal slow" in events.items and "stop_stack" in events.items


class AbortingLoad(FakeLoad):
    """Healthy for the steady-state check, then errors once the method runs."""

    def __init__(self, events: Events) -> None:
        super().__init__(events)
        self.calls = 0

    def sample(self) -> LoadSample:
        self.calls += 1
        return LoadSample(rps=5.0, error_rate=0.0 if self.calls <= 1 else 0.95, p99_ms=1.0)


class DegradingLoad(FakeLoad):
    """Healthy for the steady-state check before, then errors above the probe's max (0.5)
    but under the abort limit (0.8): the stack does not come back."""

    def __init__(self, events: Events) -> None:
        super().__init__(events)
        self.calls = 0

    def sample(self) -> LoadSample:
        self.calls += 1
        return LoadSample(rps=5.0, error_rate=0.0 if self.calls <= 1 else 0.6, p99_ms=1.0)


def test_steady_state_not_back_after_the_method_fails_the_run(tmp_path: Path) -> None:
    deps = make_deps(Events())
    deps.load = lambda *a: DegradingLoad(Events())
    result = run(tmp_path, deps)
    assert (result.exit_code, result.journal["status"]) == (1, "failed")
    after = result.journal["steady_state"]["after"]
    assert after["ok"] is False and "error rate 0.600" in json.dumps(after)
    assert "error" not in result.journal


def test_a_blocking_step_does_not_delay_later_steps(tmp_path: Path) -> None:
    method = "\n".join([
        "  - {id: upgrade, at: 0.05s, action: latency, target: sequencer-db, latency: 1s}",
        "  - {id: later, at: 0.3s, action: latency, target: oracle-db, latency: 1s, for: 0.1s}",
    ])  # fmt: skip
    result = run(tmp_path, make_deps(Events(), behaviour={"upgrade": "block"}), method=method)
    upgrade, later = result.journal["timeline"]
    assert later["lateness_ms"] < 100, later
    assert later["started"] < upgrade["ended"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_a_fault_heals_stops_and_records_interrupted(
    tmp_path: Path, signum: int
) -> None:
    events = Events()
    kill = lambda: os.kill(os.getpid(), signum)  # noqa: E731
    second = lambda: os.kill(os.getpid(), signal.SIGINT)  # noqa: E731
    behaviour = {"slow": kill, "heal slow": second}  # a second Ctrl-C while healing
    result = run(tmp_path, make_deps(events, behaviour=behaviour), duration="5s")
    assert (result.exit_code, result.journal["status"]) == (130, "interrupted")
    assert signal.Signals(signum).name in result.journal["error"]
    for undone in ("heal slow", "load.stop", "stop_stack"):
        assert undone in events.items
    assert "check" not in events.items


def test_signal_while_checking_is_interrupted(tmp_path: Path) -> None:
    hook = lambda: os.kill(os.getpid(), signal.SIGTERM)  # noqa: E731
    result = run(tmp_path, make_deps(Events(), check_hook=hook))
    assert (result.exit_code, result.journal["status"]) == (130, "interrupted")


@pytest.mark.parametrize(
    ("verdicts", "expected", "met"),
    [
        ({"a": True, "b": True}, [], True),
        ({"a": False, "b": True}, ["a"], True),
        ({"a": False, "b": True}, [], False),
        ({"a": True, "b": True}, ["a"], False),
        ({"a": "unknown", "b": True}, [], False),
        ({"a": "unknown", "b": True}, ["a"], False),
        ({"b": True}, [], False),
        ({"a": "no evidence", "b": True}, [], True),  # unknown, not a failure by itself
        ({"a": "no evidence", "b": True}, ["a"], False),  # an expected violation: not met
    ],
)
def test_judge(verdicts: dict[str, Any], expected: list[str], met: bool) -> None:
    found = [_verdict(k, v) for k, v in verdicts.items()]
    assert judge(found, ["a", "b"], expected) is met


def test_a_second_run_with_the_same_guard_can_be_interrupted(tmp_path: Path) -> None:
    """`tradechaos run a.yaml b.yaml`: the first run ends shielded (its cleanup); Ctrl-C in
    the second must still stop it."""
    events = Events()
    seen: list[bool] = []
    guard = SignalGuard()
    guard.shield()  # as the previous run left it
    deps = make_deps(events)

    def definition(experiment: Experiment, variant: Variant) -> StackDefinition:
        seen.append(guard._shielded)
        return FAKE_STACK

    deps.definition = definition
    options = RunOptions(tmp_path / "runs", "process", None, False, None, quiet=True)
    with guard:
        execute_variant(experiment(tmp_path), "calm", options, deps, guard)
    assert seen == [False]


def test_judge_with_required_evidence() -> None:
    found = [_verdict("a", "no evidence"), _verdict("b", True)]
    assert judge(found, ["a", "b"], [], required=["a"]) is False
    assert judge(found, ["a", "b"], [], required=["b"]) is True


@pytest.mark.parametrize(
    ("extra", "variant", "no_faults", "met"),
    [
        ("", "calm", False, True),
        ("require_evidence: [sequence_integrity]\n", "calm", False, False),
        ("require_evidence: [sequence_integrity]\n", "calm", True, False),  # controls too
    ],
)
def test_an_invariant_with_nothing_to_check_fails_only_when_evidence_is_required(
    tmp_path: Path, extra: str, variant: str, no_faults: bool, met: bool
) -> None:
    verdicts: dict[str, bool | str] = {
        "no_duplicate_orders": True,
        "sequence_integrity": "no evidence",
    }
    exp = experiment(tmp_path, extra=extra)
    result = run(tmp_path, make_deps(Events(), verdicts), variant, no_faults, exp=exp)
    journal = result.journal
    assert journal["expectation_met"] is met
    assert result.exit_code == (0 if met else 1)
    assert journal["require_evidence"] == (["sequence_integrity"] if extra else [])
    from chaos.report.outcomes import cases

    case = next(c for c in cases(journal) if c.name == "sequence_integrity")
    assert case.outcome == ("UNKNOWN" if met else "FAIL")  # never a pass


def test_a_variants_own_required_evidence_is_not_required_of_its_control(tmp_path: Path) -> None:
    path = tmp_path / "own.yaml"
    path.write_text(
        EXPERIMENT.format(method=ONE_FAULT, duration="0.5s").replace(
            "calm: {mitigations: all}",
            "calm: {mitigations: all, expect: {require_evidence: [sequence_integrity]}}",
        )
    )
    exp = load(path)
    verdicts: dict[str, bool | str] = {
        "no_duplicate_orders": True,
        "sequence_integrity": "no evidence",
    }
    faults = run(tmp_path, make_deps(Events(), verdicts), "calm", False, exp=exp)
    control = run(tmp_path, make_deps(Events(), verdicts), "calm", True, exp=exp)
    assert (faults.journal["expectation_met"], control.journal["expectation_met"]) == (False, True)


def test_the_method_t0_is_recorded_in_run_json_and_the_journal(tmp_path: Path) -> None:
    result = run(tmp_path, make_deps(Events()))
    journal = result.journal
    assert result.run_dir is not None
    run_json = json.loads((result.run_dir / "history" / "run.json").read_text())
    assert run_json["method_t0"] == journal["method_t0"]
    assert journal["steady_state"]["before"]["ok"] is True
    (step,) = journal["timeline"]  # at: 0.1s from the method's t=0
    assert step["scheduled"] == pytest.approx(journal["method_t0"] + 0.1, abs=0.01)
    assert run_json["epoch"] < journal["method_t0"]
