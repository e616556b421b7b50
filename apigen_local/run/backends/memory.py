"""The in-memory backend: the real run loop on a worker object you write, with no model and no Docker.

For testing what is built on the run loop (resume, crash recovery, batch order, what a job
writes), as httpx ships a mock transport. Pass ``backend=InMemory(worker)``: ``worker.generate``
makes rows from indices and ``worker.check`` executes and judges records, both in this thread. The
backend picks which submitted task finishes next (``order``) and can stop the run as if the
process died (``crash_after``). The real-Docker and real-Ray tests remain the net.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from ...model.local import LocalModel
from ...tools import Library
from ...types import Record
from ..worker import WorkerSettings
from .base import Backend, ExecutionBackend, Task


class MemoryWorker(Protocol):
    """What :class:`InMemory` runs tasks on."""

    def generate(self, indices: Sequence[int]) -> list[Record]:
        """Rows ``indices``, format-checked."""
        ...

    def check(self, records: Sequence[Record]) -> list[Record]:
        """``records`` (copies: change them freely), executed and judged."""
        ...


class SimulatedCrash(Exception):
    """Raised by :class:`InMemory` after ``crash_after`` results: the process 'dies' there."""


class InMemory(Backend, ExecutionBackend):
    """Runs a run's tasks on ``worker``; serves one run at a time, and is its own execution backend.

    ``order`` picks which submitted task finishes next: ``fifo``, or ``newest`` (the most recent
    first, so later batches finish before earlier ones). ``window`` is the batches out at once.
    Workers are named ``m0``, ``m1`` ... in turn, ``workers`` of them. ``most_out`` is the most
    batches that were out at once.
    """

    def __init__(self, worker: MemoryWorker, *, order: Literal["fifo", "newest"] = "fifo", window: int = 3,
                 crash_after: int | None = None, workers: int = 2) -> None:
        super().__init__()
        self.worker = worker
        self.order = order
        self.window = window
        self.crash_after = crash_after
        self.names = [f"m{i}" for i in range(workers)]
        self.tasks: list[Task] = []
        self.results = 0
        self.opened = self.closed = False
        self.most_out = 0

    def start(self, settings: WorkerSettings, *, model: LocalModel | None,
              library: Library | None) -> ExecutionBackend:
        return self

    def open(self) -> None:
        self.opened = True

    def close(self) -> None:
        self.closed = True

    def submit(self, task: Task) -> None:
        if not self.opened or self.closed:
            raise RuntimeError("a task was submitted to a backend that is not open")
        self.tasks.append(task)
        self.most_out = max(self.most_out, len({t.batch for t in self.tasks}))

    def result(self) -> tuple[Task, list[Record], str]:
        if self.crash_after is not None and self.results >= self.crash_after:
            raise SimulatedCrash(f"crashed after {self.results} results")
        task = self.tasks.pop(0 if self.order == "fifo" else -1)
        name = self.names[self.results % len(self.names)]
        self.results += 1
        if task.kind == "generate":
            return task, self.worker.generate(task.indices), name
        return task, self.worker.check([r.model_copy(deep=True) for r in task.records]), name
