"""The whole pipeline on the real default model: per-stage pass rates, rows/min, tokens/s.

Usage: python benchmarks/real_model_end_to_end.py [--rows 60] [--seed 1] [--model GGUF]
       [--out out/bench-real] [--show 10]

Runs ``generate`` as ``make demo`` does (example library, seed file, sandbox, semantic judge) on
SmolLM2-135M-Instruct Q4_1 unless ``--model`` names another GGUF, then prints the funnel from
``stats.json``, the duplicate share, throughput, and ``--show`` accepted rows verbatim. The
output directory is emptied first, so every run measures fresh rows.

``--before-after`` measures the checks of issue 13 on the same rows: it generates and executes
with grounding and the semantic stage off, then runs on every executed row grounding, coverage
and the model's verdict (with the seed ``generate`` would use), and prints the funnel of the
previous pipeline (verdict only) beside the current one (grounding and coverage; and with the
verdict added, as ``--judge verdict`` runs).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from apigen_local.checks.coverage import check_coverage
from apigen_local.checks.grounding import check_grounding
from apigen_local.checks.semantic import SemanticChecker
from apigen_local.model.files import find_model
from apigen_local.model.local import LocalModel
from apigen_local.run.files import read_records
from apigen_local.run.generate import generate_dataset

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model")
    parser.add_argument("--out", default="out/bench-real")
    parser.add_argument("--show", type=int, default=10)
    parser.add_argument("--before-after", action="store_true", help="previous vs current checks, same rows")
    args = parser.parse_args()
    if args.before_after:
        return before_after(args)

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


def before_after(args: argparse.Namespace) -> int:
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    path = find_model(args.model)
    with LocalModel(path, n_ctx=8192, seed=args.seed) as model:
        result = generate_dataset(REPO / "examples" / "library.py", model, args.rows, out_dir=out,
                                  seed=args.seed, seed_file=str(REPO / "examples" / "seed.jsonl"),
                                  grounding=False, semantic=False)
        records = list(read_records(result.records_path))
        executed = [r for r in records if r.execution_check is not None and r.execution_check.passed]
        judge = SemanticChecker(model, design="verdict", coverage=False)
        grounded = covered = judged = both = 0
        examples: list[str] = []
        for record in executed:
            assert record.query is not None
            grounding = check_grounding(record.query, record.answers, record.tools)
            coverage = check_coverage(record.query, record.answers)
            verdict = judge.judge(record.query, record.tools, record.answers, record.execution_result,
                                  seed=record.id + args.seed * 1_000_003).check
            grounded += grounding.passed
            covered += grounding.passed and coverage.passed
            judged += verdict.passed
            both += grounding.passed and coverage.passed and verdict.passed
            if grounding.passed and coverage.passed and verdict.passed and len(examples) < args.show:
                examples.append(json.dumps({"query": record.query, "answers": [c.model_dump() for c in record.answers]},
                                           ensure_ascii=False))
    n = len(records)
    formatted = sum(r.dedup_check is not None and r.dedup_check.passed for r in records)
    print(f"model: {path.name}; machine: 2-core x86-64 VM, no GPU; {n} rows, seed {args.seed}")
    print(f"format+dedup passed {formatted}/{n}; executed OK {len(executed)}/{formatted}")
    print(f"previous pipeline (verdict only): accepted {judged}/{n} ({judged / n:.0%})")
    print(f"current pipeline: grounding passed {grounded}/{len(executed)}, coverage passed {covered}/{grounded}; "
          f"accepted {covered}/{n} ({covered / n:.0%}); with --judge verdict: verdict passed {both}/{covered}, "
          f"accepted {both}/{n} ({both / n:.0%})")
    print(f"\n{len(examples)} rows the current pipeline accepts:")
    print("\n".join(examples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
