"""The third outside hostile suite, class "the library changes the runner's own state at import
time", and the executor's default offered set; on real containers.

The runner (PID 1) never imports the library; the library process does, and takes what it needs
before (sandbox/runner.py). Each test runs a library whose import or calls go after that state,
then well-behaved calls that must run as usual, in a batch that must end by itself: the container
exits with code 0 before the host's bound, not killed at it.

These libraries are never imported on the host (it would do to pytest what they do to a runner):
every executor but the default-set one is given its functions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from apigen_local.sandbox.executor import SandboxExecutor
from apigen_local.types import CallResult, FunctionCall

from .conftest import record_case

pytestmark = pytest.mark.docker

STATE_LIBRARY = Path(__file__).with_name("runner_state_library.py")
CALL_TIMEOUT = 2.0
BATCH_BOUND = 40.0  # the host's wall-clock bound for each batch here: far above what a batch takes

ADD = ('def add(a: int, b: int) -> int:\n    """Add.\n\n    Args:\n        a: A.\n        b: B.\n    """\n'
       "    return a + b\n\n\n"
       'def parent() -> int:\n    """The pid of the process that forked this call."""\n    return os.getppid()\n')


def call(name: str, **arguments: object) -> FunctionCall:
    return FunctionCall(name=name, arguments=arguments)


def outcome(result: CallResult) -> str:
    return f"ok: {result.result!r}"[:80] if result.ok else f"{result.reason}: {result.error_message}"


class Batch:
    """One batch in one container, and how it ended: results, seconds, whether the host's bound
    expired, and the container's exit code."""

    def __init__(self, docker_client, library: Path, calls: list[FunctionCall], functions: list[str] | None,
                 **options: Any) -> None:
        with SandboxExecutor(library, call_timeout=CALL_TIMEOUT, batch_timeout=BATCH_BOUND, client=docker_client,
                             functions=functions, **options) as sandbox:
            run_container = sandbox._run_container
            seen: dict[str, Any] = {}

            def watched(batch: list[FunctionCall]) -> Any:
                found = run_container(batch)
                seen["state"], seen["expired"] = found[2], found[3]
                return found

            sandbox._run_container = watched  # type: ignore[method-assign]
            started = time.monotonic()
            self.results = sandbox.execute(calls)
            self.seconds = time.monotonic() - started
            self.functions = sandbox.functions
        self.expired = seen["expired"]
        self.exit_code = seen["state"].get("ExitCode")

    def ended_by_itself(self) -> bool:
        return not self.expired and self.exit_code == 0

    def record(self, case: str) -> None:
        how = "ended by itself (exit 0)" if self.ended_by_itself() else \
            f"held: bound expired={self.expired}, exit code {self.exit_code}"
        reasons = ", ".join(r.reason or "ok" for r in self.results)
        record_case(case, f"calls: {reasons}; batch {how}", self.seconds)


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return path


# --------------------------------------------------------------------------- what holds the runner at exit

EXITS = '''import atexit
import os
import sys
import threading
import time


def _flood():
    while True:
        sys.__stderr__.write("x" * 65536)


threading.Timer(3600, print).start()  # non-daemon: Python waits for both at exit
threading.Thread(target=time.sleep, args=(3600,)).start()
threading.Thread(target=_flood, daemon=True).start()  # writes to stderr for as long as it lives
atexit.register(time.sleep, 3600)


''' + ADD

EXIT_HANDLER = '''import atexit
import os
import time

atexit.register(time.sleep, 3600)
os.register_at_fork(after_in_parent=lambda: None)


''' + ADD


def test_threads_timers_and_exit_handlers_of_the_library_hold_nothing(tmp_path: Path, docker_client,
                                                                      sandbox_image, no_leftovers) -> None:
    library = write(tmp_path, "exits", EXITS)
    batch = Batch(docker_client, library, [call("add", a=i, b=1) for i in range(3)] + [call("parent")] * 3,
                  functions=["add", "parent"])
    batch.record("non-daemon timer and thread, sleeping atexit handler, a thread flooding stderr (import)")
    assert [r.result for r in batch.results[:3]] == [1, 2, 3], [outcome(r) for r in batch.results]
    assert all(r.ok and r.stderr == "" for r in batch.results), [outcome(r) for r in batch.results]
    # threads left running mean a library process of its own for each call (a fresh import)
    assert len({r.result for r in batch.results[3:]}) == 3, [r.result for r in batch.results[3:]]
    assert batch.ended_by_itself(), (batch.expired, batch.exit_code, batch.seconds)


