"""``tradechaos stack check``: start a stack (or attach to the one ``stack up`` keeps) and
exercise every binding once (``chaos.bindings.exercise``).

Attaching: when ``<out>/current-stack.json`` names a live stack, its services are checked
where they run, with the bindings of ``--stack`` when given (so bindings can be edited and
checked again without a restart; the file must name services and links the running stack
has) or of the stack file it runs. Otherwise a stack is started in a run folder
``<out>/<time>-stack-check-<name>`` (its logs and the exported history stay there) and
stopped afterwards, in every case. The history is exported into that folder, or, when
attached, into ``<out>/<time>-stack-check-<name>/`` too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.bindings.exercise import Result, exercise
from chaos.bindings.places import Places
from chaos.errors import BadInput
from chaos.host.runs import read_current_stack
from chaos.stackfile.definition import StackDefinition


@dataclass
class CheckOptions:
    stack_file: Path | None  # --stack (None: the running stack's, else the reference)
    options: Mapping[str, Any] = field(default_factory=dict)
    mitigations: str = "all"
    backend: str = "process"
    out: Path = Path("runs")
    fresh: bool = False  # start a stack even when one is up
    toxiproxy_url: str | None = None


@dataclass
class CheckReport:
    stack: str  # the stack file checked
    attached: bool
    folder: Path
    results: list[Result]

    @property
    def ok(self) -> bool:
        return all(r.status != "FAIL" for r in self.results)


def resolve_stack(path: Path, options: Mapping[str, Any], mitigations: str) -> StackDefinition:
    """The stack file at ``path`` with these options and mitigations (``all``, ``none`` or
    ``a,b``); BadInput naming what is wrong."""
    from chaos.stackfile import load, resolve

    stack = load(path)
    text = mitigations.strip().lower()
    on = (
        list(stack.mitigation_names)
        if text == "all"
        else []
        if text in ("none", "")
        else [m.strip() for m in text.split(",") if m.strip()]
    )
    unknown = [m for m in on if m not in stack.mitigation_names]
    if unknown:
        raise BadInput(
            f"unknown mitigation {unknown[0]!r} (known: "
            f"{', '.join(stack.mitigation_names) or 'none'})"
        )
    try:
        return resolve(stack, options, on)
    except ValueError as err:
        raise BadInput(f"{path}: {err}") from None


def check_stack(options: CheckOptions, say: Callable[[str], None] = print) -> CheckReport:
    current = None if options.fresh else _live_stack(options.out)
    if current is not None:
        return _attached(options, current, say)
    return _fresh(options, say)


def _live_stack(out: Path) -> Any:
    try:
        current = read_current_stack(out)
    except ValueError:
        return None
    return current if current is not None and current.owner_alive() else None


def _folder_name(out: Path, name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = out / f"{stamp}-stack-check-{name}"
    for n in range(2, 100):
        if not folder.exists():
            break
        folder = out / f"{stamp}-stack-check-{name}-{n}"
    folder.mkdir(parents=True)
    return folder


def _attached(options: CheckOptions, current: Any, say: Callable[[str], None]) -> CheckReport:
    from chaos.backends.attached import AttachedBackend
    from chaos.stackfile import reference_stack_path

    running_file = Path(current.stack_file or reference_stack_path())
    path = options.stack_file or running_file
    definition = resolve_stack(path, current.options or options.options, current.mitigations)
    lacking = [s for s in definition.service_names if s not in current.services]
    lacking += [lk for lk in definition.link_names if lk not in current.links]
    if lacking:
        raise BadInput(
            f"the stack up in {options.out} runs {running_file}; {path} names "
            f"{', '.join(lacking)}, which it lacks (use --fresh to start {path})"
        )
    record = options.out / "current-stack.json"
    backend = AttachedBackend(record, definition)
    say(f"attached to the stack `stack up` keeps (pid {current.pid}); bindings of {path}")
    folder = _folder_name(options.out, definition.name)
    results = exercise(definition, Places(definition, backend), backend.is_running, folder)
    return CheckReport(str(path), True, folder, results)


def _fresh(options: CheckOptions, say: Callable[[str], None]) -> CheckReport:
    from chaos.host.runs import RunFolder
    from chaos.runner import wiring
    from chaos.stackfile import reference_stack_path

    path = options.stack_file or reference_stack_path()
    definition = resolve_stack(path, options.options, options.mitigations)
    folder = RunFolder.create(options.out, f"stack-check-{definition.name}", "check")
    on = (
        definition.mitigations
        if options.mitigations == "all"
        else [m for m in options.mitigations.split(",") if m and m != "none"]
    )
    params = {
        "seed": "1",
        "epoch": repr(round(time.time(), 3)),
        "mitigations": ",".join(on) or "none",
    }
    backend = wiring.backend(options.backend, definition, folder, params, options.toxiproxy_url)
    say(f"starting {definition.name} ({options.backend} backend) in {folder.path}")
    with _stopped(backend, folder):
        backend.start_stack()
        places = Places(definition, backend)
        results = exercise(definition, places, backend.is_running, Path(folder.path))
    return CheckReport(str(path), False, Path(folder.path), results)


@contextlib.contextmanager
def _stopped(backend: Any, folder: Any) -> Iterator[None]:
    try:
        yield
    finally:
        backend.stop_stack()
        with contextlib.suppress(Exception):
            folder.mark("finished")


def render(report: CheckReport) -> str:
    """The table: binding, result, what happened; for a failure what was sent, what came
    back and which key of the stack file to fix."""
    width = max([len(r.binding) for r in report.results] + [7])
    lines = [f"{'binding':<{width}}  result  detail"]
    for r in report.results:
        lines.append(f"{r.binding:<{width}}  {r.status:<6}  {r.detail}")
        pad = " " * (width + 10)
        if r.status == "FAIL":
            lines += [f"{pad}sent: {r.sent}"] if r.sent else []
            lines += [f"{pad}got:  {r.got}"] if r.got else []
            lines += [f"{pad}fix:  {r.fix}"] if r.fix else []
    counts = {s: sum(1 for r in report.results if r.status == s) for s in ("OK", "FAIL", "SKIP")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    verdict = "every binding holds" if report.ok else "some bindings FAIL"
    lines.append(
        f"stack check of {report.stack}: {verdict} ({summary}); history in {report.folder}"
    )
    return "\n".join(lines)
