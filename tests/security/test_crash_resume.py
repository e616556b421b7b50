"""Crashes and restarts: SIGKILL at random points, and the Docker daemon stopping mid-run.

Each run is the real ``apigen-local generate`` process on the tiny model. After a rerun, the
accepted rows must be exactly those of an uninterrupted run with the same seed, each once, and no
sandbox container of the killed process may survive the rerun's start.

The daemon test never touches the engine other tests use: it starts a second ``dockerd`` with its
own data root and socket, loads the sandbox image into it, and points ``DOCKER_HOST`` at it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from ..conftest import EXAMPLE_LIBRARY, EXAMPLE_SEEDS, REPO
from .conftest import labelled_containers, record_case

ROWS = 20


def _command(out: Path, seed: int) -> list[str]:
    return [sys.executable, "-m", "apigen_local.cli", "generate", "--library", str(EXAMPLE_LIBRARY),
            "--seed-file", str(EXAMPLE_SEEDS), "--model", str(REPO / "models" / "tiny-test.gguf"),
            "--rows", str(ROWS), "--out", str(out), "--seed", str(seed), "--quiet",
            "--batch-rows", "4",
            # the tiny model's random text is rarely grounded in its query: with grounding on, a
            # seed can send no row to the sandbox at all, and then nothing is mid-run to kill; and
            # its random text is never a request, which the semantic stage rejects
            "--no-grounding", "--no-semantic"]


def _ids(path: Path) -> list[int]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]


def _lines(path: Path) -> int:
    return path.read_text().count("\n") if path.exists() else 0


def _assert_complete_and_equal(out: Path, reference: list[int]) -> None:
    assert sorted(_ids(out / "records.jsonl")) == list(range(ROWS))  # none missing, none twice
    accepted = _ids(out / "dataset.jsonl")
    assert len(accepted) == len(set(accepted))
    assert sorted(accepted) == reference


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], list[int]]:
    """Accepted ids of an uninterrupted run per seed (run once, on first use)."""
    runs: dict[int, list[int]] = {}

    def accepted(seed: int) -> list[int]:
        if seed not in runs:
            out = tmp_path_factory.mktemp(f"reference-{seed}")
            subprocess.run(_command(out, seed), cwd=REPO, check=True, capture_output=True)
            runs[seed] = sorted(_ids(out / "dataset.jsonl"))
            assert runs[seed], "no accepted row: the comparison after a resume would prove nothing"
        return runs[seed]

    return accepted


@pytest.mark.docker
@pytest.mark.model
@pytest.mark.parametrize(("seed", "when"), [(2, "after rows"), (6, "after rows"), (3, "container")])
def test_sigkill_at_a_random_point_then_resume(
    seed: int, when: str, tmp_path: Path, docker_client, sandbox_image: str,
    reference: Callable[[int], list[int]],
) -> None:
    """Kill after a random number of written rows plus a random delay, or the moment a sandbox
    container of the run exists (so that the kill leaves it behind)."""
    rng = random.Random(seed)
    out = tmp_path / "run"
    process = subprocess.Popen(_command(out, seed), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    # at least three batches of 4 rows are still to come (a batch takes about a second on the
    # tiny model, and the last two are written close together), so the kill lands mid-run
    # at least one record first: a kill before any is written would test a fresh start, not a resume
    rows_before, delay = rng.randint(1, ROWS - 12), rng.uniform(0.0, 0.5)
    while time.monotonic() < deadline and process.poll() is None:
        if when == "container" and labelled_containers(docker_client, process.pid):
            break
        if when == "after rows" and _lines(out / "records.jsonl") >= rows_before:
            time.sleep(delay)
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    left = labelled_containers(docker_client, process.pid)
    if when == "container":
        assert left, "the kill was meant to leave a sandbox container behind"
    done = _lines(out / "records.jsonl")
    assert done < ROWS
    if when == "after rows":
        assert done >= rows_before >= 1, "the kill was meant to land after rows were written"

    expected = reference(seed)
    started = time.monotonic()
    rerun = subprocess.run(_command(out, seed), cwd=REPO, check=True, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done:  # a resume, not a start-over
        assert f"resumed: {done} rows were already done" in rerun.stdout
    assert labelled_containers(docker_client, process.pid) == [], "a leftover survived the rerun"
    _assert_complete_and_equal(out, expected)
    record_case(f"SIGKILL of generate, seed {seed}, {when} ({done} of {ROWS} rows written, "
                f"{len(left)} container(s) left by the kill)",
                "rerun started clean and completed; accepted rows equal the "
                "uninterrupted run, each once (time: the whole rerun)", seconds)


class SecondEngine:
    """A private ``dockerd`` with its own data root, exec root and socket."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host = f"unix://{root / 'docker.sock'}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["dockerd", "--data-root", str(self.root / "data"),
                   "--exec-root", str(self.root / "exec"), "--pidfile", str(self.root / "dockerd.pid"),
                   "--host", self.host, "--bridge=none", "--iptables=false", "--ip6tables=false"]
        with open(self.root / "dockerd.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                docker.DockerClient(base_url=self.host, timeout=5).ping()
                return
            except Exception:  # not up yet
                assert self.process.poll() is None, (self.root / "dockerd.log").read_text()[-2000:]
                time.sleep(0.2)
        raise AssertionError("the second dockerd did not come up within 60 s")

    def stop(self) -> None:
        """Stop the daemon the way a service manager does (SIGTERM) and wait until it is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=90)
        self.process = None

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=60)


@pytest.fixture
def second_engine(sandbox_image: str) -> Iterator[SecondEngine]:
    if shutil.which("dockerd") is None:
        pytest.fail("dockerd is not installed")
    root = Path(tempfile.mkdtemp(prefix="apg-d2-", dir="/tmp"))  # short: socket paths are limited
    engine = SecondEngine(root)
    try:
        engine.start()
        subprocess.run(f"docker save {sandbox_image} | docker -H {engine.host} load -q",
                       shell=True, check=True, capture_output=True)
        yield engine
    finally:
        engine.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.docker
@pytest.mark.model
def test_docker_daemon_stopped_mid_run_then_resume(
    tmp_path: Path, second_engine: SecondEngine, reference: Callable[[int], list[int]]
) -> None:
    seed = 3
    out = tmp_path / "run"
    env = {**os.environ, "DOCKER_HOST": second_engine.host}
    process = subprocess.Popen(_command(out, seed), cwd=REPO, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and _lines(out / "records.jsonl") < 4:
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before the daemon could be stopped"
    stopped = time.monotonic()
    second_engine.stop()
    _, stderr = process.communicate(timeout=120)
    seconds = time.monotonic() - stopped
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert process.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert len(errors) == 1 and "lost the Docker engine" in errors[0], stderr
    assert stderr.strip().splitlines()[-1] == errors[0]
    done = _lines(out / "records.jsonl")
    assert 4 <= done < ROWS

    second_engine.start()
    rerun = subprocess.run(_command(out, seed), cwd=REPO, env=env, capture_output=True, text=True,
                           check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert labelled_containers(second_engine.client(), process.pid) == []
    _assert_complete_and_equal(out, reference(seed))
    record_case(f"Docker daemon stopped mid-run ({done} of {ROWS} rows written)",
                f"exit 2, one line: {errors[0]}; rerun after restart completed, rows equal the "
                "uninterrupted run (time: daemon stop to exit)", seconds)
