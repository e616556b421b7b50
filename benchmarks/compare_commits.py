"""Rows/min of this tree against an earlier commit, on the same rows, alternating in one run.

Usage: python benchmarks/compare_commits.py --base REV [--rows 32] [--rounds 2] [--model GGUF]
       [--library examples/library.py] [--seed-file examples/seed.jsonl]

Checks REV out into a temporary git worktree (its sandbox image is built if missing), then runs
``apigen-local generate`` with the same settings and seed ``--rounds`` times for each tree, in
alternating order (base, here, here, base, ...), each in a fresh process and output folder, so a
burst of other work on the machine hits both alike. Prints each run's rows/min (from its
``stats.json``), the mean per tree, and whether both trees wrote the same records (ids, queries,
calls and verdicts).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from apigen_local.model.files import find_model

REPO = Path(__file__).resolve().parent.parent


def run(tree: Path, out: Path, args: argparse.Namespace) -> float:
    """One ``generate`` run of the package in ``tree``; its rows/min."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-c", "import sys; from apigen_local.cli import main; sys.exit(main())",
               "generate", "--library", str(REPO / args.library), "--seed-file", str(REPO / args.seed_file),
               "--rows", str(args.rows), "--seed", "1", "--out", str(out), "--quiet", "--model", args.model]
    # run in the tree itself: ``python -c`` puts the working folder first on sys.path
    subprocess.run(command, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, check=True, capture_output=True)
    return json.loads((out / "stats.json").read_text())["rows_per_minute"]


def contents(out: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    return sorted((r["id"], r["query"], json.dumps(r["answers"]), (r.get("semantic_check") or {}).get("passed"))
                  for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model")
    parser.add_argument("--library", default="examples/library.py")
    parser.add_argument("--seed-file", default="examples/seed.jsonl")
    args = parser.parse_args()
    args.model = str(find_model(args.model).resolve())  # both trees read the same file
    work = Path(tempfile.mkdtemp(prefix="apigen-compare-"))
    base = work / "base"
    try:
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(base), args.base],
                       check=True, capture_output=True)
        subprocess.run([sys.executable, "-c", "import sys; from apigen_local.cli import main; sys.exit(main())",
                        "sandbox", "build"], cwd=base, env={**os.environ, "PYTHONPATH": str(base)},
                       check=True, capture_output=True)
        figures: dict[str, list[float]] = {"base": [], "here": []}
        for round_ in range(args.rounds):
            order = [("base", base), ("here", REPO)]
            for name, tree in order if round_ % 2 == 0 else order[::-1]:
                figures[name].append(run(tree, work / f"{name}{round_}", args))
                print(f"round {round_ + 1}: {name:<4} {figures[name][-1]:6.1f} rows/min", flush=True)
        same = contents(work / "base0") == contents(work / "here0")
        print(f"\nmodel: {Path(args.model).name}; {args.rows} rows, seed 1, {args.library}; "
              f"{os.cpu_count()} CPUs")
        for name, values in figures.items():
            print(f"{name:<4} ({args.base if name == 'base' else 'this tree'}): mean "
                  f"{sum(values) / len(values):.1f} rows/min over {len(values)} runs")
        print(f"same records in both trees: {'yes' if same else 'NO'}")
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
