"""Generation prompt variants on the real default model: format pass, duplicates, value support.

Usage: python benchmarks/real_model_prompts.py [--rows 30] [--seed 1] [--model GGUF]
       [--variants query_first:3:0.7,answers_first:3:0.7]

A variant is ORDER:EXAMPLES:TEMPERATURE[:single]: the key order of the constrained reply
(query_first or answers_first), the number of few-shot examples, the sampling temperature, and
``single`` for the earlier layout (all examples as one block in a single user message, without
their functions) instead of one finished exchange per example.

Loads the model once and generates the same ``--rows`` requests (example library, seed file,
seed) with each variant, alternating row by row so machine noise hits every variant alike. It
only generates and format-checks (no sandbox, no judge) and prints per variant:
  - format pass rate;
  - duplicate share (queries equal up to case, spacing and punctuation);
  - placeholder share: queries copied from prompt text (the old JSON shape line);
  - value support: share of calls whose every string and number argument appears in the query
    (a rough stand-in for grounding: number words or unit conversions count as unsupported);
  - prompt and generated tokens per row, seconds per row.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from apigen_local.checks.dedup import normalise_query
from apigen_local.checks.format import check_generation
from apigen_local.generation.generator import Generator
from apigen_local.generation.prompts import GENERATOR_SYSTEM, describe_tools, example_output
from apigen_local.generation.sampling import GenerationRequest, RequestSampler, load_seed_examples
from apigen_local.model.files import find_model
from apigen_local.model.local import Completion, LocalModel
from apigen_local.tools import load_library

REPO = Path(__file__).resolve().parent.parent
PLACEHOLDERS = ("the request", "function_name", "short reasoning")


def _values(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [v for item in value.values() for v in _values(item)]
    if isinstance(value, list):
        return [v for item in value for v in _values(item)]
    return [value]


def supported(query: str, arguments: dict[str, Any]) -> bool:
    """Every string and number argument value appears in ``query`` (numbers compared as numbers)."""
    text = query.casefold()
    numbers = {float(n.replace(",", "")) for n in re.findall(r"-?\d[\d,]*(?:\.\d+)?", query)}
    for value in _values(arguments):
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, (int, float)):
            if float(value) not in numbers:
                return False
        elif str(value).casefold().strip() not in text:
            return False
    return True


class SingleTurnGenerator(Generator):
    """The earlier prompt layout: examples as one block, then the functions and the task."""

    def generate(self, request: GenerationRequest) -> Completion:
        shots = "\n".join(example_output(e, answers_first=self.answers_first) for e in request.examples)
        task = (f"Example replies, for other functions:\n{shots}\n\n" if shots else "") + \
            f"Functions:\n{describe_tools(request.tools)}\n\nWrite a request for these functions " \
            f"answered by {request.min_calls} to {request.max_calls} calls. Reply with the JSON only."
        messages = [{"role": "system", "content": GENERATOR_SYSTEM}, {"role": "user", "content": task}]
        return self.model.complete_json(messages, self.schema(request), temperature=self.temperature,
                                        seed=request.sample_seed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model")
    parser.add_argument("--variants", default="query_first:3:0.7,answers_first:3:0.7")
    args = parser.parse_args()

    library = load_library(REPO / "examples" / "library.py")
    examples = load_seed_examples(REPO / "examples" / "seed.jsonl")
    path = find_model(args.model)
    variants = [(parts[0], int(parts[1]), float(parts[2]), parts[3:] == ["single"])
                for parts in (spec.split(":") for spec in args.variants.split(","))]
    samplers = {v: RequestSampler(library.tools, examples, seed=args.seed, n_examples=v[1]) for v in variants}
    print(f"model: {path.name}; machine: 2-core x86-64 VM, no GPU; {args.rows} rows, seed {args.seed}")
    with LocalModel(path, n_ctx=8192, seed=args.seed) as model:
        generators = {v: (SingleTurnGenerator if v[3] else Generator)(
            model, temperature=v[2], answers_first=v[0] == "answers_first") for v in variants}
        tallies: dict[Any, dict[str, Any]] = {v: {"format": 0, "queries": [], "calls": 0, "supported": 0,
                                                  "prompt": 0, "generated": 0, "seconds": 0.0,
                                                  "placeholder": 0, "samples": []} for v in variants}
        for index in range(args.rows):
            for variant in variants:
                request = samplers[variant].request(index)
                tally = tallies[variant]
                started = time.perf_counter()
                completion = generators[variant].generate(request)
                tally["seconds"] += time.perf_counter() - started
                tally["prompt"] += completion.prompt_tokens
                tally["generated"] += completion.completion_tokens
                pair, check = check_generation(completion.text, request.tools, min_calls=request.min_calls,
                                               max_calls=request.max_calls)[0]
                if pair is None or not check.passed:
                    continue
                tally["format"] += 1
                tally["queries"].append(normalise_query(pair.query))
                tally["placeholder"] += any(p in pair.query.casefold() for p in PLACEHOLDERS)
                for call in pair.answers:
                    tally["calls"] += 1
                    tally["supported"] += supported(pair.query, call.arguments)
                if len(tally["samples"]) < 4:
                    tally["samples"].append({"query": pair.query,
                                             "answers": [c.model_dump() for c in pair.answers]})
    print(f"\n{'variant':<33}{'format':>8}{'dup':>7}{'placeh.':>8}{'value sup.':>11}"
          f"{'prompt tok':>11}{'gen tok':>9}{'s/row':>7}")
    for (order, shots, temp, single), tally in tallies.items():
        n = args.rows
        queries = tally["queries"]
        dup = (len(queries) - len(set(queries))) / max(len(queries), 1)
        name = f"{order} ex={shots} t={temp}" + (" single" if single else "")
        print(f"{name:<33}{tally['format'] / n:>8.0%}{dup:>7.0%}"
              f"{tally['placeholder'] / max(len(queries), 1):>8.0%}"
              f"{tally['supported'] / max(tally['calls'], 1):>11.0%}{tally['prompt'] / n:>11.0f}"
              f"{tally['generated'] / n:>9.0f}{tally['seconds'] / n:>7.2f}")
    for (order, shots, temp, single), tally in tallies.items():
        print(f"\nsamples, {order} ex={shots} t={temp}{' single' if single else ''}:")
        for sample in tally["samples"]:
            print("  " + json.dumps(sample, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
