"""The whole run: sample, generate and format-check, deduplicate, execute, judge, write.

Stages overlap: while the sandbox executes batch *k*, the model generates batch *k+1*; then the
same model judges batch *k*. Rows are written in index order, one record each, so killing the
process at any moment loses at most the rows in flight, and rerunning continues from there.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..checks.format import check_generation
from ..checks.grounding import check_grounding
from ..checks.semantic import SemanticChecker
from ..generation.generator import Generator
from ..generation.sampling import RequestSampler, load_seed_examples
from ..model.files import find_model
from ..model.local import Completion, LocalModel
from ..sandbox.executor import SandboxExecutor
from ..tools import Library, load_library
from ..types import CheckResult, Record
from .batch_runner import BatchRunner, ProgressReporter
from .calibration import Calibration, load_for_model
from .config import GenerationConfig, build_config
from .files import RunFiles
from .labels import LabelReport
from .labels import load_for_model as load_label_report
from .report import write_report_or_warn
from .stats import RunStats, compute_stats

log = logging.getLogger(__name__)


class DatasetResult(BaseModel):
    """What :func:`generate_dataset` returns: where the files are and the run's statistics."""

    out_dir: Path
    dataset_path: Path
    records_path: Path
    rejected_path: Path
    stats_path: Path
    resumed_rows: int
    stats: RunStats


def normalise_query(query: str) -> str:
    """The form two queries share when they differ only in case, spacing or punctuation."""
    return " ".join(re.sub(r"[^\w\s]", " ", query.casefold()).split())


class Deduplicator:
    """Remembers every query that passed the format check, exactly and normalised."""

    def __init__(self) -> None:
        self.exact: dict[str, int] = {}
        self.normalised: dict[str, int] = {}

    def check(self, record_id: int, query: str) -> CheckResult:
        if query in self.exact:
            return CheckResult.fail("duplicate", f"same query as row {self.exact[query]}")
        key = normalise_query(query)
        if key in self.normalised:
            return CheckResult.fail("duplicate", f"same query as row {self.normalised[key]} "
                                                 "up to case, spacing and punctuation")
        self.exact[query] = record_id
        self.normalised[key] = record_id
        return CheckResult.ok()


