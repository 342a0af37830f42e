"""``run --jobs N`` (chaos.runner.jobs) with fake child runners: real processes that act out
a run (finish, fail, crash, wait for a signal) without a stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from chaos.runner.jobs import Job, child_argv, run_jobs
from chaos.runner.runner import RunOptions
from chaos.runner.signals import SignalGuard

# argv: behaviour, marker dir. Prints one journal on stdout as `tradechaos run --json` does.
CHILD = textwrap.dedent(
    """
    import json, os, signal, sys, time
    what, where = sys.argv[1], sys.argv[2]
    name = what.split(":")[0]
    def journal(status, met=True):
        print(json.dumps([{"experiment": "fake", "variant": what, "status": status,
                           "expectation_met": met, "verdicts": [], "run_dir": None}]))
        sys.stdout.flush()
    open(os.path.join(where, name + ".start"), "w").write(str(time.monotonic()))
    if name == "sleep":
        time.sleep(float(what.split(":")[1]))
        open(os.path.join(where, what.replace(":", "-") + ".end"), "w").write("")
        journal("passed")
    elif name == "unmet":
        journal("failed", met=False)
        sys.exit(1)
    elif name == "crash":
        sys.stderr.write("Traceback: boom\\n")
        sys.exit(7)
    elif name == "garbage":
        print("not json")
    elif name == "wait":
        def on_signal(signum, frame):
            open(os.path.join(where, what.replace(":", "-") + ".signal"), "w").write(str(signum))
            journal("interrupted", met=False)
            sys.exit(130)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        open(os.path.join(where, what.replace(":", "-") + ".ready"), "w").write("")
        while True:
            signal.pause()
    """
)


def fake_argv(where: Path) -> Callable[[Job, RunOptions], list[str]]:
    def argv_of(job: Job, options: RunOptions) -> list[str]:
        return [sys.executable, "-c", CHILD, job.variant, str(where)]

    return argv_of


def jobs_of(*behaviours: str) -> list[Job]:
    return [Job("fake.yaml", "fake", b, False) for b in behaviours]


def wait_for_file(path: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def test_child_argv_passes_every_option_through() -> None:
    options = RunOptions(Path("out"), "docker", 9, False, "http://127.0.0.1:8474", True)
    argv = child_argv(Job("x.yaml", "x", "v", True), options)
    assert argv[1:] == [
        "-m", "chaos", "run", "x.yaml", "--variant", "v", "--out", "out", "--backend", "docker",
        "--json", "--no-ticker", "--seed", "9", "--no-faults",
        "--toxiproxy-url", "http://127.0.0.1:8474", "--quiet",
    ]  # fmt: skip


def test_at_most_n_at_once_and_results_in_job_order(tmp_path: Path) -> None:
    import io

    log = io.StringIO()
    jobs = jobs_of("sleep:0.6", "sleep:0.05", "sleep:0.3", "sleep:0.2")
    with SignalGuard() as guard:
        results = run_jobs(jobs, RunOptions(), 2, guard, argv_of=fake_argv(tmp_path), stderr=log)
    assert [r.journal["variant"] for r in results] == [j.variant for j in jobs]
    assert [r.exit_code for r in results] == [0, 0, 0, 0]
    lines = log.getvalue().splitlines()

    def first(text: str) -> int:
        return next(i for i, line in enumerate(lines) if text in line)

    # the 0.05 s job finished first, so the third job started while the first still ran
    assert first("[3/4] started") < first("[1/4] passed")
    running = 0
    peak = 0
    for line in lines:
        running += ("] started " in line) - ("] passed: " in line)
        peak = max(peak, running)
    assert peak == 2


def test_failures_crashes_and_garbage_become_journals_not_tracebacks(tmp_path: Path) -> None:
    import io

    log = io.StringIO()
    with SignalGuard() as guard:
        results = run_jobs(
            jobs_of("unmet", "crash", "garbage"),
            RunOptions(),
            3,
            guard,
            argv_of=fake_argv(tmp_path),
            stderr=log,
        )
    unmet, crash, garbage = results
    assert unmet.exit_code == 1 and unmet.journal["status"] == "failed"
    assert crash.exit_code == 3 and crash.journal["status"] == "error"
    assert crash.journal["error"] == "the run of fake/crash exited with code 7: Traceback: boom"
    assert garbage.exit_code == 3
    assert garbage.journal["error"] == "the run of fake/garbage exited with code 0"
    assert "Traceback: boom" in log.getvalue()  # the child's stderr is passed on


def test_a_signal_stops_the_running_children_and_starts_no_more(tmp_path: Path) -> None:
    import io

    jobs = jobs_of("wait:a", "wait:b", "sleep:0")

    def interrupt() -> None:
        wait_for_file(tmp_path / "wait-a.ready")
        wait_for_file(tmp_path / "wait-b.ready")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=interrupt, daemon=True).start()
    with SignalGuard() as guard:
        results = run_jobs(
            jobs, RunOptions(), 2, guard, argv_of=fake_argv(tmp_path), stderr=io.StringIO()
        )
    assert guard.interrupted
    assert [r.exit_code for r in results] == [130, 130]
    assert [r.journal["status"] for r in results] == ["interrupted", "interrupted"]
    assert (tmp_path / "wait-a.signal").read_text() == str(int(signal.SIGTERM))
    assert not (tmp_path / "sleep.start").exists()  # the third job never started


PARENT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from test_runner_jobs import fake_argv, jobs_of
    from chaos.runner.jobs import run_jobs
    from chaos.runner.runner import RunOptions
    from chaos.runner.signals import SignalGuard
    with SignalGuard() as guard:
        run_jobs(jobs_of("wait:a"), RunOptions(), 1, guard, argv_of=fake_argv(Path(sys.argv[1])))
    """
)


