"""pytest plugin (entry point ``tradechaos``): experiment files as test items, and fixtures.

Collection: a ``*.yaml``/``*.yml`` file becomes an ``ExperimentFile`` only when it lies under
a folder named ``experiments`` (or ``--tradechaos`` is given) and its top level has both
``method`` and ``variants``; other YAML files are left to other plugins. Each variant is one
item; running it runs that variant (hook ``pytest_tradechaos_run_variant``, by default
``chaos.runner.runner.run_variant``) and fails when the run did not meet its expectation,
showing the mismatch and the first counterexample. The end of the session prints
``chaos.report.terminal.render_summary`` of every run.

Fixtures: ``tradechaos_stack`` (a running stack — the ``--tradechaos-stack`` stack file,
else the reference stack — stopped at teardown),
``toxiproxy_client`` (a Toxiproxy client for it), ``tradechaos_run`` (run an experiment
file, get the journal).

Kept import-light: nothing beyond pytest and the standard library is imported until an
experiment is collected or a fixture is used.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from chaos.backends.base import Backend

EXPERIMENTS_DIR = "experiments"
JOURNALS = pytest.StashKey[list[dict[str, Any]]]()
_TOP_KEY = re.compile(r"^(method|variants)\s*:", re.MULTILINE)


@dataclass(frozen=True)
class RunOptions:
    """How to run a variant, from the command line (``--tradechaos-*``)."""

    backend: str = "process"
    seed: int | None = None
    out_dir: Path = Path("runs")
    no_faults: bool = False
    stack: Path | None = None  # --tradechaos-stack: instead of each experiment's own


class _HookSpecs:
    @pytest.hookspec(firstresult=True)
    def pytest_tradechaos_run_variant(
        self, config: pytest.Config, path: Path, variant: str, options: RunOptions
    ) -> dict[str, Any] | None:
        """Run ``variant`` of the experiment file ``path`` and return its journal (a dict in
        the journal.json format). ``variant`` is None only when the file names no variants
        (the runner then reports why the file is invalid). The first non-None result wins;
        the plugin's own implementation (tried last) calls
        ``chaos.runner.runner.run_variant``. Raise a ``chaos.errors.ChaosError`` for a
        failure a user can understand."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(_HookSpecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tradechaos", "tradechaos chaos experiments")
    group.addoption(
        "--tradechaos",
        action="store_true",
        help="collect experiment YAML files anywhere, not only under a folder named experiments",
    )
    group.addoption(
        "--tradechaos-backend",
        default="process",
        choices=("process", "docker"),
        help="how to run the stack for experiment items and fixtures (default: process)",
    )
    group.addoption(
        "--tradechaos-seed", type=int, default=None, help="override every experiment's seed"
    )
    group.addoption(
        "--tradechaos-out",
        default="runs",
        help="folder for run folders (default: runs, relative to the invocation folder)",
    )
    group.addoption(
        "--tradechaos-stack",
        default=None,
        help="the stack file for experiment items and fixtures (default: each experiment's "
        "own stack.file, else the reference stack)",
    )
    group.addoption(
        "--tradechaos-no-faults",
        action="store_true",
        help="control run: run the methods without faults; every invariant must then hold",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[JOURNALS] = []
    config.addinivalue_line(
        "markers", "tradechaos: a variant of an experiment file, collected by tradechaos"
    )


def run_options(config: pytest.Config) -> RunOptions:
    out = Path(config.getoption("tradechaos_out"))
    if not out.is_absolute():
        out = config.invocation_params.dir / out
    stack = config.getoption("tradechaos_stack")
    return RunOptions(
        backend=config.getoption("tradechaos_backend"),
        seed=config.getoption("tradechaos_seed"),
        out_dir=out,
        no_faults=bool(config.getoption("tradechaos_no_faults")),
        stack=(config.invocation_params.dir / stack).resolve() if stack else None,
    )


# ---------------------------------------------------------------- collection


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    if not (parent.config.getoption("tradechaos") or _under_experiments(file_path, parent)):
        return None
    document = read_experiment_document(file_path)
    if document is None:
        return None
    collector: ExperimentFile = ExperimentFile.from_parent(parent, path=file_path)
    collector.document = document
    return collector


def _under_experiments(file_path: Path, parent: pytest.Collector) -> bool:
    root = parent.config.rootpath
    try:
        parts = file_path.relative_to(root).parts[:-1]
    except ValueError:
        parts = file_path.parts[:-1]
    return EXPERIMENTS_DIR in parts or root.name == EXPERIMENTS_DIR


def read_experiment_document(path: Path) -> dict[str, Any] | None:
    """The file's top-level mapping when it looks like an experiment (``method`` and
    ``variants`` keys), ``{}`` when it is not valid YAML but has both keys at column 0 (so
    the runner reports the syntax error), and None when it is not an experiment."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return (
            {} if {m.group(1) for m in _TOP_KEY.finditer(text)} == {"method", "variants"} else None
        )
    if isinstance(document, dict) and "method" in document and "variants" in document:
        return document
    return None


class ExperimentFile(pytest.File):
    """One experiment file; its items are its variants in file order."""

    document: dict[str, Any] | None = None

    def collect(self) -> Iterator[ExperimentItem]:
        document = self.document if self.document is not None else {}
        variants = document.get("variants")
        if not isinstance(variants, dict) or not variants:
            # Not enough to name items: one item lets the runner report the real problem.
            yield ExperimentItem.from_parent(self, name="experiment", variant=None)
            return
        for name in variants:
            yield ExperimentItem.from_parent(self, name=str(name), variant=str(name))


class ExpectationNotMetFailure(Exception):
    """Raised by an item whose run did not meet the variant's expectation."""

    def __init__(self, journal: dict[str, Any]) -> None:
        super().__init__("expectation not met")
        self.journal = journal


class ExperimentItem(pytest.Item):
    """One variant of one experiment file."""

    def __init__(self, *, variant: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.variant = variant
        self.add_marker("tradechaos")

    def runtest(self) -> None:
        journal = run_experiment(self.config, self.path, self.variant)
        run_dir = journal.get("run_dir")
        if run_dir:
            self.user_properties.append(("run_dir", str(run_dir)))
        from chaos.report.outcomes import expectation_met

        if not expectation_met(journal):
            raise ExpectationNotMetFailure(journal)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | Any:
        from chaos.errors import ChaosError

        if isinstance(excinfo.value, ExpectationNotMetFailure):
            return describe_mismatch(excinfo.value.journal)
        if isinstance(excinfo.value, ChaosError):
            return f"{type(excinfo.value).__name__}: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"experiment {self.path.name} [{self.name}]"


def run_experiment(
    config: pytest.Config,
    path: Path,
    variant: str | None,
    options: RunOptions | None = None,
) -> dict[str, Any]:
    """Run one variant through the hook, remember its journal for the session summary."""
    from chaos.errors import InfrastructureError

    if variant is None:
        variants = (read_experiment_document(path) or {}).get("variants")
        if isinstance(variants, dict) and variants:
            variant = str(next(iter(variants)))
    journal = config.hook.pytest_tradechaos_run_variant(
        config=config, path=path, variant=variant, options=options or run_options(config)
    )
    if not isinstance(journal, dict):
        raise InfrastructureError(f"{path}: the runner returned no journal for {variant}")
    config.stash[JOURNALS].append(journal)
    return journal


@pytest.hookimpl(trylast=True)
def pytest_tradechaos_run_variant(
    config: pytest.Config, path: Path, variant: str | None, options: RunOptions
) -> dict[str, Any]:
    from chaos.experiment.loader import load
    from chaos.runner import runner

    experiment = load(path, options.stack)
    journal: dict[str, Any] = runner.run_variant(
        experiment,
        variant if variant is not None else experiment.variant_names[0],
        backend=options.backend,
        seed=options.seed,
        out_dir=options.out_dir,
        no_faults=options.no_faults,
    )
    return journal


def describe_mismatch(journal: dict[str, Any]) -> str:
    """The failure text of an item: expected vs found, the first failing case with its first
    counterexample, and where the run folder and report are."""
    from chaos.report.outcomes import cases, run_error

    expected = sorted(str(x) for x in journal.get("expected_violations") or [])
    found = sorted(
        str(v.get("invariant"))
        for v in journal.get("verdicts") or []
        if isinstance(v, dict) and v.get("valid") is False
    )
    unknown = sorted(
        str(v.get("invariant"))
        for v in journal.get("verdicts") or []
        if isinstance(v, dict) and v.get("valid") not in (True, False)
    )
    lines = [
        f"{journal.get('experiment')} / {journal.get('variant')}: expectation not met",
        f"  expected violated: {', '.join(expected) or 'none'}",
        f"  found violated:    {', '.join(found) or 'none'}",
    ]
    if unknown:
        lines.append(f"  unknown:           {', '.join(unknown)}")
    error = run_error(journal)
    if error is not None:
        lines.append(f"  run {error}")
    for case in cases(journal):
        if not case.passed and (error is None or case.examples):
            lines.append(f"  first failure: {case.name}: {case.summary}")
            if case.examples:
                lines.append(f"  first counterexample: {case.examples[0]}")
            break
    if journal.get("run_dir"):
        lines.append(f"  run folder: {journal['run_dir']} (report.html, junit.xml, journal.json)")
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    journals = config.stash.get(JOURNALS, [])
    if not journals:
        return
    from chaos.report.terminal import render_summary

    terminalreporter.write_sep("=", "tradechaos summary")
    terminalreporter.write(render_summary(journals))


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def tradechaos_run(request: pytest.FixtureRequest) -> Callable[..., dict[str, Any]]:
    """``tradechaos_run(path, variant=None, *, seed=None, no_faults=False)`` runs one
    variant (default: the first) of an experiment file and returns its journal. The backend
    and output folder come from ``--tradechaos-backend`` / ``--tradechaos-out``."""
    config = request.config

    def run(
        path: str | Path,
        variant: str | None = None,
        *,
        seed: int | None = None,
        no_faults: bool | None = None,
    ) -> dict[str, Any]:
        base = run_options(config)
        options = RunOptions(
            backend=base.backend,
            seed=base.seed if seed is None else seed,
            out_dir=base.out_dir,
            no_faults=base.no_faults if no_faults is None else no_faults,
        )
        return run_experiment(config, Path(path), variant, options)

    return run


@pytest.fixture
def tradechaos_stack(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A running stack (``--tradechaos-stack``, else the reference stack; its options'
    defaults, all mitigations on) in its own run folder under ``--tradechaos-out``; stopped
    and its folder marked finished at teardown, even when the test fails. Yields the
    ``chaos.backends.base.Backend``."""
    from chaos.backends.factory import make_backend
    from chaos.host.runs import RunFolder
    from chaos.stackfile import load, reference_stack_path, resolve

    options = run_options(request.config)
    definition = resolve(load(options.stack or reference_stack_path()))
    run = RunFolder.create(options.out_dir, "pytest-stack", _slug(request.node.name))
    params = {
        "seed": str(options.seed if options.seed is not None else 0),
        "epoch": f"{time.time():.3f}",
        "mitigations": "all",
    }
    backend = make_backend(options.backend, definition, run, params)
    try:
        backend.start_stack()
        yield backend
    finally:
        try:
            backend.stop_stack()
        finally:
            run.mark("finished")


@pytest.fixture
def toxiproxy_client(tradechaos_stack: Backend) -> Any:
    """A ``chaos.proxy.client.ToxiproxyClient`` for the proxy of ``tradechaos_stack``."""
    from chaos.proxy.client import ToxiproxyClient  # type: ignore[import-not-found,unused-ignore]

    return ToxiproxyClient(tradechaos_stack.toxiproxy_url)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:60] or "test"
