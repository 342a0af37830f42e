"""The report's plots, as PNG bytes drawn with matplotlib's Agg canvas (no pyplot, no
global state, no display). matplotlib is imported inside the functions, never at import.

Every plot shares the x axis "seconds from the method's t=0" (``RunData.t0``, the time base
of every report; negative before the method: stack start, steady state) and shades the
fault windows (red) and maintenance steps (blue). A panel without data says so.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from chaos.report.rundata import RunData, Window, num

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FAULT_COLOUR = "#d62728"
MAINTENANCE_COLOUR = "#1f77b4"
TRUE_COLOUR = "#222222"
PUBLISHED_COLOUR = "#ff7f0e"
TRUTH_POINTS = 600
_MAX_TRUTH_STEPS = 5_000_000  # refuse to walk the truth further than this from its epoch


def _figure(rows: int, height_per_row: float = 2.6) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 0.6 + height_per_row * rows), dpi=90, layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)
    return fig, [row[0] for row in axes]


def _png(fig: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _rel(data: RunData, t: float) -> float:
    return t - data.t0


def _shade(ax: Axes, data: RunData) -> None:
    for window in data.windows:
        colour = FAULT_COLOUR if window.fault else MAINTENANCE_COLOUR
        start, end = _rel(data, window.start), _rel(data, window.end)
        if end - start < 0.05:
            ax.axvline(start, color=colour, alpha=0.5, lw=1, ls="--")
        else:
            ax.axvspan(start, end, color=colour, alpha=0.12 if window.fault else 0.07, lw=0)
    ax.set_xlim(data.t_start - data.t0, max(data.t_start - data.t0 + 1.0, data.t_end - data.t0))
    ax.grid(True, alpha=0.3)


def _no_data(ax: Axes, why: str) -> None:
    ax.text(
        0.5,
        0.5,
        f"no data: {why}",
        ha="center",
        va="center",
        transform=ax.transAxes,
        fontsize=12,
        color="#888888",
    )


def _finish(fig: Figure, axes: Sequence[Axes], title: str, data: RunData) -> bytes:
    axes[-1].set_xlabel(f"seconds from {data.t0_label}")
    fig.suptitle(title, fontsize=12)
    return _png(fig)


def _panels(
    data: RunData, keys: Sequence[str], title: str, draw: Callable[[Axes, str], None]
) -> bytes:
    fig, axes = _figure(max(1, len(keys)))
    if not keys:
        _shade(axes[0], data)
        _no_data(axes[0], "no markets in the history")
    for ax, key in zip(axes, keys, strict=False):
        _shade(ax, data)
        draw(ax, key)
    return _finish(fig, axes, title, data)


def _truth(data: RunData) -> Any:
    """A ``chaos.world.PricePath`` for the run (its recorded markets), or None without seed
    and epoch."""
    from chaos.world import MARKETS, MarketSpec, PriceMove, PricePath

    seed, epoch = num(data.run.get("seed")), num(data.run.get("epoch"))
    if seed is None or epoch is None or (data.t_end - epoch) / 0.1 > _MAX_TRUTH_STEPS:
        return None
    moves = []
    for params in data.moves:
        start, duration, pct = (num(params.get(k)) for k in ("start", "duration", "pct"))
        if start is not None and duration is not None and pct is not None:
            moves.append(PriceMove(str(params.get("market", "*")), start, duration, pct))
    recorded = data.run.get("market_specs") or ()
    markets = tuple(MarketSpec(**m) for m in recorded if isinstance(m, dict)) or MARKETS
    return PricePath(int(seed), epoch, moves=moves, markets=markets)


def _grid(data: RunData) -> list[float]:
    span = data.t_end - data.t_start
    return [data.t_start + span * i / (TRUTH_POINTS - 1) for i in range(TRUTH_POINTS)]


def _known_market(path: Any, market: str) -> bool:
    try:
        path.spec(market)
    except KeyError:
        return False
    return True


def price_plot(data: RunData) -> bytes:
    """True vs published price per market, liquidations marked intended or unintended."""
    path = _truth(data)
    grid = _grid(data)

    def draw(ax: Axes, market: str) -> None:
        drawn = False
        if path is not None and _known_market(path, market):
            ax.plot(
                [_rel(data, t) for t in grid],
                [path.price(market, t) for t in grid],
                color=TRUE_COLOUR,
                lw=1.2,
                label="true price",
            )
            drawn = True
        published = data.published.get(market, [])
        if published:
            ax.plot(
                [_rel(data, t) for t, _, _ in published],
                [p for _, p, _ in published],
                color=PUBLISHED_COLOUR,
                lw=1,
                label="published mark (oracle)",
            )
            drawn = True
        drawn = _liquidation_marks(ax, data, market) or drawn
        if not drawn:
            _no_data(ax, "no oracle.jsonl and no seed/epoch in run.json")
        else:
            ax.legend(loc="upper left", fontsize=8)
        ax.set_ylabel(market)

    return _panels(data, data.markets, "Price: true vs published", draw)


def _liquidation_marks(ax: Axes, data: RunData, market: str) -> bool:
    drawn = False
    for intended, colour, marker, label in (
        (True, "#2ca02c", "^", "liquidation (intended)"),
        (False, FAULT_COLOUR, "X", "liquidation (UNINTENDED or consequential)"),
    ):
        points = [
            (liq.time, liq.mark_price)
            for liq in data.liquidations
            if liq.market == market and liq.intended is intended and liq.mark_price is not None
        ]
        if points:
            ax.scatter(
                [_rel(data, t) for t, _ in points],
                [p for _, p in points],
                c=colour,
                marker=marker,
                s=60 if intended else 90,
                zorder=5,
                label=f"{label} x{len(points)}",
            )
            drawn = True
    return drawn


def funding_plot(data: RunData) -> bytes:
    """True vs published funding index per market."""
    path = _truth(data)
    grid = _grid(data)

    def draw(ax: Axes, market: str) -> None:
        drawn = False
        if path is not None and _known_market(path, market):
            ax.step(
                [_rel(data, t) for t in grid],
                [path.funding_index(market, t) for t in grid],
                where="post",
                color=TRUE_COLOUR,
                lw=1.2,
                label="true funding index",
            )
            drawn = True
        published = [(t, f) for t, _, f in data.published.get(market, []) if f is not None]
        if published:
            ax.plot(
                [_rel(data, t) for t, _ in published],
                [f for _, f in published],
                color=PUBLISHED_COLOUR,
                lw=1,
                label="published funding index",
            )
            drawn = True
        if drawn:
            ax.legend(loc="upper left", fontsize=8)
        else:
            _no_data(ax, "no oracle.jsonl and no seed/epoch in run.json")
        ax.set_ylabel(market)

    return _panels(data, data.markets, "Funding index: true vs published", draw)


def load_plot(data: RunData) -> bytes:
    """Order latency (p50, p99) and error rate per second of client operations; falls back
    to the load generator's samples (load.jsonl) when client.jsonl is missing."""
    fig, (lat_ax, err_ax) = _figure(2)
    for ax in (lat_ax, err_ax):
        _shade(ax, data)
    lat_ax.set_ylabel("latency (ms)")
    err_ax.set_ylabel("error rate")
    series = _client_series(data) if data.client_ops else _load_series(data)
    if series is None:
        _no_data(lat_ax, "client.jsonl and load.jsonl missing or empty")
        _no_data(err_ax, "client.jsonl and load.jsonl missing or empty")
        return _finish(fig, (lat_ax, err_ax), "Orders: latency and error rate", data)
    times, p50, p99, errors, source = series
    if any(v is not None for v in p50 + p99):
        lat_ax.plot(times, [math.nan if v is None else v for v in p50], label="p50", lw=1)
        lat_ax.plot(times, [math.nan if v is None else v for v in p99], label="p99", lw=1)
        lat_ax.legend(loc="upper left", fontsize=8)
    else:
        _no_data(lat_ax, f"no latencies in {source}")
    err_ax.plot(times, errors, color=FAULT_COLOUR, lw=1, label=f"errors ({source})")
    err_ax.set_ylim(bottom=0)
    err_ax.legend(loc="upper left", fontsize=8)
    return _finish(fig, (lat_ax, err_ax), "Orders: latency and error rate", data)


