"""Hostile calls and libraries against the real sandbox (real Docker, real runner, no mocks).

Every hostile call runs in one batch, each followed by a well-behaved call: the hostile call must
fail with a precise reason (or, for the probes, return evidence of isolation), the call after it
must still succeed, the host must be untouched, and no labelled container may remain.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from apigen_local.checks.execution import check_execution, execute_rows
from apigen_local.errors import LibraryError
from apigen_local.sandbox import executor as executor_module
from apigen_local.sandbox.executor import SandboxExecutor
from apigen_local.tools import load_library
from apigen_local.types import CallResult, FunctionCall

from .conftest import labelled_containers, record_case

HOSTILE_LIBRARY = Path(__file__).resolve().parent / "hostile_library.py"
HOST_FILE = Path(__file__).resolve()  # exists on the host, never inside the container
RESOLVABLE = "pypi.org"  # the set-up installs from PyPI, so the host can resolve it
CALL_TIMEOUT = 2.0
CANARY_NAME = "APIGEN_SECURITY_CANARY"
ALLOWED_ENVIRONMENT = {"HOME", "HOSTNAME", "LANG", "LC_CTYPE", "PATH", "PYTHONDONTWRITEBYTECODE",
                       "PYTHONPATH", "PYTHONUNBUFFERED", "GPG_KEY", "PYTHON_VERSION", "PYTHON_SHA256"}


def call(name: str, **arguments: object) -> FunctionCall:
    return FunctionCall(name=name, arguments=arguments)


@dataclass
class Case:
    """One hostile call, the reason it must fail with (``None``: it returns), and extra checks."""

    label: str
    call: FunctionCall
    reason: str | None
    error_type: str | None = None
    check: Callable[[CallResult], None] = field(default=lambda result: None)


def _no_capabilities(result: CallResult) -> None:
    status = result.result
    assert status["Uid"].split() == ["65534"] * 4 and status["Gid"].split() == ["65534"] * 4
    for key in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(status[key], 16) == 0, key
    assert status["NoNewPrivs"] == "1"


CASES = [
    Case("infinite loop", call("infinite_loop"), "timeout",
         check=lambda r: CALL_TIMEOUT <= r.wall_time < CALL_TIMEOUT + 1.5),
    Case("fork bomb", call("fork_bomb"), "exception", "BlockingIOError"),
    Case("memory bomb: 8 GB at once", call("memory_bomb", gigabytes=8), "oom", "MemoryError"),
    Case("memory bomb: 8 GB in 64 MB steps", call("memory_creep", gigabytes=8), "oom", "MemoryError"),
    Case("500 MB written to stdout", call("flood_stdout", megabytes=500), "crash",
         check=lambda r: r.signal == "SIGKILL" and "more than 1048576 bytes" in r.error_message
         and len(r.stdout) < 8192),
    Case("huge return value (100 MB string)", call("huge_result", megabytes=100), "oom", "MemoryError"),
    Case("os._exit(0) inside the function", call("hard_exit"), "crash",
         check=lambda r: "exited with code 0 without a result" in r.error_message),
    Case("sys.exit() inside the function", call("soft_exit"), "exception", "SystemExit"),
    Case("segfault through ctypes", call("segfault"), "crash",
         check=lambda r: r.signal == "SIGSEGV"),
    Case("kill PID 1 (SIGINT, SIGTERM, SIGHUP, SIGKILL)", call("kill_init"), None,
         check=lambda r: r.result == "sent"),
    Case("forge results through /proc/1/fd", call("forge_results"), "exception", "PermissionError"),
    Case("ptrace PID 1", call("ptrace_init"), "exception", "PermissionError"),
    Case("write to /", call("write_file", path="/owned"), "exception", "OSError",
         check=lambda r: "Read-only file system" in r.error_message),
    Case("write to /opt/library", call("write_file", path="/opt/library/owned.py"), "exception",
         "OSError", check=lambda r: "Read-only file system" in r.error_message),
    Case("write to /etc", call("write_file", path="/etc/passwd"), "exception", "OSError",
         check=lambda r: "Read-only file system" in r.error_message),
    Case("fill /tmp past its size", call("fill_tmp"), "exception", "OSError",
         check=lambda r: "No space left on device" in r.error_message),
    Case("use /tmp after it was filled", call("use_tmp"), None, check=lambda r: r.result == 0),
    Case("read a host file", call("read_file", path=str(HOST_FILE)), "exception", "FileNotFoundError"),
    Case("read a host environment variable", call("get_env", variable=CANARY_NAME), "exception", "KeyError"),
    Case("list the environment", call("list_env"), None,
         check=lambda r: set(r.result) <= ALLOWED_ENVIRONMENT and CANARY_NAME not in r.result),
    Case("identity: uid, capabilities", call("identity"), None, check=_no_capabilities),
    Case("become root", call("become_root"), "exception", "PermissionError"),
    Case("network interfaces", call("interfaces"), None, check=lambda r: r.result == ["lo"]),
    # a name the host resolves (test_the_host_resolves_the_probed_name), so a failure inside is the
    # sandbox's doing, not the name's
    Case("name resolution", call("resolve", host=RESOLVABLE), "exception", "gaierror"),
]


def _mem_available() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no MemAvailable in /proc/meminfo")


@dataclass
class HostileRun:
    cases: list[Case]
    results: list[CallResult]
    seconds: float
    lowest_memory: int
    memory_before: int


@pytest.fixture(scope="module")
def hostile_run(docker_client, sandbox_image) -> Iterator[HostileRun]:
    """Every hostile case in one batch, each followed by ``add``, with the host watched."""
    os.environ[CANARY_NAME] = "host secret"
    calls = [item for case in CASES for item in (case.call, call("add", a=len(case.label), b=1))]
    lowest = [_mem_available()]
    before = lowest[0]
    done = threading.Event()

    def watch_memory() -> None:
        while not done.wait(0.05):
            lowest[0] = min(lowest[0], _mem_available())

    watcher = threading.Thread(target=watch_memory, daemon=True)
    watcher.start()
    try:
        with SandboxExecutor(HOSTILE_LIBRARY, call_timeout=CALL_TIMEOUT, client=docker_client) as sandbox:
            started = time.monotonic()
            results = sandbox.execute(calls)
            seconds = time.monotonic() - started
    finally:
        done.set()
        watcher.join()
        del os.environ[CANARY_NAME]
    assert labelled_containers(docker_client) == []
    yield HostileRun(CASES, results, seconds, lowest[0], before)


@pytest.mark.docker
@pytest.mark.parametrize("index", range(len(CASES)), ids=[case.label for case in CASES])
def test_hostile_call_is_contained(hostile_run: HostileRun, index: int) -> None:
    case = hostile_run.cases[index]
    result, after = hostile_run.results[2 * index], hostile_run.results[2 * index + 1]
    outcome = (f"ok: {str(result.result)[:60]}" if result.ok
               else f"{result.reason}: {result.error_type or ''} {result.error_message or ''}".strip())
    record_case(case.label, outcome, result.wall_time or 0.0)
    assert result.reason == case.reason, outcome
    assert result.ok is (case.reason is None)
    if case.error_type is not None:
        assert result.error_type == case.error_type, outcome
    if case.reason is not None:
        assert check_execution([result]).reason == case.reason
    case.check(result)
    assert after.ok and after.result == len(case.label) + 1, "the next call of the batch was spoiled"


def test_the_host_resolves_the_probed_name() -> None:
    """The name-resolution case proves containment only if the same name resolves outside."""
    assert socket.gethostbyname(RESOLVABLE)


@pytest.mark.docker
def test_the_host_is_untouched(hostile_run: HostileRun) -> None:
    # The 8 GB bombs may cost the host at most the container's 256 MB (plus noise from elsewhere).
    assert hostile_run.memory_before - hostile_run.lowest_memory < 2 * 2**30
    assert hostile_run.seconds < 60
    record_case("whole hostile batch (every case above, each followed by a good call)",
                f"{sum(r.ok for r in hostile_run.results)}/{len(hostile_run.results)} calls ok; "
                f"host memory dipped by at most "
                f"{(hostile_run.memory_before - hostile_run.lowest_memory) / 2**20:.0f} MB",
                hostile_run.seconds)


@pytest.mark.docker
def test_hostile_rows_through_execute_rows(docker_client, sandbox_image, no_leftovers) -> None:
    tools = load_library(HOSTILE_LIBRARY).tools
    rows = [
        [call("add", a=1, b=2)],
        [call("add", a=1, b=2), call("infinite_loop")],
        [call("memory_bomb", gigabytes=8)],
        [call("segfault"), call("add", a=1, b=2)],
        [call("flood_stdout", megabytes=500)],
        [call("add", a="40", b=2)],  # coerced by the schema, then run
        [call("write_file", path="/etc/passwd")],
    ]
    with SandboxExecutor(HOSTILE_LIBRARY, call_timeout=CALL_TIMEOUT, client=docker_client) as sandbox:
        outcomes = execute_rows(sandbox, rows, tools, batch_size=3)
    reasons = [outcome.check.reason for outcome in outcomes]
    assert reasons == [None, "timeout", "oom", "crash", "crash", None, "exception"]
    assert outcomes[5].results[0].result == 42 and outcomes[5].results[0].coerced == {"a": "40"}


def _library(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(body + '\n\ndef add(a: int, b: int) -> int:\n    """Add.\n\n    Args:\n'
                    '        a: A.\n        b: B.\n    """\n    return a + b\n')
    return path


