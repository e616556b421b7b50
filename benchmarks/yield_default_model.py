"""Correct rows per minute from the default model: query-first and calls-first side by side (issue 38).

Usage: python benchmarks/yield_default_model.py [--rows 60] [--seeds 701] [--variants A,B] [--runs-file F]
[--labels-only]

Variants: query-first; calls-first at temperature 0.7 (the default before the second round of
issue 38) and at its default now (0.3, one request per drawn call); calls-first with up to three
requests per drawn call (``--request-candidates 3``, issue 38's third round); calls-first with
``--judge round-trip``. For each seed and
each example library (with its seed file: ``examples/seed.jsonl``, ``examples/planner_seed.jsonl``)
it runs a fresh ``generate`` of ``--rows`` rows per variant, the variants alternating, on the
default model at default settings otherwise (one process, one run at a time, model load included
in the time). Per run it prints rows/min, accepted rows and the acceptance.

Then, per variant, the labelled share of generated rows that are correct and accepted: the
variant's labelled rows (query-first: ``real_holdout.jsonl``; calls-first at 0.7: the first
``yield_holdout.jsonl``, written before the closest seed row and the lower temperature; calls-first
now: ``yield_holdout_5.jsonl``; with three tries: ``yield_holdout_4.jsonl``) are checked again now with the variant's semantic design, and the
share is correct-and-accepted rows over labelled rows, times the share of the runs' rows that
passed the format check (labelled files hold only those). **Correct rows/min** = the variant's
measured rows/min x that share. Precision and recall come with their Wilson 95 % intervals. The
round trip runs the model on every labelled row, so it is measured on labels only with
``--round-trip-labels``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
LABELLED = REPO / "benchmarks" / "labelled"


class Variant(NamedTuple):
    name: str
    mode: str
    judge: str  # the semantic design
    temperature: float | None  # None: the mode's default
    labels: str  # the labelled rows this variant wrote, in benchmarks/labelled/
    tries: int = 1  # calls-first: the most requests written for each drawn call (--request-candidates)


VARIANTS = (Variant("query-first", "query_first", "coverage", None, "real_holdout.jsonl"),
            Variant("calls-first at 0.7", "calls_first", "coverage", 0.7, "yield_holdout.jsonl"),
            Variant("calls-first", "calls_first", "coverage", None, "yield_holdout_5.jsonl"),
            Variant("calls-first 3 tries", "calls_first", "coverage", None, "yield_holdout_4.jsonl", tries=3),
            Variant("calls-first + round trip", "calls_first", "round_trip", None, "yield_holdout_2.jsonl"))
SEED_FILES = {"library": "seed.jsonl", "planner_library": "planner_seed.jsonl"}


def run_once(library: str, variant: Variant, rows: int, seed: int, out: Path) -> dict:
    """One fresh generate run; its wall time (model load included), rows, format passes and accepted."""
    from apigen_local.run.generate import generate_dataset

    started = time.perf_counter()
    generate_dataset(REPO / "examples" / f"{library}.py", n_rows=rows, out_dir=out, seed=seed, mode=variant.mode,
                     seed_file=str(REPO / "examples" / SEED_FILES[library]), judge=variant.judge,
                     temperature=variant.temperature, request_candidates=variant.tries)
    wall = time.perf_counter() - started
    stats = json.loads((out / "stats.json").read_text())
    return {"library": library, "mode": variant.mode, "seed": seed, "rows": stats["rows"], "wall": wall,
            "format_passed": stats["stages"]["format"]["passed"], "accepted": stats["accepted"]}


def labelled_figures(variant: Variant, model=None):
    """The checks' figures (``LabelFigures``) on the variant's labelled rows, with its semantic design."""
    from apigen_local.checks.semantic import SemanticChecker
    from apigen_local.run.labels import measure, read_labelled

    path = LABELLED / variant.labels
    if not path.is_file():
        return None
    rows = [row for row in read_labelled(path) if row.mode == variant.mode]
    judge = SemanticChecker(model, design=variant.judge) if variant.judge != "coverage" else None
    return measure(rows, judge=lambda row: judge)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--seeds", default="701")
    parser.add_argument("--libraries", default="library,planner_library")
    parser.add_argument("--variants", help="comma-separated variant names to run (default: all)")
    parser.add_argument("--runs-file", type=Path, help="write the runs' figures here, or with --labels-only "
                        "read them from here")
    parser.add_argument("--round-trip-labels", action="store_true", help="also run the round trip on the labelled "
                        "rows (the model answers each one: about 15 s a row on 2 cores)")
    parser.add_argument("--labels-only", action="store_true", help="no runs: the labelled figures, with the "
                        "runs of --runs-file when given")
    args = parser.parse_args()
    print(f"default model SmolLM2-135M-Instruct Q4_1, default settings but the variant; machine "
          f"{platform.machine()} {platform.node()}, {time.strftime('%Y-%m-%d')}")
    chosen = [v for v in VARIANTS if not args.variants or v.name in args.variants.split(",")]
    runs = []
    with tempfile.TemporaryDirectory(prefix="apigen-yield-") as tmp:
        for seed in ([] if args.labels_only else [int(s) for s in args.seeds.split(",")]):
            for library in args.libraries.split(","):
                for number, variant in enumerate(chosen):
                    out = Path(tmp) / f"{library}-{number}-{seed}"
                    run = run_once(library, variant, args.rows, seed, out)
                    runs.append({**run, "variant": variant.name})
                    print(f"  {library:<16} {variant.name:<26} seed {seed}: {run['rows']} rows in {run['wall']:.0f} s "
                          f"({60 * run['rows'] / run['wall']:.1f} rows/min), accepted {run['accepted']} "
                          f"({run['accepted'] / run['rows']:.0%})", flush=True)
    if args.runs_file and not args.labels_only:
        args.runs_file.write_text(json.dumps(runs, indent=1))
    elif args.runs_file:
        runs = json.loads(args.runs_file.read_text())
    from apigen_local.model.files import find_model
    from apigen_local.model.local import LocalModel

    model = LocalModel(find_model(None), n_ctx=4096)
    print("\n| variant | rows/min | accepted in the runs | labelled rows correct and accepted | precision "
          "(Wilson 95 %) | recall | correct rows/min |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for variant in chosen:
        skip = variant.judge == "round_trip" and not args.round_trip_labels
        figures = None if skip else labelled_figures(variant, model)
        mine = [run for run in runs if run["variant"] == variant.name]
        rows = sum(run["rows"] for run in mine)
        per_minute = 60 * rows / sum(run["wall"] for run in mine) if mine else None
        accepted = f"{sum(run['accepted'] for run in mine)}/{rows}" if mine else "-"
        if figures is None:
            print(f"| {variant.name} | {per_minute or 0:.1f} | {accepted} | no labels | - | - | - |")
            continue
        good = figures.precision.hit
        correct = "-"
        if mine:
            formatted = sum(run["format_passed"] for run in mine) / rows
            correct = f"**{per_minute * formatted * good / figures.rows:.2f}**"
        print(f"| {variant.name} | {'-' if per_minute is None else f'{per_minute:.1f}'} | {accepted} | "
              f"{good}/{figures.rows} | {figures.precision.text()} | {figures.recall.text()} | {correct} |")
        if variant.judge == "coverage":
            print("  rejected by: " + ", ".join(f"{k} {v}" for k, v in figures.rejected_by.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
