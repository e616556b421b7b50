"""outlines_core vs llguidance inside Outlines, on the real vocabulary (issue 18, step 2).

Usage: python benchmarks/constraint_backends.py [--model GGUF] [--rows 200] [--compile-rows 8] [--seed 1]

Samples ``--rows`` generation requests of the example library as ``generate`` does and builds each
row's output schema (generation/generator.py ``output_schema``). Both backends get the same
language: the regex Outlines builds from the schema (``build_regex_from_schema``, the number
widening LocalModel applies). Measured per backend, in one process, alternating schema by schema:

- compile time per schema: outlines_core builds the whole token Index up front; llguidance
  (Outlines' ``LLGuidanceBackend`` tokenizer, ``grammar_from("regex")``) compiles lazily, so its
  figure is grammar + matcher creation + the first mask;
- mask time per token: fill the bitmask and consume the token, replaying the tokens of one
  greedy constrained completion per schema through both backends (which also checks that both
  accept the same tokens and allow the same sets on that path);
- coverage: share of the ``--rows`` schemas each backend accepts (outlines_core only over the
  ``--compile-rows`` it compiles: a compile costs seconds on a 49k vocabulary), plus llguidance's
  own JSON-schema compiler for reference.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from apigen_local.generation.generator import output_schema
from apigen_local.generation.prompts import generation_messages
from apigen_local.generation.sampling import RequestSampler, load_seed_examples
from apigen_local.model.engine import OutlinesCoreMatcher
from apigen_local.model.files import find_model
from apigen_local.model.local import LocalModel, _schema_key
from apigen_local.tools import load_library

REPO = Path(__file__).resolve().parent.parent


def _replay(matcher: object, tokens: list[int], words: int) -> tuple[float, list[bool]]:
    """Seconds per token to fill the mask and consume each token; whether each was allowed."""
    bitmask = np.zeros((1, words), dtype=np.int32)
    allowed = []
    seconds = 0.0
    for token in tokens:
        started = time.perf_counter()
        matcher.fill(bitmask, 0)  # type: ignore[attr-defined]
        seconds += time.perf_counter() - started
        allowed.append(bool(bitmask[0, token // 32] >> (token % 32) & 1))
        started = time.perf_counter()
        matcher.consume(token)  # type: ignore[attr-defined]
        seconds += time.perf_counter() - started
    return seconds / max(1, len(tokens)), allowed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--compile-rows", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    import llguidance

    library = load_library(REPO / "examples" / "library.py")
    examples = load_seed_examples(REPO / "examples" / "seed.jsonl")
    sampler = RequestSampler(library.tools, examples, seed=args.seed)
    requests = [sampler.request(i) for i in range(args.rows)]
    schemas = [output_schema(r.tools, min_calls=r.min_calls, max_calls=r.max_calls) for r in requests]
    path = find_model(args.model)
    llg_ok = native_ok = 0
    llg_compile: list[float] = []
    core_compile: list[float] = []
    core_ok = 0
    mask_llg: list[float] = []
    mask_core: list[float] = []
    same_masks = replayed = 0
    core_masks: list[bool] = []
    llg_masks: list[bool] = []
    with LocalModel(path, n_ctx=4096, verify=False, constraint_backend="llguidance") as model:
        model.matcher(schemas[0])  # makes the llguidance tokenizer once (not a per-schema cost)
        words = (model.llama.n_vocab() + 31) // 32
        bitmask = np.zeros((1, words), dtype=np.int32)
        for i, schema in enumerate(schemas):
            started = time.perf_counter()
            try:
                model._grammars.clear()
                matcher = model.matcher(schema)
                matcher.fill(bitmask, 0)
                llg_ok += 1
                llg_compile.append(time.perf_counter() - started)
            except Exception as exc:
                print(f"llguidance rejects schema {i}: {str(exc)[:120]}")
            try:
                llguidance.LLMatcher.validate_grammar(llguidance.grammar_from("json_schema", _schema_key(schema)))
                native_ok += 1
            except Exception:
                pass
            if i >= args.compile_rows:
                continue
            # outlines_core: the full Index, as LocalModel compiles it per cache miss
            started = time.perf_counter()
            try:
                index = model._compile(_schema_key(schema)).index
                core_compile.append(time.perf_counter() - started)
                core_ok += 1
            except Exception as exc:
                print(f"outlines_core rejects schema {i}: {str(exc)[:120]}")
                continue
            # one greedy constrained completion, then both backends replay its tokens
            text_tokens = model.complete_json_many(
                [(generation_messages(requests[i]), schema)], temperature=0.0, batch=1)[0]
            tokens = model.llama.tokenize(text_tokens.text.encode(), add_bos=False, special=False)
            for backend in ("llguidance", "outlines_core") if i % 2 else ("outlines_core", "llguidance"):
                m = OutlinesCoreMatcher(index) if backend == "outlines_core" else model.matcher(schema)
                seconds, masks = _replay(m, tokens, words)
                (mask_core if backend == "outlines_core" else mask_llg).append(seconds)
                if backend == "outlines_core":
                    core_masks = masks
                else:
                    llg_masks = masks
            replayed += 1
            same_masks += all(core_masks) and all(llg_masks)

    def summary(values: list[float], unit: float, label: str) -> str:
        return (f"mean {statistics.mean(values) * unit:.1f} {label}, median "
                f"{statistics.median(values) * unit:.1f} {label}, max {max(values) * unit:.1f} {label}")

    print(f"model: {path.name}; shared 2-core x86-64 VM, no GPU; {args.rows} sampled rows, seed {args.seed}")
    print(f"compile per schema: outlines_core {summary(core_compile, 1000, 'ms')} ({len(core_compile)} schemas)")
    print(f"                    llguidance    {summary(llg_compile, 1000, 'ms')} ({len(llg_compile)} schemas)")
    print(f"mask per token:     outlines_core {summary(mask_core, 1e6, 'us')}")
    print(f"                    llguidance    {summary(mask_llg, 1e6, 'us')}")
    print(f"coverage: llguidance (Outlines regex) {llg_ok}/{len(schemas)}; outlines_core {core_ok}/"
          f"{min(args.compile_rows, len(schemas))}; llguidance native JSON schema {native_ok}/{len(schemas)}")
    print(f"completions whose every token both backends allow: {same_masks}/{replayed} (text "
          "re-tokenised canonically; the masks themselves differ: llguidance allows only the "
          "canonical token of a forced string and allows partial UTF-8 byte tokens)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