def test_a_library_with_only_an_exit_handler_is_imported_once_and_does_not_hold_the_batch(
        tmp_path: Path, docker_client, sandbox_image, no_leftovers) -> None:
    library = write(tmp_path, "exit_handler", EXIT_HANDLER)
    batch = Batch(docker_client, library, [call("parent")] * 3 + [call("add", a=1, b=2)],
                  functions=["add", "parent"])
    batch.record("sleeping atexit handler and an at-fork hook, no thread (import)")
    assert all(r.ok for r in batch.results), [outcome(r) for r in batch.results]
    assert len({r.result for r in batch.results[:3]}) == 1  # one library process for every call
    assert batch.results[3].result == 3
    assert batch.ended_by_itself(), (batch.expired, batch.exit_code, batch.seconds)


# --------------------------------------------------------------------------- what the runner relies on


def test_what_the_library_changes_at_import_is_its_own_not_the_runners(docker_client, sandbox_image,
                                                                        no_leftovers) -> None:
    calls = [call("add", a=1, b=2), call("settings"), call("nested", depth=300), call("wait_for_alarm"),
             call("spin"), call("add", a=3, b=4)]
    batch = Batch(docker_client, STATE_LIBRARY, calls,
                  functions=["add", "nested", "settings", "spin", "wait_for_alarm"])
    batch.record("SIGCHLD ignored, json patched, sys.modules poisoned, clock frozen, open/stdout replaced, "
                 "recursion limit 150, warnings as errors, a tracer against the runner (import)")
    first, settings, deep, alarm, spin, last = batch.results
    assert first.ok and first.result == 3, outcome(first)
    # each call runs with what the library set ...
    assert settings.ok and settings.result == {
        "recursion_limit": 150, "cwd": "/", "mark": "set at import", "warnings": "error",
        "sigchld_ignored": True, "traced": True, "dumps": '"patched"'}, outcome(settings)
    assert alarm.ok and alarm.result == "the library's own alarm handler ran", outcome(alarm)
    # ... and is run, timed and encoded with what the runner took before the import
    depth, value = 0, deep.result
    while isinstance(value, list) and value:
        depth, value = depth + 1, value[0]
    assert deep.ok and depth == 300 and value == [], outcome(deep)
    assert spin.reason == "timeout" and spin.wall_time < CALL_TIMEOUT + 1.5, outcome(spin)
    assert last.ok and last.result == 7, outcome(last)
    assert batch.ended_by_itself(), (batch.expired, batch.exit_code, batch.seconds)


# --------------------------------------------------------------------------- what a call leaves behind

FILES = '''import fcntl
import os
import signal
import threading
import time

LOCK = threading.Lock()
KEPT = open("/tmp/kept.txt", "w+")  # opened at import and kept open
KEPT.write("0123456789")
KEPT.flush()
KEPT.seek(0)
FOLDER = os.open("/tmp", os.O_RDONLY)  # a folder kept open too


def take_and_raise() -> int:
    """Takes the module's lock and an flock on the kept file, makes the file append-only, moves
    its offset, leaks a hundred open files, then raises."""
    LOCK.acquire()
    fcntl.flock(KEPT, fcntl.LOCK_EX)
    fcntl.fcntl(KEPT, fcntl.F_SETFL, fcntl.fcntl(KEPT, fcntl.F_GETFL) | os.O_APPEND)
    os.lseek(KEPT.fileno(), 7, os.SEEK_SET)
    leaked = [open("/tmp/kept.txt") for _ in range(100)]
    leaked[-1].read(3)
    raise RuntimeError("failed while holding its locks")


def state() -> dict:
    """What a later call finds of the lock and the kept file."""
    other = os.open("/tmp/kept.txt", os.O_RDONLY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        flock = "free"
    except BlockingIOError:
        flock = "held"
    finally:
        os.close(other)
    return {"lock": LOCK.locked(), "flock": flock,
            "append": bool(fcntl.fcntl(KEPT, fcntl.F_GETFL) & os.O_APPEND),
            "offset": os.lseek(KEPT.fileno(), 0, os.SEEK_CUR)}


def kill_parent() -> str:
    """Kills the process that forked this call."""
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(1)
    return "still here"


def stop_parent() -> str:
    """Stops the process that forked this call, then sleeps."""
    os.kill(os.getppid(), signal.SIGSTOP)
    time.sleep(60)
    return "woke up"


''' + ADD

