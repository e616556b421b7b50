"""How the batched engine's KV cache is stored, measured on the real default model in one run.

Usage: python benchmarks/kv_cache_layouts.py [--model GGUF] [--rows 32] [--rounds 2]
       [--sizes 1,8,16] [--tokens 48]

Layouts (llama.cpp context parameters of the engine's context):
- ``f16``: keys and values F16, no flash attention (llama.cpp's default cache);
- ``q8_0-keys``: keys Q8_0, values F16, no flash attention (the default, ``kv_keys="q8_0"``);
- ``q4_0-keys``: keys Q4_0, values F16, no flash attention;
- ``flash-q8_0``: flash attention, keys and values Q8_0 (llama.cpp quantizes values only with
  flash attention).

For each layout, in alternating rounds:
1. prompt evaluation: the generation prompts of 16 rows of one example group, the largest of
   ``--sizes`` at a time, one token generated (tokens evaluated per second of ``llama_decode``,
   shared prefix included);
2. decoding: the same rows, at most ``--tokens`` tokens each at temperature 0.7, at each batch
   size of ``--sizes`` (generated tokens per second of generation steps, and the ratio to batch 1);
3. end to end: ``generate`` on the example library, ``--rows`` rows, seed 1, the defaults
   otherwise (rows/min and accepted rows).
The layouts other than the two ``kv_keys`` values are set by patching the context parameters the
engine passes to llama.cpp; the product does not offer them.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import llama_cpp
from throughput_real_model import LIBRARY, SEEDS, group_items

from apigen_local.model.files import find_model
from apigen_local.model.local import LocalModel
from apigen_local.run.files import read_records
from apigen_local.run.generate import generate_dataset

LAYOUTS: dict[str, tuple[str, dict[str, int]]] = {  # name: (kv_keys, context parameters set over it)
    "f16": ("f16", {}),
    "q8_0-keys": ("q8_0", {}),
    "q4_0-keys": ("f16", {"type_k": llama_cpp.GGML_TYPE_Q4_0}),
    "flash-q8_0": ("f16", {"flash_attn_type": 1, "type_k": llama_cpp.GGML_TYPE_Q8_0,
                           "type_v": llama_cpp.GGML_TYPE_Q8_0}),
}


@contextmanager
def layout(model: LocalModel, name: str) -> Iterator[None]:
    """Make the model's next engine use the layout ``name``."""
    keys, overrides = LAYOUTS[name]
    original = llama_cpp.llama_init_from_model

    def init(llama_model, params):  # type: ignore[no-untyped-def]
        for field, value in overrides.items():
            setattr(params, field, value)
        return original(llama_model, params)

    if model._engine is not None:
        model._engine.close()
        model._engine = None
    model.kv_keys = keys
    llama_cpp.llama_init_from_model = init
    try:
        yield
    finally:
        llama_cpp.llama_init_from_model = original
        if model._engine is not None:
            model._engine.close()
            model._engine = None
        model.kv_keys = "q8_0"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def measure(model: LocalModel, name: str, items: list, sizes: list[int], tokens: int, rows: int,
            out: Path) -> dict:
    figures: dict = {}
    with layout(model, name):
        model.complete_json_many(items, max_tokens=1, batch=max(sizes))
        s = model._engine.stats
        figures["prompt"] = (s.evaluated_tokens, s.prompt_seconds)
        for size in sizes:
            before = (s.step_seconds, s.generated_tokens)
            model.complete_json_many(items, max_tokens=tokens, temperature=0.7, seeds=range(len(items)),
                                     batch=size)
            figures[size] = (s.generated_tokens - before[1], s.step_seconds - before[0])
    with layout(model, name):
        model._grammars.clear()
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        result = generate_dataset(LIBRARY, model, rows, out_dir=out, seed=1, seed_file=str(SEEDS))
        wall = time.perf_counter() - started
        written = len(list(read_records(result.records_path)))
        figures["rows_per_min"] = 60 * written / wall
        figures["accepted"] = result.stats.accepted
    print(f"  {name}: prompt {figures['prompt'][0] / figures['prompt'][1]:.0f} tok/s, "
          f"{figures['rows_per_min']:.1f} rows/min", flush=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sizes", default="1,8,16")
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--out", default="out/bench-kv-layouts")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    path = find_model(args.model)
    print(f"model: {path.name}; machine: {os.cpu_count()}-core {platform.machine()} ({cpu_name()}), "
          f"no GPU, load average {os.getloadavg()[0]:.1f} at the start")
    items = group_items(16)
    runs: dict[str, list[dict]] = {name: [] for name in LAYOUTS}
    with LocalModel(path, n_ctx=8192, seed=1, constraint_backend="llguidance") as model:
        for r in range(args.rounds):
            order = list(LAYOUTS) if r % 2 == 0 else list(reversed(LAYOUTS))
            print(f"round {r + 1}: {', '.join(order)}", flush=True)
            for i, name in enumerate(order):
                runs[name].append(measure(model, name, items, sizes, args.tokens, args.rows,
                                          Path(args.out) / f"{r}-{i}-{name}"))

    def rate(name: str, key: object) -> float:
        return sum(f[key][0] for f in runs[name]) / sum(f[key][1] for f in runs[name])

    print("\n| layout | prompt eval tok/s | "
          + " | ".join(f"decode tok/s at {size} (x at {sizes[0]})" for size in sizes)
          + f" | rows/min (mean of {args.rounds}) | accepted |")
    print("|---|---|" + "---|" * len(sizes) + "---|---|")
    for name in LAYOUTS:
        base = rate(name, sizes[0])
        decode = " | ".join(f"{rate(name, size):.1f} ({rate(name, size) / base:.2f}x)" for size in sizes)
        print(f"| {name} | {rate(name, 'prompt'):.0f} | {decode} | "
              f"{statistics.mean(f['rows_per_min'] for f in runs[name]):.1f} | "
              f"{sum(f['accepted'] for f in runs[name])}/{args.rows * args.rounds} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
