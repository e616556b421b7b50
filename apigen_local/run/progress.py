"""A rich progress bar with live pass rates, for the CLI (library code never prints)."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..types import Record


class RichProgress:
    """Implements the pipeline's ``ProgressReporter`` with a live bar; use as a context manager."""

    def __init__(self, console: Console, label: str = "generating") -> None:
        self._counts: Counter[str] = Counter()
        self._workers = ""
        self._progress = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rates]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task("rows", total=None, rates="")

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def start(self, total: int, done: int) -> None:
        self._progress.update(self._task, total=total, completed=done)

    def advance(self, record: Record) -> None:
        counts = self._counts
        counts["rows"] += 1
        counts["format"] += int(record.format_check.passed
                                and (record.dedup_check is None or record.dedup_check.passed))
        counts["grounding"] += int(record.grounding_check is not None and record.grounding_check.passed)
        counts["execution"] += int(record.keep_row_after_execution_check)
        counts["accepted"] += int(record.accepted)
        rows = counts["rows"]
        rates = (f"format {counts['format'] / rows:.0%} · grounding {counts['grounding'] / rows:.0%}"
                 f" · execution {counts['execution'] / rows:.0%}"
                 f" · accepted {counts['accepted'] / rows:.0%}{self._workers}")
        self._progress.update(self._task, advance=1, rates=rates)

    def workers(self, rows: dict[str, int]) -> None:
        """Rows done by each Ray worker (the Ray driver calls this); shown after the pass rates."""
        self._workers = " · rows per worker " + " ".join(f"{name}:{n}" for name, n in rows.items())
