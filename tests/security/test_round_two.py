"""The second outside hostile suite (issue 27), by class: verify input that corrupts or stalls a
run, and libraries that shadow the runner or the standard library."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apigen_local.checks import grounding
from apigen_local.errors import LibraryError
from apigen_local.run.files import read_records
from apigen_local.run.report import build_report
from apigen_local.run.verify import verify_dataset
from apigen_local.sandbox.executor import SandboxExecutor
from apigen_local.tools import load_library
from apigen_local.types import FunctionCall

from ..conftest import EXAMPLE_LIBRARY


def _row(row_id: object, query: str, calls: list[dict]) -> str:
    return json.dumps({"id": row_id, "query": query, "tools": [{"name": calls[0]["name"]}], "answers": calls})


# --------------------------------------------------------------------------- verify input


def test_a_number_too_large_for_a_float_is_refused_not_made_infinite(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    big = '{"id": 1, "query": "Is 1e400 prime?", "tools": [{"name": "is_prime"}], ' \
          '"answers": [{"name": "is_prime", "arguments": {"n": 1e400}}]}'
    inside = json.dumps({"id": 2, "query": "Is 1e400 prime?", "tools": [{"name": "is_prime"}],
                         "answers": '[{"name": "is_prime", "arguments": {"n": 1e400}}]'})
    fine = _row(3, "Is 7 prime?", [{"name": "is_prime", "arguments": {"n": 7}}])
    rows.write_text(big + "\n" + inside + "\n" + fine + "\n")
    result = verify_dataset(rows, EXAMPLE_LIBRARY, stages="format,grounding", out_dir=tmp_path / "out")
    for path in (result.dataset_path, result.rejected_path, result.records_path):
        assert not any(word in path.read_text() for word in ("Infinity", "NaN")), path.name
    records = {r.id: r for r in read_records(result.records_path)}
    # the first line cannot be read at all (its id is its line index); the second keeps its id
    assert records[0].format_check.reason == "invalid_row" and "too large" in records[0].format_check.detail
    assert records[2].format_check.reason == "invalid_json"
    assert records[3].accepted


def test_an_id_too_large_for_a_record_is_kept_as_the_rows_own_and_the_report_is_written(
        tmp_path: Path) -> None:
    huge = int("9" * 4300)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(_row(huge, "Is 7 prime?", [{"name": "is_prime", "arguments": {"n": 7}}]) + "\n"
                    + _row(5, "Is 11 prime?", [{"name": "is_prime", "arguments": {"n": 11}}]) + "\n")
    result = verify_dataset(rows, EXAMPLE_LIBRARY, stages="format,grounding", out_dir=tmp_path / "out")
    assert (tmp_path / "out" / "report.html").is_file()
    build_report(tmp_path / "out")  # raises on the old code: the id does not fit a 64-bit key
    written = [json.loads(line)["id"] for line in result.dataset_path.read_text().splitlines()]
    assert sorted(written, key=str) == sorted([huge, 5], key=str)
    assert sorted(r.id for r in read_records(result.records_path)) == [0, 5]


def test_grounding_reads_the_query_once_per_row_not_once_per_value(monkeypatch: pytest.MonkeyPatch) -> None:
    numbers = ", ".join(str(n) for n in range(2, 3000))
    query = f"Find the greatest common divisor of {numbers}. " + "x " * 50_000
    call = FunctionCall(name="greatest_common_divisor", arguments={"numbers": list(range(2, 3000))})
    tool = load_library(EXAMPLE_LIBRARY).by_name["greatest_common_divisor"]
    seen: list[int] = []
    original = grounding.normalise_text

    def counting(text: str) -> str:
        if len(text) > 10_000:
            seen.append(len(text))
        return original(text)

    monkeypatch.setattr(grounding, "normalise_text", counting)
    for cached in (grounding.query_numbers, grounding.query_dates, grounding.query_times,
                   grounding._spaced_singular, grounding._spaced_normalised):
        cached.cache_clear()
    assert grounding.check_grounding(query, [call], [tool]).passed
    assert len(seen) <= 3, f"the {len(query):,}-character query was normalised {len(seen)} times for 2,998 values"


# --------------------------------------------------------------------------- libraries that shadow

ADD = ('def add(a: int, b: int) -> int:\n    """Add.\n\n    Args:\n        a: A.\n        b: B.\n    """\n'
       "    return a + b\n")


@pytest.mark.parametrize("name", ["json", "os", "signal"])
def test_a_library_named_like_a_standard_module_is_refused_by_name(tmp_path: Path, name: str) -> None:
    library = tmp_path / f"{name}.py"
    library.write_text(ADD)
    with pytest.raises(LibraryError, match=f"named '{name}', like a module of Python's standard library"):
        load_library(library)


@pytest.mark.docker
def test_a_library_named_runner_is_the_library_not_the_runner(tmp_path: Path, docker_client, sandbox_image,
                                                               no_leftovers) -> None:
    library = tmp_path / "runner.py"
    library.write_text('def main() -> str:\n    """Says who it is."""\n    return "the library"\n\n\n' + ADD)
    assert [t.name for t in load_library(library).tools] == ["main", "add"]
    with SandboxExecutor(library, call_timeout=5.0, client=docker_client) as sandbox:
        results = sandbox.execute([FunctionCall(name="main", arguments={}),
                                   FunctionCall(name="add", arguments={"a": 1, "b": 2})])
    assert [(r.ok, r.result) for r in results] == [(True, "the library"), (True, 3)], results


# --------------------------------------------------------------------------- calls that break the calls after them

SABOTAGE = '''import os
import resource
import time


def lower_runner_limits() -> str:
    """Leaves the runner (PID 1) three file descriptors."""
    resource.prlimit(1, resource.RLIMIT_NOFILE, (3, 3))
    return "lowered"


def starve_runner() -> str:
    """Lowers the priority of every process of its user, the runner's included."""
    os.setpriority(os.PRIO_USER, os.getuid(), 19)
    os.setpriority(os.PRIO_PGRP, 0, 19)
    os.setpriority(os.PRIO_PROCESS, 1, 19)
    return "starved"


