"""Argument grounding rules (pure logic, issue 13)."""

from __future__ import annotations

import pytest

from apigen_local.checks.grounding import (
    CUT_VALUE,
    REGROUPED_VALUE,
    REUSED_VALUE,
    UNGROUNDED_ARGUMENT,
    check_grounding,
    normalise_text,
    query_dates,
    query_numbers,
    value_grounded,
)
from apigen_local.types import FunctionCall, Tool


@pytest.mark.parametrize(
    ("query", "value", "grounded"),
    [
        ("Add 1,200 and 35.", 1200, True),
        ("Add 1,200 and 35.", 1300, False),
        ("Convert 5km to miles.", 5, True),
        ("What is twenty five squared?", 25, True),
        ("Split a dozen eggs among three people.", 12, True),
        ("Split a dozen eggs among three people.", 3, True),
        ("Split a dozen eggs among three people.", 4, False),
        ("Apply a 60% discount to 80 dollars.", 0.6, True),
        ("Apply a 60% discount to 80 dollars.", 60, True),
        ("Apply a 60% discount to 80 dollars.", 0.5, False),
        ("Take 3/4 of 200.", 0.75, True),
        ("Two thousand three hundred people came.", 2300, True),
        ("A ball starts at rest.", 0, True),
        ("Compounded quarterly for 10 years.", 4, True),
        ("Paid semi-annually.", 2, True),
        # scales, units of measure and signs
        ("Invest 10k for a year.", 10_000, True),
        ("Park half a million at 2.5%.", 500_000, True),
        ("Park half a million at 2.5%.", 5_000_000, False),
        ("I am 185 cm tall.", 1.85, True),
        ("It takes an hour and a half.", 90, True),
        ("It takes half a minute.", 30, True),
        ("A week after Monday.", 7, True),
        ("A fortnight before the launch.", -14, True),
        ("Go back 45 days.", -45, True),
        ("Go back 45 days.", -44, False),
        ("Encode it with ROT13.", 13, True),
        ("Gravity is 9.8 m/s^2.", 2, False),
    ],
)
def test_numbers(query: str, value: float, grounded: bool) -> None:
    assert value_grounded(value, query) is grounded


def test_query_numbers_reads_words_and_percent_words() -> None:
    assert {45.0, 0.45} <= query_numbers("forty-five percent of it")


@pytest.mark.parametrize(
    ("query", "value", "grounded"),
    [
        ('Reverse the word "Hello, World!"', "hello world", True),
        ("Greet  MARIA   lopez", "Maria Lopez", True),
        ("Greet Maria", "Mario", False),
        ("Count words in: the cat sat", "the cat sat", True),
        ("Count words in: the cat sat", "the dog sat", False),
        ("Split on commas", ",", True),
        ("Join with underscores", "_", True),  # no letter or digit: left to the semantic stage
        ("Round 12.5", "12.5", True),
        ("I bought 3 notebooks and 2 boxes.", "notebook", True),
        ("I bought 3 notebooks and 2 boxes.", "box", True),
        ("I bought 3 notebooks and 2 boxes.", "pen", False),
        ("Book it at 2:30 pm.", "14:30", True),
        ("Book it at 2pm.", "14:00", True),
        ("Book it at 2pm.", "02:00", False),
        ("Book it at 2pm.", "14:00:00", True),
        ("a haircut at 2 in the afternoon", "14:00", True),
        ("a haircut at 2 in the afternoon", "02:00", False),
        ("a table at 8 in the evening", "20:00", True),
        ("pick it up at 10 in the morning", "10:00", True),
        ("a table for 4 in the evening", "16:00", False),  # a party of four, not a time
        ("by 12 at night", "00:00", True),
    ],
)
def test_text(query: str, value: str, grounded: bool) -> None:
    assert value_grounded(value, query) is grounded


def test_normalise_text() -> None:
    assert normalise_text("  Caf\u00e9\u2019s  \"Best\"-Menu! ") == "cafe s best menu"


@pytest.mark.parametrize(
    ("query", "value", "grounded"),
    [
        ("How many days from 2024-03-05 to 2024-04-01?", "2024-03-05", True),
        ("How many days until March 5, 2024?", "2024-03-05", True),
        ("Is 5th of March 2024 a weekend?", "2024-03-05", True),
        ("Is 05/03/2024 a weekend?", "2024-03-05", True),
        ("Is 05/03/2024 a weekend?", "2024-05-03", True),  # day/month order is ambiguous
        ("Is March 5, 2024 a weekend?", "2024-03-06", False),
        ("How many weekdays in February 2024?", "2024-02-01", True),
        ("How many weekdays in February 2024?", "2024-02-29", True),
        ("How many weekdays in February 2024?", "2024-02-28", False),
    ],
)
def test_dates(query: str, value: str, grounded: bool) -> None:
    assert value_grounded(value, query) is grounded


