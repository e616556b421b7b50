"""Constraint compile cost on the real vocabulary, and how many distinct schemas a run needs (issue 18, step b).

Usage: python benchmarks/constraint_compile.py [--model GGUF] [--rows 60] [--seed 1]

Samples the generation requests of ``--rows`` rows of the example library as ``generate`` does,
builds each row's output schema, and compiles every distinct schema once with outlines_core
against the model's vocabulary (what LocalModel does per cache miss). Prints the distinct-schema
share (the hit rate an ideal schema cache gets), compile time per schema, and how many schemas
one-schema-per-tool-set (call counts left to the format checker) would compile instead.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from apigen_local.generation.generator import output_schema
from apigen_local.generation.sampling import RequestSampler, load_seed_examples
from apigen_local.model.files import find_model
from apigen_local.model.local import LocalModel, _schema_key
from apigen_local.tools import load_library

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    library = load_library(REPO / "examples" / "library.py")
    examples = load_seed_examples(REPO / "examples" / "seed.jsonl")
    sampler = RequestSampler(library.tools, examples, seed=args.seed)
    requests = [sampler.request(i) for i in range(args.rows)]
    per_row = {_schema_key(output_schema(r.tools, min_calls=r.min_calls, max_calls=r.max_calls)) for r in requests}
    per_set = {tuple(sorted(t.name for t in r.tools)) for r in requests}
    path = find_model(args.model)
    with LocalModel(path, n_ctx=512, verify=False) as model:
        for key in per_row:
            model._compile(key)
        seconds = model.compile_seconds
    print(f"model: {path.name}; shared 2-core x86-64 VM, no GPU; {args.rows} rows, seed {args.seed}")
    print(f"distinct row schemas: {len(per_row)}/{args.rows} ({1 - len(per_row) / args.rows:.0%} cache hits at best); "
          f"distinct tool sets: {len(per_set)}")
    print(f"outlines_core compile per schema: mean {statistics.mean(seconds):.2f} s, "
          f"median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s, total {sum(seconds):.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
