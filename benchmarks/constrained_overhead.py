"""Cost of the Outlines constraint: constrained vs unconstrained decoding, and constraint compiles.

Usage: python benchmarks/constrained_overhead.py [--model models/tiny-test.gguf] [--prompts 6]
       [--reps 5]

Decoding: for real generation prompts of the example library, every repetition runs, on the same
loaded model and prompt (its KV state already cached, so only decoding is timed):
  - "unconstrained": llama.cpp decoding of exactly as many tokens as the constrained run produced
    (``Llama.generate``, the same sampler settings, no logits processor);
  - "constrained (LocalModel)": ``LocalModel.complete_json``, the product path;
  - "constrained (before)": the previous product path, ``Llama.create_completion`` with Outlines'
    ``OutlinesCoreLogitsProcessor`` plus a separate control-token ban processor.
Compile: cold (first use of a schema) vs cached (``LocalModel.constraint`` again) for 1, 5, 12 and 20
offered tools; "before" rows show the previous costs (a hit still rebuilt the regex; a cold
compile rebuilt Outlines' vocabulary).
Prefetch: generation only (no sandbox, no judge) of ``--prefetch-rows`` fresh rows in batches of
8, with the constraints of this and the next batch compiled in the background
(``Generator.prepare``, as the pipeline does) or each compiled when its row starts; alternating,
with a cold constraint cache each time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from apigen_local.generation.generator import Generator, output_schema
from apigen_local.generation.prompts import generation_messages
from apigen_local.generation.sampling import RequestSampler, load_seed_examples
from apigen_local.model.local import (
    JSON_WHITESPACE,
    LocalModel,
    _special_tokens,
    _widen_number_regex,
)
from apigen_local.model.tiny import TINY_MODEL_NAME, build_tiny_model
from apigen_local.tools import load_library
from apigen_local.types import Tool

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.8
TARGET_CACHED_SHARE = 0.05
SAMPLING: dict[str, Any] = {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.0}


def unconstrained(model: LocalModel, prompt: str, n_tokens: int, seed: int) -> float:
    """Seconds to decode exactly ``n_tokens`` unconstrained tokens after ``prompt``."""
    llama = model.llama
    started = time.perf_counter()
    tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
    llama.set_seed(seed)
    for count, _ in enumerate(llama.generate(tokens, temp=0.7, **SAMPLING), start=1):
        if count >= n_tokens:
            break
    return time.perf_counter() - started


class OldPath:
    """The decoding path before this benchmark's optimisations, rebuilt from the public APIs."""

    def __init__(self, model: LocalModel) -> None:
        import outlines
        from llama_cpp import LogitsProcessorList

        self.model = model
        self.outlines = outlines.from_llamacpp(model.llama, chat_mode=False)
        self.banned = _special_tokens(model.llama)
        self.processors: dict[str, Any] = {}
        self.list_type = LogitsProcessorList

    def regex(self, schema: dict[str, Any]) -> str:
        from outlines_core.json_schema import build_regex_from_schema

        return _widen_number_regex(build_regex_from_schema(json.dumps(schema), JSON_WHITESPACE))

    def compile(self, regex: str) -> Any:
        from outlines.backends import get_regex_logits_processor

        return get_regex_logits_processor("outlines_core", self.outlines, regex)

    def ban(self, input_ids: Any, scores: Any) -> Any:
        scores[self.banned] = -float("inf")
        return scores

    def complete(self, prompt: str, schema: dict[str, Any], max_tokens: int, seed: int) -> tuple[int, float]:
        regex = self.regex(schema)
        processor = self.processors.get(regex) or self.processors.setdefault(regex, self.compile(regex))
        processor.reset()
        started = time.perf_counter()
        out = self.model.llama.create_completion(
            prompt, max_tokens=max_tokens, temperature=0.7, seed=seed,
            logits_processor=self.list_type([processor, self.ban]),
        )
        return out["usage"]["completion_tokens"], time.perf_counter() - started


def decoding(model: LocalModel, old: OldPath, prompts: int, reps: int) -> dict[str, Any]:
    library = load_library(REPO / "examples" / "library.py")
    sampler = RequestSampler(library.tools, load_seed_examples(REPO / "examples" / "seed.jsonl"), seed=3)
    generator = Generator(model)
    totals = {"unconstrained": [0, 0.0], "constrained (LocalModel)": [0, 0.0],
              "constrained (before)": [0, 0.0]}
    generation_seconds: list[float] = []
    for index in range(prompts):
        request = sampler.request(index)
        messages, schema = generation_messages(request), generator.schema(request)
        prompt = model.render(messages)
        budget = 2048
        model.complete_json(messages, schema, seed=10_000 + index)  # warm-up: compile, cache prompt
        old.complete(prompt, schema, budget, seed=10_000 + index)
        for rep in range(reps):
            seed = index * 100 + rep
            done = model.complete_json(messages, schema, seed=seed)
            n = done.completion_tokens
            totals["constrained (LocalModel)"][0] += n
            totals["constrained (LocalModel)"][1] += done.seconds
            generation_seconds.append(done.seconds)
            totals["unconstrained"][0] += n
            totals["unconstrained"][1] += unconstrained(model, prompt, n, seed)
            old_n, old_seconds = old.complete(prompt, schema, budget, seed)
            totals["constrained (before)"][0] += old_n
            totals["constrained (before)"][1] += old_seconds
    rates = {mode: tokens / seconds for mode, (tokens, seconds) in totals.items()}
    return {"rates": rates, "tokens": {m: t for m, (t, _) in totals.items()},
            "generation_seconds": statistics.mean(generation_seconds)}