SHARED_MEMORY = '''import mmap
import multiprocessing
import os

SEMAPHORE = multiprocessing.Lock()  # in memory shared with every process forked after the import
PAGE = mmap.mmap(-1, 4096)  # anonymous, shared memory too


def take_and_raise() -> int:
    """Takes the lock and writes into the shared page, then raises."""
    SEMAPHORE.acquire()
    PAGE[:5] = b"dirty"
    raise RuntimeError("failed while holding the lock")


def hold() -> int:
    """Takes the lock and never returns."""
    SEMAPHORE.acquire()
    while True:
        pass


def state() -> list:
    """Whether a later call can take the lock, and what the shared page holds."""
    taken = SEMAPHORE.acquire(timeout=1)
    if taken:
        SEMAPHORE.release()
    return [taken, PAGE[:5].hex()]


''' + ADD


def test_locks_flags_and_offsets_a_failed_call_took_die_with_it(tmp_path: Path, docker_client, sandbox_image,
                                                                no_leftovers) -> None:
    library = write(tmp_path, "files", FILES)
    calls = [call("parent"), call("take_and_raise"), call("state"), call("parent"),
             call("kill_parent"), call("add", a=1, b=2), call("stop_parent"), call("add", a=3, b=4)]
    batch = Batch(docker_client, library, calls,
                  functions=["add", "kill_parent", "parent", "state", "stop_parent", "take_and_raise"])
    batch.record("failed call holding a threading lock, an flock and O_APPEND on a file kept from import; "
                 "calls that kill or stop their parent")
    before, failed, state, after, killed, first, stopped, second = batch.results
    assert failed.reason == "exception" and failed.error_type == "RuntimeError", outcome(failed)
    assert state.ok and state.result == {"lock": False, "flock": "free", "append": False, "offset": 0}, outcome(state)
    assert before.ok and after.ok and before.result == after.result  # no thread, no shared memory: kept
    assert killed.reason == "crash" and "ended during the call" in killed.error_message, outcome(killed)
    assert first.ok and first.result == 3, outcome(first)  # imported again
    assert stopped.reason == "timeout" and "did not report" in stopped.error_message, outcome(stopped)
    assert second.ok and second.result == 7, outcome(second)
    assert batch.ended_by_itself(), (batch.expired, batch.exit_code, batch.seconds)


def test_a_lock_in_shared_memory_a_failed_call_took_is_free_for_the_next(tmp_path: Path, docker_client,
                                                                         sandbox_image, no_leftovers) -> None:
    library = write(tmp_path, "shared_memory", SHARED_MEMORY)
    calls = [call("take_and_raise"), call("state"), call("hold"), call("state"), call("parent"), call("parent")]
    batch = Batch(docker_client, library, calls, functions=["hold", "parent", "state", "take_and_raise"])
    batch.record("failed or hung call holding a multiprocessing lock and writing an mmap made at import")
    failed, state, held, state_after_hold, *parents = batch.results
    assert failed.reason == "exception", outcome(failed)
    assert state.ok and state.result == [True, "0000000000"], outcome(state)
    assert held.reason == "timeout", outcome(held)
    assert state_after_hold.ok and state_after_hold.result == [True, "0000000000"], outcome(state_after_hold)
    assert parents[0].result != parents[1].result  # shared memory: a fresh import for each call
    assert batch.ended_by_itself(), (batch.expired, batch.exit_code, batch.seconds)


# --------------------------------------------------------------------------- the executor's default

OFFERED = '''def add(a: int, b: int) -> int:
    """Add.

    Args:
        a: A.
        b: B.
    """
    return a + b


def anything(*args, **kwargs) -> int:
    """Takes whatever it is given."""
    return 7


def options(**kwargs) -> dict:
    """Echoes its keyword arguments."""
    return kwargs


def undocumented(x: int) -> int:
    return x
'''


def test_an_executor_given_no_functions_offers_what_load_library_offers(tmp_path: Path, docker_client,
                                                                         sandbox_image, no_leftovers) -> None:
    library = write(tmp_path, "offered", OFFERED)
    calls = [call("anything"), call("options", a=1), call("undocumented", x=1), call("add", a=1, b=2)]
    batch = Batch(docker_client, library, calls, functions=None)
    for refused in batch.results[:3]:
        assert (refused.reason, refused.error_type) == ("exception", "NameError"), outcome(refused)
        assert "not one of the functions offered" in refused.error_message
    assert batch.results[3].ok and batch.results[3].result == 3
    assert batch.functions == ["add"]
    record_case("SandboxExecutor with no functions: *args, **kwargs and undocumented functions called",
                "refused (NameError: not one of the functions offered); add ok", batch.seconds)