def test_query_dates_ignores_unknown_month_words() -> None:
    assert query_dates("Meet on Monday 5, 2024") == set()


def test_lists_and_objects_check_each_element() -> None:
    query = "Sort 7, 3 and 9 for user Ana aged 30."
    assert value_grounded([7, 3, 9], query)
    assert not value_grounded([7, 3, 8], query)
    assert value_grounded({"name": "Ana", "age": 30}, query)
    assert not value_grounded({"name": "Ana", "age": 31}, query)


def test_values_the_text_cannot_judge_pass() -> None:
    query = "Sort the list 4, 2."
    assert value_grounded(True, query)
    assert value_grounded(10, query, {"type": "integer", "default": 10})
    assert value_grounded("ascending", query, {"type": "string", "enum": ["ascending"]})  # the only choice
    assert not value_grounded(10, query, {"type": "integer", "default": 5})


@pytest.mark.parametrize(("value", "query"), [
    ("descending", "Sort 4, 2 in descending order."),
    ("km", "How many feet are in 5 kilometres?"),
    ("ft", "How many feet are in 5 kilometres?"),
    ("fahrenheit", "Convert 20 °F to kelvin."),
    ("kelvin", "Convert 20 °F to kelvin."),
    ("single_line", "Write the address on a single line."),
    ("mi", "How far is 3 miles in metres?"),
    ("kelvin", "Room temperature is about 293.15 K. What is that in Fahrenheit?"),
    ("in", "The door is 30 in wide."),
    ("single_line", "One-line version of this address please."),
])
def test_an_allowed_value_the_query_names_is_grounded(value: str, query: str) -> None:
    schema = {"type": "string", "enum": ["ascending", "descending", "km", "ft", "mi", "m", "in", "fahrenheit",
                                         "kelvin", "celsius", "single_line", "multi_line"]}
    assert value_grounded(value, query, schema)


@pytest.mark.parametrize(("value", "query"), [
    ("descending", "Sort the list 4, 2."),
    ("celsius", "Add 310 to the end of today's date."),
    ("in", "How many feet are in 5 kilometres?"),
    ("m", "I'm 30 and my friend is 40."),
    ("multi_line", "Write the address on a single line."),
])
def test_an_allowed_value_the_query_does_not_name_is_not(value: str, query: str) -> None:
    """Drawn calls hold allowed values the request never mentions (issue 38)."""
    schema = {"type": "string", "enum": ["ascending", "descending", "m", "in", "celsius", "single_line",
                                         "multi_line"], "default": "ascending"}
    assert not value_grounded(value, query, schema)


def test_check_grounding_names_call_argument_and_value() -> None:
    tool = Tool(
        name="power",
        description="x to the power n",
        parameters={"type": "object", "properties": {"x": {"type": "number"}, "n": {"type": "integer"}}},
    )
    ok = check_grounding("What is 3 to the power 4?", [FunctionCall(name="power", arguments={"x": 3, "n": 4})], [tool])
    assert ok.passed
    bad = check_grounding("What is 3 to the power 4?", [FunctionCall(name="power", arguments={"x": 3, "n": 5})], [tool])
    assert not bad.passed
    assert bad.reason == UNGROUNDED_ARGUMENT
    assert "power" in bad.detail and "'n'" in bad.detail and "5" in bad.detail


SLUG = Tool(name="slugify", description="Turns a title into a URL slug.",
            parameters={"type": "object", "properties": {"title": {"type": "string"}, "tags": {"type": "array"}}})


def test_a_string_cut_at_the_bound_is_rejected_unless_the_query_states_it_whole() -> None:
    title = "Ten things I learned about running a marathon in the rain"
    cut = title[:16]  # "Ten things I lea": what a 16-character bound leaves
    query = f"Make a slug for '{title}'."
    at_word = "Ten things I"  # cut at a word boundary: plain grounding keeps it
    assert check_grounding(query, [FunctionCall(name="slugify", arguments={"title": at_word})], [SLUG]).passed
    assert check_grounding(query, [FunctionCall(name="slugify", arguments={"title": at_word})], [SLUG],
                           string_bound=len(at_word)).reason == CUT_VALUE
    assert check_grounding(query, [FunctionCall(name="slugify", arguments={"tags": [cut]})], [SLUG],
                           string_bound=16).reason == CUT_VALUE
    short = "Hello World, 123"  # stated whole, exactly at the bound
    assert check_grounding(f"Slugify '{short}' please", [FunctionCall(name="slugify", arguments={"title": short})],
                           [SLUG], string_bound=16).passed
    assert check_grounding(query, [FunctionCall(name="slugify", arguments={"title": title})], [SLUG],
                           string_bound=None).passed


PERM = Tool(name="permutation_count", description="Counts ordered arrangements of k out of n items.",
            parameters={"type": "object", "properties": {"n": {"type": "integer"}, "k": {"type": "integer"}}})
