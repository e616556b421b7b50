"""The project's BFCL checker on BFCL's own published ground truth (a 210-row sample, vendored in
tests/data/bfcl with its licence): answers taken from the ground truth pass, and each kind of
mutation fails with the error type BFCL's checker gives for it."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apigen_local.bfcl import checker
from apigen_local.bfcl.checker import check

SAMPLE = Path(__file__).parent / "data" / "bfcl" / "sample.jsonl"
ROWS = [json.loads(line) for line in SAMPLE.read_text().splitlines()]


def first_allowed(value: Any) -> Any:
    """The first allowed value, with nested objects' allowed lists collapsed alike."""
    if isinstance(value, dict):
        return {k: first_allowed(v[0]) for k, v in value.items() if isinstance(v, list) and v and v[0] != ""}
    if isinstance(value, list):
        return [first_allowed(v) for v in value]
    return value


def answer_calls(row: dict[str, Any]) -> list[dict[str, dict[str, Any]]]:
    """A model's calls made from the row's ground truth: each parameter's first allowed value; an
    optional parameter that may be left out ("" among its values) is left out."""
    calls = []
    for entry in row["ground_truth"]:
        name, allowed = next(iter(entry.items()))
        required = _params(row, entry).get("required", [])
        calls.append({name: {p: first_allowed(next(a for a in v if a != "")) for p, v in allowed.items()
                             if any(a != "" for a in v) and (p in required or "" not in v)}})
    return calls


def _params(row: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
    name = next(iter(call))
    function = next(f for f in row["function"] if f["name"] == name)
    return function["parameters"]


def mutations(row: dict[str, Any]) -> Iterator[tuple[str, list[dict[str, Any]], str]]:
    """(what was changed, the changed calls, the error type BFCL gives) for each mutation that
    applies to ``row``; parallel categories report any per-call failure as cannot_find_match."""
    calls = answer_calls(row)
    parallel = "parallel" in row["category"]
    first = calls[0]
    name = next(iter(first))
    args = first[name]
    schema = _params(row, first)
    properties = schema.get("properties", {})

    def per_call(error_type: str) -> str:
        return checker.NO_MATCH if parallel else error_type

    def changed(new_args: dict[str, Any], new_name: str | None = None) -> list[dict[str, Any]]:
        mutated = copy.deepcopy(calls)
        mutated[0] = {new_name or name: new_args}
        return mutated

    required = [p for p in schema.get("required", []) if p in args]
    if required:
        yield "drop a required parameter", changed({k: v for k, v in args.items() if k != required[0]}), \
            per_call(checker.MISSING_REQUIRED)
    yield "add an unknown parameter", changed({**args, "zz_unknown": 1}), per_call(checker.UNEXPECTED_PARAM)
    yield "call another function", changed(args, name + "_other"), per_call(checker.WRONG_FUNC_NAME)
    for param, value in args.items():
        declared = properties.get(param, {}).get("type")
        allowed_types = {type(a) for a in next(iter(row["ground_truth"][0].values()))[param] if a != ""}
        if declared == "string" and allowed_types == {str}:
            yield "change a string", changed({**args, param: value + " zq"}), per_call(checker.STRING_VALUE)
            yield "same string, other case and punctuation", changed(
                {**args, param: value.upper().replace(" ", " - ")}), ""
            break
    for param, value in args.items():
        declared = properties.get(param, {}).get("type")
        if declared == "integer" and type(value) is int:
            yield "change an integer", changed({**args, param: value + 12345}), per_call(checker.OTHER_VALUE)
            yield "an integer as text", changed({**args, param: str(value)}), per_call(checker.TYPE_ERROR)
            break
    for param, value in args.items():
        if properties.get(param, {}).get("type") == "float" and type(value) is float and value.is_integer():
            yield "an int for a float", changed({**args, param: int(value)}), ""
            break
    if len(calls) > 1:
        yield "drop a call", calls[1:], checker.WRONG_COUNT
        if parallel:
            yield "calls in another order", list(reversed(calls)), ""
    else:
        yield "call twice", calls + calls, checker.WRONG_COUNT


@pytest.mark.parametrize("row", ROWS, ids=[row["id"] for row in ROWS])
def test_answers_from_bfcl_ground_truth_pass(row: dict[str, Any]) -> None:
    verdict = check(row["function"], answer_calls(row), row["ground_truth"], row["category"])
    assert verdict.valid, verdict


def test_the_sample_spans_the_four_categories() -> None:
    counts: dict[str, int] = {}
    for row in ROWS:
        counts[row["category"]] = counts.get(row["category"], 0) + 1
    assert counts == {"simple_python": 60, "multiple": 50, "parallel": 50, "parallel_multiple": 50}


@pytest.mark.parametrize("row", ROWS, ids=[row["id"] for row in ROWS])
def test_mutated_answers_fail_for_the_reason_bfcl_gives(row: dict[str, Any]) -> None:
    seen = 0
    for what, calls, error_type in mutations(row):
        verdict = check(row["function"], calls, row["ground_truth"], row["category"])
        assert verdict.valid is (error_type == ""), (what, verdict)
        assert verdict.error_type == error_type, (what, verdict)
        seen += 1
    assert seen >= 3


def test_odd_input_is_a_verdict_not_an_exception() -> None:
    row = ROWS[0]
    assert not check(row["function"], [{"f": {}}], [{"f": None}], "simple").valid  # type: ignore[list-item]
    assert not check([], [], [{"f": {"a": [1]}}], "simple").valid


# --------------------------------------------------------------------------- export --format bfcl

from apigen_local.bfcl.export import bfcl_function, category, export_bfcl, ground_truth  # noqa: E402
from apigen_local.types import CheckResult, FunctionCall, Record, Tool  # noqa: E402

WEATHER = Tool(name="weather", description="Weather of a city.", parameters={
    "type": "object", "required": ["city"],
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "default": 1},
                   "unit": {"type": "string", "enum": ["c", "f"], "default": "c"},
                   "hours": {"type": "array", "items": {"type": "number"}},
                   "where": {"type": "object", "properties": {"lat": {"type": "number"}}},
                   "anything": {"type": ["string", "integer"]}}})