@pytest.mark.docker
def test_library_whose_import_raises_is_one_library_error(
    tmp_path: Path, docker_client, sandbox_image, no_leftovers
) -> None:
    library = _library(tmp_path, "raising_lib", "raise RuntimeError('refusing to load')")
    with pytest.raises(LibraryError, match="refusing to load"):
        load_library(library)
    with SandboxExecutor(library, functions=["add"], client=docker_client) as sandbox:
        started = time.monotonic()
        with pytest.raises(LibraryError, match=r"\(RuntimeError: refusing to load\)$"):
            sandbox.execute_many([[call("add", a=1, b=2)]] * 3)
    record_case("library whose import raises", "LibraryError (RuntimeError: refusing to load), once",
                time.monotonic() - started)


@pytest.mark.docker
def test_library_whose_import_hangs_is_one_library_error(
    tmp_path: Path, docker_client, sandbox_image, no_leftovers, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apigen_local import tools

    library = _library(tmp_path, "hanging_lib", "import time\nwhile True:\n    time.sleep(0.05)")
    monkeypatch.setattr(tools, "IMPORT_TIMEOUT", 1.0)
    with pytest.raises(LibraryError, match="did not finish importing within 1 s"):
        load_library(library)
    monkeypatch.setattr(executor_module, "IMPORT_TIMEOUT", 2.0)
    with SandboxExecutor(library, functions=["add"], client=docker_client) as sandbox:
        started = time.monotonic()
        with pytest.raises(LibraryError, match="took longer than 2 s"):
            sandbox.execute_many([[call("add", a=1, b=2)]] * 3)
        seconds = time.monotonic() - started
    assert seconds < 12
    record_case("library whose import hangs", "LibraryError (TimeoutError: import took longer "
                "than 2 s), once", seconds)


@pytest.mark.docker
def test_library_printing_megabytes_on_import_still_runs(
    tmp_path: Path, docker_client, sandbox_image, no_leftovers
) -> None:
    noise = "import sys\nfor _ in range(20):\n    print('x' * 2**20)\n    sys.stderr.write('y' * 2**20)"
    library = _library(tmp_path, "noisy_lib", noise)
    with SandboxExecutor(library, functions=["add"], client=docker_client) as sandbox:
        started = time.monotonic()
        results = sandbox.execute([call("add", a=1, b=2), call("add", a=3, b=4)])
        seconds = time.monotonic() - started
    assert [r.result for r in results] == [3, 7]
    assert all(r.stdout == "" and r.stderr == "" for r in results)
    record_case("library printing 40 MB on import", "import output discarded in the sandbox; "
                "calls ok", seconds)
