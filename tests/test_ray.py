"""generate and verify on a real two-node Ray cluster on this machine (tiny model, real sandbox)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from apigen_local import cli
from apigen_local.model.files import file_sha256
from apigen_local.run.backends.ray import RayCluster
from apigen_local.run.files import read_records
from apigen_local.run.generate import generate_dataset
from apigen_local.run.verify import verify_dataset

# read on import; the driver and the test cluster's nodes (started with this environment) share
# one token made for this test session, so nothing depends on a ~/.ray/auth_token being there
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
pytestmark = [pytest.mark.ray, pytest.mark.docker, pytest.mark.model]
ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "examples" / "library.py"
SEEDS = ROOT / "examples" / "seed.jsonl"
MODEL = ROOT / "models" / "tiny-test.gguf"
ROWS = 40
RAY = str(Path(sys.executable).with_name("ray"))
MODEL_CACHE = Path("/tmp") / f"ray-test-{os.getpid()}-models"  # where the nodes write a shipped model
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "APIGEN_RAY_MODEL_CACHE": str(MODEL_CACHE)}


def _settings(out: Path) -> dict:
    # grounding and semantic off: the tiny model's random text is rarely grounded and never a
    # request, and these tests need rows that reach the sandbox (and accepted rows to compare)
    return {"out_dir": out, "seed": 3, "seed_file": str(SEEDS), "batch_rows": 4, "grounding": False,
            "semantic": False}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A head node and a second node, each with one CPU, on a private port and temp dir."""
    temp = Path("/tmp") / f"ray-test-{os.getpid()}"  # Ray's socket paths must stay short
    address = "127.0.0.1:6391"
    env = ENV
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
        shutil.rmtree(MODEL_CACHE, ignore_errors=True)


def _remove_sandbox_containers() -> None:
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", "label=apigen-local.library"],
                         capture_output=True, text=True).stdout.split()
    mine = [i for i in ids if _pid_gone(i)]
    if mine:
        subprocess.run(["docker", "rm", "-f", *mine], capture_output=True)


def _pid_gone(container: str) -> bool:
    pid = subprocess.run(["docker", "inspect", "-f", '{{index .Config.Labels "apigen-local.pid"}}', container],
                         capture_output=True, text=True).stdout.strip()
    if not pid.isdigit():
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie is gone
    except (OSError, IndexError):
        return True


def _orphans() -> list[str]:
    """Sandbox containers whose process has ended."""
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", "label=apigen-local.library"],
                         capture_output=True, text=True).stdout.split()
    return [i for i in ids if _pid_gone(i)]


def _ids(out: Path) -> list[int]:
    return sorted(r.id for r in read_records(out / "records.jsonl"))


def _accepted(out: Path) -> dict[int, tuple]:
    return {r.id: (r.query, r.answers) for r in read_records(out / "records.jsonl")
            if r.semantic_check is not None and r.semantic_check.passed}


def test_two_workers_match_a_local_run(cluster: str, tmp_path: Path) -> None:
    local = generate_dataset(LIBRARY, MODEL, ROWS, **_settings(tmp_path / "local"))
    spread = generate_dataset(LIBRARY, MODEL, ROWS, backend=RayCluster(cluster, workers=2),
                              **_settings(tmp_path / "ray"))
    assert _ids(tmp_path / "ray") == list(range(ROWS))
    assert spread.stats.accepted == local.stats.accepted > 0
    assert _accepted(tmp_path / "ray") == _accepted(tmp_path / "local")
    assert local.stats.stages["format"].total == ROWS
    per_worker = spread.stats.rows_per_worker  # both workers took batches, every row counted once
    assert sorted(per_worker) == ["w0", "w1"] and all(per_worker.values())
    assert sum(per_worker.values()) == ROWS


