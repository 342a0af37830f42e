"""The pytest plugin: which YAML files become items, how runs map to pass/fail, options and
fixtures. The runner is replaced by a fake (a conftest implementing the plugin's hook)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

EXPERIMENT = """\
name: demo
seed: 7
duration: 5s
variants:
  vulnerable: {mitigations: none, expect: {violated: [no_corrupt_chain_writes]}}
  mitigated: {mitigations: all}
method:
  - {at: 1s, action: restart, target: oracle}
invariants: [no_corrupt_chain_writes, fills_within_band]
"""

# The fake runner: the variant's outcome is chosen by the experiment's name.
FAKE_RUNNER = """
import json
from chaos.errors import StackError

def _verdict(name, valid, examples=()):
    return {"invariant": name, "valid": valid, "count": len(examples), "checked": 10,
            "counterexamples": list(examples), "message": ""}

def pytest_tradechaos_run_variant(config, path, variant, options):
    if "broken" in path.name:
        raise StackError("service oracle did not become healthy within 15s")
    expected = ["no_corrupt_chain_writes"] if variant == "vulnerable" else []
    chain_broken = variant == "vulnerable" or "bad" in path.name
    verdicts = [
        _verdict("no_corrupt_chain_writes", not chain_broken,
                 [{"problem": "block 7 holds seq 40-52 but the event log has 40-51",
                   "height": 7}] if chain_broken else []),
        _verdict("fills_within_band", True),
    ]
    met = all((v["valid"] is False) == (v["invariant"] in expected) for v in verdicts)
    journal = {"status": "passed" if met else "failed", "experiment": path.stem,
               "variant": variant, "seed": options.seed, "backend": options.backend,
               "run_dir": str(options.out_dir / f"{path.stem}-{variant}"),
               "no_faults": options.no_faults, "expected_violations": expected,
               "expectation_met": met, "verdicts": verdicts,
               "steady_state": {"before": {"ok": True, "probes": []}}}
    with open(config.rootpath / "calls.jsonl", "a") as log:
        log.write(json.dumps({"variant": variant, "seed": options.seed,
                              "backend": options.backend, "out": str(options.out_dir),
                              "no_faults": options.no_faults}) + "\\n")
    return journal
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(FAKE_RUNNER)
    (pytester.path / "experiments" / "incidents").mkdir(parents=True)
    (pytester.path / "experiments" / "incidents" / "good.yaml").write_text(EXPERIMENT)
    return pytester


def test_collects_one_item_per_variant_only_for_experiment_files(project: pytest.Pytester) -> None:
    (project.path / "experiments" / "notes.yaml").write_text("owner: ops\nlinks: [a, b]\n")
    (project.path / "config").mkdir()
    (project.path / "config" / "demo.yaml").write_text(EXPERIMENT)  # not under experiments/
    result = project.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "experiments/incidents/good.yaml::vulnerable",
            "experiments/incidents/good.yaml::mitigated",
        ]
    )
    result.stdout.no_fnmatch_line("*notes.yaml*")
    result.stdout.no_fnmatch_line("*config/demo.yaml*")
    everywhere = project.runpytest("--collect-only", "-q", "--tradechaos")
    everywhere.stdout.fnmatch_lines(["config/demo.yaml::vulnerable"])
    everywhere.stdout.no_fnmatch_line("*notes.yaml*")


