"""explore.html: the exploration at a glance, rendered from the explore.json document.

Order: the outcome (what was found, the minimal schedule, how often it reproduces), the
shrink path from the first find to the minimal one, the finds, the coverage of the space
(fault x target rows, maintenance phases as columns), then every trial. Self-contained: no
scripts, no external references, so it opens offline and from a CI artefact store.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;
 color:#222;max-width:1280px}
h1{margin:0 0 6px}h2{margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
.banner{display:inline-block;padding:6px 14px;border-radius:4px;font-weight:700;color:#fff}
.banner.found{background:#c5221f}.banner.none{background:#1e8e3e}
.banner.interrupted,.banner.error{background:#b06000}
.meta{color:#555;font-size:14px}code{background:#f3f3f3;padding:1px 4px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border:1px solid #ddd;padding:5px 7px;text-align:left;vertical-align:top}
th{background:#f5f5f5}tr.violated{background:#fdecea}td.hit{background:#e8f0fe;text-align:center}
td.miss{color:#bbb;text-align:center}.flaky{color:#b06000;font-weight:700}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def render(_exploration: Any, doc: Mapping[str, Any]) -> str:
    """The page for one exploration's ``doc`` (``chaos.explore.report.document``)."""
    title = f"{doc.get('experiment')} / {doc.get('variant')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>tradechaos explore: {_e(title)}</title><style>{_CSS}</style></head><body>",
        _header(title, doc),
        _minimal(doc),
        _shrink(doc),
        _finds(doc),
        _coverage(doc),
        _trials(doc),
        f'<footer class="meta"><p>tradechaos {_e(doc.get("tradechaos"))}; '
        "rendered from explore.json.</p></footer>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _header(title: str, doc: Mapping[str, Any]) -> str:
    status = str(doc.get("status"))
    words = {
        "found": "VIOLATION FOUND",
        "none": "NOTHING FOUND",
        "interrupted": "INTERRUPTED",
        "error": "ERROR",
    }
    figures = doc.get("figures") or {}
    rate = figures.get("trials_per_10min")
    lines = [
        f"<h1>tradechaos explore: {_e(title)}</h1>",
        f'<p><span class="banner {_e(status)}">{_e(words.get(status, status))}</span></p>',
        f'<p class="meta">file <code>{_e(doc.get("file"))}</code>; search seed '
        f"{_e(doc.get('seed'))}; budget {_e(doc.get('budget'))}; --jobs {_e(doc.get('jobs'))}; "
        f"{_e(figures.get('trials'))} trials in {_e(doc.get('elapsed_s'))} s"
        + (f" ({rate} per 10 min)" if rate else "")
        + f"; median per-trial overhead {_e(figures.get('median_overhead_s'))} s</p>",
    ]
    if doc.get("message"):
        lines.append(f'<p class="meta">{_e(doc["message"])}</p>')
    if doc.get("command"):
        lines.append(f'<p class="meta"><code>{_e(doc["command"])}</code></p>')
    backbone = doc.get("backbone") or []
    fixed = "; ".join(f"{b['id']}: {b['step']}" for b in backbone) or "none"
    lines.append(f'<p class="meta">fixed steps (the backbone): {_e(fixed)}</p>')
    return "\n".join(lines)


