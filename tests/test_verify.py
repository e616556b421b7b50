"""`verify`: the three checkers over rows someone else wrote, on real Docker (and the tiny model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apigen_local import cli, verify_dataset
from apigen_local.checks.semantic import parse_verdict
from apigen_local.errors import ConfigError
from apigen_local.run.files import read_records
from apigen_local.run.rows import read_rows
from apigen_local.tool_specs import xlam_tools
from apigen_local.tools import load_library

from .conftest import EXAMPLE_LIBRARY, EXAMPLE_SEEDS

LIBRARY = load_library(EXAMPLE_LIBRARY)
TOOLS = LIBRARY.by_name


def _xlam(row_id: Any, query: str, calls: list[dict[str, Any]], names: list[str],
          *, as_strings: bool = True) -> dict[str, Any]:
    """An xlam-60k row offering the library's ``names``; answers/tools as JSON strings or values."""
    tools: Any = xlam_tools([TOOLS[name] for name in names if name in TOOLS])
    tools += [{"name": name, "description": "?", "parameters": {}} for name in names
              if name not in TOOLS]
    answers: Any = calls
    if as_strings:
        answers, tools = json.dumps(calls), json.dumps(tools)
    return {"id": row_id, "query": query, "answers": answers, "tools": tools}


def _chat(row_id: int, query: str, calls: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """An OpenAI chat row: arguments as a JSON string, as the OpenAI API sends them."""
    tool_calls = [{"id": f"c{i}", "type": "function",
                   "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                  for i, c in enumerate(calls)]
    return {"id": row_id,
            "messages": [{"role": "system", "content": "You call functions."},
                         {"role": "user", "content": query},
                         {"role": "assistant", "content": None, "tool_calls": tool_calls}],
            "tools": [TOOLS[name].openai() for name in names]}


def _write(path: Path, rows: list[Any]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _seed_rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in EXAMPLE_SEEDS.read_text().splitlines() if line.strip()]


# The broken rows: id -> (row, expected stage, expected reason).
BROKEN: dict[int, tuple[dict[str, Any], str, str]] = {
    100: (_xlam(100, "Divide 10.", [{"name": "getdivision", "arguments": {"dividend": 10}}],
                ["getdivision"]), "format", "missing_required"),
    101: (_xlam(101, "Is 7 prime in base 10?",
                [{"name": "is_prime", "arguments": {"n": 7, "base": 10}}], ["is_prime"]),
          "format", "unexpected_argument"),
    102: (_xlam(102, "Is seven prime?", [{"name": "is_prime", "arguments": {"n": "seven"}}],
                ["is_prime"]), "format", "type_mismatch"),
    103: (_xlam(103, "Launch the rocket.", [{"name": "launch_rocket", "arguments": {}}],
                ["launch_rocket"]), "format", "unknown_function"),
    104: (_xlam(104, "Slugify 'Hello World'.",
                [{"name": "slugify", "arguments": {"title": "Hello World"}}], ["is_prime"]),
          "format", "unknown_function"),
    107: (_xlam(107, "Is 7 prime?", [{"name": "is_prime", "arguments": {"n": 7}}],
                ["is_prime", "launch_rocket"]), "format", "unknown_function"),  # offers it only
    105: (_xlam(105, "Divide 1 by 0.",
                [{"name": "getdivision", "arguments": {"dividend": 1, "divisor": 0}}],
                ["getdivision"]), "execution", "exception"),
    106: (_xlam(106, "Arrange 5 of 3 items.",
                [{"name": "permutation_count", "arguments": {"n": 3, "k": 5}}],
                ["permutation_count", "is_prime"]), "execution", "exception"),
    108: (_xlam(108, "Is 7 prime?", [{"name": "is_prime", "arguments": {"n": 9}}], ["is_prime"]),
          "grounding", "ungrounded_argument"),  # well-formed and runs, but 9 is not in the query
    109: (_xlam(109, "Is 7 prime, and is 11 prime?", [{"name": "is_prime", "arguments": {"n": 7}}],
                ["is_prime"]), "semantic", "unused_query_value"),  # the coverage judge needs no model
}


@pytest.mark.docker
def test_correct_rows_pass_and_each_broken_row_fails_with_its_stage_and_reason(
        tmp_path: Path, sandbox_image: str) -> None:
    seeds = _seed_rows()
    rows = seeds + [row for row, _, _ in BROKEN.values()] + ["{this is not json"]
    result = verify_dataset(_write(tmp_path / "rows.jsonl", rows), EXAMPLE_LIBRARY,
                            out_dir=tmp_path / "out")
    seed_ids = {row["id"] for row in seeds}
    dataset = _lines(result.dataset_path)
    assert {row["id"] for row in dataset} == seed_ids
    by_id = {record.id: record for record in read_records(result.records_path)}
    for row_id in seed_ids:
        record = by_id[row_id]
        assert record.format_check.passed and record.keep_row_after_execution_check
        assert len(record.execution_result) == len(record.answers) >= 1
        # no model given: the semantic stage runs its coverage design, which needs none
        assert record.semantic_check is not None and record.semantic_check.passed and not record.raw_verdict
    rejected = {row["id"]: row for row in _lines(result.rejected_path)}
    for row_id, (_, stage, reason) in BROKEN.items():
        assert (rejected[row_id]["stage"], rejected[row_id]["reason"]) == (stage, reason), row_id
    bad_line = len(rows)  # 1-based number of the last line; its id is the 0-based index
    assert rejected[bad_line - 1]["reason"] == "invalid_row"
    assert rejected[bad_line - 1]["detail"].startswith(f"line {bad_line}:")
    assert by_id[105].execution_result[0].error_type == "ZeroDivisionError"
    stats = json.loads(result.stats_path.read_text())
    assert stats["rows"] == len(rows) and stats["accepted"] == len(seeds)
    assert stats["reasons"]["format/unknown_function"] == 3
    assert stats["reasons"]["execution/exception"] == 2
    assert stats["stages"]["execution"]["total"] == len(seeds) + 3
    assert stats["stages"]["semantic"]["total"] == len(seeds) + 1
    assert stats["styles"]["simple"]["total"] > 0 and "unknown" in stats["styles"]


@pytest.mark.docker
def test_openai_chat_rows_and_json_value_rows_are_verified(
        tmp_path: Path, sandbox_image: str) -> None:
    velocity = {"name": "final_velocity",
                "arguments": {"initial_velocity": 2, "acceleration": 1.5, "time": 4}}
    primes = [{"name": "is_prime", "arguments": {"n": n}} for n in (7, 9)]
    rows = [
        _chat(0, "Speed after 4 s from 2 m/s at 1.5 m/s²?", [velocity], ["final_velocity"]),
        _chat(1, "Are 7 and 9 prime?", primes, ["is_prime", "slugify"]),
        _chat(2, "Divide 3 by 0.", [{"name": "getdivision",
                                     "arguments": {"dividend": 3, "divisor": 0}}],
              ["getdivision"]),
        _xlam(3, "Is 7 prime? And 9?", primes, ["is_prime"], as_strings=False),
        _xlam(4, "Is 7 prime?", [{"name": "is_prime", "arguments": {}}], ["is_prime"],
              as_strings=False),
    ]
    result = verify_dataset(_write(tmp_path / "rows.jsonl", rows), EXAMPLE_LIBRARY,
                            stages=["format", "execution"], out_dir=tmp_path / "out")
    by_id = {record.id: record for record in read_records(result.records_path)}
    assert {row["id"] for row in _lines(result.dataset_path)} == {0, 1, 3}
    assert by_id[0].query == rows[0]["messages"][1]["content"]
    assert by_id[0].execution_result[0].result == 8.0
    assert [r.result for r in by_id[1].execution_result] == [True, False]
    assert by_id[1].style == "parallel_multiple" and by_id[3].style == "parallel"
    assert by_id[2].rejection == ("execution", "exception")
    assert by_id[4].rejection == ("format", "missing_required")


@pytest.mark.docker
def test_rerun_resumes_without_adding_or_duplicating_rows(
        tmp_path: Path, sandbox_image: str) -> None:
    rows_path = _write(tmp_path / "rows.jsonl",
                       _seed_rows()[:8] + [BROKEN[105][0], BROKEN[102][0]])
    out = tmp_path / "out"
    first = verify_dataset(rows_path, EXAMPLE_LIBRARY, out_dir=out, batch_rows=3)
    files = {name: (out / name).read_text()
             for name in ("records.jsonl", "dataset.jsonl", "rejected.jsonl")}
    second = verify_dataset(rows_path, EXAMPLE_LIBRARY, out_dir=out, batch_rows=3)
    assert (first.resumed_rows, second.resumed_rows) == (0, 10)
    assert {name: (out / name).read_text() for name in files} == files
    assert second.stats.rows == 10 and second.stats.accepted == first.stats.accepted == 8

    # A run cut short: only the first four records survived; the rerun does the other six.
    kept = files["records.jsonl"].splitlines(keepends=True)[:4]
    (out / "records.jsonl").write_text("".join(kept))
    third = verify_dataset(rows_path, EXAMPLE_LIBRARY, out_dir=out, batch_rows=3)
    assert third.resumed_rows == 4
    ids = [record.id for record in read_records(out / "records.jsonl")]
    assert sorted(ids) == sorted(json.loads(line)["id"]
                                 for line in files["records.jsonl"].splitlines())
    assert len(ids) == len(set(ids)) == 10
    assert sorted((out / "dataset.jsonl").read_text().splitlines()) == \
        sorted(files["dataset.jsonl"].splitlines())
    assert len(_lines(out / "rejected.jsonl")) == 2


@pytest.mark.docker
@pytest.mark.model
def test_semantic_stage_runs_with_a_model(tmp_path: Path, local_model, sandbox_image: str) -> None:
    rows_path = _write(tmp_path / "rows.jsonl", _seed_rows()[:2] + [BROKEN[105][0]])
    result = verify_dataset(rows_path, EXAMPLE_LIBRARY, model=local_model, judge="verdict",
                            out_dir=tmp_path / "out")
    by_id = {record.id: record for record in read_records(result.records_path)}
    for row_id in (0, 1):  # the seed rows use every number they state, so the model's verdict ran
        check = by_id[row_id].semantic_check
        assert check is not None and by_id[row_id].raw_verdict
        # the stage follows the model's own verdict (the tiny model's may be unreadable)
        parsed = parse_verdict(by_id[row_id].raw_verdict)
        if parsed is None:
            assert check.reason == "invalid_verdict"
        else:
            assert check.passed is parsed[1] and (check.passed or check.reason == "judged_wrong")
    assert by_id[105].semantic_check is None  # a row that failed execution is not judged
    assert result.stats.stages["semantic"].total == 2


def test_unreadable_lines_are_invalid_rows_with_their_line_number(tmp_path: Path) -> None:
    good = _xlam("a-string-id", "Is 7 prime?", [{"name": "is_prime", "arguments": {"n": 7}}],
                 ["is_prime"])
    rows = read_rows(_write(tmp_path / "rows.jsonl", [
        good,                                                  # line 1: id 0 (line index)
        "",                                                    # line 2: blank, skipped
        "[1, 2]",                                              # line 3: not an object
        {"id": 0, "query": "q", "answers": "[]"},              # line 4: no tools; id 0 taken
        {"query": "q", "answers": "[]", "tools": "[{\"description\": \"x\"}]"},  # line 5
        {"id": 9, "answers": "[]", "tools": "[]"},             # line 6: empty tools
        {"messages": [{"role": "assistant"}], "tools": [TOOLS["is_prime"].openai()]},  # line 7
        {"query": "q", "answers": "[{oops", "tools": json.dumps(xlam_tools([TOOLS["is_prime"]]))},
    ]))
    assert [row.line for row in rows] == [1, 3, 4, 5, 6, 7, 8]
    assert rows[0].problem is None and rows[0].query == "Is 7 prime?"
    for row in rows[1:6]:
        assert row.problem is not None and row.problem.reason == "invalid_row"
        assert row.problem.detail.startswith(f"line {row.line}: ")
    assert "no function name" in rows[3].problem.detail
    assert rows[6].problem.reason == "invalid_json"  # a broken answers string: the format stage's
    ids = [row.id for row in rows]
    assert len(ids) == len(set(ids)) and ids[0] == 0 and 9 in ids and ids[2] == 10


def test_grounding_stage_rejects_values_the_query_does_not_state_and_can_be_turned_off(tmp_path: Path) -> None:
    row, _, _ = BROKEN[108]
    rows_path = _write(tmp_path / "rows.jsonl", [row, _seed_rows()[0]])
    result = verify_dataset(rows_path, EXAMPLE_LIBRARY, stages="format,grounding", out_dir=tmp_path / "on")
    (rejected,) = _lines(result.rejected_path)
    assert (rejected["id"], rejected["stage"], rejected["reason"]) == (108, "grounding", "ungrounded_argument")
    assert "is_prime: argument 'n' = 9" in rejected["detail"]
    assert len(_lines(result.dataset_path)) == 1
    off = verify_dataset(rows_path, EXAMPLE_LIBRARY, stages="format,grounding", grounding=False,
                         out_dir=tmp_path / "off")
    assert len(_lines(off.dataset_path)) == 2
    assert all(r.grounding_check is None for r in read_records(off.records_path))


def test_format_only_run_accepts_well_formed_rows_without_executing(tmp_path: Path) -> None:
    rows_path = _write(tmp_path / "rows.jsonl", _seed_rows()[:3] + [BROKEN[101][0]])
    result = verify_dataset(rows_path, EXAMPLE_LIBRARY, stages="format", out_dir=tmp_path / "o")
    assert [row["id"] for row in _lines(result.dataset_path)] == [0, 1, 2]
    assert [row["reason"] for row in _lines(result.rejected_path)] == ["unexpected_argument"]
    assert result.stats.stages["execution"].total == 0 and result.stats.sandbox_calls == 0
    with pytest.raises(ConfigError, match="other settings"):  # same --out, other stages
        verify_dataset(rows_path, EXAMPLE_LIBRARY, stages="format,execution",
                       out_dir=tmp_path / "o")


@pytest.mark.parametrize("stages, message", [
    ("format,exec", "unknown stage 'exec'"),
    ("execution", "must include format"),
    ("format,semantic", "needs execution"),
])
def test_bad_stage_choices_are_config_errors(tmp_path: Path, stages: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        verify_dataset(tmp_path / "rows.jsonl", EXAMPLE_LIBRARY, stages=stages,
                       out_dir=tmp_path / "o")


def test_cli_verify_prints_rates_and_paths_and_reports_user_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows_path = _write(tmp_path / "rows.jsonl", _seed_rows()[:2] + [BROKEN[103][0]])
    out = tmp_path / "out"
    code = cli.main(["verify", str(rows_path), "--library", str(EXAMPLE_LIBRARY),
                     "--stages", "format", "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "rows: 3  accepted: 2" in printed and "format/unknown_function: 1" in printed
    assert f"dataset:  {out / 'dataset.jsonl'}" in printed
    code = cli.main(["verify", str(tmp_path / "missing.jsonl"), "--library",
                     str(EXAMPLE_LIBRARY), "--out", str(tmp_path / "o2"), "--quiet"])
    assert code == cli.EXIT_USER_ERROR


def test_a_model_judge_without_a_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the verdict judge is the model's: pass --model"):
        verify_dataset(tmp_path / "rows.jsonl", EXAMPLE_LIBRARY, judge="verdict", out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_an_empty_rows_file_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    out = tmp_path / "o"
    assert cli.main(["verify", str(empty), "--library", str(EXAMPLE_LIBRARY), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: the rows file {empty} holds no rows: one JSON object per line"
    assert not out.exists()
