"""Greedy rows: does the batched engine write the same text as the one-at-a-time path?

Usage: python benchmarks/greedy_agreement.py [--model GGUF] [--rows 16] [--batch 8]

The generation prompts of ``--rows`` rows of one example group, each held to its own output
schema, decoded at temperature 0 (i) one at a time through ``complete_json`` (llama-cpp-python's
context: F16 keys, llama.cpp's sampler) and (ii) through the batched engine, ``--batch`` at a
time, with attention keys cached as F16 and as Q8_0 (the default). Prints how many rows are the
same text, and for the others the first character where they part. Both paths use the same
weights (the Q8_0 copy of a Q4_1 model) and llguidance, so a difference comes from the numerics of
batched decoding and of the key cache only.
"""

from __future__ import annotations

import argparse
import sys

from throughput_real_model import group_items

from apigen_local.model.files import find_model
from apigen_local.model.local import LocalModel


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    items = group_items(args.rows)
    path = find_model(args.model)
    with LocalModel(path, n_ctx=8192, seed=1, constraint_backend="llguidance") as model:
        print(f"model: {path.name} (computed as {model.weights_path.name}); {args.rows} rows, temperature 0")
        alone = [model.complete_json(messages, schema, temperature=0.0).text for messages, schema in items]
        for keys in ("f16", "q8_0"):
            model.kv_keys = keys
            batched = [c.text for c in model.complete_json_many(items, temperature=0.0, batch=args.batch)]
            same = sum(a == b for a, b in zip(alone, batched, strict=True))
            parted = [next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
                      for a, b in zip(alone, batched, strict=True) if a != b]
            print(f"engine, batch {args.batch}, {keys} keys: {same}/{args.rows} rows the same text as one at a "
                  f"time" + (f"; the others part at character {', '.join(map(str, parted))}" if parted else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
