"""The run report: one self-contained HTML page per run directory (``DIR/report.html``).

The page shows the funnel of rows through every stage, the rejection reasons, pass rates per
query style and per function, throughput, the judge's calibration when one ran, seeded samples
of accepted and rejected rows, and the run's settings. It needs no network: the charts are
matplotlib figures inlined as SVG, and a few lines of inline JavaScript sort the tables.

The aggregation is pure functions returning pydantic models (:func:`build_report` and the
functions it calls); :func:`render_html` turns a :class:`ReportData` into the page. Everything is
aggregated or sampled, so a run of 60,000 rows gives a page of the same size as one of 30.
"""

from __future__ import annotations

import hashlib
import heapq
import html
import io
import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..errors import ConfigError
from ..types import Record
from .files import RunFiles, read_records
from .stats import Rate, RunStats, compute_stats

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
SAMPLE_ROWS = 20  # accepted and rejected rows shown, each
CHART_GROUPS = 30  # bars at most in a per-function or per-style chart (the table has every group)
TEXT_CHARS = 600  # longest text shown for one value of a sample row
TOP_REASONS = 3  # reasons listed per function or style


# --------------------------------------------------------------------------- the models


class FunnelStep(BaseModel):
    """One stage of the funnel. ``checked``/``passed``/``rate`` are those of ``stats.json``."""

    stage: str
    checked: int = Field(description="rows this stage checked")
    passed: int = Field(description="rows that passed it")
    rate: float = Field(description="passed / checked")
    rejected: int = Field(description="rows whose first failure is this stage (reasons in stats.json)")
    remaining: int = Field(description="rows still in after this stage")
    remaining_share: float = Field(description="remaining / all rows")


class ReasonCount(BaseModel):
    """How many rows a stage rejected for one reason."""

    stage: str
    reason: str
    count: int


class GroupRate(BaseModel):
    """Accepted rows of one query style or one function, with its most common rejection reasons."""

    name: str
    total: int
    passed: int
    rate: float
    top_reasons: list[ReasonCount] = Field(default_factory=list)


class Throughput(BaseModel):
    """Speed figures of the run, from ``stats.json``."""

    wall_seconds: float = 0.0
    rows_per_minute: float = 0.0
    tokens_per_second: float = 0.0
    sandbox_calls: int = 0
    sandbox_calls_per_second: float = 0.0
    model_idle_seconds: float = 0.0
    stage_seconds: dict[str, float] = Field(default_factory=dict)


class SampleCall(BaseModel):
    """One call of a sample row and what running it gave."""

    name: str
    arguments: str = Field(description="the arguments as JSON (indented when long), cut to TEXT_CHARS")
    outcome: str = Field("", description="'ok', the failure reason, or '' when the call did not run")
    result: str = Field("", description="the result or the error, cut to TEXT_CHARS")


class SampleRow(BaseModel):
    """One accepted or rejected row, as the report shows it."""

    id: Any
    style: str
    accepted: bool
    query: str | None
    calls: list[SampleCall]
    stage: str = ""
    reason: str = ""
    detail: str = ""
    thought: str = ""
    raw_output: str = Field("", description="the model's raw output, for rows whose calls could not be read")


class Table(BaseModel):
    """A plain table: a title, column names and rows of cells (used for calibration and settings)."""

    title: str = ""
    columns: list[str]
    rows: list[list[Any]]


class RecordDigest(BaseModel):
    """What one pass over ``records.jsonl`` adds to ``stats.json``: reasons per group, samples, models."""

    style_reasons: dict[str, dict[str, int]] = Field(default_factory=dict)
    function_reasons: dict[str, dict[str, int]] = Field(default_factory=dict)
    models: dict[str, int] = Field(default_factory=dict)
    accepted: list[SampleRow] = Field(default_factory=list)
    rejected: list[SampleRow] = Field(default_factory=list)


class ReportData(BaseModel):
    """Everything the page shows."""

    run_dir: str
    created: str
    rows: int
    accepted: int
    acceptance: float
    stages: list[str]
    funnel: list[FunnelStep]
    reasons: list[ReasonCount]
    styles: list[GroupRate]
    functions: list[GroupRate]
    throughput: Throughput
    calibration: list[Table] | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    models: dict[str, int] = Field(default_factory=dict)
    sample_seed: int = 0
    accepted_samples: list[SampleRow] = Field(default_factory=list)
    rejected_samples: list[SampleRow] = Field(default_factory=list)
    has_records: bool = True