def tool_set(tools: list[Tool], count: int) -> list[Tool]:
    """``count`` distinct tools; renamed copies make up for a library smaller than ``count``."""
    chosen = list(tools[:count])
    copy = 0
    while len(chosen) < count:
        base = tools[copy % len(tools)]
        chosen.append(base.model_copy(update={"name": f"{base.name}_copy{copy}"}))
        copy += 1
    return chosen


def compiles(model: LocalModel, old: OldPath, generation_seconds: float) -> list[dict[str, Any]]:
    library = load_library(REPO / "examples" / "library.py")
    rows = []
    for count in (1, 5, 12, 20):
        schema = output_schema(tool_set(library.tools, count), min_calls=1, max_calls=4)
        started = time.perf_counter()
        model.constraint(schema)
        cold = time.perf_counter() - started
        hits = []
        for _ in range(50):
            started = time.perf_counter()
            model.constraint(schema)
            hits.append(time.perf_counter() - started)
        started = time.perf_counter()
        regex = old.regex(schema)
        old.compile(regex)
        old_cold = time.perf_counter() - started
        old_hits = []
        for _ in range(20):
            started = time.perf_counter()
            old.regex(schema)  # a hit of the old cache still rebuilt the regex to find its key
            old_hits.append(time.perf_counter() - started)
        rows.append({"tools": count, "cold": cold, "cached": statistics.median(hits),
                     "old_cold": old_cold, "old_cached": statistics.median(old_hits),
                     "share": statistics.median(hits) / generation_seconds})
    return rows


def prefetch(model: LocalModel, rows: int, rounds: int = 2) -> dict[str, float]:
    library = load_library(REPO / "examples" / "library.py")
    examples = load_seed_examples(REPO / "examples" / "seed.jsonl")
    generator = Generator(model)
    walls = {"prefetch": 0.0, "compile when the row starts": 0.0}
    for round_ in range(rounds):
        for mode in walls:
            model._constraints.clear()  # cold, as a fresh run
            sampler = RequestSampler(library.tools, examples, seed=200 + round_)
            started = time.perf_counter()
            for start in range(0, rows, 8):
                if mode == "prefetch":
                    generator.prepare(sampler.request(i) for i in range(start, min(rows, start + 16)))
                for index in range(start, min(rows, start + 8)):
                    generator.generate(sampler.request(index))
            walls[mode] += time.perf_counter() - started
    return walls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF (default: the tiny test model)")
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--prefetch-rows", type=int, default=40)
    args = parser.parse_args()
    path = args.model or build_tiny_model(REPO / "models" / TINY_MODEL_NAME)

    with LocalModel(path, n_ctx=8192, seed=1) as model:
        old = OldPath(model)
        decoded = decoding(model, old, args.prompts, args.reps)
        compiled = compiles(model, old, decoded["generation_seconds"])
        prefetched = prefetch(model, args.prefetch_rows)

    rates = decoded["rates"]
    print(f"model: {path.name}; {args.prompts} generation prompts x {args.reps} repetitions, "
          "prompt KV cached, decoding timed")
    print(f"{'mode':<28}{'tokens':>8}{'tokens/s':>11}{'vs unconstrained':>18}")
    for mode, rate in rates.items():
        print(f"{mode:<28}{decoded['tokens'][mode]:>8}{rate:>11,.0f}"
              f"{rate / rates['unconstrained']:>17.2f}x")
    ratio = rates["constrained (LocalModel)"] / rates["unconstrained"]
    gain = rates["constrained (LocalModel)"] / rates["constrained (before)"]
    print(f"constrained / unconstrained: {ratio:.2f}x (target >= {TARGET_RATIO}x); "
          f"LocalModel / before: {gain:.2f}x")
    print(f"\nmean constrained generation: {decoded['generation_seconds'] * 1000:.1f} ms")
    print(f"{'tools':>5}{'cold ms':>10}{'cached ms':>11}{'cached/gen':>12}"
          f"{'before: cold ms':>17}{'before: cached ms':>19}")
    for row in compiled:
        print(f"{row['tools']:>5}{row['cold'] * 1000:>10.1f}{row['cached'] * 1000:>11.3f}"
              f"{row['share']:>11.2%}{row['old_cold'] * 1000:>17.1f}{row['old_cached'] * 1000:>19.3f}")
    print(f"\ngeneration of {args.prefetch_rows} rows x 2 rounds, cold constraint cache:")
    for mode, wall in prefetched.items():
        print(f"  {mode:<30}{wall:>7.2f} s")
    print(f"  prefetch speed-up: {prefetched['compile when the row starts'] / prefetched['prefetch']:.2f}x")
    worst = max(row["share"] for row in compiled)
    print(f"cached compile / generation: <= {worst:.2%} (target < {TARGET_CACHED_SHARE:.0%})")
    return 0 if ratio >= TARGET_RATIO and worst < TARGET_CACHED_SHARE else 1


if __name__ == "__main__":
    sys.exit(main())