_Series = tuple[list[float], list[float | None], list[float | None], list[float], str]


def _client_series(data: RunData) -> _Series:
    buckets: dict[int, list[tuple[str, float | None]]] = {}
    for t, kind, latency in data.client_ops:
        buckets.setdefault(math.floor(_rel(data, t)), []).append((kind, latency))
    times, p50, p99, errors = [], [], [], []
    for second in sorted(buckets):
        ops = buckets[second]
        latencies = sorted(1000 * lat for kind, lat in ops if kind == "ok" and lat is not None)
        times.append(second + 0.5)
        p50.append(_quantile(latencies, 0.5))
        p99.append(_quantile(latencies, 0.99))
        errors.append(sum(1 for kind, _ in ops if kind != "ok") / len(ops))
    return times, p50, p99, errors, "client.jsonl: fail+info / completed"


def _load_series(data: RunData) -> _Series | None:
    samples = [s for s in data.load_samples if not s.get("final")]
    if not samples:
        return None
    times = [_rel(data, num(s.get("time")) or data.t0) for s in samples]
    p50 = [num(s.get("p50")) for s in samples]
    p99 = [num(s.get("p99")) for s in samples]
    errors = [num(s.get("error_rate", s.get("errors"))) or 0.0 for s in samples]
    return times, p50, p99, errors, "load.jsonl"