# --------------------------------------------------------------------------- aggregation


def record_stages() -> list[str]:
    """The checking stages in the order :class:`Record` declares their ``*_check`` fields."""
    return [name[: -len("_check")] for name in Record.model_fields if name.endswith("_check")]


def stage_order(stats: RunStats) -> list[str]:
    """The stages in the order rows meet them: ``stats.json``'s order, then any stage only a
    rejection reason names (placed by the order of the record's checks)."""
    order = list(stats.stages)
    known = record_stages()
    for key in stats.reasons:
        stage = _split_reason(key)[0]
        if stage in order:
            continue
        later = [s for s in known[known.index(stage) + 1:] if s in order] if stage in known else []
        order.insert(order.index(later[0]) if later else len(order), stage)
    return order


def _split_reason(key: str) -> tuple[str, str]:
    stage, _, reason = key.partition("/")
    return stage, reason or "failed"


def reason_counts(stats: RunStats) -> list[ReasonCount]:
    """``stats.json``'s reasons as (stage, reason, count), by stage order, then most common first."""
    order = stage_order(stats)
    counts = [ReasonCount(stage=s, reason=r, count=n)
              for s, r, n in ((*_split_reason(key), n) for key, n in stats.reasons.items())]
    return sorted(counts, key=lambda c: (order.index(c.stage), -c.count, c.reason))


def funnel(stats: RunStats) -> list[FunnelStep]:
    """Rows through every stage: checked, passed and rate from ``stats.json``; rejected is the
    rows whose first failure is the stage; remaining is what is left after it."""
    rejected_at: Counter[str] = Counter()
    for count in reason_counts(stats):
        rejected_at[count.stage] += count.count
    steps, remaining = [], stats.rows
    for stage in stage_order(stats):
        rate = stats.stages.get(stage, Rate())
        remaining -= rejected_at[stage]
        steps.append(FunnelStep(
            stage=stage, checked=rate.total, passed=rate.passed, rate=rate.rate,
            rejected=rejected_at[stage], remaining=remaining,
            remaining_share=round(remaining / stats.rows, 4) if stats.rows else 0.0,
        ))
    return steps


def group_rates(rates: Mapping[str, Rate], reasons: Mapping[str, Mapping[str, int]] | None = None,
                *, top: int = TOP_REASONS) -> list[GroupRate]:
    """One :class:`GroupRate` per style or function, most rows first, with its ``top`` reasons."""
    groups = []
    for name, rate in rates.items():
        counted = Counter((reasons or {}).get(name, {}))
        groups.append(GroupRate(
            name=name, total=rate.total, passed=rate.passed, rate=rate.rate,
            top_reasons=[ReasonCount(stage=s, reason=r, count=n)
                         for s, r, n in ((*_split_reason(key), n) for key, n in counted.most_common(top))],
        ))
    return sorted(groups, key=lambda g: (-g.total, g.name))


def throughput(stats: RunStats) -> Throughput:
    """The run's speed figures."""
    return Throughput(**stats.model_dump(include=set(Throughput.model_fields)))


def _sample_key(seed: int, record_id: int) -> bytes:
    return hashlib.blake2b(f"{seed}:{record_id}".encode(), digest_size=8).digest()


