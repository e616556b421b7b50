"""The execution stage: sandbox runner, SandboxExecutor and the execution checker.

Docker tests use the real engine and the real sandbox image, no mocks. After each of them, no
container labelled by this test process may remain.
"""

from __future__ import annotations

import ast
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest

from apigen_local.checks.execution import (
    check_execution,
    coerce_arguments,
    execute_rows,
    is_error_result,
)
from apigen_local.errors import ConfigError, DockerUnavailableError, LibraryError
from apigen_local.sandbox.executor import (
    LABEL_HOST,
    LABEL_PID,
    LABEL_RUN,
    SandboxExecutor,
    library_files,
)
from apigen_local.types import CallResult, FunctionCall, Tool

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_LIBRARY = REPO / "examples" / "library.py"
HOSTILE_LIBRARY = Path(__file__).resolve().parent / "data" / "sandbox_lib.py"


def defined_functions(path: Path) -> list[str]:
    """Every public function a library file defines, read from its source. An executor offers
    only what ``load_library`` offers unless given ``functions=``, and most functions of
    ``sandbox_lib.py`` have no ``Args:`` section, so these tests name them all."""
    tree = ast.parse(path.read_text())
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")]


HOSTILE_FUNCTIONS = defined_functions(HOSTILE_LIBRARY)


def call(name: str, **arguments: object) -> FunctionCall:
    return FunctionCall(name=name, arguments=arguments)


def our_containers(client) -> list[dict]:
    """Sandbox containers (running or not) created by this test process."""
    return client.api.containers(
        all=True, filters={"label": [LABEL_RUN, f"{LABEL_PID}={os.getpid()}"]}
    )


@pytest.fixture
def no_leftovers(docker_client) -> Iterator[None]:
    """Fail the test if any container it started is still there afterwards."""
    yield
    left = our_containers(docker_client)
    assert left == [], f"containers left behind: {[c['Id'][:12] for c in left]}"


@pytest.fixture
def hostile(docker_client, sandbox_image, no_leftovers) -> Iterator[SandboxExecutor]:
    with SandboxExecutor(HOSTILE_LIBRARY, functions=HOSTILE_FUNCTIONS, call_timeout=1.0,
                         client=docker_client) as executor:
        yield executor


@pytest.fixture
def example(docker_client, sandbox_image, no_leftovers) -> Iterator[SandboxExecutor]:
    with SandboxExecutor(EXAMPLE_LIBRARY, client=docker_client) as executor:
        yield executor


# -- in the sandbox ----------------------------------------------------------------------------


@pytest.mark.docker
def test_correct_calls_from_the_example_library_pass(example: SandboxExecutor) -> None:
    results = example.execute([
        call("final_velocity", initial_velocity=10.0, acceleration=2.0, time=3.0),
        call("permutation_count", n=5, k=2),
        call("getdivision", dividend=10, divisor=4),
        call("binary_addition", a="101", b="11"),
    ])
    assert [r.result for r in results] == [16.0, 20, 2.5, "1000"]
    assert all(r.ok and r.reason is None for r in results)
    assert [r.name for r in results] == ["final_velocity", "permutation_count", "getdivision", "binary_addition"]
    assert check_execution(results).passed


@pytest.mark.docker
def test_wrong_argument_type_fails_with_exception(example: SandboxExecutor) -> None:
    results = example.execute([call("binary_addition", a=101, b="11"), call("permutation_count", n="five", k=2)])
    for result in results:
        assert not result.ok
        assert result.reason == "exception"
        assert result.error_type == "TypeError"
    check = check_execution(results)
    assert not check.passed and check.reason == "exception"
    assert "call 1 (binary_addition)" in check.detail


@pytest.mark.docker
def test_infinite_loop_times_out_within_the_bound(hostile: SandboxExecutor) -> None:
    started = time.monotonic()
    [result] = hostile.execute([call("spin")])
    elapsed = time.monotonic() - started
    assert result.reason == "timeout" and not result.ok
    assert 1.0 <= result.wall_time < 2.5
    assert elapsed < 10.0
    assert check_execution([result]).reason == "timeout"


