"""Precision and recall of the checks on labelled real rows (``calibrate --labels``, issue 29).

A labelled row is a generated row with a person's verdict by ``docs/labelling.md``: ``correct``
or ``wrong`` with an error class. Format, grounding and the semantic stage (its model-free part,
plus the function-fit check when a model and the library are given) are run again on each row,
so a changed check is measured on the same rows; dedup and execution outcomes come from the run
that produced the row (a row that did not run in the sandbox counts as not executed, so it is
never accepted).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from ..checks.format import check_answers
from ..checks.part import ground_row
from ..checks.semantic import SemanticChecker
from ..errors import ConfigError
from ..jsonl import BadLine, parse_line, split_lines
from ..types import STAGE_ORDER, CheckResult, FunctionCall, Stage, Tool
from .calibration import cache_path
from .files import read_records, read_settings, write_atomic
from .review_log import LABELS_NAME, read_labels

LABELS_CACHE = "labels"


class LabelledRow(BaseModel):
    """One row of a labelled file (``benchmarks/labelled/real_*.jsonl``)."""

    row_id: str
    library: str = ""
    mode: str = "query_first"
    style: str = ""
    tools: list[Tool]
    query: str
    answers: list[FunctionCall]
    duplicate: bool = False
    execution: dict[str, Any] | None = None  # {"passed": bool, "reason": str | None}, from the run
    label: Literal["correct", "wrong"]
    error_class: str | None = None
    note: str = ""


class Share(BaseModel):
    """``hit`` of ``total``, with its Wilson 95 % score interval."""

    hit: int = 0
    total: int = 0

    @property
    def rate(self) -> float | None:
        return self.hit / self.total if self.total else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.hit, self.total)

    def text(self) -> str:
        """``"92.3 % (12/13, 95 % CI 66.7-98.6)"``, or ``"n/a (0/0)"``."""
        if not self.total:
            return "n/a (0/0)"
        low, high = wilson(self.hit, self.total) or (0.0, 0.0)
        return (f"{100 * self.hit / self.total:.1f} % ({self.hit}/{self.total}, "
                f"95 % CI {100 * low:.1f}-{100 * high:.1f})")


def wilson(hit: int, total: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion ``hit / total`` (``None`` when ``total`` is 0)."""
    if total <= 0:
        return None
    p = hit / total
    centre = p + z * z / (2 * total)
    margin = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    scale = 1 + z * z / total
    return max(0.0, (centre - margin) / scale), min(1.0, (centre + margin) / scale)


class StageFigure(BaseModel):
    """What one stage did to the labelled rows that reached it."""

    correct_kept: Share = Field(default_factory=Share)
    wrong_rejected: Share = Field(default_factory=Share)


class LabelFigures(BaseModel):
    """Precision and recall of the whole pipeline and per stage, on labelled rows."""

    rows: int
    correct: int
    accepted: int
    precision: Share  # correct rows among the accepted
    recall: Share  # accepted rows among the correct
    stages: dict[str, StageFigure]
    wrong_by_class: dict[str, Share]  # per error class: wrong rows rejected
    rejected_by: dict[str, int]  # per "stage:reason", the labelled rows it rejected

    def summary(self) -> dict[str, Any]:
        """The figures ``stats.json`` keeps."""
        figures: dict[str, Any] = {"rows": self.rows, "correct": self.correct, "accepted": self.accepted}
        for name, share in (("precision", self.precision), ("recall", self.recall)):
            low, high = share.interval or (None, None)
            figures.update({name: share.rate, f"{name}_low": low, f"{name}_high": high})
        return figures


class LabelReport(BaseModel):
    """What ``calibrate --labels`` writes (``labels.json``), and keeps per model when one is named
    (the per-model cache that ``stats.json`` and ``report.html`` of that model's later runs read).
    ``model`` and ``model_file`` are ``None`` when no model took part: the checks measured need none."""

    model: str | None = None
    model_file: str | None = None
    labels_file: str
    measured: str  # UTC time of the measurement
    figures: LabelFigures

    def summary(self) -> dict[str, Any]:
        """The figures ``stats.json`` keeps."""
        return {"model": self.model, "labels_file": self.labels_file, "measured": self.measured,
                **self.figures.summary()}


def save_for_model(report: LabelReport) -> Path | None:
    """Keep ``report`` where :func:`load_for_model` finds it and return that file; ``None`` when
    the report names no model, or the cache cannot be written (then it is skipped)."""
    if report.model_file is None:
        return None
    target = cache_path(report.model_file, LABELS_CACHE)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, report.model_dump_json(indent=2))
    except (OSError, ConfigError):
        return None
    return target


def load_for_model(model_file: str | Path | None) -> LabelReport | None:
    """The latest label figures of ``model_file``, or ``None``."""
    if model_file is None:
        return None
    try:
        return LabelReport.model_validate_json(cache_path(model_file, LABELS_CACHE).read_text())
    except (OSError, ValueError):
        return None


