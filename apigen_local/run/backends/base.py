"""Where a job's rows are generated, executed and judged: the one interface and the one loop.

A job hands a backend its batches (:class:`Batch`): row indices for a worker to generate, or
records the driver already made (``verify`` reads and format-checks rows itself). Each batch
goes through up to three steps:

1. ``generate`` on a worker (only when the batch holds indices);
2. ``admit`` on the driver, strictly in batch order (dedup and grounding must see the rows in
   index order), which also decides which records execute (:class:`Driver`);
3. ``check`` on a worker: execute the admitted records in the sandbox and judge them.

:meth:`ExecutionBackend.run` owns that loop and yields each batch's finished records in batch
order, at most :attr:`~ExecutionBackend.window` batches ahead of the oldest unfinished one. A
backend only says how a :class:`Task` starts (:meth:`~ExecutionBackend.submit`) and how the next
finished one comes back (:meth:`~ExecutionBackend.result`): in this process
(``backends/local.py``), on a Ray cluster (``backends/ray.py``), or on a worker object you write
(``backends/memory.py``).

A caller chooses where a run goes by passing a :class:`Backend` (``backend=`` of
``generate_dataset`` and ``verify_dataset``), as httpx takes a transport: the job asks it for the
run's :class:`ExecutionBackend` with the settings its workers are built from.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from ...types import Record

if TYPE_CHECKING:
    from ...model.local import LocalModel
    from ...tools import Library
    from ..worker import WorkerSettings


@dataclass
class Batch:
    """Rows of a job: ``indices`` to generate on a worker, or ``records`` the driver made."""

    indices: list[int] = field(default_factory=list)
    records: list[Record] | None = None


@dataclass
class Task:
    """One step of one batch on a worker: generate rows ``indices``, or check ``records``.

    ``ahead`` holds the indices of the batch after this one, whose constraints a worker may
    prepare while this one decodes.
    """

    batch: int
    kind: Literal["generate", "check"]
    indices: list[int] = field(default_factory=list)
    ahead: list[int] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)


class Driver(Protocol):
    """What a backend asks of the job, on the driver, between a batch's steps."""

    def admit(self, records: list[Record]) -> list[Record]:
        """Run the driver's checks on a batch; called once per batch, in batch order."""
        ...

    def executes(self, record: Record) -> bool:
        """True for an admitted record that goes to the sandbox (and then the judge)."""
        ...


class ExecutionBackend(ABC):
    """Runs tasks on workers. Use as a context manager: workers start on entry, stop on exit."""

    window = 2  # batches out at once; 2 lets a worker generate batch k+1 while k executes
    reports_each_row = False  # True: the backend calls on_generated per row as the model writes it

    def __init__(self) -> None:
        self.rows_per_worker: Counter[str] = Counter()  # rows each named worker generated or checked
        self.idle_seconds = 0.0  # time the model waited for the sandbox (a local run's measure)
        self.on_generated: Callable[[int], None] | None = None  # told how many rows were just generated

    def __enter__(self) -> ExecutionBackend:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abstractmethod
    def open(self) -> None:
        """Start the workers."""

    @abstractmethod
    def close(self) -> None:
        """Stop the workers and free what they hold (models, sandbox containers)."""

    @abstractmethod
    def submit(self, task: Task) -> None:
        """Start ``task`` (or queue it to start)."""

    @abstractmethod
    def result(self) -> tuple[Task, list[Record], str]:
        """Wait for a submitted task to finish; return it, its records and its worker's name
        (``""`` for an unnamed worker). A task lost with its worker runs again before it returns."""

    def run(self, batches: Iterable[Batch], driver: Driver) -> Iterator[list[Record]]:
        """Take ``batches`` through generate, admit and check; yield each one's records in order."""
        source = iter(batches)
        upcoming = next(source, None)
        drawn = admitted = yielded = 0
        generated: dict[int, list[Record]] = {}  # waiting to be admitted in order
        checking: dict[int, tuple[list[Record], list[int]]] = {}  # admitted; positions sent to check
        finished: dict[int, list[Record]] = {}  # waiting to be yielded in order
        made_on_driver: set[int] = set()
        while True:
            while admitted in generated:
                records = driver.admit(generated.pop(admitted))
                positions = [i for i, record in enumerate(records) if driver.executes(record)]
                if positions:
                    checking[admitted] = (records, positions)
                    self.submit(Task(admitted, "check", records=[records[i] for i in positions]))
                else:
                    finished[admitted] = records
                admitted += 1
            if yielded in finished:
                yield finished.pop(yielded)
                yielded += 1
                continue
            if upcoming is not None and drawn - yielded < self.window:
                batch, upcoming = upcoming, next(source, None)
                if batch.records is None:
                    ahead = upcoming.indices if upcoming is not None and upcoming.records is None else []
                    self.submit(Task(drawn, "generate", indices=batch.indices, ahead=ahead))
                else:
                    generated[drawn] = batch.records
                    made_on_driver.add(drawn)
                drawn += 1
                continue
            if yielded == drawn:
                return
            task, records, worker = self.result()
            if task.kind == "generate":
                generated[task.batch] = records
                if self.on_generated is not None and not self.reports_each_row:
                    self.on_generated(len(records))
            else:
                finished[task.batch] = _merged(*checking.pop(task.batch), records)
            if worker and (task.kind == "generate" or task.batch in made_on_driver):
                self.rows_per_worker[worker] += len(records)  # each row once: its first worker


class Backend(ABC):
    """Where a run's workers are: what a caller passes as ``backend=``."""

    @abstractmethod
    def start(self, settings: WorkerSettings, *, model: LocalModel | None,
              library: Library | None) -> ExecutionBackend:
        """The execution backend of one run whose workers are built from ``settings``; a worker in
        this process may use the driver's loaded ``model`` and ``library`` instead of loading its own."""


def _merged(records: list[Record], positions: Sequence[int], checked: list[Record]) -> list[Record]:
    """``records`` with the checked ones put back at ``positions``."""
    if [records[i].id for i in positions] != [record.id for record in checked]:
        raise RuntimeError("a worker returned other records than it was sent")
    merged = list(records)
    for i, record in zip(positions, checked, strict=True):
        merged[i] = record
    return merged