@pytest.mark.parametrize(("query", "arguments", "passed"), [
    ("Find the permutations of 28, with decreasing values.", {"n": 28, "k": 28}, False),  # real row, issue 29
    ("How many ways can 5 of 5 runners finish?", {"n": 5, "k": 5}, True),  # stated twice
    ("In how many orders can 10 people sit on 10 chairs?", {"n": 10.0, "k": 10}, True),
    ("How many ways to pick 1,000 of 1000 things in order?", {"n": 1000, "k": 1000}, True),
    ("Count the ordered arrangements of the letters", {"n": 1, "k": 1}, False),  # 0/1 pass-on, reused
])
def test_one_value_in_several_arguments_needs_as_many_mentions(query: str, arguments: dict, passed: bool) -> None:
    result = check_grounding(query, [FunctionCall(name="permutation_count", arguments=arguments)], [PERM])
    assert result.passed is passed
    if not passed:
        assert result.reason == REUSED_VALUE and "n, k" in result.detail


def test_reused_text_values_are_compared_after_normalising() -> None:
    days = Tool(name="days_between", description="Days between two dates.",
                parameters={"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}})
    call = FunctionCall(name="days_between", arguments={"a": "2021-01-01", "b": "2021-01-01"})
    assert check_grounding("How many days until 2021-01-01?", [call], [days]).reason == REUSED_VALUE


@pytest.mark.parametrize(("query", "value"), [
    ("What force acts on a charge of 1.6 x 10^-19 C in a field of 300 N/C?", 1.6e-19),
    ("Use Avogadro's number, 6.022\u00d710^23.", 6.022e23),
    ("Scale it by 2.5 * 10^(-3).", 2.5e-3),
    ("The mass is 9.11e-31 kg.", 9.11e-31),
])
def test_scientific_notation_grounds_its_value(query: str, value: float) -> None:
    assert value_grounded(value, query)
    assert not value_grounded(value * 10, query)


DISTANCE = Tool(name="distance_between_points", description="Straight-line distance between two points.",
                parameters={"type": "object", "properties": {"a": {"type": "array", "items": {"type": "number"}},
                                                             "b": {"type": "array", "items": {"type": "number"}}}})


@pytest.mark.parametrize(("query", "arguments", "reason"), [
    # real accepted rows of the default model before issue 29's checks
    ("How do I find the distance between the origin and the point 212?",
     {"a": [212, 212], "b": [212, 212]}, REUSED_VALUE),
    ("How many straight-line distances between the points (2, 2, 1) and (1, 2, 1) will be calculated?",
     {"a": [1, 2], "b": [2, 1]}, REGROUPED_VALUE),
    ("What is the distance between (2, 2, 1) and (1, 2, 1)?", {"a": [2, 2, 1], "b": [1, 2, 1]}, None),
    ("What is the distance between [0, 0] and [3, 4]?", {"a": [0, 0], "b": [3, 4]}, None),
    ("Distance from 3, 4 to 6, 8?", {"a": [3, 4], "b": [6, 8]}, None),  # no brackets: no grouping to check
    ("Distance from (0,0) to (3,4)?", {"a": [0, 0], "b": [3, 4]}, None),  # a hand-written row (issue 13)
    ("How far is the point (3, 4) from the origin?", {"a": [0, 0], "b": [3, 4]}, None),  # examples/seed.jsonl
])
def test_list_values_keep_the_query_grouping_and_count(query: str, arguments: dict, reason: str | None) -> None:
    result = check_grounding(query, [FunctionCall(name="distance_between_points", arguments=arguments)], [DISTANCE])
    assert result.reason == reason


@pytest.mark.parametrize(("query", "value", "grounded"), [
    ("Make a slug of 'My Title' with underscores.", "_", True),
    ("Join the tags travel and food with ' | '.", " | ", True),
    ("List them comma-separated: a, b.", ",", True),
    ("Shorten 'Offline tools keep your data private' and end it with an ellipsis.", "...", True),
    ("Encrypt '}}]}, {' please", "}}]}, {", True),
    # an option the request never mentions is invented, even a short one (issue 38's rows)
    ("Shorten 'Offline tools keep your data private' to 33 characters.", "-", False),
    ("Shorten 'Offline tools keep your data private' to 33 characters.", "_", False),
    ("How many weekdays are there from 2025-02-15 to 2025-03-16?", "-", False),  # a date's dash is not one
    ("How many days are there in 1928?", "***", False),
    ("Encrypt 'Meet me' with a shift of 3.", "}}]}, {", False),  # JSON debris as a text argument
    ("How many days are there in 1928?", "", True),  # the empty string passes on
])
def test_a_string_of_symbols_is_grounded_only_when_written_apart_or_named(query: str, value: str,
                                                                          grounded: bool) -> None:
    assert value_grounded(value, query) is grounded
