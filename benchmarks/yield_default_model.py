"""Correct rows per minute from the default model: query-first and calls-first side by side (issue 38).

Usage: python benchmarks/yield_default_model.py [--rows 60] [--seeds 501,502] [--judge coverage]

For each seed and each example library it runs a fresh ``generate`` of ``--rows`` rows in each mode,
the modes alternating, on the default model at default settings (one process, one run at a time,
model load included in the time). Per run it prints rows/min, accepted rows and the acceptance.

Then, per mode, the labelled share of generated rows that are correct and accepted: the labelled
rows of that mode (``--labels``: query-first from ``real_holdout.jsonl``, calls-first from
``yield_holdout.jsonl``) are checked again now, and the share is correct-and-accepted rows over
labelled rows, times the share of the runs' rows that passed the format check (labelled files
hold only those). **Correct rows/min** = the mode's measured rows/min x that share.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LABELLED = REPO / "benchmarks" / "labelled"
MODES = ("query_first", "calls_first")
LABELS = {"query_first": LABELLED / "real_holdout.jsonl", "calls_first": LABELLED / "yield_holdout.jsonl"}


def run_once(library: str, mode: str, rows: int, seed: int, judge: str, out: Path) -> dict:
    """One fresh generate run; its wall time (model load included), rows, format passes and accepted."""
    from apigen_local.run.generate import generate_dataset

    started = time.perf_counter()
    generate_dataset(REPO / "examples" / f"{library}.py", n_rows=rows, out_dir=out, seed=seed, mode=mode,
                     seed_file=str(REPO / "examples" / "seed.jsonl"), judge=judge)
    wall = time.perf_counter() - started
    stats = json.loads((out / "stats.json").read_text())
    return {"library": library, "mode": mode, "seed": seed, "rows": stats["rows"], "wall": wall,
            "format_passed": stats["stages"]["format"]["passed"], "accepted": stats["accepted"]}


def labelled_share(mode: str) -> tuple[int, int, int] | None:
    """(correct and accepted, accepted, labelled) over the labelled rows of ``mode``, checked now."""
    from apigen_local.run.labels import measure, read_labelled

    path = LABELS[mode]
    if not path.is_file():
        return None
    rows = [row for row in read_labelled(path) if row.mode == mode]
    figures = measure(rows)
    return figures.precision.hit, figures.accepted, figures.rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--seeds", default="501")
    parser.add_argument("--judge", default="coverage")
    parser.add_argument("--libraries", default="library,planner_library")
    args = parser.parse_args()
    print(f"default model SmolLM2-135M-Instruct Q4_1, default settings but --mode; machine {platform.machine()} "
          f"{platform.node()}, {time.strftime('%Y-%m-%d')}")
    runs = []
    with tempfile.TemporaryDirectory(prefix="apigen-yield-") as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            for library in args.libraries.split(","):
                for mode in MODES:
                    run = run_once(library, mode, args.rows, seed, args.judge, Path(tmp) / f"{library}-{mode}-{seed}")
                    runs.append(run)
                    print(f"  {library:<16} {mode:<12} seed {seed}: {run['rows']} rows in {run['wall']:.0f} s "
                          f"({60 * run['rows'] / run['wall']:.1f} rows/min), accepted {run['accepted']} "
                          f"({run['accepted'] / run['rows']:.0%})", flush=True)
    print("\n| mode | rows/min | accepted | labelled: correct and accepted / labelled rows | precision | "
          "correct rows/min |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode in MODES:
        mine = [run for run in runs if run["mode"] == mode]
        rows = sum(run["rows"] for run in mine)
        per_minute = 60 * rows / sum(run["wall"] for run in mine)
        accepted = sum(run["accepted"] for run in mine)
        share = labelled_share(mode)
        if share is None:
            print(f"| {mode} | {per_minute:.1f} | {accepted}/{rows} | no labels | - | - |")
            continue
        good, kept, labelled = share
        formatted = sum(run["format_passed"] for run in mine) / rows
        correct_per_minute = per_minute * formatted * good / labelled
        print(f"| {mode} | {per_minute:.1f} | {accepted}/{rows} | {good}/{labelled} | "
              f"{good}/{kept} | **{correct_per_minute:.2f}** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