@pytest.mark.docker
def test_a_crashing_call_does_not_spoil_the_batch(hostile: SandboxExecutor) -> None:
    results = hostile.execute([
        call("add", a=1, b=2), call("segfault"), call("add", a=3, b=4),
        call("fail_value", x=7), call("add", a=5, b=6),
    ])
    assert [r.result for r in results if r.ok] == [3, 7, 11]
    crashed = results[1]
    assert crashed.reason == "crash" and crashed.signal == "SIGSEGV"
    assert results[3].reason == "exception" and results[3].error_type == "ValueError"
    assert results[3].error_message == "bad value 7"
    assert check_execution(results).reason == "crash"


@pytest.mark.docker
def test_results_output_and_unrepresentable_values(docker_client, sandbox_image, no_leftovers) -> None:
    with SandboxExecutor(HOSTILE_LIBRARY, functions=HOSTILE_FUNCTIONS, output_limit=10,
                         client=docker_client) as executor:
        shout, long_shout, a_set, an_object, error = executor.execute([
            call("shout", text="hi"), call("shout", text="x" * 100), call("make_set"),
            call("make_object"), call("error_dict", code=3),
        ])
    assert shout.ok and shout.result == 2
    assert shout.stdout == "hi\n" and shout.stderr == "err:hi\n"
    assert long_shout.stdout.startswith("x" * 10) and "91 more bytes" in long_shout.stdout
    assert a_set.ok and a_set.result == "{1, 2, 3}"
    assert an_object.reason == "not_serializable" and not an_object.ok
    assert error.ok and check_execution([error]).reason == "error_result"


@pytest.mark.docker
def test_calls_are_confined(hostile: SandboxExecutor) -> None:
    memory, spawn, where, unknown = hostile.execute([
        call("hog_memory", megabytes=1024), call("spawn"), call("whoami"), call("os.system", command="id"),
    ])
    assert memory.reason == "oom" and memory.error_type == "MemoryError"
    assert spawn.reason == "exception"
    assert where.ok
    assert where.result["uid"] == 65534
    assert where.result["interfaces"] == ["lo"]
    assert "ro" in where.result["root_options"]
    assert set(where.result["environment"]) <= {
        "HOME", "HOSTNAME", "LANG", "LC_CTYPE", "PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH",
        "PYTHONUNBUFFERED", "GPG_KEY", "PYTHON_VERSION", "PYTHON_SHA256",
    }
    assert unknown.reason == "exception" and unknown.error_type == "NameError"


@pytest.mark.docker
def test_container_is_locked_down(hostile: SandboxExecutor, docker_client) -> None:
    seen: dict = {}

    def inspect_while_running() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not seen:
            for summary in our_containers(docker_client):
                seen.update(docker_client.api.inspect_container(summary["Id"]))
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=inspect_while_running)
    watcher.start()
    hostile.execute([call("spin")])
    watcher.join()
    host = seen["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Memory"] == host["MemorySwap"] == 256 * 2**20
    assert host["PidsLimit"] == 64 and host["NanoCpus"] == 10**9
    assert host["Binds"] is None and not host.get("Mounts")
    assert "/tmp" in host["Tmpfs"] and "size=16m" in host["Tmpfs"]["/tmp"]
    assert seen["Config"]["User"] == "65534:65534"
    assert seen["Config"]["Labels"][LABEL_RUN] == hostile.run_id


@pytest.mark.docker
def test_batch_bound_kills_the_container(docker_client, sandbox_image, no_leftovers) -> None:
    with SandboxExecutor(HOSTILE_LIBRARY, functions=HOSTILE_FUNCTIONS, call_timeout=5.0, batch_timeout=2.0,
                         client=docker_client) as executor:
        started = time.monotonic()
        results = executor.execute([call("spin"), call("spin")])
    assert time.monotonic() - started < 8.0
    assert [r.reason for r in results] == ["timeout", "timeout"]


@pytest.mark.docker
def test_execute_many_keeps_order_and_reuses_the_image(hostile: SandboxExecutor, docker_client) -> None:
    batches = [[call("add", a=i, b=j) for j in range(3)] for i in range(5)]
    results = hostile.execute_many(batches)
    assert [[r.result for r in batch] for batch in results] == [[i + j for j in range(3)] for i in range(5)]
    image_id = docker_client.images.get(hostile.image).id
    with SandboxExecutor(HOSTILE_LIBRARY, functions=HOSTILE_FUNCTIONS, client=docker_client) as again:
        assert again.image == hostile.image
        assert docker_client.images.get(again.image).id == image_id