def pin_runner() -> str:
    """Pins the runner to one CPU."""
    os.sched_setaffinity(1, {0})
    return "pinned"


def runner_niceness() -> int:
    """The runner's scheduling priority, as this call sees it."""
    return os.getpriority(os.PRIO_PROCESS, 1)


def own_limits() -> list:
    """Lowers and reads this call's own file limit, which stays allowed."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    os.setpriority(os.PRIO_PROCESS, 0, 5)
    return list(resource.getrlimit(resource.RLIMIT_NOFILE))


def close_and_sleep() -> int:
    """Closes every descriptor it has, then sleeps for an hour."""
    os.closerange(0, 65536)
    time.sleep(3600)
    return 0


''' + ADD


@pytest.mark.docker
def test_a_call_that_closes_its_pipes_and_sleeps_times_out_alone(tmp_path: Path, docker_client, sandbox_image,
                                                                  no_leftovers) -> None:
    library = tmp_path / "sabotage.py"
    library.write_text(SABOTAGE)
    with SandboxExecutor(library, call_timeout=2.0, client=docker_client) as sandbox:
        results = sandbox.execute([FunctionCall(name="close_and_sleep", arguments={}),
                                   FunctionCall(name="add", arguments={"a": 1, "b": 2})])
    assert results[0].reason == "timeout" and results[0].wall_time < 4, results[0]
    assert results[1].ok and results[1].result == 3, results[1]


@pytest.mark.docker
def test_a_call_cannot_lower_the_runners_limits_priority_or_cpus(tmp_path: Path, docker_client, sandbox_image,
                                                                   no_leftovers) -> None:
    library = tmp_path / "sabotage.py"
    library.write_text(SABOTAGE)
    calls = [FunctionCall(name=name, arguments={})
             for name in ("lower_runner_limits", "starve_runner", "pin_runner", "own_limits", "runner_niceness")]
    calls += [FunctionCall(name="add", arguments={"a": i, "b": 1}) for i in range(3)]
    with SandboxExecutor(library, call_timeout=5.0, client=docker_client) as sandbox:
        results = sandbox.execute(calls)
    for result in results[:3]:  # refused, each alone
        assert (result.reason, result.error_type) == ("exception", "PermissionError"), result
    assert results[3].ok and results[3].result == [64, 64], results[3]  # a call's own limits stay its own
    assert results[4].ok and results[4].result == 0, results[4]  # the runner's priority is untouched
    assert [(r.ok, r.result) for r in results[5:]] == [(True, 1), (True, 2), (True, 3)], results[5:]


# --------------------------------------------------------------------------- wrong verdicts

RESULTS = '''def colliding_keys() -> dict:
    """Returns a dict whose keys JSON would write the same."""
    return {1: "int", "1": "str", None: "none", "null": "text"}


def returned_error() -> object:
    """Returns an exception instead of raising it."""
    return LookupError("city not found")


def anything(*args, **kwargs) -> int:
    return 7


''' + ADD


@pytest.mark.docker
def test_results_are_faithful_or_failures_and_only_offered_functions_run(tmp_path: Path, docker_client,
                                                                          sandbox_image, no_leftovers) -> None:
    library = tmp_path / "results.py"
    library.write_text(RESULTS)
    offered = [t.name for t in load_library(library, strict=False).tools]
    assert "anything" not in offered and "add" in offered
    calls = [FunctionCall(name=name, arguments={}) for name in ("colliding_keys", "returned_error", "anything")]
    calls.append(FunctionCall(name="add", arguments={"a": 1, "b": 2}))
    with SandboxExecutor(library, call_timeout=5.0, client=docker_client, functions=offered) as sandbox:
        results = sandbox.execute(calls)
    # every value kept (as its repr), not one silently dropped by JSON
    assert results[0].ok and all(part in results[0].result for part in ("'int'", "'str'", "'none'", "'text'"))
    assert (results[1].reason, results[1].error_type) == ("exception", "LookupError")
    assert "city not found" in results[1].error_message
    assert (results[2].reason, results[2].error_type) == ("exception", "NameError"), results[2]
    assert "not one of the functions offered" in results[2].error_message
    assert results[3].ok and results[3].result == 3


# --------------------------------------------------------------------------- sizes bounded on the way in

@pytest.mark.docker
def test_a_huge_argument_fails_alone_before_it_reaches_the_container(tmp_path: Path, docker_client,
                                                                      sandbox_image, no_leftovers) -> None:
    library = tmp_path / "plain.py"
    library.write_text(ADD)
    huge = "x" * 150_000_000
    with SandboxExecutor(library, call_timeout=5.0, client=docker_client) as sandbox:
        results = sandbox.execute([FunctionCall(name="add", arguments={"a": huge, "b": 1}),
                                   FunctionCall(name="add", arguments={"a": 1, "b": 2})])
    assert results[0].reason == "invalid_arguments" and "more than 1,048,576" in results[0].error_message
    assert results[1].ok and results[1].result == 3, results[1]



@pytest.mark.docker
def test_outcomes_that_grow_when_re_escaped_fail_alone(docker_client, sandbox_image, no_leftovers) -> None:
    library = Path(__file__).with_name("classes_library.py")
    # five forged outcomes re-escape to more than the host reads for the whole batch: on the old
    # runner the good call after them was lost with "the batch wrote more output than allowed"
    calls = [FunctionCall(name="forge", arguments={"kind": "grows"})] * 5
    calls.append(FunctionCall(name="add", arguments={"a": 1, "b": 2}))
    with SandboxExecutor(library, call_timeout=5.0, client=docker_client) as sandbox:
        results = sandbox.execute(calls)
    for forged in results[:5]:
        assert forged.reason == "crash" and "once encoded" in (forged.error_message or ""), forged
    assert results[5].ok and results[5].result == 3, results[5]


# --------------------------------------------------------------------------- cleanup that cannot be defeated

CLEANUP = '''import os

os.makedirs("/tmp/cache", exist_ok=True)  # made at import: it stays, what calls leave in it goes
with open("/tmp/data.txt", "w") as handle:
    handle.write("abcdef")
SHARED = open("/tmp/data.txt")  # opened at import: every call shares its offset with the runner


def squat() -> str:
    """Makes folders named like the runner's removal scratch names, each holding a folder."""
    for moved in range(1, 4):
        for pending in range(4):
            os.makedirs(f"/tmp/.apigen-removing-1-{moved}-{pending}/inside", exist_ok=True)
    os.makedirs("/tmp/tree/a/b", exist_ok=True)
    return "squatted"


