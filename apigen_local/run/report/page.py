"""The report page: one HTML document with inline CSS, inline SVG charts and a sorting script."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .charts import funnel_chart, rates_chart, reasons_chart, time_chart
from .data import FunnelStep, GroupRate, ReportData, SampleRow, Table, is_scalar, json_text

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
            + _stage_note(step) + "</td>"
            + _num(step.checked, field="checked") + _num(step.passed, field="passed")
            + _num(step.rate, _pct(step.rate), field="rate") + _num(step.rejected, field="rejected")
            + _num(step.remaining, field="remaining")
            + f"{_num(step.remaining_share, _pct(step.remaining_share))}</tr>"
        )
    head = ("<tr><th>stage</th><th class=num>checked</th><th class=num>passed</th>"
            "<th class=num>pass rate</th><th class=num>rejected here</th><th class=num>rows left</th>"
            "<th class=num>of all rows</th></tr>")
    return f'<table id="funnel"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _stage_note(step: FunnelStep) -> str:
    if step.checked:
        return ""
    if step.not_run:
        return (f' <span class="muted" data-not-run="{step.not_run}">(not executed: no library, '
                f"{step.not_run:,} rows)</span>")
    return ' <span class="muted">(did not run)</span>'


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
            f'<div class="split"><div>{table}</div><div>{time_chart(data)}</div></div>')


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


def _reviewed_section(data: ReportData) -> str:
    figures = data.reviewed
    if figures is None:
        return ""
    rows = [["all accepted rows", figures.precision.total, figures.precision.text()]]
    rows += [[f"style {name}", share.total, share.text()] for name, share in figures.styles.items()]
    rows += [[f"function {name}", share.total, share.text()] for name, share in figures.functions.items()]
    table = _plain_table(Table(columns=["rows", "labelled", "precision (Wilson 95 % interval)"], rows=rows),
                         "reviewed-precision")
    extra = ""
    if figures.rejected_correct.total:
        extra += (f'<p id="reviewed-rejected">Correct among labelled rejected rows (what the checks threw away): '
                  f"{_e(figures.rejected_correct.text())}</p>")
    if figures.wrong_classes:
        extra += ("<p>Wrong accepted rows by class: "
                  + ", ".join(f"{_e(name)} {count}" for name, count in figures.wrong_classes.items()) + "</p>")
    if figures.bad_lines:
        extra += (f'<p class="muted">{len(figures.bad_lines)} unreadable line(s) of labels.jsonl were skipped.</p>')
    return (f'<section id="reviewed"><h2>Precision from your review</h2>'
            f'<p>{figures.labelled} rows labelled by a person with <code>apigen-local review</code> '
            f"({figures.skipped} skipped): correct rows among the labelled accepted rows.</p>"
            f"{table}{extra}</section>")


def _settings_section(data: ReportData) -> str:
    rows = [[key, value if is_scalar(value) else json_text(value)] for key, value in data.settings.items()]
    models = ", ".join(f"{name} ({count:,} rows)" for name, count in data.models.items()) or "—"
    table = _plain_table(Table(columns=["setting", "value"], rows=rows), "settings") if rows else (
        '<p class="muted">No run.json.</p>')
    return f'<p><b>model:</b> <span id="models">{_e(models)}</span></p>{table}'


def render_html(data: ReportData) -> str:
    """The report page: one HTML document with inline CSS, inline SVG charts and a sorting script."""
    cards = [("rows", f"{data.rows:,}"), ("accepted", f"{data.accepted:,}"),
             ("acceptance", _pct(data.acceptance)), ("rows/min", f"{data.throughput.rows_per_minute:,}"),
             ("wall time", _duration(data.throughput.wall_seconds))]
    if data.reviewed is not None and data.reviewed.precision.total:
        share = data.reviewed.precision
        cards.append(("reviewed precision", f"{_pct(share.rate or 0.0)} of {share.total}"))
    summary = "".join(f'<div class=card id="card-{_e(k.replace("/", "-").replace(" ", "-"))}"><b>{_e(v)}</b>'
                      f"<span>{_e(k)}</span></div>" for k, v in cards)
    calibration = ""
    if data.calibration is not None:
        tables = "".join(_plain_table(t, f"calibration-{i}") for i, t in enumerate(data.calibration))
        calibration = f'<section id="calibration"><h2>Judge calibration</h2>{tables}</section>'
    if data.labelled is not None:
        tables = "".join(_plain_table(t, f"labelled-{i}") for i, t in enumerate(data.labelled))
        calibration += (f'<section id="labelled"><h2>Precision on labelled rows</h2>'
                        f'<p>From <code>apigen-local calibrate --labels</code> for this model: precision of '
                        f'accepted rows and recall of correct rows, with Wilson 95 % intervals.</p>{tables}</section>')
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
<div class="split"><div>{_funnel_table(data)}</div><div>{funnel_chart(data)}</div></div></section>
<section id="reasons-section"><h2>Rejection reasons</h2>
<div class="split"><div>{_reasons_table(data)}</div><div>{reasons_chart(data)}</div></div></section>
<section id="styles-section"><h2>Pass rate per query style</h2>
<div class="split wide"><div>{_groups_table(data.styles, "styles", "style")}</div>
<div>{rates_chart(data.styles, "styles", "style")}</div></div></section>
<section id="functions-section"><h2>Pass rate per function</h2>
<p class="muted">A row counts for every function it calls. Click a column to sort.</p>
<div class="split wide"><div>{_groups_table(data.functions, "functions", "function")}</div>
<div>{rates_chart(data.functions, "functions", "function")}</div></div></section>
<section id="throughput-section"><h2>Throughput</h2>{_throughput_section(data)}</section>
{_reviewed_section(data)}
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
