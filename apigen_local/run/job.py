"""The one run loop of ``generate`` and ``verify``, on whichever backend the caller passes.

:meth:`Job.run` owns a run's lifecycle: open the run files (which refuse other settings and
return the records already written), resume, hand the pending batches to an execution backend,
append each finished record in order (``run/files.py`` makes that crash-safe), and, however the
run ends, close the files, write ``stats.json`` and the report, and return a
:class:`DatasetResult`. A job says only what is particular to it: its identity, its batches, the
checks the driver runs (:meth:`Job.admit`), which records execute, and the settings its workers
are built from (:meth:`Job.backend`, started on the :class:`~.backends.base.Backend` it was given).
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from ..errors import ConfigError
from ..sandbox.executor import library_files
from ..tools import Library
from ..types import Record
from .backends.base import Backend, Batch, ExecutionBackend
from .calibration import Calibration
from .files import RunFiles, read_own, write_atomic
from .labels import LabelReport
from .report import write_report_or_warn
from .review_figures import run_review
from .stats import RunStats, compute_stats

T = TypeVar("T")


class DatasetResult(BaseModel):
    """What :func:`generate_dataset` and :func:`verify_dataset` return: the files and the statistics."""

    out_dir: Path
    dataset_path: Path
    records_path: Path
    rejected_path: Path
    stats_path: Path
    resumed_rows: int
    stats: RunStats


class ProgressReporter(Protocol):
    """Receives progress; the CLI draws a bar with it, library users may log or ignore it.

    ``start`` gets the records a resumed run had already written; ``advance`` gets each record as
    it is written. Two methods are optional, called only where a reporter has them:
    ``generated(rows)``, told as the model finishes rows (before they are checked and written;
    ``verify`` generates none), and ``workers(rows_per_worker)`` for Ray runs.
    """

    def start(self, total: int, done: Sequence[Record]) -> None: ...

    def advance(self, record: Record) -> None: ...


class Job(ABC):
    """One run over rows; subclasses fill in what differs between ``generate`` and ``verify``."""

    calibration: Calibration | None = None  # the judge's calibration, shown in the stats
    labelled: LabelReport | None = None  # the model's precision on labelled rows, shown in the stats

    def __init__(self, out_dir: str | Path, progress: ProgressReporter | None, runs_on: Backend) -> None:
        self.files = RunFiles(out_dir)
        self.progress = progress
        self.runs_on = runs_on  # where the workers are

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """The settings that decide the rows' contents; a resumed run must match them."""

    @abstractmethod
    def total(self) -> int:
        """How many rows the whole run has."""

    @abstractmethod
    def batches(self, done: set[int]) -> Iterator[Batch]:
        """The batches of the rows whose ids are not in ``done``, in row order."""

    @abstractmethod
    def backend(self) -> ExecutionBackend:
        """Where the batches run (not yet opened): :attr:`runs_on` started with this job's worker settings."""

    def resume(self, done: Sequence[Record]) -> None:  # noqa: B027 - a hook; verify keeps no driver state
        """Rebuild the driver's state from the records already written (in id order)."""

    def admit(self, records: list[Record]) -> list[Record]:
        """The driver's checks on one batch, called in batch order (none by default)."""
        return records

    @abstractmethod
    def executes(self, record: Record) -> bool:
        """True for an admitted record that goes to a worker to be checked (it passed every earlier check)."""

    def finish(self, records: list[Record]) -> list[Record]:
        """The driver's last step on a checked batch, in batch order, before it is written (none by default)."""
        return records

    def run(self) -> DatasetResult:
        """Run, or resume, to :meth:`total` records and return the result."""
        started = time.perf_counter()
        backend = self.backend()  # a bad cluster address fails here, before any output exists
        done = self.files.open(self.identity())
        try:
            previous_wall = previous_wall_seconds(self.files) if done else 0.0
            self.resume(sorted(done, key=lambda r: r.id))
            if self.progress is not None:
                self.progress.start(self.total(), done)
                backend.on_generated = getattr(self.progress, "generated", None)  # optional, as workers() is
        except BaseException:
            self.files.close()  # lets go of the directory
            raise
        records = list(done)
        try:
            batches = self.batches({r.id for r in done})
            first = next(batches, None)
            if first is not None:
                with backend:
                    for finished in backend.run(chain([first], batches), self):
                        self._write(finished, backend, records)
        finally:
            self.files.close_files()
            try:  # the directory stays held until its stats and report are written too
                stats = write_stats(self.files, records, previous_wall + time.perf_counter() - started,
                                    model_idle_seconds=backend.idle_seconds,
                                    rows_per_worker=dict(backend.rows_per_worker),
                                    calibration=self.calibration, labelled=self.labelled)
                write_report_or_warn(self.files.dir, records=records)
            finally:
                self.files.close()
        return DatasetResult(
            out_dir=self.files.dir, dataset_path=self.files.dataset, records_path=self.files.records,
            rejected_path=self.files.rejected, stats_path=self.files.stats, resumed_rows=len(done),
            stats=stats,
        )

    def _write(self, finished: list[Record], backend: ExecutionBackend, records: list[Record]) -> None:
        """Append each record to the run files, then to ``records`` (what the stats count)."""
        finished = self.finish(finished)
        self.files.append(finished)  # the batch's rows, in order, with one fsync per file
        for record in finished:
            records.append(record)
            if self.progress is not None:
                self.progress.advance(record)
        show = getattr(self.progress, "workers", None)
        if backend.rows_per_worker and callable(show):
            show(dict(backend.rows_per_worker))


