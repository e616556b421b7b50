"""The local backend: one worker in this process, its sandbox one batch ahead of its model.

A generate task runs when its result is asked for, on this thread (the model's); a check task's
execution starts at once on a sandbox thread, and its judging waits until its result is asked
for. With the base loop's window of two batches, the model generates batch *k+1* while the
sandbox executes batch *k*, then judges batch *k*.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from ...checks.execution import RowExecution
from ...model.local import LocalModel
from ...tools import Library
from ...types import Record
from ..worker import Worker, WorkerSettings
from .base import Backend, ExecutionBackend, Task


class InProcess(Backend):
    """The default: one worker in this process, using the driver's model and library when loaded."""

    def start(self, settings: WorkerSettings, *, model: LocalModel | None,
              library: Library | None) -> ExecutionBackend:
        return LocalBackend(Worker(settings, model=model, library=library))


class LocalBackend(ExecutionBackend):
    """Runs every task on ``worker`` (opened on entry, closed on exit)."""

    reports_each_row = True

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker
        self._generate: deque[Task] = deque()
        self._checks: deque[tuple[Task, Future[tuple[list[RowExecution], float]]]] = deque()
        self._pool: ThreadPoolExecutor | None = None

    def open(self) -> None:
        self.worker.open()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox")

    def close(self) -> None:
        try:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
        finally:
            self.worker.close()

    def submit(self, task: Task) -> None:
        if task.kind == "generate":
            self._generate.append(task)
        else:
            assert self._pool is not None, "the backend is not open"
            self._checks.append((task, self._pool.submit(self.worker.execute, task.records)))

    def result(self) -> tuple[Task, list[Record], str]:
        if self._generate:  # the model works while the sandbox executes what was submitted
            task = self._generate.popleft()
            on_row = None if self.on_generated is None else (lambda: self.on_generated(1))  # type: ignore[misc]
            return task, self.worker.generate(task.indices, ahead=task.ahead, on_row=on_row), ""
        task, execution = self._checks.popleft()
        waited = time.perf_counter()
        outcomes, seconds = execution.result()
        self.idle_seconds += time.perf_counter() - waited
        return task, self.worker.judge(task.records, outcomes, seconds), ""
