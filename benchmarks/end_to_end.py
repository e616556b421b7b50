"""The whole pipeline on the tiny model: rows/min, share of wall time per stage, model idle time.

Usage: python benchmarks/end_to_end.py [--rows 200] [--rounds 3] [--round-rows 40]
       [--model GGUF] [--out out/bench-e2e]

Runs the example library end to end (generation, format check, dedup, sandbox execution, semantic
judge) on one loaded model. First one run of ``--rows`` rows as the product runs it: the sandbox
executes batch k in a worker thread while the model generates batch k+1, and the constraints of
upcoming rows compile in the background. Then the optimisations are switched off one at a time,
in ``--rounds`` rounds of ``--round-rows`` rows; each round runs every mode on the same rows, in
rotating order, so a burst of other work on the machine hits all modes alike:
  - "product": as above;
  - "no constraint prefetch": each row's constraint compiles when the row starts;
  - "serial sandbox": the same batches, but each batch's execution is awaited before the model
    moves on (no overlap).
Also reports how much of each prompt llama.cpp took from the KV cache of the previous request.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apigen_local.model.local import Completion, LocalModel
from apigen_local.model.tiny import TINY_MODEL_NAME, build_tiny_model
from apigen_local.run.backends.base import ExecutionBackend
from apigen_local.run.config import build_config
from apigen_local.run.generate import GenerateJob

REPO = Path(__file__).resolve().parent.parent
IDLE_TARGET = 0.05  # share of wall time the model may wait for the sandbox (the last batch's tail)


class SerialJob(GenerateJob):
    """The generate job with the overlap switched off: one batch out at a time, so each batch's
    execution and judging finish before the model generates the next."""

    def backend(self) -> ExecutionBackend:
        backend = super().backend()
        backend.window = 1
        return backend


class PrefixMeter:
    """Counts prompt tokens and the ones reused from the KV cache, per kind of request."""

    def __init__(self, model: LocalModel) -> None:
        self.counts: dict[str, list[int]] = {}
        inner: Callable[..., Completion] = model.complete_json

        def complete_json(messages: Any, schema: dict[str, Any], **kwargs: Any) -> Completion:
            done = inner(messages, schema, **kwargs)
            kind = "judge" if "passes" in schema.get("properties", {}) else "generation"
            seen = self.counts.setdefault(kind, [0, 0, 0])
            seen[0] += 1
            seen[1] += done.prompt_tokens
            seen[2] += done.cached_tokens
            return done

        model.complete_json = complete_json  # type: ignore[method-assign]


MODES: dict[str, tuple[type[GenerateJob], bool]] = {
    "product": (GenerateJob, True),
    "no constraint prefetch": (GenerateJob, False),
    "serial sandbox": (SerialJob, True),
}


def run(model: LocalModel, rows: int, out: Path, job_type: type[GenerateJob], *,
        prefetch: bool = True, seed: int = 1) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    config = build_config({
        "library": str(REPO / "examples" / "library.py"),
        "seed_file": str(REPO / "examples" / "seed.jsonl"),
        "rows": rows, "out_dir": str(out), "seed": seed,
    })
    model._constraints.clear()  # every run starts cold, as a fresh process would
    if not prefetch:
        model.prepare = lambda schemas: None  # type: ignore[method-assign]
    started = time.perf_counter()
    try:
        result = job_type(config, model=model).run()
    finally:
        vars(model).pop("prepare", None)
    return {"wall": time.perf_counter() - started, "stats": result.stats}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="comparison rounds (0: none)")
    parser.add_argument("--round-rows", type=int, default=40)
    parser.add_argument("--model", type=Path, default=None, help="GGUF (default: the tiny test model)")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "bench-e2e")
    args = parser.parse_args()
    path = args.model or build_tiny_model(REPO / "models" / TINY_MODEL_NAME)

    started = time.perf_counter()
    with LocalModel(path, n_ctx=8192, seed=1) as model:
        load = time.perf_counter() - started
        meter = PrefixMeter(model)
        runs = {"product (one run)": run(model, args.rows, args.out / "product", GenerateJob)}
        prefix = {kind: list(v) for kind, v in meter.counts.items()}
        walls: dict[str, list[float]] = {mode: [0.0, 0] for mode in MODES}
        names = list(MODES)
        for round_ in range(args.rounds):
            for mode in names[round_ % len(names):] + names[:round_ % len(names)]:
                job_type, prefetch = MODES[mode]
                outcome = run(model, args.round_rows, args.out / f"round{round_}-{mode}",
                              job_type, prefetch=prefetch, seed=100 + round_)
                walls[mode][0] += outcome["wall"]
                walls[mode][1] += outcome["stats"].rows

    print(f"model: {path.name} (loaded once in {load:.1f} s, shared by generator and judge)")
    print(f"{'mode':<24}{'rows':>5}{'wall s':>8}{'rows/min':>10}{'generate':>10}{'judge':>8}"
          f"{'sandbox':>9}{'idle':>7}{'other':>7}{'accepted':>10}")
    for mode, outcome in runs.items():
        stats, wall = outcome["stats"], outcome["wall"]
        seconds = stats.stage_seconds
        generate, judge = seconds.get("generation", 0.0), seconds.get("semantic", 0.0)
        sandbox, idle = seconds.get("execution", 0.0), stats.model_idle_seconds
        other = wall - generate - judge - idle
        print(f"{mode:<24}{stats.rows:>5}{wall:>8.1f}{stats.rows * 60 / wall:>10.1f}"
              f"{generate / wall:>10.0%}{judge / wall:>8.0%}{sandbox / wall:>9.0%}"
              f"{idle / wall:>7.1%}{other / wall:>7.0%}{stats.accepted:>10}")
    print("shares of wall time; sandbox runs beside the model, so the shares may sum over 100 %;"
          " other = checks, sampling, writing")
    if args.rounds:
        print(f"\n{args.rounds} rounds x {args.round_rows} rows per mode, same rows, rotating order:")
        print(f"{'mode':<24}{'rows':>5}{'wall s':>8}{'rows/min':>10}{'product / mode':>16}")
        rate = {mode: rows * 60 / wall for mode, (wall, rows) in walls.items()}
        for mode, (wall, rows) in walls.items():
            print(f"{mode:<24}{rows:>5.0f}{wall:>8.1f}{rate[mode]:>10.1f}"
                  f"{rate['product'] / rate[mode]:>15.2f}x")
    product = runs["product (one run)"]
    for kind, (requests, prompt, cached) in prefix.items():
        print(f"prompt prefix reuse, {kind}: {cached}/{prompt} prompt tokens from the KV cache "
              f"({cached / max(1, prompt):.0%}) over {requests} requests")
    idle_share = product["stats"].model_idle_seconds / product["wall"]
    print(f"model idle waiting for the sandbox: {product['stats'].model_idle_seconds:.2f} s "
          f"= {idle_share:.1%} of wall (target: < {IDLE_TARGET:.0%}, the last batch's tail)")
    return 0 if idle_share < IDLE_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