def ramped(pending: Sequence[T], size: int) -> Iterator[list[T]]:
    """``pending`` in batches of 1, 2, 4, ... rows up to ``size``, so the first rows reach
    ``records.jsonl`` after one row's work rather than after a whole batch's."""
    start, step = 0, 1
    while start < len(pending):
        yield list(pending[start:start + step])
        start, step = start + step, min(step * 2, size)


def model_identity(path: Path | None) -> dict[str, Any] | None:
    """What a resumed run's model must match: the GGUF's file name and size (cheap to read, and
    another model differs in at least one of them)."""
    if path is None:
        return None
    return {"file": path.name, "bytes": path.stat().st_size}


def library_identity(library: Library) -> dict[str, Any]:
    """What a resumed run's library must match: its path and a digest of the source the sandbox
    runs (every file of a package), so rows executed by edited code never join a run."""
    path = Path(library.path)
    try:
        _, files = library_files(path.parent if path.name == "__init__.py" else path)
    except ConfigError:  # a file the sandbox cannot take (my-tools.py) is still a library verify can read
        files = {path.name: path.read_bytes()}
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return {"path": library.path, "sha256": digest.hexdigest()[:16]}


def previous_wall_seconds(files: RunFiles) -> float:
    """The wall time a resumed run had already spent, from its ``stats.json`` (0 if none)."""
    try:
        return RunStats.model_validate_json(read_own(files.stats)).wall_seconds
    except (OSError, ValueError, ConfigError):  # none, or damaged: the run's time starts again
        return 0.0


def write_stats(files: RunFiles, records: Sequence[Record], wall_seconds: float, *,
                model_idle_seconds: float = 0.0, rows_per_worker: dict[str, int] | None = None,
                calibration: Calibration | None = None, labelled: LabelReport | None = None) -> RunStats:
    """Compute the run's statistics from ``records`` and write ``stats.json``."""
    stats = compute_stats(records, wall_seconds=wall_seconds)
    stats.model_idle_seconds = round(model_idle_seconds, 3)
    stats.calibration = calibration.summary() if calibration is not None else None
    stats.labelled = labelled.summary() if labelled is not None else None
    stats.rows_per_worker = dict(rows_per_worker or {})
    reviewed = run_review(files.dir, records) if files.dir.is_dir() else None
    stats.reviewed = reviewed.summary() if reviewed is not None else None
    if files.dir.is_dir():
        write_atomic(files.stats, stats.model_dump_json(indent=2))
    return stats
