"""``apigen-local review DIR``: serve the review page until Ctrl-C, and keep ``report.html`` in step
with the labels (rewritten a moment after each label, never while a run is writing the directory,
which writes the report itself when it ends)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from ..run.report import write_report_or_warn
from .server import ReviewServer
from .session import ReviewSession

REPORT_DELAY = 1.0  # seconds of quiet after a label before the report is rewritten


class ReportRefresher:
    """Rewrites a run's report after labels, at most one at a time, in a background thread."""

    def __init__(self, session: ReviewSession) -> None:
        self.session = session
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="review-report", daemon=True)
        self._thread.start()

    def mark(self) -> None:
        self._dirty.set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            if self._dirty.wait(timeout=0.5) and not self._stopping.wait(REPORT_DELAY):
                self._refresh()

    def _refresh(self) -> None:
        self._dirty.clear()
        if not self.session.files.being_written():
            write_report_or_warn(self.session.files.dir)

    def stop(self) -> None:
        """Stop the thread, writing the report once more if a label came since the last write."""
        self._stopping.set()
        self._thread.join()
        if self._dirty.is_set():
            self._refresh()


def serve(run_dir: str | Path, *, size: int = 50, seed: int = 0, rejected: bool = False, reviewer: str = "",
          port: int = 8765, announce: Callable[[ReviewSession, ReviewServer], None] = lambda s, v: None) -> None:
    """Serve the review of ``run_dir`` on 127.0.0.1 until interrupted (Ctrl-C)."""
    session = ReviewSession(run_dir, size=size, seed=seed, rejected=rejected, reviewer=reviewer)
    refresher = ReportRefresher(session)
    try:
        with ReviewServer(session, port, on_label=refresher.mark) as server:
            announce(session, server)
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
    finally:
        refresher.stop()
