"""Calibration: how often each stage keeps correct rows and rejects wrong ones, for one model.

Correct rows (a seed file, a verified ``dataset.jsonl`` or the user's own) are the positives.
Their perturbed copies (:mod:`~apigen_local.checks.perturb`) that still pass format and execution
are the negatives. Every stage runs on every row independently, so each stage's figures stand on
their own, and "all stages" is a row passing every one of them. The result goes to
``calibration.json`` in the output directory and into a per-model cache, from which ``generate``
reads it to warn about a weak judge and to record it in ``stats.json``
(:mod:`~apigen_local.run.calibration`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from ..checks.execution import execute_rows
from ..checks.format import check_answers
from ..checks.grounding import check_grounding
from ..checks.perturb import LabelledRow, perturb
from ..checks.semantic import SemanticChecker
from ..errors import ConfigError
from ..model.files import find_model
from ..model.local import LocalModel
from ..sandbox.executor import SandboxExecutor
from ..tools import Library, load_library
from ..types import CallResult, CheckResult, JudgeDesign
from .calibration import Calibration, StageFigures, save_for_model
from .files import write_atomic
from .rows import read_rows
from .verify import VERIFY_STAGES, format_record
from .worker import JudgeSettings, ModelSettings, SandboxSettings, Worker, WorkerSettings


class RowOutcome(BaseModel):
    """One labelled row and every stage's outcome on it (``calibration_rows.jsonl``)."""

    row: LabelledRow
    checks: dict[str, CheckResult] = Field(default_factory=dict)
    results: list[CallResult] = Field(default_factory=list)
    thoughts: dict[str, str] = Field(default_factory=dict)


def correct_rows(rows_file: str | Path, library: Library) -> list[LabelledRow]:
    """The rows of ``rows_file`` that pass the format check against ``library``: the positives."""
    positives: list[LabelledRow] = []
    for row in read_rows(rows_file):
        record = format_record(row, library.by_name, ("format",))
        if record.format_check.passed and record.query is not None:
            positives.append(LabelledRow(query=record.query, answers=record.answers, tools=record.tools))
    if len(positives) < 2:
        raise ConfigError(f"{rows_file} holds {len(positives)} rows that pass the format check against "
                          "the library; calibration needs at least 2")
    return positives


def calibrate(
    library: str | Path,
    rows_file: str | Path,
    *,
    model: str | Path | LocalModel | None = None,
    out_dir: str | Path = "out/calibration",
    judge: JudgeDesign = "verdict",
    seed: int = 0,
    limit: int | None = None,
    call_timeout: float = 5.0,
    n_ctx: int = 8192,
    n_threads: int | None = None,
    n_gpu_layers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Calibration:
    """Run every stage over the labelled set built from ``rows_file`` and return the figures.

    ``limit`` keeps the first ``limit`` correct rows (and their perturbed copies).
    """
    started = time.perf_counter()
    lib = load_library(library)
    loaded = model if isinstance(model, LocalModel) else None
    settings = WorkerSettings(
        library=lib.path, seed=seed, sandbox=SandboxSettings(call_timeout=call_timeout),
        judge=JudgeSettings(design=judge),
        model=None if loaded is not None else ModelSettings(path=str(find_model(model)), n_ctx=n_ctx,  # type: ignore[arg-type]
                                                            n_threads=n_threads, n_gpu_layers=n_gpu_layers, seed=seed))
    with Worker(settings, model=loaded, library=lib) as worker:
        assert worker.sandbox is not None and worker.judge_checker is not None and worker.model is not None
        outcomes = checked_rows(lib, rows_file, worker.sandbox, seed=seed, limit=limit)
        judge_rows(outcomes, worker.judge_checker, seed=seed, progress=progress)
        loaded = worker.model
    figures, dropped = tally(outcomes)
    positives = sum(o.row.positive for o in outcomes)
    calibration = Calibration(
        model=loaded.name, model_file=str(loaded.path), library=lib.path, rows_file=str(rows_file),
        judge=judge, positives=positives, negatives=len(outcomes) - positives - dropped,
        dropped_negatives=dropped, stages=figures, seconds=round(time.perf_counter() - started, 1),
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "calibration.json", calibration.model_dump_json(indent=2))
    write_atomic(out / "calibration_rows.jsonl", "".join(o.model_dump_json() + "\n" for o in outcomes))
    save_for_model(calibration)
    return calibration


def checked_rows(library: Library, rows_file: str | Path, sandbox: SandboxExecutor, *, seed: int = 0,
                 limit: int | None = None) -> list[RowOutcome]:
    """The labelled set from ``rows_file``, each row through format, grounding and execution."""
    positives = correct_rows(rows_file, library)[:limit]
    outcomes = [RowOutcome(row=row) for row in positives + perturb(positives, seed=seed)]
    executions = execute_rows(sandbox, [o.row.answers for o in outcomes], library.tools)
    for outcome, execution in zip(outcomes, executions, strict=True):
        row = outcome.row
        outcome.checks["format"] = check_answers(row.query, [c.model_dump() for c in row.answers],
                                                 row.tools, min_calls=1)
        outcome.checks["grounding"] = check_grounding(row.query, row.answers, row.tools)
        outcome.checks["execution"] = execution.check
        outcome.results = execution.results
    return outcomes


def judge_rows(outcomes: Sequence[RowOutcome], checker: SemanticChecker, *, key: str = "semantic",
               seed: int = 0, progress: Callable[[int, int], None] | None = None) -> None:
    """Judge every row that passed format and execution; the verdict goes to ``checks[key]``."""
    todo = [o for o in outcomes if o.checks["format"].passed and o.checks["execution"].passed]
    for done, outcome in enumerate(todo, 1):
        verdict = checker.judge(outcome.row.query, outcome.row.tools, outcome.row.answers,
                                outcome.results, seed=seed)
        outcome.checks[key] = verdict.check
        outcome.thoughts[key] = verdict.thought
        if progress is not None:
            progress(done, len(todo))


def tally(outcomes: Sequence[RowOutcome], semantic: str = "semantic") -> tuple[dict[str, StageFigures], int]:
    """Per-stage figures over ``outcomes``, taking ``checks[semantic]`` as the semantic stage.

    Negatives that fail format or execution are not negatives the later stages must catch: they
    are dropped, and counted."""
    stages = [s for s in VERIFY_STAGES if s != "format"] + ["all"]
    figures = {stage: StageFigures() for stage in stages}
    dropped = 0
    for outcome in outcomes:
        checks = outcome.checks
        if not outcome.row.positive and not (checks["format"].passed and checks["execution"].passed):
            dropped += 1
            continue
        chosen = {**checks, "semantic": checks.get(semantic)}
        passed = {stage: chosen[stage] is not None and chosen[stage].passed for stage in stages[:-1]}
        passed["all"] = all(passed.values())
        for stage, ok in passed.items():
            if outcome.row.positive:
                figures[stage].positives_kept.add(ok)
            else:
                figures[stage].negatives_rejected.add(not ok)
                figures[stage].by_kind[outcome.row.kind].add(not ok)  # type: ignore[index]
    return figures, dropped
