"""The review's labels: ``DIR/labels.jsonl``, an append-only log of a person's verdicts on rows.

Each line is one :class:`ReviewLabel` event: a verdict on one row (``correct``, ``wrong`` with a
class from ``docs/labelling.md``, or ``skip``), or ``label: null``, which undoes the row's
verdict. A row's current label is its last event, so nothing is ever rewritten.

Crash safety: a line is appended whole under an exclusive ``flock`` (two pages, or two review
servers, on one run interleave whole lines) and fsynced before the page is told it is saved. A
torn last line (a crash mid-write) is closed with a newline before the next append, so it
stays one bad line. Reading keeps every good line and reports the bad ones by number.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, Field, ValidationError

from ..errors import ConfigError
from ..jsonl import BadLine, parse_line, split_lines
from .files import open_own, read_own, write_failure

LABELS_NAME: Final = "labels.jsonl"

#: The rubric's error classes (docs/labelling.md), in its order; key 1 is the first.
ERROR_CLASSES: Final = ("not_a_request", "nonsense", "wrong_function", "repeated_call", "missing_call",
                        "extra_call", "wrong_structure", "invented_value", "wrong_value")

Verdict = Literal["correct", "wrong", "skip"]


class ReviewLabel(BaseModel):
    """One line of ``labels.jsonl``."""

    row: int = Field(description="the record id in records.jsonl")
    label: Verdict | None = Field(description="None undoes the row's earlier label")
    error_class: Literal[ERROR_CLASSES] | None = None  # type: ignore[valid-type]
    accepted: bool = Field(description="whether the checks accepted the row")
    reviewer: str = ""
    time: str = Field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


class LabelLog(BaseModel):
    """What :func:`read_labels` found: the current label of each row, and the bad lines."""

    current: dict[int, ReviewLabel] = Field(default_factory=dict)
    events: int = 0
    bad_lines: list[int] = Field(default_factory=list)

    def verdicts(self) -> list[ReviewLabel]:
        """The current ``correct`` and ``wrong`` labels (skipped and undone rows left out)."""
        return [label for label in self.current.values() if label.label in ("correct", "wrong")]


def labels_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / LABELS_NAME


def read_labels(path: str | Path) -> LabelLog:
    """The labels of ``path`` (an empty log when the file does not exist); bad lines are skipped
    and their numbers kept in ``bad_lines``."""
    log = LabelLog()
    try:
        data = read_own(Path(path))
    except FileNotFoundError:
        return log
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for line in split_lines(data):
        try:
            label = ReviewLabel.model_validate(parse_line(line))
        except (BadLine, ValidationError):
            log.bad_lines.append(line.number)
            continue
        log.events += 1
        if label.label is None:
            log.current.pop(label.row, None)
        else:
            log.current[label.row] = label
    return log


def append_labels(path: str | Path, labels: Iterable[ReviewLabel]) -> None:
    """Append ``labels`` to ``path`` as whole lines, under an exclusive lock, and fsync them."""
    text = "".join(label.model_dump_json() + "\n" for label in labels)
    try:
        fd = open_own(Path(path), os.O_RDWR | os.O_CREAT | os.O_APPEND, writing=True)
    except OSError as exc:
        raise ConfigError(write_failure(Path(path), exc)) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":  # a torn last line stays one bad line
            text = "\n" + text
        data = text.encode("utf-8")
        while data:  # a write may take only part of it
            data = data[os.write(fd, data):]
        os.fsync(fd)
    except OSError as exc:
        raise ConfigError(write_failure(Path(path), exc)) from exc
    finally:
        os.close(fd)  # closing releases the lock
