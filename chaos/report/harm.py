"""The harm ledger in the reports: ``harm.csv`` and the report page's "Harm ledger" section
(docs/harm.md), from the journal's ``harm`` section alone.

The section has the totals in one sentence, a chart of loss per account (stacked by kind,
the part a rollback made whole hatched), the per-account table, the insurance fund's side,
each rollback's made-whole/owed split and the worst items. The table sorts by any column
without a script: each column header is a label of a radio button, and the table holds one
pre-sorted body per column, the checked one shown (CSS ``:checked``), so the page stays
script-free and opens offline.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chaos.files.atomic import replacing

CSV_FILE = "harm.csv"
COLUMNS = (
    ("account", "account"),
    ("unintended_liquidation", "unintended liquidation"),
    ("off_market_fill", "off-market fills"),
    ("duplicate_execution", "duplicate executions"),
    ("lost_orders", "lost orders"),
    ("lost_notional", "lost orders' notional"),
    ("total", "total"),
    ("made_whole", "made whole"),
    ("owed", "owed"),
)
KIND_COLOURS = {
    "unintended_liquidation": "#c5221f",
    "off_market_fill": "#ff7f0e",
    "duplicate_execution": "#9467bd",
}
CSS = """
.harm-sorter input{position:absolute;opacity:0;pointer-events:none}
.harm-sorter tbody{display:none}
.harm-sorter th label{cursor:pointer;text-decoration:underline dotted}
td.money{text-align:right;font-variant-numeric:tabular-nums}
tr.fund{background:#eef3fb}
"""


def write_harm_csv(run_dir: Path, journal: Mapping[str, Any]) -> Path | None:
    """``run_dir/harm.csv`` from ``journal["harm"]`` (None when the journal has none): one
    row per account in the ledger, then a ``total`` row (insurance fund excluded)."""
    harm = journal.get("harm")
    if not isinstance(harm, Mapping) or not isinstance(harm.get("accounts"), list):
        return None
    path = Path(run_dir) / CSV_FILE
    fields = ["account", "insurance_fund", *[k for k, _ in COLUMNS[1:]]]
    with replacing(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in harm["accounts"]:
            writer.writerow(row)
        writer.writerow({"account": "total", "insurance_fund": False, **(harm.get("totals") or {})})
    return path


def harm_css() -> str:
    return CSS


def harm_section(journal: Mapping[str, Any]) -> str:
    """The report's "Harm ledger" section ("" when the journal has no ledger)."""
    harm = journal.get("harm")
    if not isinstance(harm, Mapping):
        return ""
    if harm.get("error"):
        return (
            '<section id="harm"><h2>Harm ledger</h2>'
            f'<p class="error">The harm ledger could not be computed: {_e(harm["error"])}</p>'
            "</section>"
        )
    rows = [r for r in harm.get("accounts") or [] if isinstance(r, Mapping)]
    parts = [
        '<section id="harm"><h2>Harm ledger</h2>',
        f'<p class="meta">{_e(_summary(harm))}</p>',
        _chart(rows),
        _table(rows, harm.get("totals") or {}),
        _fund(harm.get("insurance_fund_side")),
        _rollbacks(harm.get("rollbacks") or []),
        _items(harm.get("items") or [], int(harm.get("item_count") or 0)),
        "".join(f'<p class="no-data">{_e(u)}</p>' for u in harm.get("unknown") or []),
        "</section>",
    ]
    return "".join(p for p in parts if p)


def _summary(harm: Mapping[str, Any]) -> str:
    totals = harm.get("totals") or {}
    tol = harm.get("tolerances") or {}
    text = (
        f"{harm.get('affected_accounts', 0)} account(s) harmed; total loss "
        f"{_money(totals.get('total'))}, of which a rollback made whole "
        f"{_money(totals.get('made_whole'))}, owed {_money(totals.get('owed'))}; "
        f"{totals.get('lost_orders', 0)} acknowledged order(s) lost. Off-market means more "
        f"than {tol.get('off_market_bps', '?')} bps from the true price; liquidations are "
        f"judged as no_unintended_liquidations does (margin tolerance "
        f"{tol.get('margin_tolerance', '?')}, price lag {tol.get('price_lag_s', '?')} s). "
        "Amounts in quote currency; negative: the account won what another lost."
    )
    return text


def _table(rows: Sequence[Mapping[str, Any]], totals: Mapping[str, Any]) -> str:
    if not rows:
        return '<p class="meta">No account was harmed.</p>'
    radios, heads, bodies, rules = [], [], [], []
    for key, title in COLUMNS:
        ident = f"harm-sort-{key}"
        checked = " checked" if key == "total" else ""
        radios.append(f'<input type="radio" name="harm-sort" id="{ident}"{checked}>')
        heads.append(f'<th><label for="{ident}">{_e(title)}</label></th>')
        ordered = sorted(rows, key=_sorter(key), reverse=key != "account")
        bodies.append(f'<tbody class="by-{key}">' + "".join(_row(r) for r in ordered) + "</tbody>")
        rules.append(f"#{ident}:checked~table .by-{key}{{display:table-row-group}}")
    total = "".join(f'<td class="money">{_e(_cell(totals.get(k), k))}</td>' for k, _ in COLUMNS[1:])
    return (
        f"<style>{''.join(rules)}</style>"
        '<div class="harm-sorter">'
        + "".join(radios)
        + '<table id="harm-table"><thead><tr>'
        + "".join(heads)
        + "</tr></thead>"
        + "".join(bodies)
        + f"<tfoot><tr><th>total</th>{total}</tr></tfoot></table></div>"
        '<p class="meta">Click a column header to sort by it. The total row leaves out the '
        "insurance fund (shaded).</p>"
    )


def _sorter(key: str) -> Callable[[Mapping[str, Any]], tuple[float, float]]:
    """Sort rows by ``key``'s number, then by account (ascending under a reverse sort)."""

    def sort_key(row: Mapping[str, Any]) -> tuple[float, float]:
        value = row.get(key)
        number = float(value) if isinstance(value, int | float) else 0.0
        account = row.get("account")
        return (number, -float(account) if isinstance(account, int | float) else 0.0)

    return sort_key


def _row(row: Mapping[str, Any]) -> str:
    fund = bool(row.get("insurance_fund"))
    cells = []
    for key, _ in COLUMNS:
        text = _cell(row.get(key), key)
        if key == "account" and fund:
            text += " (insurance fund)"
        cells.append(f'<td class="{"" if key == "account" else "money"}">{_e(text)}</td>')
    return f'<tr class="{"fund" if fund else ""}">' + "".join(cells) + "</tr>"


def _cell(value: Any, key: str) -> str:
    if key in ("account", "lost_orders") or value is None:
        return "" if value is None else str(value)
    return _money(value)


def _money(value: Any) -> str:
    return f"{float(value):,.2f}" if isinstance(value, int | float) else "?"


def _fund(side: Any) -> str:
    if not isinstance(side, Mapping):
        return ""
    return (
        f'<p class="meta">Insurance fund (account {_e(side.get("account"))}): won '
        f"{_money(side.get('won'))} and lost {_money(side.get('lost'))} in harmful events; "
        f"its equity changed by {_money(side.get('equity_change'))} over the run at true "
        "prices.</p>"
    )


def _rollbacks(rollbacks: Sequence[Any]) -> str:
    lines = []
    for rb in rollbacks:
        if not isinstance(rb, Mapping):
            continue
        reverted = rb.get("reverted_orders") or {}
        lines.append(
            f"<li>Rollback {_e(rb.get('rollback'))} (step {_e(rb.get('step'))}) to seq "
            f"{_e(rb.get('to_seq'))}"
            + (f" (snapshot {_e(rb.get('snapshot'))})" if rb.get("snapshot") else "")
            + f": made whole {_money(rb.get('made_whole'))} "
            f"({_e(_pairs(rb.get('made_whole_by_account') or {}, money=True)) or 'nothing'}); "
            f"acknowledged orders it reverted: {_e(_pairs(reverted)) or 'none'}.</li>"
        )
    return f'<ul class="meta">{"".join(lines)}</ul>' if lines else ""


def _pairs(by_account: Mapping[str, Any], money: bool = False) -> str:
    return ", ".join(f"account {a}: {_money(v) if money else v}" for a, v in by_account.items())


def _items(items: Sequence[Any], count: int) -> str:
    lines = []
    for item in items[:10]:
        if not isinstance(item, Mapping):
            continue
        whole = f", made whole by {item['made_whole_by']}" if item.get("made_whole_by") else ""
        lines.append(
            f"<li>{_e(item.get('kind'))}: account {_e(item.get('account'))} "
            f"{_money(item.get('loss'))} at seq {_e(item.get('seq'))} "
            f"({_e(item.get('market'))}){_e(whole)}</li>"
        )
    if not lines:
        return ""
    return (
        f'<p class="meta">Largest of {count} item(s):</p><ul class="examples">'
        + "".join(lines)
        + "</ul>"
    )


def _chart(rows: Sequence[Mapping[str, Any]]) -> str:
    victims = [r for r in rows if not r.get("insurance_fund")]
    if not victims:
        return ""
    try:
        png = loss_chart(victims)
    except Exception as err:  # a plot must not cost the user the rest of the report
        return f'<p class="plot-error">Loss per account: plot failed ({_e(err)})</p>'
    encoded = base64.b64encode(png).decode("ascii")
    return (
        f'<figure class="plot"><img alt="Loss per account" src="data:image/png;base64,'
        f'{encoded}"><figcaption><strong>Loss per account.</strong> Stacked by kind; '
        "hatched: the part a rollback made whole. Below zero: what an account won.</figcaption>"
        "</figure>"
    )


def loss_chart(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """A bar per account (its loss by kind, stacked; positive and negative apart)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = sorted(rows, key=lambda r: -float(r.get("total") or 0.0))[:40]
    fig = Figure(figsize=(11, 3.6), dpi=90, layout="constrained")
    ax = fig.subplots()
    x = list(range(len(shown)))
    up, down = [0.0] * len(shown), [0.0] * len(shown)
    for kind, colour in KIND_COLOURS.items():
        values = [float(r.get(kind) or 0.0) for r in shown]
        bottoms = [u if v >= 0 else d for v, u, d in zip(values, up, down, strict=True)]
        ax.bar(x, values, bottom=bottoms, color=colour, label=kind.replace("_", " "))
        up = [u + max(v, 0.0) for u, v in zip(up, values, strict=True)]
        down = [d + min(v, 0.0) for d, v in zip(down, values, strict=True)]
    whole = [float(r.get("made_whole") or 0.0) for r in shown]
    if any(whole):
        ax.bar(x, whole, fill=False, hatch="//", edgecolor="#1e8e3e", label="made whole")
    ax.axhline(0, color="#444444", lw=0.8)
    ax.set_xticks(x, [str(r.get("account")) for r in shown])
    ax.set_xlabel("account")
    ax.set_ylabel("loss (quote currency)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper right", fontsize=9)
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)