def drop() -> str:
    """Leaves a file and a locked folder inside the import-time folder."""
    with open("/tmp/cache/stale.txt", "w") as handle:
        handle.write("stale")
    os.makedirs("/tmp/cache/locked/deeper")
    os.chmod("/tmp/cache/locked", 0)
    return "dropped"


def fill(megabytes: int) -> int:
    """Writes files of one megabyte each in /tmp (a call's files are at most 1 MiB each).

    Args:
        megabytes: How many.
    """
    for number in range(megabytes):
        with open(f"/tmp/blob{number}", "wb") as handle:
            handle.write(b"x" * 2**20)
    return megabytes


def peek() -> list:
    """What /tmp and /tmp/cache hold."""
    return sorted(os.listdir("/tmp")) + sorted("cache/" + name for name in os.listdir("/tmp/cache"))


def read_two() -> str:
    """Reads two characters of the file the library opened at import."""
    return SHARED.read(2)
'''


@pytest.mark.docker
def test_no_call_can_defeat_the_cleanup_or_share_state_through_the_library(tmp_path: Path, docker_client,
                                                                           sandbox_image, no_leftovers) -> None:
    library = tmp_path / "cleanup.py"
    library.write_text(CLEANUP)
    calls = [FunctionCall(name=name, arguments={}) for name in ("squat", "drop")]
    calls += [FunctionCall(name="fill", arguments={"megabytes": 12}), FunctionCall(name="peek", arguments={}),
              FunctionCall(name="read_two", arguments={}), FunctionCall(name="read_two", arguments={})]
    offered = ["drop", "fill", "peek", "read_two", "squat"]  # named: its import (writing /tmp) runs only in the sandbox
    with SandboxExecutor(library, call_timeout=5.0, client=docker_client, functions=offered) as sandbox:
        results = sandbox.execute(calls)
    assert [r.ok for r in results] == [True] * len(calls), [(r.name, r.reason, r.error_message) for r in results]
    assert results[2].result == 12  # the squatted folders were removed: the 16 MB /tmp had room
    assert results[3].result == ["cache", "data.txt"]  # nothing a call left, at any depth
    assert [results[4].result, results[5].result] == ["ab", "ab"]  # each call reads from the import's offset