CLOCK = Tool(name="clock", description="Time in a city.", parameters={
    "type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}})


def _accepted(row: int, tools: list[Tool], calls: list[tuple[str, dict[str, Any]]]) -> Record:
    return Record(id=row, seed=0, style="simple", tools=tools, query=f"request {row}",
                  answers=[FunctionCall(name=n, arguments=a) for n, a in calls], format_check=CheckResult.ok(),
                  execution_check=CheckResult.ok())


def test_each_row_goes_to_its_bfcl_category() -> None:
    assert category(_accepted(1, [WEATHER], [("weather", {"city": "Oslo"})])) == "simple"
    assert category(_accepted(2, [WEATHER, CLOCK], [("clock", {"city": "Oslo"})])) == "multiple"
    assert category(_accepted(3, [WEATHER], [("weather", {"city": "Oslo"}), ("weather", {"city": "Rome"})])) \
        == "parallel"
    assert category(_accepted(4, [WEATHER, CLOCK], [("clock", {"city": "Oslo"}), ("weather", {"city": "Oslo"})])) \
        == "parallel_multiple"
    assert category(_accepted(5, [WEATHER], [])) == "irrelevance"


def test_functions_and_ground_truth_are_written_in_bfcl_terms() -> None:
    function = bfcl_function(WEATHER)
    properties = function["parameters"]["properties"]
    assert function["parameters"]["type"] == "dict" and function["parameters"]["required"] == ["city"]
    assert properties["hours"] == {"type": "array", "items": {"type": "float"}}
    assert properties["where"]["type"] == "dict" and properties["anything"]["type"] == "any"
    truth = ground_truth(_accepted(1, [WEATHER], [("weather", {"city": "Oslo", "unit": "c", "where": {"lat": 59.9}})]))
    assert truth == [{"weather": {"city": ["Oslo"], "unit": ["c", ""], "where": [{"lat": [59.9]}],
                                  "days": ["", 1], "hours": [""], "anything": [""]}}]


def test_the_export_writes_only_rows_that_pass_bfcls_rules(tmp_path: Path) -> None:
    records = [
        _accepted(1, [WEATHER], [("weather", {"city": "Oslo", "days": 3, "hours": [6, 7.5]})]),
        _accepted(2, [WEATHER, CLOCK], [("clock", {"city": "Oslo"}), ("weather", {"city": "Oslo"})]),
        _accepted(3, [WEATHER], []),
        _accepted(4, [WEATHER], [("weather", {"city": "Oslo", "anything": {"a": 1}})]),  # any: compared whole
        _accepted(6, [WEATHER], [("weather", {"city": "Oslo", "hours": [7.5, 6]})]),  # BFCL types items by the first
        Record(id=5, seed=0, style="simple", tools=[WEATHER], format_check=CheckResult.fail("invalid_json")),
    ]
    result = export_bfcl(records, tmp_path / "bfcl")
    assert result.written == {"simple": 2, "parallel_multiple": 1, "irrelevance": 1}
    assert result.refused == {checker.NESTED_TYPE_ERROR: 1}
    assert not (tmp_path / "bfcl" / "possible_answer" / "apigen_irrelevance.json").exists()
    for kind in ("simple", "parallel_multiple"):
        questions = [json.loads(line) for line in (tmp_path / "bfcl" / f"apigen_{kind}.json").read_text().splitlines()]
        answers = {json.loads(line)["id"]: json.loads(line)["ground_truth"] for line in
                   (tmp_path / "bfcl" / "possible_answer" / f"apigen_{kind}.json").read_text().splitlines()}
        for question in questions:
            assert question["question"] == [[{"role": "user", "content": question["question"][0][0]["content"]}]]
            record = next(r for r in records if question["id"] == f"apigen_{kind}_{r.id}")
            calls = [{call.name: call.arguments} for call in record.answers]  # the row's own calls
            assert check(question["function"], calls, answers[question["id"]], kind).valid


def test_cli_export_bfcl_needs_a_folder_and_prints_what_it_wrote(tmp_path: Path, capsys) -> None:
    from apigen_local import cli
    from apigen_local.run.files import RunFiles

    files = RunFiles(tmp_path / "run")
    files.open({"run": 1})
    files.append([_accepted(1, [WEATHER], [("weather", {"city": "Oslo"})])])
    files.close()
    assert cli.main(["export", str(tmp_path / "run"), "--format", "bfcl"]) == 2
    assert "give --out DIR" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path / "run"), "--format", "bfcl", "--out", str(tmp_path / "out")]) == 0
    assert "wrote 1 BFCL entries" in capsys.readouterr().out
    assert (tmp_path / "out" / "apigen_simple.json").is_file()


def test_a_date_or_time_may_be_written_as_grounding_reads_it() -> None:
    book = Tool(name="book", description="Book a table.", parameters={
        "type": "object", "required": ["day", "at"],
        "properties": {"day": {"type": "string"}, "at": {"type": "string"}}})
    record = _accepted(1, [book], [("book", {"day": "2024-03-05", "at": "19:30"})])
    truth = ground_truth(record)
    assert truth == [{"book": {"day": ["2024-03-05", "03/05/2024", "March 5, 2024"], "at": ["19:30", "7:30 PM"]}}]
    function = [bfcl_function(book)]
    for day, at in (("March 5, 2024", "7:30 pm"), ("03/05/2024", "19:30")):
        assert check(function, [{"book": {"day": day, "at": at}}], truth, "simple").valid
    assert check(function, [{"book": {"day": "March 6, 2024", "at": "19:30"}}], truth, "simple").error_type \
        == checker.STRING_VALUE
