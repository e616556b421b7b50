"""Generate on a Ray cluster: one actor per worker owns a model and a sandbox; the driver writes.

The driver hands out batches of row indices. Each worker generates and format-checks its batch;
the driver deduplicates the returned rows in index order (so the same duplicates are rejected
whatever order workers finish in), sends them back for execution and judging, and appends the
finished batches to the run files in index order. Actors restart and retry their calls when a
worker or node dies; rows are deterministic per index, so a retried batch yields the same rows
and nothing is written twice. A killed driver resumes from the run files like a local run.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from ..errors import ApigenError
from ..run.config import GenerationConfig
from ..run.pipeline import DatasetResult, Pipeline, _Deduplicator, _runnable, previous_wall_seconds, write_stats
from ..types import CheckResult, Record


class _PassAll:
    """Worker-side stand-in for dedup: the driver decides duplicates, globally and in order."""

    def check(self, record_id: int, query: str) -> CheckResult:
        return CheckResult.ok()


class RowWorker:
    """Loads the model once and owns a sandbox; processes batches of row indices."""

    def __init__(self, config_json: str) -> None:
        from ..checks.semantic import SemanticChecker
        from ..generation.generator import Generator
        from ..generation.sampling import RequestSampler, load_seed_examples
        from ..model.files import find_model
        from ..model.local import LocalModel
        from ..sandbox.executor import SandboxExecutor
        from ..tools import load_library

        cfg = GenerationConfig.model_validate_json(config_json)
        self.cfg = cfg
        self.library = load_library(cfg.library, strict=not cfg.lenient)
        examples = load_seed_examples(cfg.seed_file) if cfg.seed_file else []
        self.sampler = RequestSampler(self.library.tools, examples, seed=cfg.seed, styles=cfg.styles,
                                      n_examples=cfg.n_examples)
        self.model = LocalModel(find_model(cfg.model), n_ctx=cfg.n_ctx, n_threads=cfg.n_threads,
                                n_gpu_layers=cfg.n_gpu_layers, seed=cfg.seed).__enter__()
        self.sandbox = SandboxExecutor(self.library.path, max_containers=cfg.max_containers,
                                       call_timeout=cfg.call_timeout).__enter__()
        self.generator = Generator(self.model, max_tokens=cfg.max_tokens, temperature=cfg.temperature)
        self.judge = SemanticChecker(self.model, result_chars=cfg.result_chars) if cfg.semantic else None
        self.pipeline = Pipeline(cfg, model=self.model)

    def generate(self, indices: list[int]) -> list[str]:
        """Generate and format-check rows ``indices``; their dedup check is left to the driver."""
        self.generator.prepare(self.sampler.request(i) for i in indices)
        return [self.pipeline._generate(i, self.sampler, self.generator, self.model.name, _PassAll())
                .model_dump_json() for i in indices]

    def finish(self, rows: list[str]) -> list[str]:
        """Execute the runnable rows in the sandbox and judge them, as the local pipeline does."""
        from ..checks.execution import execute_rows
        from ..run.batch_runner import _store_execution, _store_verdict

        records = [Record.model_validate_json(r) for r in rows]
        runnable = [r for r in records if _runnable(r)]
        if runnable:
            started = time.perf_counter()
            outcomes = execute_rows(self.sandbox, [r.answers for r in runnable], self.library.tools,
                                    batch_size=self.cfg.calls_per_container)
            seconds = time.perf_counter() - started
            for record, outcome in zip(runnable, outcomes, strict=True):
                _store_execution(record, outcome, seconds / len(runnable))
                if self.judge is not None and outcome.check.passed:
                    _store_verdict(record, self.judge, seed=record.id + self.cfg.seed * 1_000_003)
        return [r.model_dump_json() for r in records]

    def close(self) -> None:
        """Remove this worker's sandbox containers and free the model."""
        self.sandbox.close()
        self.model.close()


def connect(address: str) -> None:
    """Join the cluster: ``auto`` = the one ``ray start`` set up here, ``local`` = a private one."""
    try:
        import ray
    except ImportError as exc:
        raise ApigenError("--ray needs Ray: pip install 'apigen-local[ray]'") from exc
    if ray.is_initialized():
        return
    try:
        ray.init(address=None if address == "local" else address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ApigenError(f"cannot join the Ray cluster at {address!r}: {exc}") from exc


def run_on_ray(pipeline: Pipeline, address: str, workers: int | None = None) -> DatasetResult:
    """Run ``pipeline``'s configuration on Ray; the driver is the only writer of the run files."""
    import ray

    connect(address)
    cfg = pipeline.config
    files = pipeline.files
    started = time.perf_counter()
    done = files.open(cfg.identity())
    previous_wall = previous_wall_seconds(files) if done else 0.0
    done_ids = {r.id for r in done}
    pending = [i for i in range(cfg.rows) if i not in done_ids]
    records = list(done)
    if pipeline.progress is not None:
        pipeline.progress.start(cfg.rows, len(done))
    dedup = _Deduplicator()
    for record in sorted(done, key=lambda r: r.id):
        if _runnable(record) and record.query is not None:
            dedup.check(record.id, record.query)
    n = workers or max(1, sum(1 for node in ray.nodes() if node["Alive"] and node["Resources"].get("CPU")))
    actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1)(RowWorker)
    pool = [actor.options(scheduling_strategy="SPREAD").remote(cfg.model_dump_json()) for _ in range(n)]
    size = cfg.batch_rows
    batches = [pending[s:s + size] for s in range(0, len(pending), size)]
    try:
        generating: deque[Any] = deque()
        finishing: deque[Any] = deque()
        submitted = 0

        def top_up() -> None:
            nonlocal submitted
            while submitted < len(batches) and len(generating) < 2 * n:
                generating.append(pool[submitted % n].generate.remote(batches[submitted]))
                submitted += 1

        def write(ref: Any) -> None:
            for line in ray.get(ref):
                record = Record.model_validate_json(line)
                files.append(record)
                records.append(record)
                if pipeline.progress is not None:
                    pipeline.progress.advance(record)

        top_up()
        for k in range(len(batches)):
            rows = [Record.model_validate_json(line) for line in ray.get(generating.popleft())]
            for record in rows:
                if record.query is not None:
                    record.dedup_check = dedup.check(record.id, record.query)
            finishing.append(pool[k % n].finish.remote([r.model_dump_json() for r in rows]))
            top_up()
            if len(finishing) > n:
                write(finishing.popleft())
        while finishing:
            write(finishing.popleft())
    finally:
        ray.wait([worker.close.remote() for worker in pool], num_returns=len(pool), timeout=60)
        for worker in pool:
            ray.kill(worker)
        files.close()
        stats = write_stats(files, records, previous_wall + time.perf_counter() - started)
    return DatasetResult(out_dir=files.dir, dataset_path=files.dataset, records_path=files.records,
                         rejected_path=files.rejected, stats_path=files.stats, resumed_rows=len(done),
                         stats=stats)