def test_sigkill_of_the_parent_sends_sigterm_to_each_child(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path), str(Path(__file__).parent)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_file(tmp_path / "wait-a.ready")
        parent.kill()
        parent.wait(timeout=10)
        wait_for_file(tmp_path / "wait-a.signal")
        assert (tmp_path / "wait-a.signal").read_text() == str(int(signal.SIGTERM))
    finally:
        if parent.poll() is None:
            parent.kill()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--controls", "--no-faults"], "--controls already adds a control run"),
        (["--jobs", "0"], "--jobs must be 1 or more, not 0"),
    ],
)
def test_bad_jobs_options_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from chaos.cli import main

    data = Path(__file__).parents[1] / "data" / "tiny-latency.yaml"
    assert main(["run", str(data), "--dry-run", *argv]) == 2
    assert message in capsys.readouterr().err


def test_dry_run_with_controls_plans_each_variant_twice(capsys: pytest.CaptureFixture[str]) -> None:
    from chaos.cli import main

    data = Path(__file__).parents[1] / "data" / "tiny-latency.yaml"
    assert main(["run", str(data), "--dry-run", "--controls", "--json"]) == 0
    plans = json.loads(capsys.readouterr().out)
    assert [(p["variant"], p["no_faults"]) for p in plans] == [
        ("calm", False),
        ("calm", True),
        ("expects-duplicates", False),
        ("expects-duplicates", True),
    ]
    assert plans[3]["expected_violations"] == []


def test_a_child_that_cannot_start_is_an_error_journal(tmp_path: Path) -> None:
    import io

    def missing(job: Job, options: RunOptions) -> list[str]:
        return [str(tmp_path / "no-such-python"), job.variant]

    with SignalGuard() as guard:
        (result,) = run_jobs(
            jobs_of("x"), RunOptions(), 2, guard, argv_of=missing, stderr=io.StringIO()
        )
    assert result.exit_code == 3
    assert result.journal["error"].startswith("the run of fake/x could not start (")
