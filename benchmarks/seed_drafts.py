"""A new user's own library: generation with no seed file against drafted seed rows (issue 24).

Usage: python benchmarks/seed_drafts.py [--rows 48] [--model GGUF] [--out out/bench-seeds]

Runs ``generate`` on ``benchmarks/libraries/kitchen.py`` (in no test and no seed file) with the
same seed and rows, (i) with no seed file, (ii) with the rows ``apigen-local seed`` drafts
for it, as they come out (unedited), and (iii) with those rows edited by hand into requests a
person would write (``benchmarks/libraries/kitchen_seed.jsonl``). Prints each condition's
accepted rows and rows/min, and every accepted row verbatim, so that a reader can count the
correct ones.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from apigen_local.generation.seed_draft import draft_seed_rows
from apigen_local.model.files import find_model
from apigen_local.model.local import LocalModel
from apigen_local.run.files import read_records
from apigen_local.run.generate import generate_dataset
from apigen_local.tools import load_library

REPO = Path(__file__).resolve().parent.parent
LIBRARY = REPO / "benchmarks" / "libraries" / "kitchen.py"
EDITED = REPO / "benchmarks" / "libraries" / "kitchen_seed.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--model")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPO / "out" / "bench-seeds")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    seeds = args.out / "drafted_seed.jsonl"
    rows = draft_seed_rows(load_library(LIBRARY).tools)
    seeds.write_text("".join(json.dumps(row) + "\n" for row in rows))
    path = find_model(args.model)
    print(f"model: {path.name}; library: {LIBRARY.name}; {args.rows} rows per condition, seed {args.seed}")
    with LocalModel(path, n_ctx=8192, seed=args.seed) as model:
        for name, seed_file in (("no seed file", None), ("drafted seed file", str(seeds)),
                                ("edited seed file", str(EDITED))):
            started = time.perf_counter()
            result = generate_dataset(LIBRARY, model, args.rows, out_dir=args.out / name.replace(" ", "_"),
                                      seed=args.seed, seed_file=seed_file)
            wall = time.perf_counter() - started
            stats = result.stats
            print(f"\n== {name}: accepted {stats.accepted}/{stats.rows} ({stats.acceptance:.0%}), "
                  f"{stats.rows * 60 / wall:.1f} rows/min; rejected: {dict(list(stats.reasons.items())[:5])}")
            for record in read_records(result.records_path):
                if record.accepted:
                    calls = json.dumps([c.model_dump() for c in record.answers])
                    print(f"  [{record.id}] {record.query!r} -> {calls}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