def test_met_expectation_passes_and_mismatch_fails_with_first_counterexample(
    project: pytest.Pytester,
) -> None:
    (project.path / "experiments" / "bad.yaml").write_text(EXPERIMENT)
    result = project.runpytest("experiments", "-rA")
    # good: both variants meet their expectation; bad: mitigated violates unexpectedly.
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*bad / mitigated: expectation not met*",
            "*expected violated: none*",
            "*found violated:    no_corrupt_chain_writes*",
            "*first counterexample: #1: block 7 holds seq 40-52 but the event log has 40-51*",
            "*run folder:*bad-mitigated*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*tradechaos summary*",
            "*no_corrupt_chain_writes  violated  violated*PASS*",
            "*tradechaos: 3/4 variant(s) met their expectation*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_options_reach_the_runner(project: pytest.Pytester) -> None:
    result = project.runpytest(
        "experiments",
        "--tradechaos-seed",
        "42",
        "--tradechaos-backend",
        "docker",
        "--tradechaos-out",
        "out",
        "--tradechaos-no-faults",
    )
    result.assert_outcomes(passed=2)
    calls = (project.path / "calls.jsonl").read_text().splitlines()
    assert len(calls) == 2
    for call in calls:
        assert '"seed": 42' in call and '"backend": "docker"' in call
        assert f'"out": "{project.path / "out"}"' in call and '"no_faults": true' in call


def test_infrastructure_error_is_one_sentence_not_a_traceback(project: pytest.Pytester) -> None:
    (project.path / "experiments" / "broken.yaml").write_text(EXPERIMENT)
    result = project.runpytest("experiments/broken.yaml")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*StackError: service oracle did not become healthy within 15s*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_invalid_yaml_under_experiments_is_still_collected(project: pytest.Pytester) -> None:
    (project.path / "experiments" / "typo.yaml").write_text("method: [\nvariants: {a: 1}\n")
    result = project.runpytest("--collect-only", "-q", "experiments/typo.yaml")
    result.stdout.fnmatch_lines(["experiments/typo.yaml::experiment"])


def test_tradechaos_run_fixture_returns_the_journal(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_user=textwrap.dedent(
            """
            def test_run(tradechaos_run):
                journal = tradechaos_run("experiments/incidents/good.yaml", seed=5)
                assert journal["variant"] == "vulnerable"
                assert journal["seed"] == 5
                assert journal["expectation_met"] is True
            """
        )
    )
    result = project.runpytest("test_user.py")
    result.assert_outcomes(passed=1)


def test_plugin_import_is_light() -> None:
    code = (
        "import sys, chaos.pytest_plugin; "
        "heavy = [m for m in ('matplotlib', 'yaml', 'chaos.runner', 'chaos.report.html', "
        "'chaos.backends.process', 'locust', 'psycopg') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


FAKE_BACKEND = """
import pytest
import chaos.backends.factory

EVENTS = []

class FakeBackend:
    toxiproxy_url = "http://127.0.0.1:8474"
    def __init__(self, params):
        self.params = params
    def start_stack(self):
        EVENTS.append("start")
    def stop_stack(self):
        EVENTS.append("stop")

@pytest.fixture(autouse=True)
def fake_backend(monkeypatch):
    def make_backend(name, definition, run, params, toxiproxy_url=None):
        EVENTS.append(f"make {name} {definition.name} {run.path.parent.name}")
        return FakeBackend(params)
    monkeypatch.setattr(chaos.backends.factory, "make_backend", make_backend)
"""


def test_tradechaos_stack_is_stopped_even_when_the_test_fails(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FAKE_BACKEND)
    pytester.makepyfile(
        test_user=textwrap.dedent(
            """
            import json
            from conftest import EVENTS

            def test_uses_stack(tradechaos_stack):
                assert EVENTS[-1] == "start"
                assert tradechaos_stack.params["mitigations"] == "all"
                assert tradechaos_stack.params["seed"] == "9"
                raise AssertionError("the user's test fails")

            def test_after():
                assert EVENTS[0] == "make docker reference out"
                assert EVENTS[1:] == ["start", "stop"]
            """
        )
    )
    result = pytester.runpytest(
        "--tradechaos-backend", "docker", "--tradechaos-out", "out", "--tradechaos-seed", "9"
    )
    result.assert_outcomes(passed=1, failed=1)
    (state,) = (pytester.path / "out").glob("*/state.json")
    assert '"status": "finished"' in state.read_text()