def digest_records(records: Iterable[Record], *, seed: int = 0, samples: int = SAMPLE_ROWS) -> RecordDigest:
    """One pass over the records: rejection reasons per style and function, model names, and
    ``samples`` accepted and ``samples`` rejected rows.

    The sample is the rows with the smallest hash of ``(seed, id)``: the same seed picks the
    same rows whatever order the records come in, and memory stays bounded for any run size.
    """
    style_reasons: dict[str, Counter[str]] = defaultdict(Counter)
    function_reasons: dict[str, Counter[str]] = defaultdict(Counter)
    models: Counter[str] = Counter()
    heaps: dict[bool, list[tuple[bytes, int, Record]]] = {True: [], False: []}
    for record in records:
        rejection = record.rejection
        if record.model_name:
            models[record.model_name] += 1
        if rejection is not None:
            key = "/".join(rejection)
            style_reasons[record.style][key] += 1
            for name in {call.name for call in record.answers}:
                function_reasons[name][key] += 1
        heap = heaps[rejection is None]
        # a max-heap on the hash (negated bytes) keeps the ``samples`` smallest
        entry = (bytes(255 - b for b in _sample_key(seed, record.id)), record.id, record)
        if len(heap) < samples:
            heapq.heappush(heap, entry)
        elif samples and entry[:2] > heap[0][:2]:
            heapq.heapreplace(heap, entry)
    chosen = {ok: sorted((entry[2] for entry in heap), key=lambda r: r.id) for ok, heap in heaps.items()}
    return RecordDigest(
        style_reasons={k: dict(v) for k, v in style_reasons.items()},
        function_reasons={k: dict(v) for k, v in function_reasons.items()},
        models=dict(models.most_common()),
        accepted=[sample_row(r) for r in chosen[True]],
        rejected=[sample_row(r) for r in chosen[False]],
    )


def _cut(text: str, limit: int = TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more characters]"


def _json(value: Any, *, indent: int | None = None) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, indent=indent, default=str)
    except (TypeError, ValueError):
        return repr(value)


def sample_row(record: Record) -> SampleRow:
    """How the report shows one record: query, calls with their results, and why it failed."""
    results = record.execution_result
    calls = []
    for index, call in enumerate(record.answers):
        outcome = result = ""
        if index < len(results):
            ran = results[index]
            outcome = "ok" if ran.ok else (ran.reason or "failed")
            if ran.ok:
                result = _json(ran.result)
            else:
                result = ": ".join(p for p in (ran.error_type, ran.error_message) if p) or ran.stderr
        arguments = _json(call.arguments)
        if len(arguments) > 100:  # long arguments: one per line
            arguments = _json(call.arguments, indent=1)
        calls.append(SampleCall(name=call.name, arguments=_cut(arguments),
                                outcome=outcome, result=_cut(result)))
    stage, reason = record.rejection or ("", "")
    check = getattr(record, f"{stage}_check", None) if stage else None
    return SampleRow(
        id=record.source_id if record.source_id is not None else record.id,
        style=record.style, accepted=not stage, query=_cut(record.query) if record.query is not None else None,
        calls=calls, stage=stage, reason=reason, detail=_cut(check.detail if check is not None else ""),
        thought=_cut(record.thought),
        raw_output=_cut(record.raw_output) if stage and not record.answers else "",
    )


def calibration_tables(calibration: Any) -> list[Table]:
    """Whatever ``stats.json``'s ``calibration`` holds, as tables: its plain values as one
    key/value table; each mapping of mappings as a matrix (deeper mappings flattened into
    ``a.b`` columns); each other mapping as key/value; each list of objects as rows; anything
    else as JSON. A ``{total, rate, ...}`` mapping is one cell, ``rate (hit/total)``."""
    if not isinstance(calibration, Mapping):
        return [Table(columns=["value"], rows=[[_cell(calibration)]])]
    plain = [[key, _cell(value)] for key, value in calibration.items() if _is_leaf(value)]
    tables = [Table(title="summary", columns=["key", "value"], rows=plain)] if plain else []
    for key, value in calibration.items():
        if _is_leaf(value):
            continue
        if isinstance(value, Mapping) and value and all(isinstance(v, Mapping) for v in value.values()):
            flat = {name: _flatten(inner) for name, inner in value.items()}
            columns = list(dict.fromkeys(k for inner in flat.values() for k in inner))
            tables.append(Table(title=str(key), columns=["", *columns],
                                rows=[[name, *(inner.get(c) for c in columns)] for name, inner in flat.items()]))
        elif isinstance(value, Mapping):
            tables.append(Table(title=str(key), columns=["key", "value"],
                                rows=[[k, v] for k, v in _flatten(value).items()]))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            flat_rows = [_flatten(inner) for inner in value]
            columns = list(dict.fromkeys(k for inner in flat_rows for k in inner))
            tables.append(Table(title=str(key), columns=columns,
                                rows=[[inner.get(c) for c in columns] for inner in flat_rows]))
        else:
            tables.append(Table(title=str(key), columns=["value"], rows=[[_cell(value)]]))
    return tables


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _is_rate(value: Any) -> bool:
    return isinstance(value, Mapping) and {"total", "rate"} <= set(value) and all(map(_is_scalar, value.values()))


