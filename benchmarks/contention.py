"""Issue 44: how the default model's throughput holds up when other programs share the cores.

Usage: python benchmarks/contention.py [--rows 24] [--seed 1] [--competitors 0,1,2]
       [--rounds 2] [--e2e-rounds 1] [--skip-decode] [--skip-e2e]

A competitor is a Python process spinning on one core (``while True: pass``), started before the
measured work and killed after it. Everything runs in child processes, because libgomp (llama.cpp's
OpenMP runtime) reads its barrier settings once, when it loads.

1. **Decode.** The constrained generation prompts of 8 rows of the example library, decoded 40
   tokens each through the batched engine, per barrier setting (``GOMP_SPINCOUNT``: libgomp's
   default 300,000, and 100, apigen-local's default; 0 sleeps at once), thread count (2, 1) and
   batch size (8, 4), alone and beside each number of competitors; ``--rounds`` alternating
   rounds. Prints generated tokens/s over the generation steps and the ratio to the same
   variant's quiet rate, and the share of time the model's threads waited for a core
   (model/cpu.py) as the progress line would show it.
2. **End to end.** ``apigen-local generate`` as ``make demo`` runs it (example library, seed file,
   sandbox, semantic judge, default settings), ``--rows`` rows with a fixed seed, *before* (libgomp's
   default spin) and *after* (apigen-local's default), alone and beside each number of competitors,
   ``--e2e-rounds`` rounds, the order alternating. Prints rows/min of the whole command (model load included), the ratio
   to the same variant's quiet rate, and each stage's seconds from ``stats.json``, which shows
   what execution in Docker and the checks cost under contention.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIBGOMP_DEFAULT = "300000"  # libgomp's spins at a barrier when no wait policy is set
SETTINGS = {"libgomp default": LIBGOMP_DEFAULT, "apigen-local default": None, "sleep at once": "0"}


def competitors(n: int) -> list[subprocess.Popen]:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    time.sleep(0.5)
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.kill()
        proc.wait()


def child_env(spins: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    if spins is not None:
        env["GOMP_SPINCOUNT"] = spins
    return env


def decode_child(args: argparse.Namespace) -> int:
    """One barrier setting: every (threads, batch, competitors) variant once; JSON lines out."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from throughput_real_model import group_items

    from apigen_local.model.cpu import CoreWaitClock
    from apigen_local.model.files import find_model
    from apigen_local.model.local import LocalModel

    items = group_items(8)
    with LocalModel(find_model(None), n_ctx=4096) as model:
        model.complete_json_many(items, max_tokens=4, batch=8)  # engine, constraints, warm caches
        engine = model._engine
        assert engine is not None
        for n in args.competitor_counts:
            procs = competitors(n)
            try:
                for threads in (2, 1):
                    for batch in (8, 4):
                        engine._lib.llama_set_n_threads(engine._ctx, threads, threads)  # llama_cpp, loaded
                        # after apigen_local.model set the barrier wait
                        s = engine.stats
                        before = (s.step_seconds, s.generated_tokens)
                        clock = CoreWaitClock().start()
                        model.complete_json_many(items, max_tokens=40, temperature=0.7, seeds=range(8),
                                                 batch=batch)
                        print(json.dumps({"threads": threads, "batch": batch, "competitors": n,
                                          "tokens": s.generated_tokens - before[1],
                                          "seconds": s.step_seconds - before[0], "wait": clock.share()}),
                              flush=True)
            finally:
                stop(procs)
    return 0


def decode(args: argparse.Namespace) -> None:
    totals: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0])
    names = list(SETTINGS)
    for round_ in range(args.rounds):
        for name in names if round_ % 2 == 0 else reversed(names):
            out = subprocess.run([sys.executable, __file__, "--decode-child",
                                  "--competitors", ",".join(map(str, args.competitor_counts))],
                                 env=child_env(SETTINGS[name]), capture_output=True, text=True, check=True)
            for line in out.stdout.splitlines():
                row = json.loads(line)
                total = totals[name, row["threads"], row["batch"], row["competitors"]]
                total[0] += row["tokens"]
                total[1] += row["seconds"]
                total[2] += row["wait"] or 0.0
                total[3] += 1
    print(f"\n## decode: 8 real prompts x 40 tokens, constrained, {args.rounds} alternating rounds")
    print("| barrier setting | threads | batch | competitors | tok/s | x its quiet rate "
          "| x best quiet rate | waiting for a core |")
    print("|---|---|---|---|---|---|---|---|")
    rate = {key: t[0] / t[1] for key, t in totals.items()}
    best = max(rate.values())
    for key in sorted(totals, key=lambda k: (names.index(k[0]), -k[1], -k[2], k[3])):
        name, threads, batch, n = key
        quiet = rate[name, threads, batch, 0] if (name, threads, batch, 0) in rate else float("nan")
        total = totals[key]
        print(f"| {name} | {threads} | {batch} | {n} | {rate[key]:.1f} | {rate[key] / quiet:.2f} "
              f"| {rate[key] / best:.2f} | {total[2] / total[3]:.0%} |")