def read_labelled(path: str | Path) -> list[LabelledRow]:
    """The rows of a labelled JSONL file, or of a review's ``labels.jsonl`` joined with the records
    beside it; one line that is not a labelled row is an error."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"labels file not found: {file}")
    if file.name == LABELS_NAME and (file.parent / "records.jsonl").is_file():
        rows = reviewed_rows(file)
    else:
        rows = []
        for line in split_lines(file.read_bytes()):
            try:
                rows.append(LabelledRow.model_validate(parse_line(line)))
            except BadLine as exc:
                raise ConfigError(f"labels file {file}: {exc}") from None
            except ValidationError as exc:
                first = str(exc).splitlines()[0]
                raise ConfigError(f"labels file {file} {line.where()} is not a labelled row: {first}") from None
    if not rows:
        raise ConfigError(f"labels file {file} holds no labelled rows")
    return rows


def reviewed_rows(labels_file: Path) -> list[LabelledRow]:
    """The rows a person labelled correct or wrong in ``apigen-local review``, with what their run
    recorded (their dedup and execution outcomes among it)."""
    log = read_labels(labels_file)
    settings = labels_file.parent / "run.json"
    mode = str(read_settings(settings).get("mode", "query_first")) if settings.is_file() else "query_first"
    rows = []
    for record in read_records(labels_file.parent / "records.jsonl"):
        label = log.current.get(record.id)
        if label is None or label.label not in ("correct", "wrong") or record.query is None:
            continue
        execution = record.execution_check
        rows.append(LabelledRow(
            row_id=f"{labels_file.parent.name}:{record.id}", mode=mode, style=record.style, tools=record.tools,
            query=record.query, answers=record.answers,
            duplicate=record.dedup_check is not None and not record.dedup_check.passed,
            execution=None if execution is None else {"passed": execution.passed, "reason": execution.reason},
            label=label.label, error_class=label.error_class))
    return rows


def stage_outcomes(row: LabelledRow, *, grounding: bool = True,
                   judge: SemanticChecker | None = None) -> list[tuple[Stage, CheckResult]]:
    """Each stage's outcome on ``row`` up to its first rejection (the checks re-run, see the module).

    ``judge`` is the semantic stage; by default its model-free part alone."""
    judge = judge or SemanticChecker(None)
    outcomes: list[tuple[Stage, CheckResult]] = []
    dedup = CheckResult.fail("duplicate", "a duplicate in its run") if row.duplicate else CheckResult.ok()
    execution = (CheckResult(passed=bool(row.execution.get("passed")), reason=row.execution.get("reason"))
                 if row.execution is not None else CheckResult.fail("not_executed"))
    steps: list[tuple[Stage, Any]] = [
        ("format", lambda: check_answers(row.query, [c.model_dump() for c in row.answers], row.tools)),
        ("dedup", lambda: dedup),
        ("grounding", lambda: ground_row(row.query, row.answers, row.tools,
                                         calls_first=row.mode == "calls_first") if grounding else None),
        ("execution", lambda: execution),
        ("semantic", lambda: judge.judge(row.query, row.tools, row.answers, [], seed=0).check),
    ]
    for stage, run in steps:
        outcome = run()
        if outcome is None:
            continue
        outcomes.append((stage, outcome))
        if not outcome.passed:
            break
    return outcomes


def measure(rows: Iterable[LabelledRow], *, grounding: bool = True,
            judge: Callable[[LabelledRow], SemanticChecker | None] = lambda row: None) -> LabelFigures:
    """Run the stages on ``rows`` and compare their verdicts with the labels. ``judge`` gives each
    row's semantic stage (default: its model-free part)."""
    rows = list(rows)
    stages = {stage: StageFigure() for stage in STAGE_ORDER}
    by_class: dict[str, Share] = {}
    rejected_by: dict[str, int] = {}
    accepted = correct_accepted = 0
    for row in rows:
        outcomes = stage_outcomes(row, grounding=grounding, judge=judge(row))
        good = row.label == "correct"
        for stage, outcome in outcomes:
            figure = stages[stage]
            share = figure.correct_kept if good else figure.wrong_rejected
            share.total += 1
            share.hit += outcome.passed == good
        last = outcomes[-1][1]
        if last.passed:
            accepted += 1
            correct_accepted += good
        else:
            key = f"{outcomes[-1][0]}:{last.reason}"
            rejected_by[key] = rejected_by.get(key, 0) + 1
        if not good:
            caught = by_class.setdefault(row.error_class or "unclassified", Share())
            caught.total += 1
            caught.hit += not last.passed
    correct = sum(row.label == "correct" for row in rows)
    return LabelFigures(
        rows=len(rows), correct=correct, accepted=accepted,
        precision=Share(hit=correct_accepted, total=accepted),
        recall=Share(hit=correct_accepted, total=correct),
        stages={stage: figure for stage, figure in stages.items()
                if figure.correct_kept.total or figure.wrong_rejected.total},
        wrong_by_class=dict(sorted(by_class.items())), rejected_by=dict(sorted(rejected_by.items())),
    )


def figures_table(figures: LabelFigures) -> Sequence[str]:
    """The figures as lines of text, for the CLI and the benchmark."""
    lines = [f"labelled rows: {figures.rows} ({figures.correct} correct), accepted: {figures.accepted}",
             f"precision of accepted rows: {figures.precision.text()}",
             f"recall of correct rows:     {figures.recall.text()}"]
    for stage, figure in figures.stages.items():
        lines.append(f"  {stage:<10} correct kept {figure.correct_kept.text()}; "
                     f"wrong rejected {figure.wrong_rejected.text()}")
    for name, share in figures.wrong_by_class.items():
        lines.append(f"  wrong rows of class {name:<16} rejected {share.text()}")
    return lines