def _quantile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def chain_plot(data: RunData) -> bytes:
    """Event-log sequence (db) against the last sequence on chain, and the chain height."""
    fig, (ax,) = _figure(1, 3.2)
    _shade(ax, data)
    ax.set_ylabel("sequence number")
    if data.event_seq:
        ax.step(
            [_rel(data, t) for t, _ in data.event_seq],
            [s for _, s in data.event_seq],
            where="post",
            color=TRUE_COLOUR,
            lw=1.2,
            label="event log seq (db)",
        )
    if data.chain:
        rel = [_rel(data, t) for t, _, _ in data.chain]
        ax.step(
            rel,
            [last for _, _, last in data.chain],
            where="post",
            color=PUBLISHED_COLOUR,
            lw=1.2,
            label="last seq on chain",
        )
        height_ax = ax.twinx()
        height_ax.step(
            rel,
            [h for _, h, _ in data.chain],
            where="post",
            color="#9467bd",
            lw=1,
            ls=":",
            label="chain height",
        )
        height_ax.set_ylabel("chain height")
        height_ax.legend(loc="lower right", fontsize=8)
    if data.event_seq or data.chain:
        ax.legend(loc="upper left", fontsize=8)
    else:
        _no_data(ax, "events.jsonl and chain.jsonl missing or empty")
    return _finish(fig, (ax,), "Chain height against the event-log sequence", data)


def timeline_plot(data: RunData) -> bytes:
    """One row per fault or maintenance step, plus the trading modes along the top."""
    windows: list[Window] = data.windows
    fig, (ax,) = _figure(1, 0.9 + 0.32 * max(1, len(windows) + 1))
    _shade(ax, data)
    labels = ["trading mode"] + [w.label for w in windows]
    for row, window in enumerate(windows, start=1):
        start = _rel(data, window.start)
        width = max(0.15, window.end - window.start)
        colour = FAULT_COLOUR if window.fault else MAINTENANCE_COLOUR
        ax.broken_barh([(start, width)], (row - 0.35, 0.7), color=colour, alpha=0.8)
    _mode_bar(ax, data)
    ax.set_yticks(range(len(labels)), labels=labels, fontsize=8)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    if not windows and not data.modes:
        _no_data(ax, "faults.jsonl and modes.jsonl missing or empty")
    return _finish(fig, (ax,), "Faults (red) and maintenance (blue)", data)


_MODE_COLOURS = {
    "normal": "#2ca02c",
    "post_only": "#bcbd22",
    "cancel_only": "#ff7f0e",
    "halt": "#d62728",
}


def _mode_bar(ax: Axes, data: RunData) -> None:
    modes = sorted(data.modes)
    for index, (t, mode) in enumerate(modes):
        end = modes[index + 1][0] if index + 1 < len(modes) else data.t_end
        start = _rel(data, t)
        ax.broken_barh(
            [(start, max(0.05, end - t))],
            (-0.35, 0.7),
            color=_MODE_COLOURS.get(mode, "#7f7f7f"),
            alpha=0.8,
        )
        ax.text(start + 0.1, 0, mode, va="center", fontsize=7, color="white")
