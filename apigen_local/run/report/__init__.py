"""The run report: one self-contained HTML page per run directory (``DIR/report.html``).

The page shows the funnel of rows through every stage, the rejection reasons, pass rates per
query style and per function, throughput, the judge's calibration when one ran, seeded samples
of accepted and rejected rows, and the run's settings. It needs no network: the charts are
matplotlib figures inlined as SVG, and a few lines of inline JavaScript sort the tables.

``data`` aggregates (pure functions returning pydantic models, :func:`build_report` first),
``charts`` draws and ``page`` renders (:func:`render_html`); this module writes the file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from ...types import Record
from ..files import write_atomic
from .data import REPORT_NAME, SAMPLE_ROWS, ReportData, build_report, digest_records, funnel
from .page import render_html

__all__ = ["REPORT_NAME", "SAMPLE_ROWS", "ReportData", "build_report", "digest_records", "funnel", "render_html",
           "write_report", "write_report_or_warn"]

log = logging.getLogger(__name__)


def write_report(run_dir: str | Path, out: str | Path | None = None, *,
                 records: Iterable[Record] | None = None, seed: int = 0) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``run_dir/report.html``); return its path."""
    data = build_report(run_dir, records=records, seed=seed)
    path = Path(out) if out is not None else Path(run_dir) / REPORT_NAME
    page = render_html(data)
    write_atomic(path, page)  # through a temporary file: a link named report.html is replaced, not followed
    return path


def write_report_or_warn(run_dir: str | Path, *, records: Iterable[Record] | None = None) -> Path | None:
    """:func:`write_report` for the end of a run: a failure is one warning line, never an error,
    so the run's own files are never lost to it."""
    try:
        return write_report(run_dir, records=records)
    except Exception as exc:
        message = (str(exc).strip().splitlines() or [""])[0]
        log.warning("could not write the run report %s: %s%s", Path(run_dir) / REPORT_NAME,
                    type(exc).__name__, f": {message}" if message else "")
        return None
