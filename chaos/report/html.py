"""report.html: one self-contained page per run, readable at a glance.

Order: headline verdict, the verdict table (red/green/amber: PASS/FAIL/UNKNOWN,
counterexamples in plain words), the run error if any, the fault and maintenance timeline,
then the plots over time. Every time shown is seconds from the method's t=0 (the time base
of ``chaos.report.rundata.time_base``); the wall clock of a time is in its ``title`` (on
hover). Plots are base64 PNGs inline; the page has no scripts, no external references and
no URLs, so it opens offline and from a CI artefact store.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaos import __version__
from chaos.files.atomic import replace_text
from chaos.report import plots
from chaos.report.harm import harm_css, harm_section
from chaos.report.junit import run_duration, to_epoch
from chaos.report.outcomes import Case, cases, expectation_met, run_error
from chaos.report.rundata import RunData, load_run

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;
 color:#222;max-width:1280px}
h1{margin:0 0 6px}h2{margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
.banner{display:inline-block;padding:6px 14px;border-radius:4px;font-weight:700;color:#fff}
.banner.pass{background:#1e8e3e}.banner.fail{background:#c5221f}
.meta{color:#555;font-size:14px}.meta code{background:#f3f3f3;padding:1px 4px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{border:1px solid #ddd;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}
tr.pass td.outcome{background:#1e8e3e;color:#fff;font-weight:700;text-align:center}
tr.fail td.outcome{background:#c5221f;color:#fff;font-weight:700;text-align:center}
tr.unknown td.outcome{background:#b06000;color:#fff;font-weight:700;text-align:center}
tr.fail{background:#fdecea}tr.pass{background:#eef7ee}tr.unknown{background:#fef7e0}
[title]{text-decoration:underline dotted #999}
ul.examples{margin:4px 0 0 0;padding-left:18px;font-family:ui-monospace,monospace;font-size:12px}
.error{background:#fdecea;border:1px solid #c5221f;padding:10px;border-radius:4px}
figure{margin:16px 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:13px}.no-data{color:#c5221f;font-weight:600}.plot-error{color:#c5221f}
td.fault{color:#c5221f;font-weight:600}td.maint{color:#1f77b4}
"""


def render_html(run_dir: Path, journal: Mapping[str, Any]) -> str:
    """The report page of the run in ``run_dir`` (its history) described by ``journal``."""
    data = load_run(run_dir, journal)
    run_cases = cases(journal)
    met = expectation_met(journal)
    title = f"{journal.get('experiment') or 'experiment'} / {journal.get('variant') or 'default'}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>tradechaos: {_e(title)}</title><style>{_CSS}{harm_css()}</style></head><body>",
        _header(title, journal, met, data),
        _verdict_section(run_cases, journal),
        harm_section(journal),
        _error_section(journal),
        _timeline_section(journal, data),
        _plots_section(data),
        f'<footer class="meta"><p>tradechaos {_e(__version__)}, report generated '
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC from journal.json and "
        "history/.</p></footer>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def write_html(run_dir: Path, journal: Mapping[str, Any]) -> Path:
    """Write ``run_dir/report.html`` (temp file, then rename) and return its path."""
    return replace_text(run_dir / "report.html", render_html(run_dir, journal))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _header(title: str, journal: Mapping[str, Any], met: bool, data: RunData) -> str:
    banner = "EXPECTATION MET" if met else "EXPECTATION NOT MET"
    expected = ", ".join(str(x) for x in journal.get("expected_violations") or []) or "none"
    facts = [
        ("status", journal.get("status")),
        ("seed", journal.get("seed")),
        ("backend", journal.get("backend")),
        ("duration", f"{run_duration(journal):.1f}s"),
        ("started", _utc(journal.get("started_at"))),
        ("times", f"seconds from {data.t0_label} ({_utc_precise(data.t0)})"),
        ("expected violations", expected),
        ("control run (no faults)", "yes" if journal.get("no_faults") else None),
        ("file", journal.get("file")),
        ("run folder", journal.get("run_dir")),
    ]
    meta = " &middot; ".join(
        f"{_e(k)}: <code>{_e(v)}</code>" for k, v in facts if v not in (None, "")
    )
    return (
        f"<header><h1>{_e(title)}</h1>"
        f'<div id="verdict" class="banner {"pass" if met else "fail"}">{banner}</div>'
        f'<p class="meta">{meta}</p></header>'
    )


