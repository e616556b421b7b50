"""generate on a real two-node Ray cluster on this machine (tiny model, real sandbox)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from apigen_local.run.files import read_records
from apigen_local.run.pipeline import generate_dataset

os.environ.setdefault("RAY_AUTH_MODE", "token")  # read on import: driver and nodes share ~/.ray/auth_token
pytestmark = [pytest.mark.ray, pytest.mark.docker, pytest.mark.model]
ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "examples" / "library.py"
SEEDS = ROOT / "examples" / "seed.jsonl"
MODEL = ROOT / "models" / "tiny-test.gguf"
ROWS = 40
RAY = str(Path(sys.executable).with_name("ray"))


def _settings(out: Path) -> dict:
    return {"out_dir": out, "seed": 3, "seed_file": str(SEEDS), "batch_rows": 4}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A head node and a second node, each with one CPU, on a private port and temp dir."""
    temp = Path("/tmp") / f"ray-test-{os.getpid()}"  # Ray's socket paths must stay short
    address = "127.0.0.1:6391"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        subprocess.run([RAY, "start", "--head", "--num-cpus=1", "--port=6391", f"--temp-dir={temp}",
                        "--include-dashboard=false"], check=True, env=env, capture_output=True)
        subprocess.run([RAY, "start", f"--address={address}", "--num-cpus=1"], check=True, env=env,
                       capture_output=True)
        yield address
    finally:
        ray.shutdown()
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True)
        _remove_sandbox_containers()


def _remove_sandbox_containers() -> None:
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", "label=apigen-local.library"],
                         capture_output=True, text=True).stdout.split()
    mine = [i for i in ids if _pid_gone(i)]
    if mine:
        subprocess.run(["docker", "rm", "-f", *mine], capture_output=True)


def _pid_gone(container: str) -> bool:
    pid = subprocess.run(["docker", "inspect", "-f", '{{index .Config.Labels "apigen-local.pid"}}', container],
                         capture_output=True, text=True).stdout.strip()
    return not pid.isdigit() or not Path(f"/proc/{pid}").exists()


def _ids(out: Path) -> list[int]:
    return sorted(r.id for r in read_records(out / "records.jsonl"))


def _accepted(out: Path) -> dict[int, tuple]:
    return {r.id: (r.query, r.answers) for r in read_records(out / "records.jsonl")
            if r.semantic_check is not None and r.semantic_check.passed}


def test_two_workers_match_a_local_run(cluster: str, tmp_path: Path) -> None:
    local = generate_dataset(LIBRARY, MODEL, ROWS, **_settings(tmp_path / "local"))
    spread = generate_dataset(LIBRARY, MODEL, ROWS, ray=cluster, ray_workers=2, **_settings(tmp_path / "ray"))
    assert _ids(tmp_path / "ray") == list(range(ROWS))
    assert spread.stats.accepted == local.stats.accepted
    assert _accepted(tmp_path / "ray") == _accepted(tmp_path / "local")
    assert local.stats.stages["format"].total == ROWS


def _worker_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "ray::RowWorker"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _wait_rows(out: Path, n: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = out / "records.jsonl"
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {n} rows written in {timeout}s")


def test_killed_worker_rows_run_again(cluster: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done: list = []
    thread = threading.Thread(target=lambda: done.append(
        generate_dataset(LIBRARY, MODEL, ROWS, ray=cluster, ray_workers=2, **_settings(out))))
    thread.start()
    _wait_rows(out, 8)
    pids = _worker_pids()
    assert pids
    os.kill(pids[0], signal.SIGKILL)
    thread.join(timeout=400)
    assert done, "the run did not finish after a worker was killed"
    assert _ids(out) == list(range(ROWS))  # every row once


DRIVER = """
import sys
from apigen_local.run.pipeline import generate_dataset
generate_dataset(sys.argv[1], sys.argv[2], int(sys.argv[3]), out_dir=sys.argv[4], seed=3,
                 seed_file=sys.argv[5], batch_rows=4, ray=sys.argv[6], ray_workers=2)
"""


def test_killed_driver_rerun_resumes(cluster: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [sys.executable, "-c", DRIVER, str(LIBRARY), str(MODEL), str(ROWS), str(out), str(SEEDS), cluster]
    driver = subprocess.Popen(args)
    try:
        _wait_rows(out, 8)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    written = len(_ids(out))
    assert written < ROWS
    subprocess.run(args, check=True, timeout=400)
    assert _ids(out) == list(range(ROWS))
