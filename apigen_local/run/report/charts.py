"""The report's charts: matplotlib figures inlined as SVG, with text as text."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from typing import Any

from .data import CHART_GROUPS, GroupRate, ReportData

_STAGE_COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
                  "#ff9da7", "#9c755f", "#bab0ac"]
_PASS, _FAIL = "#59a14f", "#e15759"


def _stage_colour(stages: Sequence[str], stage: str) -> str:
    index = stages.index(stage) if stage in stages else len(stages)
    return _STAGE_COLOURS[index % len(_STAGE_COLOURS)]


def _figure(n_bars: int, width: float = 5.8) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, min(0.9 + 0.3 * max(n_bars, 1), 14)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _svg(fig: Any, name: str, title: str) -> str:
    """The figure as an inline ``<svg>`` with text as text and ids unique to this chart."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"apigen-report-{name}",
                                "font.family": ["DejaVu Sans", "sans-serif"]}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', text)
    text = re.sub(r'url\(#([^)]+)\)', rf'url(#{name}-\1)', text)
    text = re.sub(r'((?:xlink:)?href)="#([^"]+)"', rf'\1="#{name}-\2"', text)
    return (f'<figure class="chart" id="chart-{name}" role="img" aria-label="{html.escape(title)}">'
            f"{text}</figure>")


def funnel_chart(data: ReportData) -> str:
    labels = ["all rows", *(f"after {step.stage}" for step in data.funnel)]
    values = [data.rows, *(step.remaining for step in data.funnel)]
    colours = ["#bab0ac", *(_stage_colour(data.stages, step.stage) for step in data.funnel)]
    fig, ax = _figure(len(labels))
    bars = ax.barh(labels[::-1], values[::-1], color=colours[::-1])
    ax.bar_label(bars, labels=[f"{v:,} ({v / data.rows:.0%})" if data.rows else "0" for v in values[::-1]],
                 padding=3, fontsize=8)
    ax.set_xlabel("rows")
    ax.set_xlim(0, max(values + [1]) * 1.2)
    return _svg(fig, "funnel", "rows left after each stage")


def reasons_chart(data: ReportData) -> str:
    if not data.reasons:
        return ""
    shown = data.reasons[:CHART_GROUPS]
    fig, ax = _figure(len(shown))
    labels = [f"{c.stage}: {c.reason}" for c in shown][::-1]
    bars = ax.barh(labels, [c.count for c in shown][::-1],
                   color=[_stage_colour(data.stages, c.stage) for c in shown][::-1])
    ax.bar_label(bars, padding=3, fontsize=8, fmt="{:,.0f}")
    ax.set_xlabel("rejected rows")
    ax.set_xlim(0, max(c.count for c in shown) * 1.15)
    return _svg(fig, "reasons", "rejected rows per stage and reason")


def rates_chart(groups: Sequence[GroupRate], name: str, what: str) -> str:
    if not groups:
        return ""
    shown = sorted(groups[:CHART_GROUPS], key=lambda g: (g.rate, g.name))
    fig, ax = _figure(len(shown), width=4.5)  # it sits in the narrower column
    labels = [g.name for g in shown]
    ax.barh(labels, [1.0] * len(shown), color="#f4d6d6")
    bars = ax.barh(labels, [g.rate for g in shown], color=_PASS)
    ax.bar_label(bars, labels=[f"{g.rate:.0%} of {g.total:,}" for g in shown], padding=3, fontsize=8)
    ax.set_xlim(0, 1.25)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0%", "25%", "50%", "75%", "100%"])
    ax.set_xlabel(f"accepted rows per {what}"
                  + (f" ({CHART_GROUPS} with the most rows)" if len(groups) > CHART_GROUPS else ""))
    return _svg(fig, name, f"pass rate per {what}")


def time_chart(data: ReportData) -> str:
    seconds = data.throughput.stage_seconds
    if not seconds:
        return ""
    fig, ax = _figure(len(seconds))
    labels = list(seconds)[::-1]
    bars = ax.barh(labels, [seconds[k] for k in labels],
                   color=[_stage_colour(data.stages, k) for k in labels])
    ax.bar_label(bars, padding=3, fontsize=8, fmt="{:,.1f} s")
    ax.set_xlabel("seconds (summed over rows)")
    ax.set_xlim(0, max(max(seconds.values()), 1e-9) * 1.25)
    return _svg(fig, "time", "time per stage")