@pytest.mark.docker
def test_import_failure_is_a_library_error(tmp_path: Path, docker_client, sandbox_image, no_leftovers) -> None:
    broken = tmp_path / "broken_lib.py"
    broken.write_text("import numpy_that_is_not_there\n")
    # the function is named, so the executor does not import the library on the host to find them
    with SandboxExecutor(broken, functions=["anything"], client=docker_client) as executor, \
            pytest.raises(LibraryError, match="numpy_that_is_not_there"):
        executor.execute([call("anything")])


@pytest.mark.docker
def test_ctrl_c_removes_the_container(hostile: SandboxExecutor, docker_client) -> None:
    seen: list[list] = []

    def interrupt_once_a_container_runs() -> None:  # the state the test is about, not a fixed delay
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not seen:
            running = [c for c in our_containers(docker_client) if c.get("State") == "running"]
            if running:
                seen.append(running)
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    # Ctrl-C raises KeyboardInterrupt only under Python's default handler; a process started in
    # the background by a shell without job control inherits SIGINT ignored (how the test failed
    # in a background run), so the test installs the handler an interactive user has
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    watcher = threading.Thread(target=interrupt_once_a_container_runs, daemon=True)
    watcher.start()
    # 30 calls of 1 s each: the batch is still running however late under load the signal lands
    try:
        with pytest.raises(KeyboardInterrupt):
            hostile.execute([call("spin")] * 30)
    finally:
        signal.signal(signal.SIGINT, previous)
    watcher.join(timeout=5)
    assert seen, "no sandbox container was running when Ctrl-C came"
    assert our_containers(docker_client) == []


def _labelled_container(client, image: str, run: str, pid: int) -> str:
    labels = {LABEL_RUN: run, LABEL_PID: str(pid), LABEL_HOST: socket.gethostname()}
    return client.api.create_container(image, labels=labels)["Id"]


def _exists(client, container_id: str) -> bool:
    return any(c["Id"] == container_id for c in client.api.containers(all=True))


@pytest.mark.docker
def test_leftovers_of_dead_runs_are_cleaned_up(
    docker_client, sandbox_image, no_leftovers, capsys: pytest.CaptureFixture[str]
) -> None:
    from apigen_local.cli import main

    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    created = []
    try:
        alive = _labelled_container(docker_client, sandbox_image, "live-run", os.getppid())
        dead = _labelled_container(docker_client, sandbox_image, "dead-run", finished.pid)
        created += [alive, dead]
        with SandboxExecutor(HOSTILE_LIBRARY, functions=HOSTILE_FUNCTIONS, client=docker_client):
            assert not _exists(docker_client, dead), "starting a run must remove leftovers of dead runs"
        assert _exists(docker_client, alive)
        dead_again = _labelled_container(docker_client, sandbox_image, "dead-run", finished.pid)
        created.append(dead_again)
        assert main(["sandbox", "cleanup"]) == 0
        assert not _exists(docker_client, dead_again)
        assert _exists(docker_client, alive)
        assert "leftover sandbox container" in capsys.readouterr().out
    finally:
        for container_id in created:
            with contextlib.suppress(docker.errors.NotFound):
                docker_client.api.remove_container(container_id, force=True)


@pytest.mark.docker
def test_numeric_strings_are_coerced_and_recorded(example: SandboxExecutor) -> None:
    velocity = Tool(name="final_velocity", description="v", parameters={
        "type": "object",
        "properties": {name: {"type": "number"} for name in ("initial_velocity", "acceleration", "time")},
        "required": ["initial_velocity", "acceleration", "time"],
    })
    rows = [
        [call("final_velocity", initial_velocity="10", acceleration=2.0, time="1.5")],
        [call("final_velocity", initial_velocity="ten", acceleration=2.0, time=1.0)],
    ]
    good, bad = execute_rows(example, rows, [velocity])
    assert good.check.passed and good.results[0].result == 13.0
    assert good.results[0].coerced == {"initial_velocity": "10", "time": "1.5"}
    assert not bad.check.passed and bad.check.reason == "exception"


