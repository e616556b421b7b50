"""Progress for the CLI (library code never prints): a rich bar on a terminal, plain lines elsewhere.

The bar's line 1 moves per row: rows the model has finished (``generate``) or rows checked (``verify``),
of the run's total, with rows per minute and the time left. Line 2 has the figures of the rows
written so far, resumed ones included, computed as the summary and ``stats.json`` compute them:
each stage's rate is over the rows that reached that stage.

When the output is a file or a pipe (a job's log), :class:`LineProgress` prints one plain line
every :data:`LINE_EVERY_ROWS` written rows or :data:`LINE_EVERY_SECONDS` seconds, whichever comes
first, so a long run is never silent.

Both show when other programs hold the CPU (:class:`CoreWaitWatch`): the share of the recent rows'
generation time the model waited for a core, on the figures, and one warning line when the model
writes at well under its quiet rate.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Final

from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from ..types import STAGE_ORDER, Record
from .stats import Rate

LINE_EVERY_ROWS = 10
LINE_EVERY_SECONDS = 30.0

WAIT_ROWS: Final = 8  # the recent rows whose generation time the wait share is taken over
WAIT_SHOWN: Final = 0.15  # a share at least this is shown on the progress figures
WAIT_WARNED: Final = 0.4  # ... and at least this is warned about once: under 60 % of the quiet rate


class CoreWaitWatch:
    """The share of the recent rows' generation time that the model waited for a core
    (the ``generation_waiting`` timing each generated record carries): how far other programs have
    slowed it below its quiet rate."""

    def __init__(self) -> None:
        self._recent: deque[tuple[float, float]] = deque(maxlen=WAIT_ROWS)
        self._warned = False

    def add(self, record: Record) -> str | None:
        """Count a newly written row; the one warning of the run, the first time it is due."""
        waiting = record.timings.get("generation_waiting")
        if waiting is None or not record.timings.get("generation"):
            return None
        self._recent.append((waiting, record.timings["generation"]))
        share = self.share()
        if self._warned or share is None or share < WAIT_WARNED or len(self._recent) < WAIT_ROWS:
            return None
        self._warned = True
        return (f"warning: other programs are using the CPU: the model waited for a core {share:.0%} "
                f"of its time over the last {WAIT_ROWS} rows, so it writes at about {1 - share:.0%} "
                "of its rate on a quiet machine")

    def share(self) -> float | None:
        total = sum(seconds for _, seconds in self._recent)
        return None if total <= 0 else sum(waiting for waiting, _ in self._recent) / total

    def note(self) -> str:
        """`` · waiting for a core N %`` while the share is at least :data:`WAIT_SHOWN`, else ``""``."""
        share = self.share()
        return "" if share is None or share < WAIT_SHOWN else f" · waiting for a core {share:.0%}"


class _TwoLines(Progress):
    """A progress bar with a line of text under it."""

    below = ""

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        if self.below:
            yield Text(self.below, overflow="fold")


class RichProgress:
    """Implements :class:`~apigen_local.run.job.ProgressReporter` with a live bar; use as a
    context manager."""

    def __init__(self, console: Console, label: str = "generating") -> None:
        self._stages = {stage: Rate() for stage in STAGE_ORDER}
        self._written = self._accepted = self._generated = 0
        self._started_with = 0
        self._clock = time.monotonic()
        self._workers = ""
        self._waits = CoreWaitWatch()
        self._progress = _TwoLines(
            TextColumn(f"[bold]{label}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[speed]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._rows = self._progress.add_task("rows", total=None, speed="")

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def start(self, total: int, done: Sequence[Record]) -> None:
        for record in done:
            self._count(record)
        self._generated = self._started_with = len(done)
        self._clock = time.monotonic()
        self._progress.update(self._rows, total=total, completed=len(done))
        self._show()

    def generated(self, rows: int) -> None:
        self._generated += rows
        self._show()

    def advance(self, record: Record) -> None:
        self._count(record)
        warning = self._waits.add(record)
        if warning is not None:
            self._progress.console.print(warning, style="yellow", markup=False, highlight=False)
        self._show()

    def workers(self, rows: dict[str, int]) -> None:
        """Rows done by each Ray worker (the Ray backend's tally); shown on the figures line."""
        self._workers = " · per worker " + " ".join(f"{name}:{n}" for name, n in rows.items())

    def _count(self, record: Record) -> None:
        self._written += 1
        self._accepted += int(record.accepted)
        for stage, check in record.checks():
            self._stages[stage].add(check.passed)

    def _show(self) -> None:
        done = max(self._generated, self._written)
        minutes = (time.monotonic() - self._clock) / 60
        new = done - self._started_with
        speed = f"{new / minutes:.1f} rows/min" if minutes > 0 and new > 0 else ""
        accepted = Rate(total=self._written, passed=self._accepted)
        stages = " · ".join(f"{stage} {rate.percent()}" for stage, rate in self._stages.items() if rate.total)
        text = f"written {self._written} · accepted {self._accepted} ({accepted.percent()})"
        self._progress.below = (text + (f" · {stages}" if stages else "") + self._waits.note() + self._workers
                                if self._written else "")
        self._progress.update(self._rows, completed=done, speed=speed)


class LineProgress:
    """Implements :class:`~apigen_local.run.job.ProgressReporter` as plain lines on ``console``:
    rows generated and written of the total, rows per minute, and the accepted share."""

    def __init__(self, console: Console, label: str = "generating", *, every_rows: int = LINE_EVERY_ROWS,
                 every_seconds: float = LINE_EVERY_SECONDS) -> None:
        self._console, self._label = console, label
        self._every_rows, self._every_seconds = every_rows, every_seconds
        self._total = self._written = self._accepted = self._generated = self._started_with = 0
        self._clock = self._last_time = time.monotonic()
        self._last_rows = 0
        self._waits = CoreWaitWatch()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._written != self._last_rows:
            self._line()

    def start(self, total: int, done: Sequence[Record]) -> None:
        self._total = total
        for record in done:
            self._count(record)
        self._generated = self._started_with = self._last_rows = len(done)
        self._clock = self._last_time = time.monotonic()
        resumed = f", {len(done)} already written" if done else ""
        self._console.print(f"{self._label}: {total} rows{resumed}; a line every {self._every_rows} rows "
                            f"or {self._every_seconds:g} s", highlight=False)

    def generated(self, rows: int) -> None:
        self._generated += rows
        self._maybe_line()

    def advance(self, record: Record) -> None:
        self._count(record)
        warning = self._waits.add(record)
        if warning is not None:
            self._console.print(warning, markup=False, highlight=False)
        self._maybe_line()

    def _count(self, record: Record) -> None:
        self._written += 1
        self._accepted += int(record.accepted)

    def _maybe_line(self) -> None:
        now = time.monotonic()
        if self._written - self._last_rows >= self._every_rows or now - self._last_time >= self._every_seconds:
            self._line()

    def _line(self) -> None:
        now = time.monotonic()
        self._last_time, self._last_rows = now, self._written
        minutes = (now - self._clock) / 60
        new = self._written - self._started_with
        speed = f"{new / minutes:.1f} rows/min" if minutes > 0 and new > 0 else "- rows/min"
        accepted = Rate(total=self._written, passed=self._accepted)
        self._console.print(f"{self._label}: written {self._written}/{self._total} · generated "
                            f"{max(self._generated, self._written)} · {speed} · accepted {self._accepted} "
                            f"({accepted.percent()}){self._waits.note()} · {minutes:.1f} min", highlight=False)
