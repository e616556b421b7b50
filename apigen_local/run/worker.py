"""A worker: the one place a model, a sandbox and a judge are built from settings.

A worker generates and format-checks rows (:meth:`Worker.generate`), and executes and judges the
records the driver admitted (:meth:`Worker.execute`, :meth:`Worker.judge`). It decides nothing
about which rows run: the driver sends only the records that go to the sandbox. The local backend
holds one worker in its own process; the Ray backend one per actor, built from the same
:class:`WorkerSettings`, so a row comes out the same wherever it ran.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

from pydantic import BaseModel

from ..checks.execution import RowExecution, execute_rows
from ..checks.format import check_generation
from ..checks.part import states_call
from ..checks.semantic import SemanticChecker
from ..generation.generator import Generator
from ..generation.sampling import GenerationRequest, RequestSampler, load_seed_examples
from ..model.engine import KvKeys
from ..model.local import Completion, LocalModel
from ..sandbox.executor import SandboxExecutor
from ..tools import Library, load_library
from ..types import FunctionCall, JudgeDesign, Record
from .config import GenerationConfig

JUDGE_SEED_STRIDE = 1_000_003  # the judge's seed for a row: its id + the run's seed times this


class ModelSettings(BaseModel):
    """How a worker loads its GGUF."""

    path: str
    n_ctx: int = 8192
    n_threads: int | None = None
    n_gpu_layers: int = 0
    seed: int = 0
    constraint_backend: str = "llguidance"
    reencode_weights: bool = True
    kv_keys: KvKeys = "q8_0"


class SandboxSettings(BaseModel):
    """How a worker executes calls."""

    max_containers: int = 2
    call_timeout: float = 5.0
    calls_per_container: int = 64


class JudgeSettings(BaseModel):
    """How a worker judges executed rows (``checks/semantic.py``)."""

    design: JudgeDesign = "coverage"
    result_chars: int = 400
    fit_margin: float | None = None


class WorkerSettings(BaseModel):
    """Everything a worker is built from; sent as JSON to Ray workers.

    ``generation`` is set for ``generate`` workers (the sampler's and generator's settings);
    ``sandbox`` and ``judge`` are unset when their stage does not run; ``model`` is unset when
    nothing needs one (a verify run without a model judge).
    """

    library: str | None = None  # None: a verify run with no library (nothing executes)
    lenient: bool = False
    seed: int = 0
    model: ModelSettings | None = None
    sandbox: SandboxSettings | None = None
    judge: JudgeSettings | None = None
    generation: GenerationConfig | None = None

    @classmethod
    def for_generation(cls, config: GenerationConfig, model_path: str) -> WorkerSettings:
        """The settings of a ``generate`` worker for ``config``, its model at ``model_path``."""
        return cls(
            library=config.library, lenient=config.lenient, seed=config.seed, generation=config,
            model=ModelSettings(path=model_path, n_ctx=config.n_ctx, n_threads=config.n_threads,
                                n_gpu_layers=config.n_gpu_layers, seed=config.seed,
                                constraint_backend=config.constraint_backend,
                                reencode_weights=config.reencode_weights, kv_keys=config.kv_keys),
            sandbox=SandboxSettings(max_containers=config.max_containers, call_timeout=config.call_timeout,
                                    calls_per_container=config.calls_per_container),
            judge=JudgeSettings(design=config.judge, result_chars=config.result_chars,
                                fit_margin=config.fit_margin) if config.semantic else None,
        )


class Worker:
    """Generates, executes and judges rows with what :class:`WorkerSettings` describe.

    ``model`` and ``library``, when given, are used instead of loading them (the caller keeps
    ownership of the model). Use as a context manager, or call :meth:`open` and :meth:`close`.
    """

    def __init__(self, settings: WorkerSettings, *, model: LocalModel | None = None,
                 library: Library | None = None) -> None:
        self.settings = settings
        self.model = model
        self.library = library
        self.sandbox: SandboxExecutor | None = None
        self.judge_checker: SemanticChecker | None = None
        self.sampler: RequestSampler | None = None
        self.generator: Generator | None = None
        self._stack = ExitStack()

    def __enter__(self) -> Worker:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        """Load the library, the model and the sandbox the settings ask for."""
        s = self.settings
        try:
            if self.library is None and s.library is not None:
                self.library = load_library(s.library, strict=not s.lenient)
            if s.sandbox is not None:
                assert self.library is not None, "a sandbox runs a library"
                self.sandbox = self._stack.enter_context(SandboxExecutor(
                    self.library.path, max_containers=s.sandbox.max_containers,
                    call_timeout=s.sandbox.call_timeout, functions=[t.name for t in self.library.tools]))
            if self.model is None and s.model is not None:
                m = s.model
                self.model = self._stack.enter_context(LocalModel(
                    m.path, n_ctx=m.n_ctx, n_threads=m.n_threads, n_gpu_layers=m.n_gpu_layers, seed=m.seed,
                    constraint_backend=m.constraint_backend, reencode_weights=m.reencode_weights,
                    kv_keys=m.kv_keys))
            if s.judge is not None:
                self.judge_checker = SemanticChecker(self.model, design=s.judge.design,
                                                     result_chars=s.judge.result_chars,
                                                     library=self.library.tools if self.library else (),
                                                     fit_margin=s.judge.fit_margin)
            if s.generation is not None:
                cfg = s.generation
                examples = load_seed_examples(cfg.seed_file) if cfg.seed_file else []
                self.sampler = RequestSampler(self.library.tools, examples, seed=cfg.seed, styles=cfg.styles,
                                              n_examples=cfg.n_examples, example_group=cfg.example_group,
                                              mode=cfg.mode, irrelevance=cfg.irrelevance,
                                              call_check=self.calls_that_run if self.sandbox is not None else None)
                self.generator = Generator(self.model, max_tokens=cfg.max_tokens, temperature=cfg.temperature,
                                           bounds=cfg.bounds(), candidates=cfg.request_candidates,
                                           choose=states_call)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Remove the sandbox's containers and free the model this worker loaded."""
        self._stack.close()

    # -- generate ----------------------------------------------------------------------------
    def generate(self, indices: Sequence[int], *, ahead: Sequence[int] = (),
                 on_row: Callable[[], None] | None = None) -> list[Record]:
        """Generate and format-check rows ``indices``; the constraints of ``ahead`` compile meanwhile.
        ``on_row()`` is called as each row's text is finished (for a progress bar).

        Dedup and grounding are the driver's: they must see the rows in index order.
        """
        assert self.sampler is not None and self.generator is not None and self.model is not None, \
            "a generate worker needs settings.generation and a model"
        cfg = self.settings.generation
        assert cfg is not None
        requests = [self.sampler.request(i) for i in indices]
        if cfg.decode_batch > 1:  # one batched decode of all of them (model/engine.py)
            started = time.perf_counter()
            completions = self.generator.generate_many(
                requests, batch=cfg.decode_batch, on_done=None if on_row is None else lambda _index: on_row())
            share = round((time.perf_counter() - started) / max(1, len(indices)), 4)
            records = [self._record(i, r, c) for i, r, c in zip(indices, requests, completions, strict=True)]
            for record, completion in zip(records, completions, strict=True):
                record.timings = _generation_timings(share, completion)  # rows overlapped: a share each
            return records
        self.generator.prepare(self.sampler.request(i) for i in [*indices, *ahead])
        records = []
        for i, request in zip(indices, requests, strict=True):
            records.append(self._record(i, request, self.generator.generate(request)))
            if on_row is not None:
                on_row()
        return records

    def _record(self, index: int, request: GenerationRequest, completion: Completion) -> Record:
        assert self.model is not None
        pair, check = check_generation(completion.text, request.tools,
                                       min_calls=request.min_calls, max_calls=request.max_calls)[0]
        record = Record(
            id=index, seed=request.seed, style="irrelevance" if request.irrelevance else request.style,
            tools=request.tools,
            examples=[example.model_dump() for example in request.shown_examples],
            raw_output=completion.text, format_check=check, model_name=self.model.name,
            timings=_generation_timings(completion.seconds, completion),
            tokens={"prompt": completion.prompt_tokens, "generation": completion.completion_tokens},
        )
        if pair is not None:
            record.query, record.answers = pair.query, pair.answers
        return record

    def calls_that_run(self, calls: list[FunctionCall]) -> list[bool]:
        """Whether each call runs in the sandbox and passes the execution check (calls-first's pool)."""
        assert self.sandbox is not None and self.library is not None and self.settings.sandbox is not None
        outcomes = execute_rows(self.sandbox, [[call] for call in calls], self.library.tools,
                                batch_size=self.settings.sandbox.calls_per_container)
        return [outcome.check.passed for outcome in outcomes]

    # -- check -------------------------------------------------------------------------------
    def execute(self, records: Sequence[Record]) -> tuple[list[RowExecution], float]:
        """Run every call of ``records`` in the sandbox; the outcomes and the seconds it took."""
        if self.sandbox is None or not records:
            return [], 0.0
        assert self.library is not None
        started = time.perf_counter()
        outcomes = execute_rows(self.sandbox, [r.answers for r in records], self.library.tools,
                                batch_size=self.settings.sandbox.calls_per_container)  # type: ignore[union-attr]
        return outcomes, time.perf_counter() - started

    def judge(self, records: Sequence[Record], outcomes: Sequence[RowExecution], seconds: float) -> list[Record]:
        """Put the execution outcomes on ``records`` and judge those that passed; return them. A worker
        with no sandbox (a verify run with no library) judges the calls as written."""
        if self.sandbox is None:
            for record in records:
                if self.judge_checker is not None and record.query is not None:
                    self._store_verdict(record)
            return list(records)
        for record, outcome in zip(records, outcomes, strict=True):
            record.execution_result = outcome.results
            record.execution_check = outcome.check
            record.timings["execution"] = round(seconds / len(records), 4)
            if self.judge_checker is not None and outcome.check.passed and record.query is not None:
                self._store_verdict(record)
        return list(records)

    def check(self, records: Sequence[Record]) -> list[Record]:
        """:meth:`execute`, then :meth:`judge`."""
        return self.judge(records, *self.execute(records))

    def _store_verdict(self, record: Record) -> None:
        judge: Any = self.judge_checker
        verdict = judge.judge(record.query, record.tools, record.answers, record.execution_result,
                              seed=record.id + self.settings.seed * JUDGE_SEED_STRIDE)
        if judge.model is not None and verdict.raw:  # the model judged (not coverage alone)
            record.model_name = judge.model.name
        record.semantic_check, record.thought = verdict.check, verdict.thought
        record.raw_verdict = verdict.raw
        record.timings["semantic"] = round(verdict.seconds, 4)
        record.tokens["semantic"] = verdict.completion_tokens


def _generation_timings(seconds: float, completion: Completion) -> dict[str, float]:
    """A row's generation seconds, and of them the seconds the model waited for a core
    (``generation_waiting``, where the system says): other programs holding the CPU."""
    timings = {"generation": round(seconds, 4)}
    if completion.core_wait is not None:
        timings["generation_waiting"] = round(seconds * completion.core_wait, 4)
    return timings
