"""How fast the review page answers a person's keys (issue 25): the time from a key press to the
next row on screen with the label saved, on a copy of a real run, in headless Chromium.

Usage: python benchmarks/review_labelling.py RUN_DIR [--labels 6] [--rejected]

Labels the first ``--labels`` rows of the sample on a copy of ``RUN_DIR`` (the run's own
``labels.jsonl`` is never touched), alternating ``y`` and ``n`` + a class, and prints the time of
each label and of the page's first load. The verdicts are not judgements: this measures the
page, not the rows.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests/browser.py: the headless Chromium driver the page tests use

from apigen_local.review.server import ReviewServer  # noqa: E402
from apigen_local.review.session import ReviewSession  # noqa: E402
from apigen_local.run.review_log import labels_path, read_labels  # noqa: E402
from tests.browser import Chromium, find_chromium  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--labels", type=int, default=6)
    parser.add_argument("--rejected", action="store_true")
    args = parser.parse_args()
    executable = find_chromium()
    if executable is None:
        print("chromium is not installed (scripts/setup.sh installs it)")
        return 1
    work = Path(tempfile.mkdtemp(prefix="review-bench-"))
    run = work / "run"
    shutil.copytree(args.run_dir, run, ignore=shutil.ignore_patterns("labels.jsonl", ".lock"))
    (work / "profile").mkdir()
    browser = Chromium(executable, work / "profile")
    try:
        with ReviewServer(ReviewSession(run, size=args.labels, rejected=args.rejected), 0) as server:
            server.start()
            page = browser.first
            started = time.perf_counter()
            page.open(server.url)
            page.wait_until("!!document.querySelector('article.row') || !!document.querySelector('.empty')")
            load = time.perf_counter() - started
            rows = page.evaluate("document.querySelectorAll('#sample li').length")
            times = []
            for index in range(min(args.labels, rows)):
                keys = "y" if index % 2 == 0 else "n7"
                started = time.perf_counter()
                for key in keys:
                    page.press(key)
                page.wait_until(f"document.getElementById('progress').textContent.startsWith('{index + 1} /')")
                times.append(time.perf_counter() - started)
            server.shutdown()
    finally:
        browser.close()
    saved = len(read_labels(labels_path(run)).current)
    print(f"review page on {args.run_dir} ({'rejected' if args.rejected else 'accepted'} rows), headless Chromium, "
          "this machine")
    print(f"first load: {1000 * load:.0f} ms; rows in the sample: {rows}; labels saved: {saved}")
    if times:
        print("per label (key press to next row shown, label fsynced): "
              + ", ".join(f"{1000 * t:.0f}" for t in times) + " ms; "
              f"median {1000 * statistics.median(times):.0f} ms")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if saved == len(times) else 1


if __name__ == "__main__":
    sys.exit(main())
