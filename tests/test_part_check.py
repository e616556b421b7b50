"""Calls-first rows of several calls: each call must be stated by the request written for it (issue 38)."""

from __future__ import annotations

from pathlib import Path

import pytest

from apigen_local.checks.part import PART_NOT_STATED, check_parts
from apigen_local.generation.generator import join_requests, split_requests
from apigen_local.run.backends.memory import InMemory
from apigen_local.run.files import read_records
from apigen_local.run.labels import LabelledRow, stage_outcomes
from apigen_local.tools import load_library
from apigen_local.types import FunctionCall, Record

from .conftest import EXAMPLE_LIBRARY, empty_gguf
from .fakes import FakeGenerate, FakeWorker

LIBRARY = load_library(EXAMPLE_LIBRARY).by_name
TOOLS = [LIBRARY["getdivision"], LIBRARY["is_prime"]]
CALLS = [FunctionCall(name="getdivision", arguments={"dividend": 144, "divisor": 12}),
         FunctionCall(name="is_prime", arguments={"n": 97})]


def test_the_requests_of_a_row_split_back_into_one_per_call() -> None:
    parts = ["Divide 144 by 12.", "Is 97 prime?", "What is the quotient of 9 and 3?"]
    joined = join_requests(parts)
    assert split_requests(joined, 3) == ["Divide 144 by 12.", "is 97 prime?", "what is the quotient of 9 and 3?"]
    assert split_requests(joined, 2) is None  # a request that says "Also, " itself: not split


@pytest.mark.parametrize(("query", "reason"), [
    ("Divide 144 by 12. Also, is 97 prime?", None),
    # each value is stated in the row, but 12 only in the other call's request
    ("Divide 144 by 97. Also, is 12 prime?", PART_NOT_STATED),
    # the row holds a question, the first call's own request is a statement
    ("The quotient of 144 and 12 is 12. Also, is 97 prime?", PART_NOT_STATED),
    # a request that does not split into one part per call is left to the row's own checks
    ("Divide 144 by 12, and is 97 prime?", None),
])
def test_each_call_is_checked_against_its_own_request(query: str, reason: str | None) -> None:
    result = check_parts(query, CALLS, TOOLS)
    assert result.reason == reason
    if reason:
        assert result.detail.startswith("call ")


def _labelled(mode: str, query: str) -> LabelledRow:
    return LabelledRow(row_id="r", mode=mode, tools=TOOLS, query=query, answers=CALLS, label="wrong",
                       execution={"passed": True, "reason": None})


def test_labelled_rows_are_grounded_part_by_part_only_when_written_calls_first() -> None:
    query = "Divide 144 by 97. Also, is 12 prime?"
    stage, outcome = stage_outcomes(_labelled("calls_first", query))[-1]
    assert (stage, outcome.reason) == ("grounding", PART_NOT_STATED)
    assert stage_outcomes(_labelled("query_first", query))[-1][0] != "grounding"


class CrossedWorker(FakeWorker):
    """Every row: two calls, each value stated only in the other call's request."""

    def row(self, i: int) -> Record:
        record = super().row(i)
        if record.query is not None:
            record.query = f"Divide {144 + i} by 97. Also, is 12 prime?"
            record.answers = [FunctionCall(name="getdivision", arguments={"dividend": 144 + i, "divisor": 12}),
                              FunctionCall(name="is_prime", arguments={"n": 97})]
            record.tools = TOOLS
        return record


@pytest.mark.parametrize("mode", ["calls_first", "query_first"])
def test_a_generate_run_grounds_each_call_in_its_own_request_in_calls_first_mode(tmp_path: Path, mode: str) -> None:
    fake_model = tmp_path / "fake.gguf"
    empty_gguf(fake_model, padding=40)  # the generate job only resolves the model's file
    backend = InMemory(CrossedWorker(LIBRARY["getdivision"]))
    FakeGenerate(tmp_path / "out", fake_model, backend, rows=6, batch_rows=3, mode=mode).run()
    grounded = [r.grounding_check for r in read_records(tmp_path / "out" / "records.jsonl")
                if r.grounding_check is not None]
    assert grounded
    if mode == "calls_first":
        assert all(check.reason == PART_NOT_STATED for check in grounded)
    else:
        assert all(check.passed for check in grounded)


PLANNER = load_library(Path(EXAMPLE_LIBRARY).with_name("planner_library.py")).by_name


@pytest.mark.parametrize(("query", "call", "reason"), [
    # flag: an optional boolean set away from its default is named by a word of its own
    ("Merge the tags travel and Food with photos.",
     FunctionCall(name="merge_tags", arguments={"first": ["travel", "Food"], "second": ["photos"], "lowercase": False}),
     "ungrounded_argument"),
    ("Merge the tags travel and Food with photos, keeping their case.",
     FunctionCall(name="merge_tags", arguments={"first": ["travel", "Food"], "second": ["photos"], "lowercase": False}),
     None),
    ("Sort Ada Lovelace and Alan Turing.",
     FunctionCall(name="sort_names", arguments={"names": ["Ada Lovelace", "Alan Turing"], "descending": True}),
     "ungrounded_argument"),
    ("Sort Ada Lovelace and Alan Turing, descending.",
     FunctionCall(name="sort_names", arguments={"names": ["Ada Lovelace", "Alan Turing"], "descending": True}), None),
    # choice: the one allowed value a request names is the one the call passes
    ("Sort Ada Lovelace and Alan Turing by first name.",
     FunctionCall(name="sort_names", arguments={"names": ["Ada Lovelace", "Alan Turing"]}), "unused_query_value"),
    ("Sort Ada Lovelace and Alan Turing by first name.",
     FunctionCall(name="sort_names", arguments={"names": ["Ada Lovelace", "Alan Turing"], "by": "first"}), None),
    ("Sort Ada Lovelace and Alan Turing by first or last name.",  # two named: the description echoed
     FunctionCall(name="sort_names", arguments={"names": ["Ada Lovelace", "Alan Turing"]}), None),
])
def test_a_drawn_option_is_asked_for_and_an_asked_option_is_drawn(query: str, call: FunctionCall,
                                                                  reason: str | None) -> None:
    assert check_parts(query, [call], [PLANNER[call.name]]).reason == reason


@pytest.mark.parametrize(("query", "call", "reason"), [
    ("How many ways can you divide 220 by 10?",
     FunctionCall(name="getdivision", arguments={"dividend": 220, "divisor": 10}), "wrong_function"),
    ("In how many different ways can 3 of the 10 runners finish first, second and third?",
     FunctionCall(name="permutation_count", arguments={"n": 10, "k": 3}), None),
    ("Divide 220 by 10, " + "please do it, " * 20, FunctionCall(name="getdivision", arguments={"dividend": 220,
                                                                                           "divisor": 10}),
     "not_a_request"),
])
def test_how_many_ways_needs_arrangements_and_a_request_cut_at_its_bound_is_not_one(
        query: str, call: FunctionCall, reason: str | None) -> None:
    assert check_parts(query, [call], [LIBRARY[call.name]]).reason == reason
