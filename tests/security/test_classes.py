"""One test per class of hole found by outside hostile testing (issue 17), on real containers.

Each test runs several cases of its class in one container batch, followed by well-behaved calls
that must see none of what the hostile calls did.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apigen_local.run.files import RunFiles, read_records
from apigen_local.run.verify import verify_dataset
from apigen_local.sandbox.executor import SandboxExecutor
from apigen_local.types import CallResult, CheckResult, FunctionCall, Record

LIBRARY = Path(__file__).with_name("classes_library.py")
pytestmark = pytest.mark.docker


def call(name: str, **arguments: object) -> FunctionCall:
    return FunctionCall(name=name, arguments=arguments)


def run(docker_client, calls: list[FunctionCall], **options: object) -> list[CallResult]:
    with SandboxExecutor(LIBRARY, call_timeout=5.0, client=docker_client, **options) as sandbox:
        return sandbox.execute(calls)


def outcome(result: CallResult) -> str:
    return "ok" if result.ok else f"{result.reason}: {result.error_message}"


def test_ipc_state_does_not_survive_a_call(docker_client, sandbox_image, no_leftovers) -> None:
    results = run(docker_client, [
        call("make_ipc", key=4242, value=4242, megabytes=160),
        call("seen_ipc", key=4242),
        call("allocate", megabytes=120),
    ])
    assert results[0].ok and results[0].result == 10, outcome(results[0])
    assert results[1].ok and results[1].result == [], outcome(results[1])
    assert results[2].ok, outcome(results[2])


def test_files_of_every_kind_are_removed(docker_client, sandbox_image, no_leftovers) -> None:
    results = run(docker_client, [
        call("scratch"),
        call("leave_files", megabytes=6),
        call("scratch"),
        call("write_blob", megabytes=12),
        call("deep_dirs", depth=3000),
        call("scratch"),
        call("add", a=1, b=2),
    ])
    assert results[1].ok and results[4].ok, [outcome(r) for r in results]
    assert results[0].ok and results[2].ok and results[5].ok, [outcome(r) for r in results]
    assert results[2].result == results[0].result and results[5].result == results[0].result
    assert results[3].ok, outcome(results[3])
    assert results[6].result == 3


def test_forged_outcomes_are_one_calls_crash(docker_client, sandbox_image, no_leftovers) -> None:
    kinds = ["deep", "typed", "huge"]
    calls = [c for kind in kinds for c in (call("forge", kind=kind), call("add", a=1, b=2))]
    results = run(docker_client, calls)
    for kind, forged, after in zip(kinds, results[::2], results[1::2], strict=True):
        assert forged.reason == "crash" and forged.error_message, (kind, outcome(forged))
        assert after.ok and after.result == 3, (kind, outcome(after))


def test_deeply_nested_arguments_fail_only_their_call(docker_client, sandbox_image, no_leftovers) -> None:
    deep: object = 1
    for _ in range(100_000):
        deep = [deep]
    results = run(docker_client, [call("add", a=deep, b=1), call("add", a=1, b=2)])
    assert not results[0].ok and results[0].reason and "deep" in (results[0].error_message or "")
    assert results[1].ok and results[1].result == 3


def test_long_results_are_cut_not_lost(docker_client, sandbox_image, no_leftovers) -> None:
    cases = [("quotes", 70_000), ("cjk", 15_000), ("control", 40_000), ("emoji", 60_000), ("cjk", 100_000)]
    results = run(docker_client, [call("text", kind=kind, count=count) for kind, count in cases])
    chars = {"quotes": '"', "cjk": "\u6f22", "control": "\x01", "emoji": "\U0001f600"}
    for (kind, count), result in zip(cases, results, strict=True):
        assert result.ok and isinstance(result.result, str), (kind, count, outcome(result))
        assert len(result.result) <= 65536 + 64, (kind, count, len(result.result))
        # cut, not lost (sandbox/runner.py): the value itself when its JSON fits the limit, else its
        # repr, cut at the limit and followed by the count of what was cut
        value = chars[kind] * count
        shown = repr(value)
        cut = shown if len(shown) <= 65536 else shown[:65536] + f"... [{len(shown) - 65536} more characters]"
        expected = value if len(json.dumps(value)) <= 65536 else cut
        assert result.result == expected, (kind, count)


def test_unprintable_exceptions_are_exceptions(docker_client, sandbox_image, no_leftovers) -> None:
    kinds = ["plain", "worse", "nameless"]
    results = run(docker_client, [call("raise_unprintable", kind=kind) for kind in kinds])
    assert [r.reason for r in results] == ["exception"] * len(kinds), [outcome(r) for r in results]
    assert all(r.error_type for r in results)


def test_values_with_memory_addresses_are_not_serializable(docker_client, sandbox_image, no_leftovers) -> None:
    kinds = ["generator", "function", "lambda", "bound_method", "objects"]
    results = run(docker_client, [call("opaque", kind=kind) for kind in kinds])
    assert [r.reason for r in results] == ["not_serializable"] * len(kinds), [outcome(r) for r in results]


def test_only_functions_defined_in_the_library_run(docker_client, sandbox_image, no_leftovers) -> None:
    names = ["listdir", "alias", "ctypes", "_Thing", "libc", "os"]
    # all offered, so that the check of what each name is refuses them, not the offered set
    results = run(docker_client, [call(name, path="/") for name in names] + [call("add", a=1, b=2)],
                  functions=[*names, "add"])
    # refused by name before anything runs: a NameError, not whatever calling the object raises
    # (a module or class called with path="/" raises TypeError; listdir("/") would succeed)
    assert [(r.reason, r.error_type) for r in results[:-1]] == [("exception", "NameError")] * len(names), \
        [outcome(r) for r in results]
    assert results[-1].ok and results[-1].result == 3


def _record(**fields: object) -> Record:
    return Record(seed=0, style="simple", tools=[], format_check=CheckResult.ok(), **fields)


def test_every_record_is_writable(tmp_path: Path) -> None:
    deep: object = "leaf"
    for _ in range(400):
        deep = {"k": deep}
    records = [
        _record(id=1, query="\ud800 x"),
        _record(id=2, query="q", execution_check=CheckResult.fail("exception", "bad \udfff"),
                execution_result=[CallResult(name="f", ok=False, error_message="\ud834", result=deep)]),
        _record(id=3, query="q", answers=[FunctionCall(name="f", arguments={"x": deep, "\udc80": 1})]),
    ]
    files = RunFiles(tmp_path)
    files.open({"mode": "test"})
    for record in records:
        files.append([record])
    files.close()
    back = list(read_records(files.records))
    assert [r.id for r in back] == [1, 2, 3]
    assert all(r.write_repairs for r in back)
    assert back[0].query == "\\ud800 x"
    assert (tmp_path / "rejected.jsonl").read_text().count("\n") + \
        (tmp_path / "dataset.jsonl").read_text().count("\n") == 3


def test_verify_keeps_ids_and_writes_every_row(tmp_path: Path, docker_client, sandbox_image, no_leftovers) -> None:
    tools = json.dumps([{"name": "add", "description": "Add.", "parameters": {}}])
    ids = ["exec_simple_0", "6f1c1f6e-5a7e-4b8e-9d43-0f3b0a4e2b11", 7, {"k": [1]}, None, 7]
    answers = [json.dumps([{"name": "add", "arguments": {"a": i, "b": 1}}]) for i in range(len(ids))]
    rows = [{"id": ident, "query": f"add {i} \ud800", "answers": answers[i], "tools": tools}
            for i, ident in enumerate(ids)]
    rows.append({"query": "many", "answers": "[]", "tools": [{"name": f"f{i}"} for i in range(250_000)]})
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out"
    result = verify_dataset(path, LIBRARY, stages="format,execution", out_dir=out)
    records = list(read_records(out / "records.jsonl"))
    assert len(records) == len(rows), result
    assert sorted(json.dumps(r.source_id) for r in records) == sorted(json.dumps(i) for i in [*ids, None])
    written = [json.loads(line)["id"] for line in (out / "dataset.jsonl").read_text().splitlines()]
    # a null id counts as none: the row keeps its line index
    assert sorted(map(json.dumps, written)) == sorted(json.dumps(4 if i is None else i) for i in ids)
    passed = [r for r in records if r.format_check.passed]
    assert len(passed) == len(ids) and all(r.write_repairs == ["lone surrogates escaped"] for r in passed)
    assert [r.format_check.reason for r in records if not r.format_check.passed] == ["invalid_row"]