def _utc(value: Any) -> str | None:
    epoch = to_epoch(value)
    if epoch is None:
        return None if value is None else str(value)
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _verdict_section(run_cases: list[Case], journal: Mapping[str, Any]) -> str:
    walls = _counterexample_walls(journal)
    rows = []
    for case in run_cases:
        status = case.outcome.lower()
        expected = "violated" if case.expected_violation else "holds"
        if case.evidence_required and not case.expected_violation:
            expected = "holds, with evidence"
        if case.name in ("steady_state_hypothesis", "run"):
            expected = "holds" if case.name != "run" else "completes"
        examples = "".join(_example_item(line, walls.get(case.name, [])) for line in case.details)
        rows.append(
            f'<tr class="{status}"><td class="outcome">{case.outcome}</td>'
            f"<td><strong>{_e(case.name)}</strong></td><td>{_e(expected)}</td>"
            f"<td>{_e(case.result_word)}</td><td>{_e(case.count_text)}</td>"
            f"<td>{_e(case.summary)}"
            + (f'<ul class="examples">{examples}</ul>' if examples else "")
            + "</td></tr>"
        )
    return (
        '<section id="verdicts"><h2>Verdicts</h2>'
        '<table id="verdict-table"><thead><tr><th>outcome</th><th>case</th><th>expected</th>'
        "<th>found</th><th>violated/checked</th><th>what happened</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        '<p class="meta">An invariant the variant expects to be violated passes when it is '
        "violated: the experiment caught the incident. UNKNOWN: there was nothing to check "
        "(no evidence either way); it is not a pass, and it fails the variant only when the "
        "experiment requires evidence for it. Times: seconds from the method's t=0; hover a "
        "counterexample for its wall clock.</p></section>"
    )