# -- on the host, no Docker ----------------------------------------------------------------------


def test_coerce_arguments_follows_the_schema() -> None:
    tool = Tool(name="f", description="f", parameters={"type": "object", "properties": {
        "n": {"type": "integer"}, "x": {"type": "number"}, "flag": {"type": "boolean"},
        "label": {"type": "string"}, "maybe": {"type": ["integer", "null"]},
    }})
    fixed, coerced = coerce_arguments(
        call("f", n="42", x="2.5", flag="True", label="7", maybe="-3"), tool
    )
    assert fixed.arguments == {"n": 42, "x": 2.5, "flag": True, "label": "7", "maybe": -3}
    assert coerced == {"n": "42", "x": "2.5", "flag": "True", "maybe": "-3"}
    same, none = coerce_arguments(call("f", n="4.5", x="nan", flag="yes"), tool)
    assert same.arguments == {"n": "4.5", "x": "nan", "flag": "yes"} and none == {}


def test_check_execution_reports_the_first_failure() -> None:
    ok = CallResult(name="a", ok=True, result=1)
    oom = CallResult(name="b", ok=False, reason="oom", error_type="MemoryError")
    crash = CallResult(name="c", ok=False, reason="crash", signal="SIGSEGV")
    assert check_execution([ok]).passed
    check = check_execution([ok, oom, crash])
    assert check.reason == "oom" and "call 2 (b)" in check.detail and "MemoryError" in check.detail
    assert "SIGSEGV" in check_execution([crash]).detail
    assert check_execution([]).reason == "no_calls"


@pytest.mark.parametrize(("value", "expected"), [
    ({"error": "city not found"}, True), ({"Errors": ["x"]}, True), ({"error": None}, False),
    ("Error: invalid date", True), ("exception: boom", True), ("errors are rare", False),
    ({"result": 1}, False), (0, False), (None, False),
])
def test_error_shaped_results(value: object, expected: bool) -> None:
    assert is_error_result(value) is expected


def test_library_paths_are_checked(tmp_path: Path) -> None:
    assert library_files(HOSTILE_LIBRARY)[0] == "sandbox_lib"
    package = tmp_path / "mypkg"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("X = 1\n")
    (package / "__pycache__" / "junk.pyc").write_bytes(b"\0")
    (package / "data.json").write_text("{}")
    assert library_files(package) == ("mypkg", {"mypkg/__init__.py": b"X = 1\n", "mypkg/data.json": b"{}"})
    with pytest.raises(ConfigError):
        library_files(tmp_path / "missing.py")
    with pytest.raises(ConfigError):
        SandboxExecutor(HOSTILE_LIBRARY, mem_limit="lots")


def test_unreachable_docker_says_what_to_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such-docker.sock")
    with pytest.raises(DockerUnavailableError, match="dockerd"):
        SandboxExecutor(HOSTILE_LIBRARY).start()


@pytest.mark.parametrize("answers, error", [(False, "lost the Docker engine"),
                                             (True, "could not run a sandbox container")])
def test_an_engine_error_mid_batch_is_one_line_whether_or_not_the_engine_is_going_away(
        monkeypatch: pytest.MonkeyPatch, answers: bool, error: str) -> None:
    """An engine shutting down fails requests with a 500 (seen: "grpc: the client connection is
    closing") before it stops answering; that is the engine lost, not a traceback."""
    from apigen_local.errors import SandboxError
    from apigen_local.sandbox import executor as executor_module

    sandbox = SandboxExecutor(EXAMPLE_LIBRARY)

    def failing_start(calls):
        raise docker.errors.APIError("500 Server Error", explanation="grpc: the client connection is closing")

    monkeypatch.setattr(sandbox, "_run_container", failing_start)
    monkeypatch.setattr(sandbox, "_engine_answers", lambda: answers)
    monkeypatch.setattr(executor_module, "ENGINE_GRACE", 0.3)
    with pytest.raises(SandboxError, match=error) as caught:
        sandbox._run_batch([FunctionCall(name="is_prime", arguments={"n": 7})])
    assert isinstance(caught.value, DockerUnavailableError) is not answers
    assert "\n" not in str(caught.value)