def _worker_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "ray::RayWorker"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _wait_rows(out: Path, n: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = out / "records.jsonl"
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {n} rows written in {timeout}s")


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _busy_worker(parent: int | None = None, timeout: float = 240) -> int:
    """The pid of a ``RayWorker`` (a child of ``parent`` when given) that is running a batch in the
    sandbox right now: one of its sandbox containers exists. Made to happen, not hoped for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in _worker_pids():
            if parent is not None and _parent(pid) != parent:
                continue
            if subprocess.run(["docker", "ps", "-q", "--filter", f"label=apigen-local.pid={pid}"],
                              capture_output=True, text=True).stdout.strip():
                return pid
        time.sleep(0.02)
    raise AssertionError(f"no worker ran a batch within {timeout}s")


def test_killed_worker_rows_run_again(cluster: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out"
    done: list = []
    thread = threading.Thread(target=lambda: done.append(
        generate_dataset(LIBRARY, MODEL, ROWS, backend=RayCluster(cluster, workers=2), **_settings(out))))
    thread.start()
    _wait_rows(out, 4)
    os.kill(_busy_worker(), signal.SIGKILL)  # a worker holding a batch, so that batch is lost
    thread.join(timeout=400)
    assert done, "the run did not finish after a worker was killed"
    assert any("was lost" in r.getMessage() for r in caplog.records)  # its batch was noticed lost
    assert _ids(out) == list(range(ROWS))  # every row once: the lost batch ran again


DRIVER = """
import sys
from apigen_local.run.backends.ray import RayCluster
from apigen_local.run.generate import generate_dataset
generate_dataset(sys.argv[1], sys.argv[2], int(sys.argv[3]), out_dir=sys.argv[4], seed=3,
                 seed_file=sys.argv[5], batch_rows=4, grounding=False,
                 backend=RayCluster(sys.argv[6], workers=2))
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


# --------------------------------------------------------------------------- a node leaves


def _raylet_pid(node_manager_port: int) -> int:
    out = subprocess.run(["pgrep", "-f", f"raylet.*--node_manager_port={node_manager_port}"],
                         capture_output=True, text=True).stdout.split()
    assert len(out) == 1, out
    return int(out[0])


def test_node_leaving_mid_run_loses_and_repeats_no_row(cluster: str, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """A third node joins as its own `ray start` process; killing its raylet mid-run removes it."""
    port = 6397
    subprocess.run([RAY, "start", f"--address={cluster}", "--num-cpus=1", f"--node-manager-port={port}"],
                   check=True, env=ENV, capture_output=True)
    raylet = _raylet_pid(port)
    out = tmp_path / "out"
    rows = 3 * ROWS  # enough batches that the third node's worker, the last to load, gets some
    done: list = []
    # query-first: the third node's worker, the last to load, must take batches before the run ends;
    # a calls-first worker first runs its pool of calls in its sandbox, and loads too late for that
    settings = {**_settings(out), "mode": "query_first"}
    thread = threading.Thread(target=lambda: done.append(  # 3 one-CPU workers: one on each node
        generate_dataset(LIBRARY, MODEL, rows, backend=RayCluster(cluster, workers=3), **settings)))
    thread.start()
    _busy_worker(parent=raylet)  # the doomed node's worker holds a batch: killing its node loses it
    written_before = len((out / "records.jsonl").read_text().splitlines()) if (out / "records.jsonl").exists() else 0
    os.kill(raylet, signal.SIGKILL)
    thread.join(timeout=400)
    assert done, "the run did not finish after a node left"
    assert written_before < rows
    assert any("was lost" in r.getMessage() for r in caplog.records)  # its worker had batches out
    assert _ids(out) == list(range(rows))  # every row once
    assert sum(done[0].stats.rows_per_worker.values()) >= rows  # lost batches count where they ran
    assert _orphans() == []  # the surviving workers removed the dead worker's sandbox containers
    deadline = time.monotonic() + 90  # the head marks the node dead after its health checks fail
    while [node["Alive"] for node in ray.nodes() if node["NodeManagerPort"] == port] != [False]:
        assert time.monotonic() < deadline, "the killed node is still alive in the cluster"
        time.sleep(1)


# --------------------------------------------------------------------------- verify


def _verify_rows(path: Path) -> Path:
    """The seed rows twice (44 rows, fresh ids) and one that fails execution: 45 rows."""
    seeds = [json.loads(line) for line in SEEDS.read_text().splitlines() if line.strip()]
    rows = [{**row, "id": i} for i, row in enumerate(seeds * 2)]
    rows.append({"id": len(rows), "query": "Divide 1 by 0.", "tools": [{"name": "getdivision"}],
                 "answers": [{"name": "getdivision", "arguments": {"dividend": 1, "divisor": 0}}]})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _contents(out: Path) -> dict[int, dict]:
    """Every record without its timings, which differ from run to run."""
    return {r.id: r.model_dump(exclude={"timings": True, "execution_result": {"__all__": {"wall_time"}}})
            for r in read_records(out / "records.jsonl")}


def test_verify_on_two_workers_matches_a_local_verify_and_resumes(cluster: str, tmp_path: Path) -> None:
    rows = _verify_rows(tmp_path / "rows.jsonl")
    # the verdict judge, so the workers need the model (coverage alone needs none, and ships none)
    local = verify_dataset(rows, LIBRARY, model=MODEL, out_dir=tmp_path / "local", batch_rows=4, judge="verdict")
    out = tmp_path / "ray"
    code = cli.main(["verify", str(rows), "--library", str(LIBRARY), "--model", str(MODEL), "--out", str(out),
                     "--batch-rows", "4", "--judge", "verdict", "--ray", cluster, "--ray-workers", "2",
                     "--ray-ship-model", "--quiet"])
    assert code == 0
    expected = _contents(tmp_path / "local")
    assert len(expected) == 45 and local.stats.stages["semantic"].total > 0
    assert _contents(out) == expected  # the same records, each written once
    shipped = list(MODEL_CACHE.glob("*/tiny-test.gguf"))  # written once for the two nodes of this machine
    assert len(shipped) == 1 and file_sha256(shipped[0]) == file_sha256(MODEL)
    stats = json.loads((out / "stats.json").read_text())
    assert sum(stats["rows_per_worker"].values()) == 45

    lines = (out / "records.jsonl").read_text().splitlines(keepends=True)
    (out / "records.jsonl").write_text("".join(lines[:10]))  # as if the driver died after 10 rows
    resumed = verify_dataset(rows, LIBRARY, model=MODEL, out_dir=out, batch_rows=4, judge="verdict",
                             backend=RayCluster(cluster, workers=2))
    assert resumed.resumed_rows == 10
    assert sorted(r.id for r in read_records(out / "records.jsonl")) == list(range(45))
    assert _contents(out) == expected
    assert sorted((out / "dataset.jsonl").read_text().splitlines()) == \
        sorted((tmp_path / "local" / "dataset.jsonl").read_text().splitlines())
