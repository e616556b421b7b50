"""Throughput of the execution stage: SandboxExecutor vs one `docker run` per call vs in-process.

Usage: python benchmarks/sandbox_throughput.py [--calls 1000] [--batch-size 100]
       [--containers 2] [--docker-run-sample 20] [--library examples/library.py]

All three modes run the same calls against the same library in the same run. The one-container-
per-call baseline is slow, so only a sample of it is timed and its calls/s is reported from that
sample (the table says so). Image builds happen before timing starts.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apigen_local.sandbox.executor import LABEL_HOST, LABEL_PID, LABEL_RUN, SandboxExecutor
from apigen_local.types import FunctionCall

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 50.0


def make_calls(count: int) -> list[FunctionCall]:
    """A varied, valid workload for the example library."""
    makers: list[Callable[[int], FunctionCall]] = [
        lambda i: FunctionCall(name="final_velocity",
                               arguments={"initial_velocity": float(i), "acceleration": 9.8, "time": 2.0}),
        lambda i: FunctionCall(name="permutation_count", arguments={"n": 10 + i % 20, "k": 3}),
        lambda i: FunctionCall(name="getdivision", arguments={"dividend": i, "divisor": 7}),
        lambda i: FunctionCall(name="binary_addition", arguments={"a": format(i, "b"), "b": "101"}),
    ]
    return [makers[i % len(makers)](i) for i in range(count)]


def run_in_process(library: Path, calls: list[FunctionCall]) -> tuple[float, list[Any]]:
    """Direct calls in this process: the upper bound, with no isolation at all."""
    spec = importlib.util.spec_from_file_location(library.stem, library)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    started = time.perf_counter()
    results = [getattr(module, c.name)(**c.arguments) for c in calls]
    return time.perf_counter() - started, results


def run_executor(executor: SandboxExecutor, calls: list[FunctionCall], batch_size: int) -> tuple[float, list[Any]]:
    batches = [calls[i:i + batch_size] for i in range(0, len(calls), batch_size)]
    started = time.perf_counter()
    results = [r for batch in executor.execute_many(batches) for r in batch]
    elapsed = time.perf_counter() - started
    failed = [r for r in results if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} sandbox calls failed, first: {failed[0]}")
    return elapsed, [r.result for r in results]


def run_docker_per_call(executor: SandboxExecutor, calls: list[FunctionCall]) -> tuple[float, list[Any]]:
    """One `docker run` per call, with the same image and the same isolation flags."""
    flags = [
        "--rm", "-i", "--network", "none", "--read-only", "--tmpfs", "/tmp:rw,noexec,nosuid,size=16m",
        "--user", "65534:65534", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--pids-limit", "64", "--memory", "256m", "--memory-swap", "256m", "--cpus", "1",
        "--log-driver", "none", "--label", f"{LABEL_RUN}={executor.run_id}",
        "--label", f"{LABEL_PID}={os.getpid()}", "--label", f"{LABEL_HOST}={socket.gethostname()}",
    ]
    results: list[Any] = []
    started = time.perf_counter()
    for one in calls:
        request = json.dumps({"module": executor.module, "calls": [one.model_dump()]})
        completed = subprocess.run(
            ["docker", "run", *flags, str(executor.image)],
            input=request, capture_output=True, text=True, check=True,
        )
        first = json.loads(completed.stdout.splitlines()[0])
        results.append(first["result"])
    return time.perf_counter() - started, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--containers", type=int, default=2)
    parser.add_argument("--docker-run-sample", type=int, default=20)
    parser.add_argument("--library", type=Path, default=REPO / "examples" / "library.py")
    args = parser.parse_args()

    calls = make_calls(args.calls)
    direct_time, expected = run_in_process(args.library, calls)
    setup_started = time.perf_counter()
    with SandboxExecutor(args.library, max_containers=args.containers) as executor:
        setup = time.perf_counter() - setup_started
        sandbox_time, sandboxed = run_executor(executor, calls, args.batch_size)
        sample = calls[: args.docker_run_sample]
        per_call_time, per_call = run_docker_per_call(executor, sample)
    if sandboxed != expected or per_call != expected[: len(sample)]:
        raise SystemExit("the sandboxed results differ from the in-process results")

    rates = {
        "in-process": len(calls) / direct_time,
        "SandboxExecutor": len(calls) / sandbox_time,
        "docker run per call": len(sample) / per_call_time,
    }
    notes = {
        "in-process": f"{len(calls)} calls, no isolation",
        "SandboxExecutor": f"{len(calls)} calls, {args.batch_size}/container, {args.containers} in flight",
        "docker run per call": f"sample of {len(sample)} calls (rate from the sample)",
    }
    print(f"executor start-up (connect, leftover cleanup, library image): {setup:.2f} s")
    print(f"{'mode':<22}{'calls/s':>14}  workload")
    for mode, rate in rates.items():
        print(f"{mode:<22}{rate:>14,.1f}  {notes[mode]}")
    speedup = rates["SandboxExecutor"] / rates["docker run per call"]
    print(f"SandboxExecutor / docker run per call: {speedup:,.1f}x (target >= {TARGET_RATIO:g}x)")
    print(f"in-process / SandboxExecutor:          {rates['in-process'] / rates['SandboxExecutor']:,.1f}x")
    return 0 if speedup >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