def _is_leaf(value: Any) -> bool:
    return _is_scalar(value) or _is_rate(value)


def _cell(value: Any) -> Any:
    if _is_scalar(value):
        return value
    if _is_rate(value):
        hit = next((value[k] for k in ("hit", "passed", "caught") if k in value), None)
        rate = value["rate"]
        text = f"{rate:.1%}" if isinstance(rate, (int, float)) and not isinstance(rate, bool) else str(rate)
        return f"{text} ({hit}/{value['total']})" if hit is not None else f"{text} of {value['total']}"
    return _json(value)


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and not _is_rate(value):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = _cell(value)
    return flat


def load_stats(run_dir: str | Path) -> tuple[RunStats, dict[str, Any]]:
    """``stats.json`` of a run as :class:`RunStats` and as the raw mapping (which may hold more,
    such as ``calibration``); computed from ``records.jsonl`` when there is no ``stats.json``."""
    files = RunFiles(run_dir)
    if not files.dir.is_dir():
        raise ConfigError(f"{files.dir} is not a run directory (it does not exist or is not a folder)")
    if files.stats.is_file():
        try:
            raw = json.loads(files.stats.read_text(encoding="utf-8"))
            return RunStats.model_validate(raw), raw
        except (ValueError, UnicodeDecodeError) as exc:
            reason = str(exc).splitlines()[0]
            raise ConfigError(f"{files.stats} is not a valid stats.json: {reason}") from exc
    if files.records.is_file():
        stats = compute_stats(read_records(files.records))
        return stats, json.loads(stats.model_dump_json())
    raise ConfigError(f"{files.dir} holds no run (no stats.json or records.jsonl)")


