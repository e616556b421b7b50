"""Per-row overhead of Ray dispatch vs the in-process pipeline, and a paper estimate for 60k rows.

Runs the same rows (tiny model, real sandbox) once in process and once on a private one-node Ray
cluster with one worker, in this one run, and prints both rates, the per-row overhead and the
hours 60,000 rows would take on N nodes at the measured Ray rate per node (linear scaling assumed;
the driver's work per row is parsing and one fsync'd append).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from apigen_local.run.backends.ray import RayCluster
from apigen_local.run.generate import generate_dataset

ROOT = Path(__file__).resolve().parents[1]
ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 24
MODEL = sys.argv[2] if len(sys.argv) > 2 else str(ROOT / "models" / "tiny-test.gguf")


def timed(out: Path, backend: RayCluster | None = None) -> float:
    started = time.perf_counter()
    generate_dataset(ROOT / "examples" / "library.py", MODEL, ROWS, out_dir=out, seed=5,
                     seed_file=str(ROOT / "examples" / "seed.jsonl"), batch_rows=4, backend=backend)
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        local = timed(Path(tmp) / "local")
        spread = timed(Path(tmp) / "ray", RayCluster("local", workers=1))  # includes actor start and model load
    print(f"model {Path(MODEL).name}, {ROWS} rows")
    print(f"in-process: {local:.1f} s ({ROWS / local * 60:.1f} rows/min)")
    print(f"ray, 1 worker: {spread:.1f} s ({ROWS / spread * 60:.1f} rows/min)")
    print(f"ray / in-process time: {spread / local:.2f}; overhead per row: {(spread - local) / ROWS * 1000:.0f} ms")
    per_node = ROWS / spread * 60
    for nodes in (1, 4, 16, 64):
        print(f"60,000 rows on {nodes} nodes: {60_000 / (per_node * nodes) / 60:.1f} h")


if __name__ == "__main__":
    main()