class Pipeline:
    """One run of the three-stage pipeline over a configuration."""

    runner_class: type[BatchRunner] = BatchRunner

    def __init__(self, config: GenerationConfig, *, model: LocalModel | None = None,
                 progress: ProgressReporter | None = None) -> None:
        self.config = config
        self._model = model
        self.progress = progress
        self.files = RunFiles(config.out_dir)
        self.model_idle_seconds = 0.0
        self.calibration: Calibration | None = None

    def run(self) -> DatasetResult:
        """Run (or resume) to ``config.rows`` records and return the result."""
        cfg = self.config
        started = time.perf_counter()
        model_path = None if self._model is not None else find_model(cfg.model)
        model_file = model_path or self._model.path  # type: ignore[union-attr]
        if cfg.semantic:
            self.calibration = judge_calibration(model_file)
        labelled = load_label_report(model_file)
        library = load_library(cfg.library, strict=not cfg.lenient)
        examples = load_seed_examples(cfg.seed_file) if cfg.seed_file else []
        done = self.files.open(cfg.identity())
        previous_wall = previous_wall_seconds(self.files) if done else 0.0
        pending = [i for i in range(cfg.rows) if i not in {r.id for r in done}]
        records = list(done)
        if self.progress is not None:
            self.progress.start(cfg.rows, len(done))
        dedup = Deduplicator()
        for record in sorted(done, key=lambda r: r.id):
            if goes_to_execution(record) and record.query is not None:
                dedup.check(record.id, record.query)
        try:
            if pending:
                records += self._run_pending(pending, library, examples, dedup, model_path)
        finally:
            self.files.close()
            stats = write_stats(self.files, records, previous_wall + time.perf_counter() - started,
                                model_idle_seconds=self.model_idle_seconds, calibration=self.calibration,
                                labelled=labelled)
            write_report_or_warn(self.files.dir, records=records)
        return DatasetResult(
            out_dir=self.files.dir, dataset_path=self.files.dataset,
            records_path=self.files.records, rejected_path=self.files.rejected,
            stats_path=self.files.stats, resumed_rows=len(done), stats=stats,
        )

    # -- the loop ----------------------------------------------------------------------------
    def _run_pending(self, pending: list[int], library: Library, examples: list[Any],
                     dedup: Deduplicator, model_path: Path | None) -> list[Record]:
        cfg = self.config
        sampler = build_sampler(cfg, library, examples)
        with ExitStack() as stack:
            sandbox = stack.enter_context(SandboxExecutor(
                library.path, max_containers=cfg.max_containers, call_timeout=cfg.call_timeout,
            ))
            model = self._model or stack.enter_context(LocalModel(
                model_path, n_ctx=cfg.n_ctx, n_threads=cfg.n_threads,
                n_gpu_layers=cfg.n_gpu_layers, seed=cfg.seed, constraint_backend=cfg.constraint_backend,
                reencode_weights=cfg.reencode_weights, kv_keys=cfg.kv_keys,
            ))
            generator = build_generator(cfg, model)
            runner = self.runner_class(
                sandbox, library.tools, self.files, runnable=goes_to_execution,
                judge=SemanticChecker(model, design=cfg.judge, result_chars=cfg.result_chars,
                                      library=library.tools, fit_margin=cfg.fit_margin)
                if cfg.semantic else None,
                seed=cfg.seed, calls_per_container=cfg.calls_per_container, progress=self.progress,
            )
            try:
                return runner.run(self._generated_batches(pending, sampler, generator, model.name, dedup))
            finally:
                self.model_idle_seconds = runner.idle_seconds

    def _generated_batches(self, pending: list[int], sampler: RequestSampler, generator: Generator,
                           model_name: str, dedup: Deduplicator) -> Iterator[list[Record]]:
        """Generate and format-check ``pending`` rows, ``batch_rows`` at a time, as they are asked for."""
        size = self.config.batch_rows
        for start in range(0, len(pending), size):
            rows = self.generate_rows(pending[start:start + size], sampler, generator, model_name,
                                      ahead=pending[start + size:start + 2 * size])
            yield [self.admit(record, dedup) for record in rows]

    def generate_rows(self, indices: Sequence[int], sampler: RequestSampler, generator: Generator,
                      model_name: str, *, ahead: Sequence[int] = ()) -> list[Record]:
        """Generate and format-check rows ``indices`` (Ray workers call this too).

        Dedup and grounding are left to :meth:`admit`, which must see the rows in index order.
        The constraints of ``indices`` and of the rows ``ahead`` compile while these decode.
        """
        if self.config.decode_batch > 1:  # one batched decode of all of them (model/engine.py)
            started = time.perf_counter()
            completions = generator.generate_many([sampler.request(i) for i in indices],
                                                  batch=self.config.decode_batch)
            share = round((time.perf_counter() - started) / max(1, len(indices)), 4)
            records = [self._generate(i, sampler, generator, model_name, completion)
                       for i, completion in zip(indices, completions, strict=True)]
            for record in records:  # the rows overlapped: each takes its share of the batch's time
                record.timings["generation"] = share
            return records
        generator.prepare(sampler.request(i) for i in [*indices, *ahead])
        return [self._generate(i, sampler, generator, model_name) for i in indices]

    def admit(self, record: Record, dedup: Deduplicator) -> Record:
        """Deduplicate a format-checked row against the earlier ones, then ground it (driver side)."""
        if record.query is not None:
            record.dedup_check = dedup.check(record.id, record.query)
            if self.config.grounding and record.dedup_check.passed:
                record.grounding_check = check_grounding(record.query, record.answers, record.tools,
                                                         string_bound=self.config.max_string_chars)
        return record

    def _generate(self, index: int, sampler: RequestSampler, generator: Generator,
                  model_name: str, completion: Completion | None = None) -> Record:
        request = sampler.request(index)
        completion = completion or generator.generate(request)
        pair, check = check_generation(completion.text, request.tools,
                                       min_calls=request.min_calls, max_calls=request.max_calls)[0]
        record = Record(
            id=index, seed=request.seed, style=request.style, tools=request.tools,
            examples=[example.model_dump() for example in request.examples],
            raw_output=completion.text, format_check=check, model_name=model_name,
            timings={"generation": round(completion.seconds, 4)},
            tokens={"prompt": completion.prompt_tokens, "generation": completion.completion_tokens},
        )
        if pair is not None:
            record.query, record.answers = pair.query, pair.answers
        return record