def generate_once(spins: str | None, n: int, args: argparse.Namespace) -> dict:
    out = REPO / "out" / "bench-contention"
    shutil.rmtree(out, ignore_errors=True)
    procs = competitors(n)
    try:
        started = time.perf_counter()
        done = subprocess.run([str(Path(sys.executable).parent / "apigen-local"), "generate",
                               "--library", "examples/library.py", "--seed-file", "examples/seed.jsonl",
                               "--rows", str(args.rows), "--seed", str(args.seed), "--out", str(out)],
                              cwd=REPO, env=child_env(spins), capture_output=True, text=True)
        wall = time.perf_counter() - started
    finally:
        stop(procs)
    if done.returncode != 0:
        raise SystemExit(f"apigen-local generate failed: {done.stderr.strip().splitlines()[-1:]}")
    stats = json.loads((out / "stats.json").read_text())
    return {"wall": wall, "rows": stats["rows"], "stages": stats["stage_seconds"]}


def end_to_end(args: argparse.Namespace) -> None:
    variants = {"before (libgomp default)": LIBGOMP_DEFAULT, "after (apigen-local default)": None}
    runs: dict[tuple[str, int], list[dict]] = defaultdict(list)
    order = [(name, n) for n in args.competitor_counts for name in variants]
    for round_ in range(args.e2e_rounds):
        for name, n in order if round_ % 2 == 0 else reversed(order):
            runs[name, n].append(generate_once(variants[name], n, args))
            print(f"  {name}, {n} competitors: {runs[name, n][-1]['wall']:.0f} s", file=sys.stderr, flush=True)
    print(f"\n## end to end: `apigen-local generate`, {args.rows} rows, seed {args.seed}, default settings, "
          f"{args.e2e_rounds} round(s), the order alternating; rows/min of the whole command, model load included")
    print("| variant | competitors | rows/min | x its quiet rate | generation s | of it waiting for a core "
          "| execution s | semantic s |")
    print("|---|---|---|---|---|---|---|---|")
    rates = {key: 60 * sum(r["rows"] for r in rs) / sum(r["wall"] for r in rs) for key, rs in runs.items()}
    for name in variants:
        for n in args.competitor_counts:
            rs = runs[name, n]
            stage = defaultdict(float)
            for r in rs:
                for key, seconds in r["stages"].items():
                    stage[key] += seconds / len(rs)
            print(f"| {name} | {n} | {rates[name, n]:.1f} | {rates[name, n] / rates[name, 0]:.2f} "
                  f"| {stage['generation']:.0f} | {stage['generation_waiting']:.0f} "
                  f"| {stage['execution']:.0f} | {stage['semantic']:.0f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--competitors", default="0,1,2")
    parser.add_argument("--rounds", type=int, default=2, help="decode rounds")
    parser.add_argument("--e2e-rounds", type=int, default=1, help="end-to-end rounds")
    parser.add_argument("--skip-decode", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--decode-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.competitor_counts = [int(n) for n in args.competitors.split(",")]
    if args.decode_child:
        return decode_child(args)
    load = os.getloadavg()[0]
    print(f"model: SmolLM2-135M-Instruct Q4_1 (as loaded by default); machine: {os.cpu_count()}-core "
          f"{platform.machine()} VM, no GPU; load average {load:.1f} at the start")
    if not args.skip_e2e:
        from apigen_local.sandbox.engine import connect

        connect()  # Docker must answer before the decode part spends its half hour
    if not args.skip_decode:
        decode(args)
    if not args.skip_e2e:
        end_to_end(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
