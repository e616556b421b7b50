"""Stage 1 format checker: one hand-made failure per reason code, passes, and fuzzing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apigen_local.checks.format import (
    EMPTY_QUERY,
    INVALID_JSON,
    INVALID_TOOLS,
    MISSING_REQUIRED,
    PATTERN_UNCHECKED,
    REASONS,
    TYPE_MISMATCH,
    UNEXPECTED_ARGUMENT,
    UNKNOWN_FUNCTION,
    WRONG_CALL_COUNT,
    check_answers,
    check_generation,
    parse_generation,
)
from apigen_local.tools import load_library
from apigen_local.types import CheckResult, FunctionCall, QueryAnswer, Tool

ROOT = Path(__file__).resolve().parents[1]
TOOLS: list[Tool] = load_library(ROOT / "examples" / "library.py").tools
NESTED = Tool(
    name="book_flight",
    description="Books a flight.",
    parameters={
        "type": "object",
        "properties": {
            "passenger": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name"],
                "additionalProperties": False,
            },
            "seats": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["passenger"],
    },
)
ALL_TOOLS = [*TOOLS, NESTED]
# a backtracking pattern, and a reference outside the schema (tool_specs refuses both when it
# reads a spec; a Tool built directly still reaches the validator)
CODED = Tool(name="lookup", description="Looks a code up.",
             parameters={"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a|a)*$"}},
                         "required": ["code"]})
REMOTE = Tool(name="fetch", description="Fetches.",
              parameters={"type": "object", "properties": {"url": {"$ref": "urn:example:nowhere"}}, "required": []})


def velocity(**arguments: Any) -> dict[str, Any]:
    return {"name": "final_velocity", "arguments": arguments}


GOOD_VELOCITY = velocity(initial_velocity=0, acceleration=9.8, time=10)


def generation(*pairs: dict[str, Any]) -> str:
    return json.dumps({"pairs": list(pairs)})


# ----------------------------------------------------------------------------- passes


def test_good_single_call_passes() -> None:
    assert (
        check_answers("How fast after 10 s at 9.8 m/s²?", [GOOD_VELOCITY], TOOLS)
        == CheckResult.ok()
    )


def test_integers_are_valid_numbers_and_optionals_may_be_left_out_or_null() -> None:
    calls = [
        velocity(initial_velocity=1.5, acceleration=2, time=3),
        {"name": "compound_interest",
         "arguments": {"principal": 100, "annual_rate": 0.05, "years": 2}},
        {"name": "list_statistics", "arguments": {"values": [1, 2.5], "precision": None}},
        {"name": "book_flight", "arguments": {"passenger": {"name": "Ada", "age": 36}}},
    ]  # fmt: skip
    assert check_answers("Several things.", calls, ALL_TOOLS).passed


def test_good_generation_gives_query_answers() -> None:
    raw = generation(
        {"query": "Is 97 prime? And 221?",
         "answers": [{"name": "is_prime", "arguments": {"n": 97}},
                     {"name": "is_prime", "arguments": {"n": 221}}]},
        {"query": "Speed after 10 s from rest at 9.8?", "answers": [GOOD_VELOCITY]},
    )  # fmt: skip
    results = check_generation(raw, TOOLS, min_calls=1, max_calls=2)
    assert [verdict.passed for _, verdict in results] == [True, True]
    first = results[0][0]
    assert isinstance(first, QueryAnswer)
    assert first.query == "Is 97 prime? And 221?"
    assert first.answers == [
        FunctionCall(name="is_prime", arguments={"n": 97}),
        FunctionCall(name="is_prime", arguments={"n": 221}),
    ]


def test_every_seed_row_passes_against_the_library() -> None:
    rows = [
        json.loads(line) for line in (ROOT / "examples" / "seed.jsonl").read_text().splitlines()
    ]
    assert len(rows) >= 18
    assert len({row["id"] for row in rows}) == len(rows)
    counts = set()
    for row in rows:
        assert set(row) == {"id", "query", "answers", "tools"}
        assert isinstance(row["answers"], str) and isinstance(row["tools"], str)
        answers = json.loads(row["answers"])
        offered = {spec["name"] for spec in json.loads(row["tools"])}
        verdict = check_answers(row["query"], answers, TOOLS)
        assert verdict.passed, (row["id"], verdict.detail)
        assert {call["name"] for call in answers} <= offered
        counts.add((len(answers) > 1, len(offered) > 1, len({c["name"] for c in answers}) > 1))
    # simple, multiple (distractors offered), parallel and parallel-multiple rows are all present
    assert {
        (False, False, False),
        (False, True, False),
        (True, False, False),
        (True, True, True),
    } <= counts


# ------------------------------------------------------------------------ one failure per reason


@pytest.mark.parametrize("query", ["", "   \n", None, 42, ["a query"]])
def test_empty_query(query: Any) -> None:
    verdict = check_answers(query, [GOOD_VELOCITY], TOOLS)
    assert (verdict.passed, verdict.reason) == (False, EMPTY_QUERY)


@pytest.mark.parametrize(
    ("answers", "fragment"),
    [
        ("[]", "not a list"),
        ({"name": "final_velocity"}, "not a list"),
        (["final_velocity"], "answers[0] is not a JSON object"),
        ([{"name": "final_velocity"}], "exactly the keys"),
        ([{**GOOD_VELOCITY, "id": 1}], "exactly the keys"),
        ([{"name": 3, "arguments": {}}], '"name" that is not a string'),
        ([GOOD_VELOCITY, {"name": "final_velocity", "arguments": "time=3"}],
         'answers[1] has "arguments" that are not a JSON object'),
    ],
)  # fmt: skip
def test_invalid_answer_shapes(answers: Any, fragment: str) -> None:
    verdict = check_answers("A query.", answers, TOOLS)
    assert verdict.reason == INVALID_JSON
    assert fragment in verdict.detail


@pytest.mark.parametrize(
    "raw",
    ["", "not json at all", "{'pairs': []}", '{"pairs": [', "[]", '{"pairs": {}}', '{"pair": []}',
     '{"pairs": []}', '{"pairs": [{"query": "q", "answers": [{"name": "is_prime", '
     '"arguments": {"n": NaN}}]}]}'],
)  # fmt: skip
def test_unparsable_or_wrongly_shaped_generation(raw: str) -> None:
    results = check_generation(raw, TOOLS)
    assert len(results) == 1
    pair, verdict = results[0]
    assert pair is None
    assert verdict.reason == INVALID_JSON
    assert verdict.detail


def test_pair_that_is_not_an_object_is_invalid_json() -> None:
    results = check_generation(json.dumps({"pairs": ["just text", {"query": "q"}]}), TOOLS)
    assert [(pair, verdict.reason) for pair, verdict in results] == [
        (None, INVALID_JSON),  # not an object
        (None, INVALID_JSON),  # no answers
    ]


def test_parse_generation_returns_the_pairs_or_a_verdict() -> None:
    assert parse_generation('{"pairs": [1, 2]}') == [1, 2]
    assert isinstance(parse_generation('{"pairs": 1}'), CheckResult)


def test_wrong_call_count() -> None:
    too_few = check_answers("A query.", [], TOOLS)
    assert too_few.reason == WRONG_CALL_COUNT
    too_many = check_answers("A query.", [GOOD_VELOCITY] * 3, TOOLS, min_calls=1, max_calls=2)
    assert too_many.reason == WRONG_CALL_COUNT
    assert "3 call(s)" in too_many.detail and "1 to 2" in too_many.detail
    assert check_answers("A query.", [GOOD_VELOCITY] * 2, TOOLS, min_calls=2, max_calls=2).passed


def test_unknown_function() -> None:
    calls = [GOOD_VELOCITY, {"name": "teleport", "arguments": {}}]
    verdict = check_answers("Go fast, then teleport.", calls, TOOLS)
    assert verdict.reason == UNKNOWN_FUNCTION
    assert "answers[1]" in verdict.detail and "'teleport'" in verdict.detail


def test_function_not_offered_for_this_row_is_unknown() -> None:
    only_primes = [tool for tool in TOOLS if tool.name == "is_prime"]
    assert check_answers("Speed?", [GOOD_VELOCITY], only_primes).reason == UNKNOWN_FUNCTION


def test_missing_required() -> None:
    verdict = check_answers("Speed?", [velocity(initial_velocity=0, acceleration=9.8)], TOOLS)
    assert verdict.reason == MISSING_REQUIRED
    assert verdict.detail == "answers[0] calls final_velocity without the required argument 'time'."


def test_missing_required_inside_an_object_argument() -> None:
    call = {"name": "book_flight", "arguments": {"passenger": {"age": 3}}}
    verdict = check_answers("Book it.", [call], [NESTED])
    assert verdict.reason == MISSING_REQUIRED
    assert "'passenger'" in verdict.detail and "'name'" in verdict.detail


def test_unexpected_argument_even_without_additional_properties_false() -> None:
    assert "additionalProperties" not in TOOLS[0].parameters
    call = velocity(initial_velocity=0, acceleration=9.8, time=10, mass=3)
    verdict = check_answers("Speed?", [call], TOOLS)
    assert verdict.reason == UNEXPECTED_ARGUMENT
    assert "'mass'" in verdict.detail and "final_velocity" in verdict.detail


def test_misspelt_argument_is_reported_as_unexpected() -> None:
    verdict = check_answers(
        "Speed?", [velocity(initial_velocity=0, acceleration=9.8, tme=10)], TOOLS
    )
    assert verdict.reason == UNEXPECTED_ARGUMENT


def test_unexpected_key_inside_an_object_argument() -> None:
    call = {"name": "book_flight", "arguments": {"passenger": {"name": "Ada", "vip": True}}}
    assert check_answers("Book it.", [call], [NESTED]).reason == UNEXPECTED_ARGUMENT


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (velocity(initial_velocity=0, acceleration=9.8, time="10"), "'time'"),
        (velocity(initial_velocity=True, acceleration=9.8, time=10), "'initial_velocity'"),
        ({"name": "is_prime", "arguments": {"n": True}}, "'n'"),
        ({"name": "is_prime", "arguments": {"n": 7.5}}, "'n'"),
        ({"name": "convert_length", "arguments": {"value": 1, "from_unit": "furlong",
                                                  "to_unit": "m"}}, "'from_unit'"),
        ({"name": "list_statistics", "arguments": {"values": [1, "two"]}}, "'values'"),
        ({"name": "list_statistics", "arguments": {"values": [1], "precision": "2"}},
         "'precision'"),
        ({"name": "distance_between_points", "arguments": {"a": [0, "0"], "b": [1, 1]}}, "'a'"),
        ({"name": "book_flight", "arguments": {"passenger": "Ada"}}, "'passenger'"),
    ],
)  # fmt: skip
def test_type_mismatch(call: dict[str, Any], argument: str) -> None:
    verdict = check_answers("A query.", [call], ALL_TOOLS)
    assert verdict.reason == TYPE_MISMATCH
    assert argument in verdict.detail
    assert verdict.detail.startswith(f"answers[0] calls {call['name']}")


def test_each_reason_code_is_produced_by_check_generation() -> None:
    good = {"query": "Speed?", "answers": [GOOD_VELOCITY]}
    bad_pairs = {
        EMPTY_QUERY: {"query": "", "answers": [GOOD_VELOCITY]},
        INVALID_JSON: {"query": "Speed?", "answers": "final_velocity(0, 9.8, 10)"},
        WRONG_CALL_COUNT: {"query": "Speed?", "answers": []},
        UNKNOWN_FUNCTION: {"query": "Speed?", "answers": [{"name": "speed", "arguments": {}}]},
        MISSING_REQUIRED: {"query": "Speed?", "answers": [velocity(time=1, acceleration=2)]},
        UNEXPECTED_ARGUMENT: {"query": "Speed?", "answers": [{**GOOD_VELOCITY,
                              "arguments": {**GOOD_VELOCITY["arguments"], "unit": "m/s"}}]},
        TYPE_MISMATCH: {"query": "Speed?", "answers": [velocity(initial_velocity=0,
                        acceleration="9.8", time=10)]},
        INVALID_TOOLS: {"query": "Fetch it", "answers": [{"name": "fetch", "arguments": {"url": "x"}}]},
        PATTERN_UNCHECKED: {"query": "Look up aaab", "answers": [{"name": "lookup",
                            "arguments": {"code": "a" * 40 + "b"}}]},
    }  # fmt: skip
    assert set(bad_pairs) == set(REASONS)
    results = check_generation(generation(good, *bad_pairs.values()), [*TOOLS, CODED, REMOTE])
    assert results[0][1].passed
    assert [verdict.reason for _, verdict in results[1:]] == list(bad_pairs)
    assert all(pair is None and verdict.detail for pair, verdict in results[1:])


# ----------------------------------------------------------------------------- never raises

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)
ARGUMENT_NAMES = sorted({name for tool in ALL_TOOLS for name in tool.parameters["properties"]})
CALLS = st.fixed_dictionaries(
    {
        "name": st.sampled_from([tool.name for tool in ALL_TOOLS] + ["nope"]),
        "arguments": st.dictionaries(
            st.sampled_from(ARGUMENT_NAMES) | st.text(max_size=5), JSON_VALUES, max_size=4
        ),
    }
)
ANSWERS = st.lists(CALLS | JSON_VALUES, max_size=4) | JSON_VALUES


def assert_verdict(verdict: CheckResult) -> None:
    assert isinstance(verdict, CheckResult)
    if not verdict.passed:
        assert verdict.reason in REASONS
        assert verdict.detail


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=JSON_VALUES, answers=ANSWERS, max_calls=st.none() | st.integers(0, 5))
def test_check_answers_never_raises(query: Any, answers: Any, max_calls: int | None) -> None:
    assert_verdict(check_answers(query, answers, ALL_TOOLS, max_calls=max_calls))


@settings(max_examples=300, deadline=None)
@given(raw=st.text())
def test_check_generation_never_raises_on_text(raw: str) -> None:
    results = check_generation(raw, TOOLS)
    assert results
    for pair, verdict in results:
        assert_verdict(verdict)
        assert (pair is not None) == verdict.passed


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=JSON_VALUES | st.fixed_dictionaries({"pairs": st.lists(
        st.fixed_dictionaries({"query": JSON_VALUES | st.text(), "answers": ANSWERS}) | JSON_VALUES,
        max_size=3)})
)  # fmt: skip
def test_check_generation_never_raises_on_json(value: Any) -> None:
    results = check_generation(json.dumps(value), ALL_TOOLS, min_calls=0, max_calls=3)
    assert results
    for pair, verdict in results:
        assert_verdict(verdict)
        assert (pair is not None) == verdict.passed


def test_deeply_nested_output_still_gets_a_verdict() -> None:
    raw = '{"pairs": ' + "[" * 100_000 + "]" * 100_000 + "}"
    [(pair, verdict)] = check_generation(raw, TOOLS)
    assert pair is None and verdict.reason == INVALID_JSON