def build_sampler(cfg: GenerationConfig, library: Library, examples: list[Any]) -> RequestSampler:
    """The request sampler of a run (the driver's and every Ray worker's)."""
    return RequestSampler(library.tools, examples, seed=cfg.seed, styles=cfg.styles, n_examples=cfg.n_examples,
                          example_group=cfg.example_group, mode=cfg.mode)


def build_generator(cfg: GenerationConfig, model: LocalModel) -> Generator:
    """The generator of a run (the driver's and every Ray worker's)."""
    return Generator(model, max_tokens=cfg.max_tokens, temperature=cfg.temperature, bounds=cfg.bounds())


def goes_to_execution(record: Record) -> bool:
    """True for a row that passed format, dedup and (when it ran) grounding: it gets executed."""
    return (record.dedup_check is not None and record.dedup_check.passed
            and (record.grounding_check is None or record.grounding_check.passed))


# -- pieces shared with verify -----------------------------------------------------------------
def previous_wall_seconds(files: RunFiles) -> float:
    """The wall time a resumed run had already spent, from its ``stats.json`` (0 if none)."""
    try:
        return RunStats.model_validate_json(files.stats.read_text()).wall_seconds
    except (OSError, ValueError):
        return 0.0


def judge_calibration(model_file: Path) -> Calibration | None:
    """The model's latest calibration; warns when its semantic stage catches under half the negatives."""
    calibration = load_for_model(model_file)
    if calibration is not None and calibration.weak_judge:
        caught = calibration.stages["semantic"].negatives_rejected.rate
        log.warning("the semantic stage of %s caught only %.0f%% of wrong rows in its calibration "
                    "(apigen-local calibrate); rely on grounding, or use a stronger model",
                    calibration.model, 100 * caught)
    return calibration


def write_stats(files: RunFiles, records: Sequence[Record], wall_seconds: float, *,
                model_idle_seconds: float = 0.0, rows_per_worker: dict[str, int] | None = None,
                calibration: Calibration | None = None, labelled: LabelReport | None = None) -> RunStats:
    """Compute the run's statistics from ``records`` and write ``stats.json``."""
    stats = compute_stats(records, wall_seconds=wall_seconds)
    stats.model_idle_seconds = round(model_idle_seconds, 3)
    stats.calibration = calibration.summary() if calibration is not None else None
    stats.labelled = labelled.summary() if labelled is not None else None
    stats.rows_per_worker = dict(rows_per_worker or {})
    if files.dir.is_dir():
        files.stats.write_text(stats.model_dump_json(indent=2))
    return stats


def generate_dataset(
    library: str | Path,
    model: str | Path | LocalModel | None = None,
    n_rows: int = 100,
    *,
    out_dir: str | Path = "out",
    seed: int = 0,
    styles: str | dict[str, float] | None = None,
    config: GenerationConfig | None = None,
    progress: ProgressReporter | None = None,
    ray: str | None = None,
    ray_workers: int | None = None,
    ray_ship_model: bool = False,
    **settings: Any,
) -> DatasetResult:
    """Generate ``n_rows`` candidate rows from ``library`` with a local GGUF ``model``.

    ``model`` is a GGUF path, an already loaded :class:`LocalModel`, or ``None`` to use
    ``$APIGEN_MODEL`` / the GGUF in ``models/``. Further settings are the fields of
    :class:`GenerationConfig`; ``config`` replaces all of them. Rerunning with the same
    ``out_dir`` and settings resumes. ``ray`` (``auto``, ``local`` or ``host:port``) spreads the
    rows over ``ray_workers`` Ray workers; ``ray_ship_model`` sends them the GGUF through Ray's
    object store instead of reading it at the same path on every node.
    """
    loaded = model if isinstance(model, LocalModel) else None
    if config is None:
        values: dict[str, Any] = {"library": str(library), "rows": n_rows,
                                  "out_dir": str(out_dir), "seed": seed, **settings}
        if model is not None and loaded is None:
            values["model"] = str(model)
        if styles is not None:
            values["styles"] = styles
        config = build_config(values)
    if ray is not None and loaded is not None:  # Ray workers load their own copy from its file
        config, loaded = config.model_copy(update={"model": str(loaded.path)}), None
    pipeline = Pipeline(config, model=loaded, progress=progress)
    if ray is not None:
        from ..scale.ray import run_on_ray

        result = run_on_ray(pipeline, ray, ray_workers, ship_model=ray_ship_model)
        write_report_or_warn(result.out_dir)  # Pipeline.run writes it for a local run
        return result
    return pipeline.run()
