"""Time to first token with and without reusing the KV state of a shared prompt prefix.

Usage: python benchmarks/prompt_cache.py [--model models/tiny-test.gguf] [--requests 8]
       [--long-prefix-tokens 4096]

Each request is a shared prefix (the generator's system prompt, then a few-shot block) followed by
a different suffix (the offered tools and instruction of a real generation request). Two prefixes:
the generator's system prompt with no few-shot block, and a few-shot block of seed rows repeated
to ``--long-prefix-tokens``. Per suffix, in alternation:
  - "no reuse": ``Llama.reset()`` first, so the whole prompt is evaluated;
  - "reuse": the previous request had the same prefix; llama.cpp keeps its KV state and evaluates
    only the new suffix (what ``LocalModel`` does between requests).
Time to first token is one ``complete_text(..., max_tokens=1)``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from apigen_local.generation.prompts import GENERATOR_SYSTEM, generation_messages
from apigen_local.generation.sampling import RequestSampler, load_seed_examples
from apigen_local.model.local import LocalModel
from apigen_local.model.tiny import TINY_MODEL_NAME, build_tiny_model
from apigen_local.tools import load_library

REPO = Path(__file__).resolve().parent.parent


def suffixes(count: int) -> list[str]:
    """The tools-and-instruction part of ``count`` real generation requests (no examples)."""
    library = load_library(REPO / "examples" / "library.py")
    sampler = RequestSampler(library.tools, [], seed=5)
    return [generation_messages(sampler.request(i))[1]["content"] for i in range(count)]


def few_shot_block(model: LocalModel, tokens: int) -> str:
    """Seed rows as few-shot examples, repeated until the block reaches ``tokens`` tokens."""
    rows = load_seed_examples(REPO / "examples" / "seed.jsonl")
    shots: list[str] = []
    block = ""
    while len(model.llama.tokenize(block.encode("utf-8"), add_bos=False, special=True)) < tokens:
        row = rows[len(shots) % len(rows)]
        shots.append(f"## Query:\n{row.query}\n## Answers:\n{row.answers}")
        block = "Examples of requests and answers for other functions:\n" + "\n\n".join(shots)
    return block + "\n\n"


def measure(model: LocalModel, prefix: str, tails: list[str]) -> dict[str, Any]:
    def ask(tail: str) -> Any:
        return model.complete_text([{"role": "system", "content": GENERATOR_SYSTEM},
                                    {"role": "user", "content": prefix + tail}],
                                   max_tokens=1, seed=0)

    cold: list[float] = []
    warm: list[float] = []
    reused: list[int] = []
    prompt_tokens: list[int] = []
    for i, tail in enumerate(tails):
        model.llama.reset()
        done = ask(tail)
        cold.append(done.seconds)
        prompt_tokens.append(done.prompt_tokens)
        done = ask(tails[(i + 1) % len(tails)])  # same prefix, another suffix
        warm.append(done.seconds)
        reused.append(done.cached_tokens)
    return {"prompt": statistics.mean(prompt_tokens), "reused": statistics.mean(reused),
            "cold": statistics.median(cold), "warm": statistics.median(warm)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF (default: the tiny test model)")
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--long-prefix-tokens", type=int, default=4096)
    args = parser.parse_args()
    path = args.model or build_tiny_model(REPO / "models" / TINY_MODEL_NAME)

    tails = suffixes(args.requests)
    with LocalModel(path, n_ctx=8192, seed=1) as model:
        results = {
            "system prompt only": measure(model, "", tails),
            f"system + {args.long_prefix_tokens}-token few-shot": measure(
                model, few_shot_block(model, args.long_prefix_tokens), tails),
        }

    print(f"model: {path.name}; {args.requests} requests per prefix, medians")
    print(f"{'shared prefix':<34}{'prompt tok':>11}{'reused tok':>11}{'TTFT no reuse':>15}"
          f"{'TTFT reuse':>12}{'speed-up':>10}")
    for name, r in results.items():
        print(f"{name:<34}{r['prompt']:>11.0f}{r['reused']:>11.0f}{r['cold'] * 1000:>12.1f} ms"
              f"{r['warm'] * 1000:>9.1f} ms{r['cold'] / r['warm']:>9.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
