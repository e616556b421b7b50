"""Issue 18 in one run: the current pipeline vs the batched one on the real default model.

Usage: python benchmarks/throughput_real_model.py [--model GGUF] [--rows 16] [--seed 1]
       [--rounds 2] [--sizes 1,2,4,8,16] [--curve-seqs 16] [--curve-tokens 48]
       [--skip-e2e] [--skip-curve]

Two parts, each alternating its variants so that the load of a shared machine hits all of them:

1. **Decode curve.** Constrained (llguidance) decoding through the batched engine at batch sizes
   ``--sizes``: the real generation prompts of ``--curve-seqs`` rows of one example group (their
   shared prefix evaluated once and copied), sampled at temperature 0.7, each held to its own
   output schema, at most ``--curve-tokens`` tokens each. Measured with attention keys cached as
   Q8_0 (the default) and as F16, and on the same schemas after a one-line prompt, which shows
   what the ~1,000 KV cells each real row attends over cost. Prints generated tokens/s over the
   generation steps (prompt evaluation excluded), the ratio to batch size 1, and the Python share
   of step time (everything outside ``llama_decode``: masks, sampling, bookkeeping). Then the real
   rows decoded through the one-at-a-time path that ``decode_batch=1`` takes (the *current* model
   below), and each batch size's tokens/s against it.
2. **End to end.** ``generate`` on the example library (sandbox, semantic judge and all), the same
   ``--rows`` rows and seed, ``--rounds`` times each variant, the order reversed every round:
   - *current*: the pipeline as the issue measured it: one row at a time, outlines_core
     constraints compiled per row (prefetched in a background thread), the Q4_1 file as it is,
     each row drawing its own few-shot examples (``decode_batch=1``, ``example_group=1``);
   - *new*: the defaults of ``GenerationConfig``: llguidance constraints, ``batch_rows`` rows
     sharing one ``example_group`` order of few-shot examples, decoded ``decode_batch`` at a time,
     weights re-encoded as Q8_0, attention keys cached as Q8_0;
   - *new-f16*: the same, with F16 keys (what llama.cpp caches by default).
   *current* has its own loaded model, the other two share one; compiled constraints are dropped
   before every run, so no run profits from an earlier one's cache. Prints rows/min, the
   constraint-compile share of wall time, tokens evaluated and generated per row, and per-stage
   pass rates.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

from apigen_local.generation.generator import output_schema
from apigen_local.generation.prompts import generation_messages
from apigen_local.generation.sampling import RequestSampler, load_seed_examples
from apigen_local.model.engine import prompt_tokens
from apigen_local.model.files import find_model
from apigen_local.model.local import LocalModel
from apigen_local.run.files import read_records
from apigen_local.run.generate import generate_dataset
from apigen_local.tools import load_library

REPO = Path(__file__).resolve().parent.parent
LIBRARY = REPO / "examples" / "library.py"
SEEDS = REPO / "examples" / "seed.jsonl"


def machine() -> str:
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return (f"{os.cpu_count()}-core {platform.machine()} VM, no GPU, load average {load:.1f} at the "
            "start (shared with other engineers)")


def _reset(model: LocalModel) -> None:
    """Forget compiled constraints, so a run pays its own compiles."""
    model._constraints.clear()
    model._compiling.clear()
    model._grammars.clear()


def _count_evaluated(model: LocalModel) -> None:
    """Keep ``model.evaluated_tokens``: prompt tokens evaluated by one-at-a-time completions
    (the batched engine counts its own, prefix included)."""
    model.evaluated_tokens = 0
    original = model.complete_json

    def counted(*args, **kwargs):
        completion = original(*args, **kwargs)
        model.evaluated_tokens += completion.prompt_tokens - completion.cached_tokens
        return completion

    model.complete_json = counted


def one_at_a_time(model: LocalModel, items: list, tokens: int) -> tuple[int, float]:
    """Tokens and seconds of decoding ``items`` through the one-at-a-time path (``complete_json``,
    as ``decode_batch=1`` runs): each prompt is evaluated first by a 1-token call, so the timed
    call reuses it and times decoding only; constraints are compiled before timing."""
    generated, seconds = 0, 0.0
    for i, (messages, schema) in enumerate(items):
        model.constraint(schema)
        model.complete_json(messages, schema, max_tokens=1, temperature=0.7, seed=i)
        completion = model.complete_json(messages, schema, max_tokens=tokens, temperature=0.7, seed=i)
        generated += completion.completion_tokens
        seconds += completion.seconds
    return generated, seconds


def group_items(rows: int) -> list:
    """``(messages, output schema)`` of the generation requests of ``rows`` rows of one example
    group of the example library (seed 1): the rows a batch of the pipeline decodes together."""
    library = load_library(LIBRARY)
    sampler = RequestSampler(library.tools, load_seed_examples(SEEDS), seed=1, example_group=rows)
    return [(generation_messages(r), output_schema(r.tools, min_calls=r.min_calls, max_calls=r.max_calls))
            for r in map(sampler.request, range(rows))]


def _curve_items(seqs: int) -> dict[str, list]:
    """The generation prompts of ``seqs`` rows of one example group, and the same schemas after a
    one-line prompt (a few dozen KV cells per sequence instead of about a thousand)."""
    real = group_items(seqs)
    short = [([{"role": "user", "content": f"Write request number {i} as JSON."}], schema)
             for i, (_, schema) in enumerate(real)]
    return {"real": real, "short": short}


def decode_curve(model: LocalModel, sizes: list[int], seqs: int, tokens: int, rounds: int,
                 single: LocalModel) -> None:
    prompts = _curve_items(seqs)
    variants = [(keys, kind) for keys in ("q8_0", "f16") for kind in ("real", "short")]
    # step s, tokens, python s, step CPU s; per variant and batch size
    totals = {(v, size): [0.0, 0, 0.0, 0.0] for v in variants for size in sizes}
    alone = [0, 0.0]
    for _ in range(rounds):
        generated, seconds = one_at_a_time(single, prompts["real"], tokens)
        alone[0] += generated
        alone[1] += seconds
        for keys, kind in variants:
            model.kv_keys = keys  # the next call makes an engine that caches keys this way
            items = prompts[kind]
            model.complete_json_many(items[:2], max_tokens=4, batch=max(sizes))  # engine and warm-up
            for size in sizes:
                s = model._engine.stats
                before = (s.step_seconds, s.generated_tokens, s.decode_seconds, s.step_cpu_seconds)
                model.complete_json_many(items, max_tokens=tokens, temperature=0.7,
                                         seeds=range(seqs), batch=size)
                total = totals[(keys, kind), size]
                step = s.step_seconds - before[0]
                total[0] += step
                total[1] += s.generated_tokens - before[1]
                total[2] += step - (s.decode_seconds - before[2])
                total[3] += s.step_cpu_seconds - before[3]
    model.kv_keys = "q8_0"
    print(f"\n## decode curve: {seqs} sequences x <= {tokens} tokens, constrained (llguidance), "
          f"{rounds} alternating rounds; steps on {model._engine._threads} thread(s)")
    lengths = {kind: sorted(len(prompt_tokens(model.llama, model.render(m))) for m, _ in items)
               for kind, items in prompts.items()}
    print(f"prompts: *real* = the rows' generation prompts ({lengths['real'][0]} to {lengths['real'][-1]} "
          f"tokens); *short* = the same schemas after a one-line prompt ({lengths['short'][0]} to "
          f"{lengths['short'][-1]} tokens). keys: how the KV cache stores attention keys")
    print(f"| keys | prompts | batch | tok/s (wall) | x batch {sizes[0]} | tok per process CPU-second "
          f"| x batch {sizes[0]} | Python share of step wall time |")
    print("|---|---|---|---|---|---|---|---|")
    for variant in variants:
        base = totals[variant, sizes[0]][1] / totals[variant, sizes[0]][0]
        base_cpu = totals[variant, sizes[0]][1] / totals[variant, sizes[0]][3]
        for size in sizes:
            seconds, generated, python, cpu = totals[variant, size]
            rate, cpu_rate = generated / seconds, generated / cpu
            print(f"| {variant[0]} | {variant[1]} | {size} | {rate:.1f} | {rate / base:.2f} | {cpu_rate:.1f} "
                  f"| {cpu_rate / base_cpu:.2f} | {python / seconds:.0%} |")
    rate = alone[0] / alone[1]
    print(f"\none at a time through complete_json, real prompts ({single.weights_path.name}, "
          f"{single.constraint_backend}, the path decode_batch=1 takes): {rate:.1f} tok/s; q8_0 keys, batch "
          + ", ".join(f"{size}: {totals[('q8_0', 'real'), size][1] / totals[('q8_0', 'real'), size][0] / rate:.2f}x"
                      for size in sizes))


def run_variant(name: str, model: LocalModel, rows: int, seed: int, out: Path) -> dict:
    _reset(model)
    compile_before = sum(model.compile_seconds)
    engine = model._engine  # a run that changes kv_keys starts a new engine, with new counters
    engine_before = None
    if engine is not None:
        engine_before = (engine.stats.evaluated_tokens, engine.stats.step_seconds, engine.stats.decode_seconds)
    shutil.rmtree(out, ignore_errors=True)
    settings = {"decode_batch": 1, "constraint_backend": "outlines_core", "example_group": 1,
                "batch_rows": 8} if name == "current" else {}
    model.kv_keys = "f16" if name == "new-f16" else "q8_0"  # a loaded model's own setting
    evaluated_before = model.evaluated_tokens
    started = time.perf_counter()
    result = generate_dataset(LIBRARY, model, rows, out_dir=out, seed=seed, seed_file=str(SEEDS),
                              **settings)
    wall = time.perf_counter() - started
    model.kv_keys = "q8_0"
    records = list(read_records(result.records_path))
    stats = result.stats
    figures = {
        "wall": wall, "rows_per_min": 60 * len(records) / wall,
        "compile_share": (sum(model.compile_seconds) - compile_before) / wall,
        "prompt_per_row": statistics.mean(r.tokens.get("prompt", 0) for r in records),
        "generated_per_row": statistics.mean(r.tokens.get("generation", 0) for r in records),
        "stages": {stage: (rate.passed, rate.total) for stage, rate in stats.stages.items()},
        "accepted": (stats.accepted, stats.rows),
    }
    figures["evaluated_per_row"] = (model.evaluated_tokens - evaluated_before) / len(records)
    if model._engine is not None:
        s = model._engine.stats
        b = engine_before if model._engine is engine and engine_before else (0, 0.0, 0.0)
        figures["evaluated_per_row"] += (s.evaluated_tokens - b[0]) / len(records)
        step = s.step_seconds - b[1]
        figures["python_share"] = 1 - (s.decode_seconds - b[2]) / step if step else 0.0
    print(f"  {name}: {len(records)} rows in {wall:.0f} s = {figures['rows_per_min']:.1f} rows/min, "
          f"compile {figures['compile_share']:.1%} of wall", flush=True)
    return figures


VARIANTS = ("current", "new", "new-f16")


def end_to_end(models: dict[str, LocalModel], rows: int, seed: int, rounds: int, out: Path) -> None:
    order: list[str] = []
    for r in range(rounds):
        order += list(VARIANTS) if r % 2 == 0 else list(reversed(VARIANTS))
    runs: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    print(f"\n## end to end: {rows} rows, seed {seed}, order {', '.join(order)}", flush=True)
    for i, name in enumerate(order):
        runs[name].append(run_variant(name, models[name], rows, seed, out / f"{i}-{name}"))

    def mean(name: str, key: str) -> float:
        values = [f[key] for f in runs[name] if key in f]
        return statistics.mean(values) if values else float("nan")

    def row(label: str, cell) -> None:
        print(f"| {label} | " + " | ".join(cell(name) for name in VARIANTS) + " |")

    print("\n| | current (1 row at a time, outlines_core, Q4_1) | new (defaults: batched engine, llguidance, "
          "Q8_0 weights, Q8_0 keys) | new with F16 keys |")
    print("|---|---|---|---|")
    cur = mean("current", "rows_per_min")
    row(f"rows/min (mean of {rounds})", lambda n: f"{mean(n, 'rows_per_min'):.1f}"
        + ("" if n == "current" else f" ({mean(n, 'rows_per_min') / cur:.2f}x)"))
    row("wall per run, s", lambda n: f"{mean(n, 'wall'):.0f}")
    row("constraint compile, share of wall", lambda n: f"{mean(n, 'compile_share'):.1%}")
    row("prompt / generated tokens per row (generation)",
        lambda n: f"{mean(n, 'prompt_per_row'):.0f} / {mean(n, 'generated_per_row'):.0f}")
    row("prompt tokens evaluated per row", lambda n: f"{mean(n, 'evaluated_per_row'):.0f}")
    row("Python share of generation-step time",
        lambda n: "n/a" if n == "current" else f"{mean(n, 'python_share'):.1%}")

    def share(name: str, pick) -> str:
        passed = sum(pick(f)[0] for f in runs[name])
        total = sum(pick(f)[1] for f in runs[name])
        return f"{passed}/{total} ({passed / total:.0%})" if total else "0/0"

    for stage in runs["current"][0]["stages"]:
        row(f"{stage} pass", lambda n, stage=stage: share(n, lambda f: f["stages"][stage]))
    row("accepted", lambda n: share(n, lambda f: f["accepted"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sizes", default="1,2,4,8,16")
    parser.add_argument("--curve-seqs", type=int, default=16)
    parser.add_argument("--curve-tokens", type=int, default=48)
    parser.add_argument("--curve-rounds", type=int, default=2)
    parser.add_argument("--out", default="out/bench-throughput")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--skip-curve", action="store_true")
    parser.add_argument("--threads", type=int, help="decode threads (default: llama-cpp-python's)")
    args = parser.parse_args()

    path = find_model(args.model)
    print(f"model: {path.name}; machine: {machine()}")
    models = {
        "current": LocalModel(path, n_ctx=8192, seed=args.seed, n_threads=args.threads,
                              constraint_backend="outlines_core", reencode_weights=False, kv_keys="f16"),
        "new": LocalModel(path, n_ctx=8192, seed=args.seed, n_threads=args.threads,
                          constraint_backend="llguidance"),
    }
    for name, model in models.items():
        print(f"{name}: computes with {model.weights_path.name}")
        _count_evaluated(model)
    models["new-f16"] = models["new"]  # the same loaded model, its engine caching F16 keys
    try:
        if not args.skip_curve:
            decode_curve(models["new"], [int(s) for s in args.sizes.split(",")], args.curve_seqs,
                         args.curve_tokens, args.curve_rounds, models["current"])
        if not args.skip_e2e:
            end_to_end(models, args.rows, args.seed, args.rounds, Path(args.out))
    finally:
        for model in {id(m): m for m in models.values()}.values():
            model.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
