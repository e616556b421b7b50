"""One review of one run: its written records (read incrementally), its sample, its labels and the
figures they give. The server (:mod:`.server`) is a thin HTTP face over this object."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..checks.grounding import GroundingMode
from ..errors import ConfigError
from ..jsonl import complete_part, split_lines
from ..run.files import RunFiles, open_own
from ..run.report.data import load_settings
from ..run.review_figures import ReviewFigures, review_figures
from ..run.review_log import ERROR_CLASSES, ReviewLabel, Verdict, append_labels, labels_path, read_labels
from ..types import Record
from .rows import review_row, sample_rows


class LabelRequest(BaseModel):
    """What the page sends: a verdict on one row, or ``label: null`` to undo it."""

    row: int
    label: Verdict | None
    error_class: str | None = None


class ReviewSession:
    """The state of a review of ``run_dir``: thread-safe, re-reading only what the run appended."""

    def __init__(self, run_dir: str | Path, *, size: int = 50, seed: int = 0, rejected: bool = False,
                 reviewer: str = "") -> None:
        self.files = RunFiles(run_dir)
        if not self.files.dir.is_dir():
            raise ConfigError(f"{self.files.dir} is not a run directory (it does not exist or is not a folder)")
        if not self.files.records.is_file() and not self.files.run.is_file():
            raise ConfigError(f"{self.files.dir} is not a run directory (no records.jsonl or run.json): give the "
                              "--out directory of a generate or verify run")
        if size < 1:
            raise ConfigError(f"--sample must be at least 1, not {size}")
        self.size, self.seed, self.accepted, self.reviewer = size, seed, not rejected, reviewer
        self.labels_file = labels_path(self.files.dir)
        mode = load_settings(self.files.dir).get("grounding")
        self.grounding_mode: GroundingMode = "implied" if mode == "implied" else "strict"  # verify's choice
        self._records: dict[int, Record] = {}
        self._offset = 0
        self._lock = threading.Lock()

    def records(self) -> dict[int, Record]:
        """Every record written so far, by id (lines appended since the last call are read now)."""
        with self._lock:
            try:
                with os.fdopen(open_own(self.files.records, os.O_RDONLY), "rb") as handle:
                    if handle.seek(0, 2) < self._offset:  # the file was replaced: read it again
                        self._records.clear()
                        self._offset = 0
                    handle.seek(self._offset)
                    data = handle.read()
            except FileNotFoundError:  # a run that has written no row yet
                return {}
            except OSError as exc:
                raise ConfigError(f"cannot read {self.files.records}: {exc.strerror or exc}") from exc
            complete = complete_part(data)  # a line still being written waits for the next call
            for line in split_lines(complete):
                try:
                    record = Record.model_validate_json(line.raw)
                except ValueError:
                    continue  # not a record: the run's own readers report it
                self._records.setdefault(record.id, record)
            self._offset += len(complete)
            return dict(self._records)

    def state(self) -> dict[str, Any]:
        """Everything the page shows."""
        records = self.records()
        rows = sample_rows(records.values(), size=self.size, seed=self.seed, accepted=self.accepted)
        log = read_labels(self.labels_file)
        figures = review_figures(log, records)
        return {
            "run_dir": str(self.files.dir.resolve()), "kind": "accepted" if self.accepted else "rejected",
            "sample_size": self.size, "seed": self.seed, "reviewer": self.reviewer,
            "being_written": self.files.being_written(), "written_rows": len(records),
            "classes": list(ERROR_CLASSES), "bad_lines": log.bad_lines,
            "rows": [review_row(record, self.grounding_mode).model_dump() for record in rows],
            "labels": {str(row.id): log.current[row.id].model_dump(include={"label", "error_class", "reviewer"})
                       for row in rows if row.id in log.current},
            "figures": _figures_view(figures),
        }

    def label(self, body: bytes) -> None:
        """Record the page's label (JSON ``body``), fsynced; a bad one is a ConfigError saying why."""
        try:
            request = LabelRequest.model_validate_json(body)
        except ValidationError as exc:
            raise ConfigError(f"not a label: {str(exc).splitlines()[0]}") from exc
        record = self.records().get(request.row)
        if record is None:
            raise ConfigError(f"row {request.row} is not in this run")
        if request.label == "wrong" and request.error_class not in ERROR_CLASSES:
            raise ConfigError(f"a wrong row needs an error class, one of: {', '.join(ERROR_CLASSES)}")
        error_class = request.error_class if request.label == "wrong" else None
        append_labels(self.labels_file, [ReviewLabel(row=record.id, label=request.label, error_class=error_class,
                                                     accepted=record.accepted, reviewer=self.reviewer)])


def _figures_view(figures: ReviewFigures) -> dict[str, Any]:
    def share(s: Any) -> dict[str, Any]:
        low, high = s.interval or (None, None)
        return {"hit": s.hit, "total": s.total, "low": low, "high": high, "text": s.text()}

    return {"labelled": figures.labelled, "skipped": figures.skipped, "precision": share(figures.precision),
            "rejected_correct": share(figures.rejected_correct),
            "styles": {k: share(v) for k, v in figures.styles.items()},
            "functions": {k: share(v) for k, v in figures.functions.items()},
            "wrong_classes": figures.wrong_classes}
