"""The whole pipeline on the real default model: per-stage pass rates, rows/min, tokens/s.

Usage: python benchmarks/real_model_end_to_end.py [--rows 60] [--seed 1] [--model GGUF]
       [--out out/bench-real] [--show 10]

Runs ``generate`` as ``make demo`` does (example library, seed file, sandbox, semantic judge) on
SmolLM2-135M-Instruct Q4_1 unless ``--model`` names another GGUF, then prints the funnel from
``stats.json``, the duplicate share, throughput, and ``--show`` accepted rows verbatim. The
output directory is emptied first, so every run measures fresh rows.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from apigen_local.model.files import find_model
from apigen_local.run.files import read_records
from apigen_local.run.pipeline import generate_dataset

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model")
    parser.add_argument("--out", default="out/bench-real")
    parser.add_argument("--show", type=int, default=10)
    args = parser.parse_args()

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    model = find_model(args.model)
    result = generate_dataset(REPO / "examples" / "library.py", model, args.rows, out_dir=out,
                              seed=args.seed, seed_file=str(REPO / "examples" / "seed.jsonl"))
    stats = result.stats
    records = list(read_records(result.records_path))
    print(f"model: {model.name}; machine: 2-core x86-64 VM, no GPU; {args.rows} rows, seed {args.seed}")
    print(f"{'stage':<12}{'in':>6}{'passed':>8}{'rate':>8}")
    for stage, rate in stats.stages.items():
        print(f"{stage:<12}{rate.total:>6}{rate.passed:>8}{rate.rate:>8.0%}")
    duplicates = sum(1 for r in records if r.dedup_check is not None and not r.dedup_check.passed)
    print(f"accepted: {stats.accepted}/{stats.rows} ({stats.acceptance:.0%}); "
          f"rejected as duplicates: {duplicates}/{stats.rows} ({duplicates / stats.rows:.0%})")
    print(f"reasons: {json.dumps(stats.reasons)}")
    prompt = sum(r.tokens.get("prompt", 0) for r in records) / len(records)
    generated = sum(r.tokens.get("generation", 0) for r in records) / len(records)
    print(f"throughput: {stats.rows_per_minute:.1f} rows/min, {stats.tokens_per_second:.1f} tok/s generated; "
          f"{prompt:.0f} prompt and {generated:.0f} generated tokens per row; wall {stats.wall_seconds:.0f} s")
    print(f"\n{args.show} accepted rows:")
    for line in result.dataset_path.read_text().splitlines()[:args.show]:
        row = json.loads(line)
        print(json.dumps({"query": row["query"], "answers": json.loads(row["answers"])}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
