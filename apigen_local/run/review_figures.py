"""Measured precision from a person's review: correct rows among the labelled accepted rows, with
the Wilson 95 % interval, over all of them, per query style and per function. Labels on rejected
rows give the other side: correct rows among the labelled rejected ones (what the checks threw
away). Pure functions over the label log and the records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..types import Record
from .labels import Share
from .review_log import LabelLog, labels_path, read_labels


class ReviewFigures(BaseModel):
    """What the labels say about a run."""

    labelled: int = 0  # rows with a correct or wrong label
    skipped: int = 0
    precision: Share = Field(default_factory=Share)  # correct among labelled accepted rows
    rejected_correct: Share = Field(default_factory=Share)  # correct among labelled rejected rows
    styles: dict[str, Share] = Field(default_factory=dict)  # precision per query style
    functions: dict[str, Share] = Field(default_factory=dict)  # precision per called function
    wrong_classes: dict[str, int] = Field(default_factory=dict)  # labelled wrong accepted rows per class
    bad_lines: list[int] = Field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The figures ``stats.json`` keeps."""
        low, high = self.precision.interval or (None, None)
        return {"labelled": self.labelled, "precision": self.precision.rate, "precision_low": low,
                "precision_high": high, "correct": self.precision.hit, "accepted_labelled": self.precision.total,
                "rejected_labelled": self.rejected_correct.total, "rejected_correct": self.rejected_correct.hit,
                "styles": {k: v.model_dump() for k, v in self.styles.items()},
                "functions": {k: v.model_dump() for k, v in self.functions.items()}}

    def lines(self) -> list[str]:
        """The figures as lines of text, for ``apigen-local stats``."""
        lines = [f"reviewed precision: {self.precision.text()} of labelled accepted rows"]
        if self.rejected_correct.total:
            lines.append(f"  correct among labelled rejected rows: {self.rejected_correct.text()}")
        for title, groups in (("style", self.styles), ("function", self.functions)):
            lines.extend(f"  {title} {name:<24} {share.text()}" for name, share in groups.items())
        lines.extend(f"  wrong accepted rows of class {name}: {count}" for name, count in self.wrong_classes.items())
        if self.bad_lines:
            lines.append(f"  labels.jsonl lines skipped as unreadable: {_numbers(self.bad_lines)}")
        return lines


def review_figures(log: LabelLog, records: Mapping[int, Record] | Iterable[Record]) -> ReviewFigures:
    """The figures of ``log``'s labels on ``records`` (by id). A label whose row is not among the
    records (a file from another run) is left out; a row counts as accepted as its record says now."""
    by_id = records if isinstance(records, Mapping) else {record.id: record for record in records}
    figures = ReviewFigures(bad_lines=list(log.bad_lines))
    styles: dict[str, Share] = defaultdict(Share)
    functions: dict[str, Share] = defaultdict(Share)
    classes: dict[str, int] = defaultdict(int)
    for label in log.current.values():
        record = by_id.get(label.row)
        if record is None:
            continue
        if label.label == "skip":
            figures.skipped += 1
            continue
        good = label.label == "correct"
        figures.labelled += 1
        if not record.accepted:
            _count(figures.rejected_correct, good)
            continue
        _count(figures.precision, good)
        _count(styles[record.style], good)
        for name in sorted({call.name for call in record.answers}):
            _count(functions[name], good)
        if not good:
            classes[label.error_class or "unclassified"] += 1
    figures.styles = dict(sorted(styles.items()))
    figures.functions = dict(sorted(functions.items()))
    figures.wrong_classes = dict(sorted(classes.items(), key=lambda item: (-item[1], item[0])))
    return figures


def run_review(run_dir: str | Path, records: Mapping[int, Record] | Iterable[Record]) -> ReviewFigures | None:
    """The figures of ``run_dir``'s ``labels.jsonl`` on ``records``, or ``None`` when nobody reviewed it."""
    log = read_labels(labels_path(run_dir))
    if not log.events and not log.bad_lines:
        return None
    return review_figures(log, records)


def _count(share: Share, good: bool) -> None:
    share.total += 1
    share.hit += good


def _numbers(numbers: list[int], shown: int = 10) -> str:
    text = ", ".join(str(n) for n in numbers[:shown])
    return text + (f" and {len(numbers) - shown} more" if len(numbers) > shown else "")