def _counterexample_walls(journal: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Each invariant's counterexamples' wall clocks (``wall_time``), in order."""
    walls: dict[str, list[Any]] = {}
    for verdict in journal.get("verdicts") or []:
        if isinstance(verdict, Mapping):
            examples = verdict.get("counterexamples") or []
            walls[str(verdict.get("invariant"))] = [
                e.get("wall_time") if isinstance(e, Mapping) else None for e in examples
            ]
    return walls


def _example_item(line: str, walls: list[Any]) -> str:
    """One detail line; a counterexample (``#i: ...``) carries its wall clock on hover."""
    number = line[1 : line.find(":")] if line.startswith("#") else ""
    index = int(number) - 1 if number.isdigit() else -1
    wall = _utc_precise(walls[index]) if 0 <= index < len(walls) else None
    title = f' title="wall clock {_e(wall)}"' if wall else ""
    return f"<li{title}>{_e(line)}</li>"


def _utc_precise(value: Any) -> str | None:
    epoch = to_epoch(value)
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _error_section(journal: Mapping[str, Any]) -> str:
    error = run_error(journal)
    if error is None:
        return ""
    return f'<section id="error"><h2>Run error</h2><p class="error">{_e(error)}</p></section>'


_NON_FAULT_KIND = {
    "price_move": "world event",
    "trigger_orders": "trading",
    **{a: "response" for a in ("snapshot", "chain_rollback", "cancel_all", "disable_access",
                               "enable_access", "replay")},
}  # fmt: skip


def _timeline_section(journal: Mapping[str, Any], data: RunData) -> str:
    rows = []
    for step in journal.get("timeline") or []:
        if not isinstance(step, Mapping):
            continue
        fault = bool(step.get("fault"))
        kind = "fault" if fault else _NON_FAULT_KIND.get(str(step.get("action")), "maintenance")
        state = step.get("error") or ""
        if step.get("skipped"):
            state = "skipped (control run)"
        elif step.get("started") is None and not state:
            state = "not reached"
        cells = [
            _cell(step.get("id")),
            _cell(step.get("action")),
            _cell(_target(step.get("target"))),
            _when(step.get("scheduled"), data),
            _when(step.get("started"), data),
            _when(step.get("ended"), data),
            _cell(step.get("lateness_ms")),
        ]
        rows.append(
            "<tr>"
            + "".join(cells)
            + f'<td class="{"fault" if fault else "maint"}">{kind}</td><td>{_e(state)}</td></tr>'
        )
    table = (
        '<table id="timeline-table"><thead><tr><th>id</th><th>action</th><th>target</th>'
        "<th>scheduled</th><th>started</th><th>ended</th><th>late (ms)</th><th>kind</th>"
        "<th>note</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        if rows
        else '<p class="meta">The journal has no timeline.</p>'
    )
    figure = _figure(
        data,
        plots.timeline_plot,
        "Fault and maintenance timeline",
        "Rows: faults (red) and maintenance steps (blue) from faults.jsonl; "
        f"top row: trading mode from modes.jsonl. Times: seconds from {data.t0_label}.",
        _missing("faults.jsonl", "modes.jsonl")(data),
    )
    return (
        f'<section id="timeline"><h2>Fault and maintenance timeline</h2>{figure}{table}</section>'
    )


def _target(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _cell(value: Any) -> str:
    return f"<td>{_e('' if value is None else value)}</td>"


def _when(value: Any, data: RunData) -> str:
    """A time cell: a wall-clock time as seconds from the time base (``data.t0``), its wall
    clock on hover; an offset as given."""
    epoch = to_epoch(value)
    if epoch is None:
        return _cell(value)
    if epoch > 1e8:
        return f'<td title="wall clock {_e(_utc_precise(epoch))}">{epoch - data.t0:+.2f}s</td>'
    return _cell(f"{epoch:.2f}s")


_PlotSpec = tuple[Callable[[RunData], bytes], str, str, Callable[[RunData], str | None]]


def _missing(*names: str) -> Callable[[RunData], str | None]:
    """A caption prefix naming the history files a plot lacks, or None when it has data."""

    def check(data: RunData) -> str | None:
        empty = {
            "oracle.jsonl": not data.published,
            "client.jsonl": not data.client_ops,
            "load.jsonl": not data.load_samples,
            "events.jsonl": not data.event_seq,
            "chain.jsonl": not data.chain,
            "faults.jsonl": not data.windows,
            "modes.jsonl": not data.modes,
        }
        if all(empty[name] for name in names):
            return f"No data: history/{' and history/'.join(names)} missing or empty."
        return None

    return check


_PLOTS: tuple[_PlotSpec, ...] = (
    (
        plots.price_plot,
        "Price per market",
        "True price (chaos.world with the recorded price moves) against the oracle's "
        "published mark; liquidations: green = intended, red X = unintended or consequential "
        "(listed by no_unintended_liquidations). Shaded: faults (red), maintenance (blue).",
        _missing("oracle.jsonl"),
    ),
    (
        plots.funding_plot,
        "Funding index per market",
        "True funding index against the one the oracle published.",
        _missing("oracle.jsonl"),
    ),
    (
        plots.load_plot,
        "Order latency and error rate",
        "Per second of client operations (client.jsonl), else the load samples (load.jsonl).",
        _missing("client.jsonl", "load.jsonl"),
    ),
    (
        plots.chain_plot,
        "Chain against the event log",
        "Highest event-log sequence (events.jsonl) and last sequence written on chain "
        "(chain.jsonl); the gap is the writer's lag.",
        _missing("events.jsonl", "chain.jsonl"),
    ),
)


def _plots_section(data: RunData) -> str:
    figures = [
        _figure(data, draw, title, caption, missing(data))
        for draw, title, caption, missing in _PLOTS
    ]
    return '<section id="plots"><h2>Over time</h2>' + "".join(figures) + "</section>"


def _figure(
    data: RunData,
    draw: Callable[[RunData], bytes],
    title: str,
    caption: str,
    no_data: str | None = None,
) -> str:
    """One plot as an inline PNG; a failing plot becomes a sentence, never a broken page."""
    try:
        png = draw(data)
    except Exception as err:  # a plot must not cost the user the rest of the report
        return (
            f'<figure class="plot"><p class="plot-error">{_e(title)}: plot failed '
            f"({_e(type(err).__name__)}: {_e(err)})</p></figure>"
        )
    encoded = base64.b64encode(png).decode("ascii")
    return (
        f'<figure class="plot"><img alt="{_e(title)}" src="data:image/png;base64,{encoded}">'
        f"<figcaption><strong>{_e(title)}.</strong> "
        + (f'<span class="no-data">{_e(no_data)}</span> ' if no_data else "")
        + f"{_e(caption)}</figcaption></figure>"
    )
