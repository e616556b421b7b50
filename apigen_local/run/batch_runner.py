"""Execute, judge and write batches of records, with the sandbox one batch ahead.

``generate`` and ``verify`` both feed their batches to :class:`BatchRunner`. While the sandbox
executes batch *k* on its own thread, the caller builds batch *k+1* (``generate`` decodes it with
the model); then batch *k* is judged by the same model and written, record by record, in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from ..checks.execution import RowExecution, execute_rows
from ..checks.semantic import SemanticChecker
from ..sandbox.executor import SandboxExecutor
from ..types import Record, Tool
from .files import RunFiles

Execution = Future[tuple[list[RowExecution], float]]
InFlight = tuple[list[Record], list[Record], Execution]


class ProgressReporter(Protocol):
    """Receives progress; the CLI draws a bar with it, library users may log or ignore it."""

    def start(self, total: int, done: int) -> None: ...

    def advance(self, record: Record) -> None: ...


class BatchRunner:
    """Runs the execution and semantic stages over batches and appends every record to the run files.

    ``runnable`` says which records of a batch get executed; without a ``sandbox`` none is, and
    without a ``judge`` executed records are not judged. ``idle_seconds`` adds up the time spent
    waiting for the sandbox, i.e. the time the model could not work.
    """

    def __init__(self, sandbox: SandboxExecutor | None, tools: Sequence[Tool], files: RunFiles | None, *,
                 runnable: Callable[[Record], bool], judge: SemanticChecker | None, seed: int,
                 calls_per_container: int, progress: ProgressReporter | None) -> None:
        self.sandbox = sandbox
        self.tools = tools
        self.files = files
        self.runnable = runnable
        self.judge = judge
        self.seed = seed
        self.calls_per_container = calls_per_container
        self.progress = progress
        self.idle_seconds = 0.0

    def run(self, batches: Iterable[list[Record]]) -> list[Record]:
        """Process ``batches`` in order; the next batch is drawn while the current one executes."""
        written: list[Record] = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox") as pool:
            in_flight: InFlight | None = None
            for batch in batches:
                submitted = self.submit(pool, batch)
                if in_flight is not None:
                    written += self.finish(*in_flight)
                in_flight = submitted
            if in_flight is not None:
                written += self.finish(*in_flight)
        return written

    def submit(self, pool: ThreadPoolExecutor, batch: list[Record]) -> InFlight:
        """Start executing the runnable records of ``batch`` on the sandbox thread."""
        runnable = [record for record in batch if self.runnable(record)] if self.sandbox else []

        def execute() -> tuple[list[RowExecution], float]:
            if self.sandbox is None or not runnable:
                return [], 0.0
            started = time.perf_counter()
            outcomes = execute_rows(self.sandbox, [r.answers for r in runnable], self.tools,
                                    batch_size=self.calls_per_container)
            return outcomes, time.perf_counter() - started

        return batch, runnable, pool.submit(execute)

    def check(self, batch: list[Record]) -> list[Record]:
        """Execute and judge ``batch`` now and return it without writing it (a Ray worker's job)."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox") as pool:
            return self.settle(*self.submit(pool, batch))

    def finish(self, batch: list[Record], runnable: list[Record], execution: Execution) -> list[Record]:
        """Wait for a batch's execution, judge the records that passed it, write the whole batch."""
        assert self.files is not None, "a BatchRunner without run files only checks"
        for record in self.settle(batch, runnable, execution):
            self.files.append(record)
            if self.progress is not None:
                self.progress.advance(record)
        return batch

    def settle(self, batch: list[Record], runnable: list[Record], execution: Execution) -> list[Record]:
        """Wait for a batch's execution and judge the records that passed it."""
        waited = time.perf_counter()
        outcomes, seconds = execution.result()
        self.idle_seconds += time.perf_counter() - waited
        for record, outcome in zip(runnable, outcomes, strict=True):
            _store_execution(record, outcome, seconds / len(runnable))
            if self.judge is not None and outcome.check.passed:
                _store_verdict(record, self.judge, seed=record.id + self.seed * 1_000_003)
        return batch


def _store_execution(record: Record, outcome: RowExecution, seconds: float) -> None:
    """Put one row's sandbox results, execution verdict and time share on its record."""
    record.execution_result = outcome.results
    record.execution_check = outcome.check
    record.timings["execution"] = round(seconds, 4)


def _store_verdict(record: Record, judge: SemanticChecker, *, seed: int) -> None:
    """Judge an executed record with the semantic checker and put the verdict on it."""
    if record.query is None:
        return
    verdict = judge.judge(record.query, record.tools, record.answers, record.execution_result,
                          seed=seed)
    if judge.model is not None and verdict.raw:  # the model judged (not coverage alone)
        record.model_name = judge.model.name
    record.semantic_check, record.thought = verdict.check, verdict.thought
    record.raw_verdict = verdict.raw
    record.timings["semantic"] = round(verdict.seconds, 4)
    record.tokens["semantic"] = verdict.completion_tokens