def load_settings(run_dir: str | Path) -> dict[str, Any]:
    """``run.json``: the settings that define the run ({} when it is missing or unreadable)."""
    try:
        settings = json.loads(RunFiles(run_dir).run.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return settings if isinstance(settings, dict) else {"run.json": settings}


def build_report(run_dir: str | Path, *, records: Iterable[Record] | None = None, seed: int = 0,
                 samples: int = SAMPLE_ROWS) -> ReportData:
    """Aggregate a run directory. ``records`` saves rereading ``records.jsonl`` when the caller
    holds them; ``seed`` picks the sample rows."""
    files = RunFiles(run_dir)
    stats, raw = load_stats(files.dir)
    has_records = records is not None or files.records.is_file()
    if records is None:
        records = read_records(files.records) if files.records.is_file() else []
    digest = digest_records(records, seed=seed, samples=samples)
    calibration = raw.get("calibration")
    return ReportData(
        run_dir=str(files.dir.resolve()),
        created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        rows=stats.rows, accepted=stats.accepted, acceptance=stats.acceptance,
        stages=stage_order(stats), funnel=funnel(stats), reasons=reason_counts(stats),
        styles=group_rates(stats.styles, digest.style_reasons),
        functions=group_rates(stats.functions, digest.function_reasons),
        throughput=throughput(stats),
        calibration=calibration_tables(calibration) if calibration is not None else None,
        settings=load_settings(files.dir), models=digest.models, sample_seed=seed,
        accepted_samples=digest.accepted, rejected_samples=digest.rejected, has_records=has_records,
    )


def write_report(run_dir: str | Path, out: str | Path | None = None, *,
                 records: Iterable[Record] | None = None, seed: int = 0) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``run_dir/report.html``); return its path."""
    data = build_report(run_dir, records=records, seed=seed)
    path = Path(out) if out is not None else Path(run_dir) / REPORT_NAME
    page = render_html(data)
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(page, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {path}: {exc.strerror or exc}") from exc
    return path


# --------------------------------------------------------------------------- charts

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


def _funnel_chart(data: ReportData) -> str:
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


def _reasons_chart(data: ReportData) -> str:
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


def _rates_chart(groups: Sequence[GroupRate], name: str, what: str) -> str:
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


def _time_chart(data: ReportData) -> str:
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


# --------------------------------------------------------------------------- the page

_CSS = """
:root { --fg: #1d2330; --muted: #5f6b7a; --line: #d9dee5; --bg: #f6f7f9; --ok: #2f7d32; --bad: #b3261e; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); background: var(--bg); margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 18px 0 8px; }
.muted { color: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 18px 0 6px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 150px; }
.card b { display: block; font-size: 22px; }
.card span { color: var(--muted); font-size: 13px; }
.split { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 20px; align-items: start; }
.split.wide { grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); }
@media (max-width: 900px) { .split, .split.wide { grid-template-columns: 1fr; } }
table { border-collapse: collapse; background: #fff; border: 1px solid var(--line); width: 100%; font-size: 14px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #eef1f5; font-weight: 600; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th::after { content: " \\2195"; color: #9aa5b1; font-size: 11px; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; color: var(--fg); }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; color: var(--fg); }
.scroll { max-height: 560px; overflow: auto; }
figure.chart { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 6px; }
figure.chart svg { width: 100%; height: auto; display: block; }
.rows { display: grid; grid-template-columns: minmax(0, 1fr); gap: 10px; }
article.row { background: #fff; border: 1px solid var(--line); border-left: 5px solid var(--ok);
              border-radius: 6px; padding: 10px 14px; }
article.row.rejected { border-left-color: var(--bad); }
article.row header { display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap;
                     font-size: 13px; color: var(--muted); }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px;
         background: #e8f3e8; color: var(--ok); }
.badge.bad { background: #fbe9e7; color: var(--bad); }
.query { font-size: 15px; margin: 6px 0; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word;
      font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
table.calls { table-layout: fixed; margin-top: 4px; }
table.calls th:nth-child(1) { width: 18%; } table.calls th:nth-child(2) { width: 40%; }
table.calls th:nth-child(3) { width: 12%; } table.calls th:nth-child(4) { width: 30%; }
.calls td { font-size: 13px; }
td.reasons { font-size: 13px; overflow-wrap: anywhere; }
.why { margin-top: 6px; font-size: 13.5px; }
.thought { margin-top: 4px; font-size: 13px; color: var(--muted); }
"""

_SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var descending = th.getAttribute("aria-sort") !== "descending";
      table.querySelectorAll("thead th").forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var key = function (row) {
        var cell = row.cells[column];
        var value = cell.getAttribute("data-value");
        return value === null ? cell.textContent.trim().toLowerCase() : parseFloat(value);
      };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), order = x < y ? -1 : x > y ? 1 : 0;
        return descending ? -order : order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | int, text: str | None = None, field: str = "") -> str:
    attr = f' data-field="{field}"' if field else ""
    return f'<td class="num"{attr} data-value="{value}">{_e(text if text is not None else f"{value:,}")}</td>'


def _pct(rate: float) -> str:
    return f"{rate:.1%}"


def _funnel_table(data: ReportData) -> str:
    rows = [f'<tr data-stage="all"><td>all rows</td>{_num(data.rows)}<td></td><td></td><td></td>'
            f'{_num(data.rows)}{_num(1.0, "100.0%")}</tr>']
    for step in data.funnel:
        rows.append(
            f'<tr data-stage="{_e(step.stage)}"><td>{_e(step.stage)}'
            + ("" if step.checked else ' <span class="muted">(did not run)</span>') + "</td>"
            + _num(step.checked, field="checked") + _num(step.passed, field="passed")
            + _num(step.rate, _pct(step.rate), field="rate") + _num(step.rejected, field="rejected")
            + _num(step.remaining, field="remaining")
            + f"{_num(step.remaining_share, _pct(step.remaining_share))}</tr>"
        )
    head = ("<tr><th>stage</th><th class=num>checked</th><th class=num>passed</th>"
            "<th class=num>pass rate</th><th class=num>rejected here</th><th class=num>rows left</th>"
            "<th class=num>of all rows</th></tr>")
    return f'<table id="funnel"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _reasons_table(data: ReportData) -> str:
    if not data.reasons:
        return '<p class="muted">No row was rejected.</p>'
    rows = "".join(f'<tr><td>{_e(c.stage)}</td><td>{_e(c.reason)}</td>{_num(c.count)}'
                   f"{_num(round(c.count / data.rows, 4), _pct(c.count / data.rows))}</tr>"
                   for c in data.reasons)
    return ('<div class="scroll"><table id="reasons" class="sortable"><thead><tr><th>stage</th><th>reason</th>'
            f'<th class=num>rows</th><th class=num>of all rows</th></tr></thead><tbody>{rows}</tbody></table></div>')


def _groups_table(groups: Sequence[GroupRate], table_id: str, what: str) -> str:
    if not groups:
        return '<p class="muted">No rows.</p>'
    rows = []
    for g in groups:
        reasons = "<br>".join(f"{_e(r.stage)}: {_e(r.reason)} ({r.count:,})" for r in g.top_reasons)
        rows.append(f"<tr><td>{_e(g.name)}</td>{_num(g.total)}{_num(g.passed)}{_num(g.rate, _pct(g.rate))}"
                    f'<td class="reasons">{reasons}</td></tr>')
    return (f'<div class="scroll"><table id="{table_id}" class="sortable"><thead><tr><th>{_e(what)}</th>'
            "<th class=num>rows</th><th class=num>accepted</th><th class=num>pass rate</th>"
            f'<th>most common rejections</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def _throughput_section(data: ReportData) -> str:
    t = data.throughput
    figures = [("rows/min", f"{t.rows_per_minute:,}"), ("tokens/s (generation)", f"{t.tokens_per_second:,}"),
               ("sandbox calls/s", f"{t.sandbox_calls_per_second:,}"), ("sandbox calls", f"{t.sandbox_calls:,}"),
               ("wall time", _duration(t.wall_seconds)),
               ("model waited for the sandbox", _duration(t.model_idle_seconds))]
    cards = "".join(f"<div class=card><b>{_e(v)}</b><span>{_e(k)}</span></div>" for k, v in figures)
    rows = "".join(f"<tr><td>{_e(k)}</td>{_num(v, f'{v:,.2f} s')}</tr>" for k, v in t.stage_seconds.items())
    table = ('<table id="stage-seconds"><thead><tr><th>stage</th><th class=num>seconds (summed over rows)</th>'
             f"</tr></thead><tbody>{rows}</tbody></table>") if rows else '<p class="muted">No timings.</p>'
    return (f'<div class="cards" id="throughput">{cards}</div>'
            f'<div class="split"><div>{table}</div><div>{_time_chart(data)}</div></div>')


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _plain_table(table: Table, table_id: str) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(_num(v, _fmt(v)) if isinstance(v, (int, float)) and not isinstance(v, bool)
                                    else f"<td>{_e(_fmt(v))}</td>" for v in row) + "</tr>"
                   for row in table.rows)
    title = f"<h3>{_e(table.title)}</h3>" if table.title else ""
    return f'{title}<table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _sample_rows(rows: Sequence[SampleRow], kind: str) -> str:
    if not rows:
        return f'<p class="muted">No {kind} rows.</p>'
    parts = []
    for row in rows:
        badge = ('<span class="badge">accepted</span>' if row.accepted
                 else f'<span class="badge bad">{_e(row.stage)}: {_e(row.reason)}</span>')
        query = (f'<div class="query">{_e(row.query)}</div>' if row.query is not None
                 else '<div class="query muted">(no query could be read)</div>')
        calls = ""
        if row.calls:
            cells = "".join(
                f"<tr><td><code>{_e(c.name)}</code></td><td><pre>{_e(c.arguments)}</pre></td>"
                f"<td>{_e(c.outcome or 'not run')}</td><td><pre>{_e(c.result)}</pre></td></tr>"
                for c in row.calls)
            calls = ('<table class="calls"><thead><tr><th>call</th><th>arguments</th><th>outcome</th>'
                     f"<th>result</th></tr></thead><tbody>{cells}</tbody></table>")
        raw = (f'<details><summary>raw model output</summary><pre>{_e(row.raw_output)}</pre></details>'
               if row.raw_output else "")
        why = f'<div class="why"><b>why:</b> {_e(row.detail)}</div>' if not row.accepted and row.detail else ""
        thought = f'<div class="thought"><b>judge:</b> {_e(row.thought)}</div>' if row.thought else ""
        parts.append(f'<article class="row{"" if row.accepted else " rejected"}" data-id="{_e(row.id)}">'
                     f"<header><span>row {_e(row.id)}</span><span>{_e(row.style)}</span>{badge}</header>"
                     f"{query}{calls}{raw}{why}{thought}</article>")
    return f'<div class="rows" id="{kind}-rows">{"".join(parts)}</div>'


def _settings_section(data: ReportData) -> str:
    rows = [[key, value if _is_scalar(value) else _json(value)] for key, value in data.settings.items()]
    models = ", ".join(f"{name} ({count:,} rows)" for name, count in data.models.items()) or "—"
    table = _plain_table(Table(columns=["setting", "value"], rows=rows), "settings") if rows else (
        '<p class="muted">No run.json.</p>')
    return f'<p><b>model:</b> <span id="models">{_e(models)}</span></p>{table}'


def render_html(data: ReportData) -> str:
    """The report page: one HTML document with inline CSS, inline SVG charts and a sorting script."""
    cards = [("rows", f"{data.rows:,}"), ("accepted", f"{data.accepted:,}"),
             ("acceptance", _pct(data.acceptance)), ("rows/min", f"{data.throughput.rows_per_minute:,}"),
             ("wall time", _duration(data.throughput.wall_seconds))]
    summary = "".join(f'<div class=card id="card-{_e(k.replace("/", "-").replace(" ", "-"))}"><b>{_e(v)}</b>'
                      f"<span>{_e(k)}</span></div>" for k, v in cards)
    calibration = ""
    if data.calibration is not None:
        tables = "".join(_plain_table(t, f"calibration-{i}") for i, t in enumerate(data.calibration))
        calibration = f'<section id="calibration"><h2>Judge calibration</h2>{tables}</section>'
    note = "" if data.has_records else '<p class="muted">records.jsonl is missing: no samples or reasons per group.</p>'
    n_acc, n_rej = len(data.accepted_samples), len(data.rejected_samples)
    body = f"""
<main>
<h1>Run report</h1>
<div class="muted">{_e(data.run_dir)} · written {_e(data.created)}</div>
<div class="cards" id="summary">{summary}</div>
{note}
<section id="funnel-section"><h2>Funnel</h2>
<p class="muted">Rows through each stage in order. <i>checked</i>, <i>passed</i> and <i>pass rate</i>
are the stage's own; <i>rejected here</i> counts rows whose first failure is this stage.</p>
<div class="split"><div>{_funnel_table(data)}</div><div>{_funnel_chart(data)}</div></div></section>
<section id="reasons-section"><h2>Rejection reasons</h2>
<div class="split"><div>{_reasons_table(data)}</div><div>{_reasons_chart(data)}</div></div></section>
<section id="styles-section"><h2>Pass rate per query style</h2>
<div class="split wide"><div>{_groups_table(data.styles, "styles", "style")}</div>
<div>{_rates_chart(data.styles, "styles", "style")}</div></div></section>
<section id="functions-section"><h2>Pass rate per function</h2>
<p class="muted">A row counts for every function it calls. Click a column to sort.</p>
<div class="split wide"><div>{_groups_table(data.functions, "functions", "function")}</div>
<div>{_rates_chart(data.functions, "functions", "function")}</div></div></section>
<section id="throughput-section"><h2>Throughput</h2>{_throughput_section(data)}</section>
{calibration}
<section id="samples"><h2>Sample rows</h2>
<p class="muted">{n_acc} accepted and {n_rej} rejected rows, picked with seed {data.sample_seed}
(<code>apigen-local report DIR --seed N</code> picks others).</p>
<h3>Accepted</h3>{_sample_rows(data.accepted_samples, "accepted")}
<h3>Rejected</h3>{_sample_rows(data.rejected_samples, "rejected")}</section>
<section id="settings-section"><h2>Settings</h2>{_settings_section(data)}</section>
</main>"""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>apigen-local report · {_e(Path(data.run_dir).name)}</title>"
            f"<style>{_CSS}</style></head><body>{body}<script>{_SORT_SCRIPT}</script></body></html>\n")


def write_report_or_warn(run_dir: str | Path, *, records: Iterable[Record] | None = None) -> Path | None:
    """:func:`write_report` for the end of a run: a failure is one warning line, never an error,
    so the run's own files are never lost to it."""
    try:
        return write_report(run_dir, records=records)
    except Exception as exc:
        message = (str(exc).strip().splitlines() or [""])[0]
        log.warning("could not write the run report %s: %s%s", Path(run_dir) / REPORT_NAME,
                    type(exc).__name__, f": {message}" if message else "")
        return None