def _minimal(doc: Mapping[str, Any]) -> str:
    minimal = doc.get("minimal")
    if not minimal:
        return "<h2>Result</h2><p>No violation was found within the budget.</p>"
    flaky = ' <span class="flaky">FLAKY</span>' if minimal.get("flaky") else ""
    return (
        "<h2>Minimal schedule</h2>"
        f"<p><code>{_e(minimal.get('file'))}</code> violates "
        f"<b>{_e(', '.join(minimal.get('expect_violated') or []))}</b>; reproduced in "
        f"{_e(round(100 * float(minimal.get('rate') or 0)))}% of its runs (trials "
        f"{_e(', '.join(map(str, minimal.get('trials') or [])))}){flaky}.</p>"
        f"<p>{_e(minimal.get('schedule'))}</p>"
        f'<p class="meta">{_e(minimal.get("method_steps"))} method steps '
        f"({_e(minimal.get('fault_steps'))} fault steps); the first find had "
        f"{_e(minimal.get('first_find_method_steps'))} "
        f"({_e(minimal.get('first_find_fault_steps'))} fault steps).</p>"
    )


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], classes: Sequence[str] = ()
) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        css = f' class="{classes[index]}"' if index < len(classes) and classes[index] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _shrink(doc: Mapping[str, Any]) -> str:
    shrink = doc.get("shrink")
    if not shrink:
        return ""
    rows = [
        [
            _e(p["trial"]),
            _e(p["reason"]),
            _e(p["steps"]),
            _e(p["duration"]),
            _e(p["users"]),
            _e(p["schedule"]),
        ]
        for p in shrink.get("path") or []
    ]
    note = "complete" if shrink.get("complete") else "stopped by its budget, the time or a signal"
    return (
        f"<h2>Shrink path ({_e(shrink.get('invariant'))})</h2>"
        f'<p class="meta">{_e(shrink.get("trials"))} shrink trials; {_e(note)}</p>'
        + _table(["trial", "step", "fault steps", "method s", "users", "schedule"], rows)
    )


def _finds(doc: Mapping[str, Any]) -> str:
    finds = doc.get("finds") or []
    if not finds:
        return ""
    rows = [
        [
            _e(", ".join(map(str, f["trials"]))),
            _e(f"{100 * f['rate']:.0f}% of {f['runs']}"),
            "solid" if f["solid"] else '<span class="flaky">flaky</span>',
            _e(", ".join(f["violated"])),
            _e(f["schedule"]),
        ]
        for f in finds
    ]
    return "<h2>Finds</h2>" + _table(["trials", "reproduced", "", "violated", "schedule"], rows)


def _coverage(doc: Mapping[str, Any]) -> str:
    cover = doc.get("coverage") or {}
    phases = list(cover.get("phases") or [])
    hits: dict[tuple[str, str], set[str]] = defaultdict(set)
    for fault, target, phase in cover.get("combinations") or []:
        hits[(fault, target)].add(phase)
    head = "".join(f"<th>{_e(h)}</th>" for h in ["fault", "target", *phases])
    body = []
    rows = [tuple(row) for row in cover.get("rows") or []] or sorted(hits)
    for fault, target in rows:
        cells = "".join(
            '<td class="hit">x</td>'
            if phase in hits[(fault, target)]
            else '<td class="miss">-</td>'
            for phase in phases
        )
        body.append(f"<tr><td>{_e(fault)}</td><td>{_e(target)}</td>{cells}</tr>")
    table = f"<table><tr>{head}</tr>{''.join(body)}</table>"
    return (
        f'<h2>Coverage</h2><p class="meta">{_e(cover.get("covered"))} of '
        f"{_e(cover.get('total'))} (fault, target, maintenance phase) combinations tried</p>"
        + table
    )


def _trials(doc: Mapping[str, Any]) -> str:
    rows, classes = [], []
    for trial in doc.get("trials") or []:
        signals = trial.get("signals") or {}
        top = sorted(signals.items(), key=lambda kv: -float(kv[1].get("pressure", 0)))[:3]
        signal_text = "; ".join(
            f"{k} {v['value']:.3g}{v.get('unit', '')} ({v['pressure']:.2f})" for k, v in top
        )
        kind = trial.get("kind") or ""
        rows.append(
            [
                _e(trial["number"]),
                _e(f"{trial['purpose']} {kind}".strip()),
                _e(trial["schedule"]),
                _e(trial.get("status")),
                _e(", ".join(trial.get("violated") or []) or "-"),
                _e(signal_text),
                _e(trial.get("wall_s")),
            ]
        )
        classes.append("violated" if trial.get("violated") else "")
    return "<h2>Trials</h2>" + _table(
        ["#", "purpose", "schedule", "status", "violated", "top signals (pressure)", "wall s"],
        rows,
        classes,
    )
