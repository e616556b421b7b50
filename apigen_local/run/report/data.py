"""The report's figures: pure functions from a run directory's files to a :class:`ReportData`.

Everything is aggregated or sampled, so a run of 60,000 rows gives a page of the same size as
one of 30.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ...errors import ConfigError
from ...types import Record
from ..files import RunFiles, read_own, read_records
from ..review_figures import ReviewFigures, review_figures
from ..review_log import labels_path, read_labels
from ..stats import Rate, RunStats, compute_stats

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
    not_run: int = Field(0, description="rows the stage could not run on (execution with no library)")


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
    labelled: list[Table] | None = None  # precision on the model's labelled rows (calibrate --labels)
    reviewed: ReviewFigures | None = None  # precision from a person's review of this run (labels.jsonl)
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
            not_run=stats.not_run.get(stage, 0),
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


def sample_key(seed: int, record_id: int) -> bytes:
    """The order of a seeded sample: the rows with the smallest keys are picked (report and review)."""
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
        entry = (bytes(255 - b for b in sample_key(seed, record.id)), record.id, record)
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


def cut_text(text: str, limit: int = TEXT_CHARS) -> str:
    """``text``, cut at ``limit`` characters with a note of how much was left out."""
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more characters]"


def json_text(value: Any, *, indent: int | None = None) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, indent=indent, default=str)
    except (TypeError, ValueError):
        return repr(value)


def call_outcome(record: Record, index: int) -> tuple[str, str]:
    """What running call ``index`` of ``record`` gave: ``("ok", result as JSON)``, ``(failure reason,
    the error)``, or ``("", "")`` for a call that did not run."""
    if index >= len(record.execution_result):
        return "", ""
    ran = record.execution_result[index]
    if ran.ok:
        return "ok", json_text(ran.result)
    return ran.reason or "failed", ": ".join(p for p in (ran.error_type, ran.error_message) if p) or ran.stderr


def sample_row(record: Record) -> SampleRow:
    """How the report shows one record: query, calls with their results, and why it failed."""
    calls = []
    for index, call in enumerate(record.answers):
        outcome, result = call_outcome(record, index)
        arguments = json_text(call.arguments)
        if len(arguments) > 100:  # long arguments: one per line
            arguments = json_text(call.arguments, indent=1)
        calls.append(SampleCall(name=call.name, arguments=cut_text(arguments),
                                outcome=outcome, result=cut_text(result)))
    stage, reason = record.rejection or ("", "")
    check = getattr(record, f"{stage}_check", None) if stage else None
    return SampleRow(
        id=record.written_id,
        style=record.style, accepted=not stage, query=cut_text(record.query) if record.query is not None else None,
        calls=calls, stage=stage, reason=reason, detail=cut_text(check.detail if check is not None else ""),
        thought=cut_text(record.thought),
        raw_output=cut_text(record.raw_output) if stage and not record.answers else "",
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


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _is_rate(value: Any) -> bool:
    return isinstance(value, Mapping) and {"total", "rate"} <= set(value) and all(map(is_scalar, value.values()))


def _is_leaf(value: Any) -> bool:
    return is_scalar(value) or _is_rate(value)


def _cell(value: Any) -> Any:
    if is_scalar(value):
        return value
    if _is_rate(value):
        hit = next((value[k] for k in ("hit", "passed", "caught") if k in value), None)
        rate = value["rate"]
        text = f"{rate:.1%}" if isinstance(rate, (int, float)) and not isinstance(rate, bool) else str(rate)
        return f"{text} ({hit}/{value['total']})" if hit is not None else f"{text} of {value['total']}"
    return json_text(value)


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
    if os.path.lexists(files.stats):
        try:
            raw = json.loads(read_own(files.stats))
            return RunStats.model_validate(raw), raw
        except (ValueError, RecursionError) as exc:
            reason = (str(exc).splitlines() or ["nested too deeply"])[0]
            raise ConfigError(f"{files.stats} is not a valid stats.json ({reason}): delete it, and it is "
                              "computed again from records.jsonl") from None
    if os.path.lexists(files.records):
        stats = compute_stats(read_records(files.records))
        return stats, json.loads(stats.model_dump_json())
    raise ConfigError(f"{files.dir} holds no run (no stats.json or records.jsonl)")


def load_settings(run_dir: str | Path) -> dict[str, Any]:
    """``run.json``: the settings that define the run ({} when it is missing or unreadable)."""
    try:
        settings = json.loads(read_own(RunFiles(run_dir).run))
    except (OSError, ValueError, RecursionError, ConfigError):
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
    log = read_labels(labels_path(files.dir))
    labelled_records: dict[int, Record] = {}

    def keeping_labelled(records: Iterable[Record]) -> Iterator[Record]:
        for record in records:
            if record.id in log.current:
                labelled_records[record.id] = record
            yield record

    digest = digest_records(keeping_labelled(records), seed=seed, samples=samples)
    reviewed = review_figures(log, labelled_records) if log.events or log.bad_lines else None
    calibration, labelled = raw.get("calibration"), raw.get("labelled")
    return ReportData(
        run_dir=str(files.dir.resolve()),
        created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        rows=stats.rows, accepted=stats.accepted, acceptance=stats.acceptance,
        stages=stage_order(stats), funnel=funnel(stats), reasons=reason_counts(stats),
        styles=group_rates(stats.styles, digest.style_reasons),
        functions=group_rates(stats.functions, digest.function_reasons),
        throughput=throughput(stats),
        calibration=calibration_tables(calibration) if calibration is not None else None,
        labelled=calibration_tables(labelled) if labelled is not None else None, reviewed=reviewed,
        settings=load_settings(files.dir), models=digest.models, sample_seed=seed,
        accepted_samples=digest.accepted, rejected_samples=digest.rejected, has_records=has_records,
    )
