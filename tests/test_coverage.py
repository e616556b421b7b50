"""Query coverage and the agreement comparison of the semantic stage (pure logic, issue 13)."""

from __future__ import annotations

import pytest

from apigen_local.checks.coverage import UNUSED_QUERY_VALUE, check_coverage, mentions
from apigen_local.checks.semantic import answer_schema, parse_answer, same_functions
from apigen_local.types import FunctionCall, Tool


def call(name: str, **arguments: object) -> FunctionCall:
    return FunctionCall(name=name, arguments=arguments)


def test_mentions_read_percentages_fractions_and_scales() -> None:
    readings = dict(mentions("Invest $1,500 at 7% for 3/4 of a year, or 2.5 million later."))
    assert readings["1,500"] == {1500.0}
    assert readings["7%"] == {7.0, 0.07}
    assert readings["3/4"] == {3.0, 0.75}
    assert readings["2.5 million"] == {2.5, 2_500_000.0}


@pytest.mark.parametrize(
    ("query", "calls", "covered"),
    [
        # every stated number reaches a call, in any of its readings
        ("Grow $1,200 at 5% for 10 years.", [call("ci", principal=1200, rate=0.05, years=10)], True),
        ("Grow $1,200 at 5% for 10 years.", [call("ci", principal=1200, rate=0.05, years=12)], False),
        # a dropped call leaves its numbers unused
        ("Is 17 prime? And is 21?", [call("is_prime", n=17)], False),
        ("Is 17 prime? And is 21?", [call("is_prime", n=17), call("is_prime", n=21)], True),
        # numbers inside string arguments count: dates, free text
        ("How many days from March 5, 2024 to 2024-04-01?",
         [call("days_between", start_date="2024-03-05", end_date="2024-04-01")], True),
        ("Count the words in 'I have 3 apples'.", [call("word_count", text="I have 3 apples")], True),
        # counts of calls or of list elements are not arguments
        ("Check these 3 numbers: 7, 11 and 13.",
         [call("is_prime", n=7), call("is_prime", n=11), call("is_prime", n=13)], True),
        ("The GCD of these 4 numbers: 12, 18, 24, 30.", [call("gcd", numbers=[12, 18, 24, 30])], True),
        # a list cut short leaves its last element unused
        ("The GCD of 12, 18, 24 and 30.", [call("gcd", numbers=[12, 18, 24])], False),
        # 0 and 1 are not required
        ("Add 1 day to 2024-01-31.", [call("add_days", start_date="2024-01-31", days=1)], True),
        ("Add one more day to 2024-01-31.", [call("add_days", start_date="2024-01-31", days=1)], True),
        # signs and units: "back 45 days" is -45, "185 cm" is 1.85 m
        ("Go back 45 days from 2025-06-01.", [call("add_days", start_date="2025-06-01", days=-45)], True),
        ("BMI for 90 kg and 185 cm?", [call("bmi", weight_kg=90, height_m=1.85)], True),
        # quoted text and clock times must reach a call too
        ("Slug 'Hello World' and count words in 'a b c'.", [call("slugify", title="Hello World")], False),
        ("Slug 'Hello World' and count words in 'a b c'.",
         [call("slugify", title="Hello World"), call("word_count", text="a b c")], True),
        ("Meet at 2pm on 2025-07-14.", [call("meet", date="2025-07-14", start_time="14:00")], True),
        ("Meet at 2pm on 2025-07-14.", [call("meet", date="2025-07-14")], False),
        # a date written with digits is one mention, used in any format; the stated today is context
        ("A play next Monday 2023.10.2 in Chicago?", [call("events", city="Chicago", date="2023-10-02")], True),
        ("A play next Monday 2023.10.2 in Chicago?", [call("events", city="Chicago", date="2023-10-03")], False),
        ("A house from 05/10/2023 to 05/15/2023", [call("houses", where="New York")], False),
        ("Weather in Oslo tomorrow? today is 2023.10.1", [call("weather", city="Oslo", date="2023-10-02")], True),
        ("Alameda on the upcoming Wednesday, today is Monday April 25th 2023?",
         [call("weather", city="Alameda", date="2023-04-27")], True),
        # a list of strings is the whole enumeration around it: "and X" after its last item is left out
        ("Sort Alan Turing, Ada Lovelace, and Grace Hopper.", [call("sort", names=["Alan Turing", "Ada Lovelace"])],
         False),
        ("Sort Alan Turing, Ada Lovelace, and Grace Hopper.",
         [call("sort", names=["Alan Turing", "Ada Lovelace", "Grace Hopper"])], True),
        ("Merge the tags travel, Food and budget with food.",
         [call("merge", first=["travel", "Food"], second=["food"])], False),
        # ", X" with X an item the list holds once is an item stated twice; another X may be another argument
        ("Sort Amy Lee, Bob Ray, Amy Lee.", [call("sort", names=["Amy Lee", "Bob Ray"])], False),
        ("Sort Bob Ray, Amy Lee, descending.", [call("sort", names=["Bob Ray", "Amy Lee"], descending=True)], True),
        # two lists of one call are two enumerations; X of another shape is another argument
        ("Merge the tags travel, Food and photos.", [call("merge", first=["travel", "Food"], second=["photos"])],
         False),
        ("Merge the tags travel and Food with photos.", [call("merge", first=["travel", "Food"], second=["photos"])],
         True),
        ("Merge the tags travel, Food, photos.", [call("merge", first=["travel", "Food"], second=["photos"])], False),
        ("Merge first budget, Food, and second food, photos.",
         [call("merge", first=["budget", "Food"], second=["food", "photos"])], True),
        # items found in different sentences are not one enumeration
        ("Sort Amy Lee. Also, sort Bob Ray, Amy Lee.",
         [call("sort", names=["Amy Lee"]), call("sort", names=["Bob Ray", "Amy Lee"])], True),
        ("Pack for 3 nights with hiking, and 6 nights somewhere mild.", [call("pack", nights=3, activities=["hiking"]),
                                                                        call("pack", nights=6)], True),
    ],
)
def test_coverage(query: str, calls: list[FunctionCall], covered: bool) -> None:
    result = check_coverage(query, calls)
    assert result.passed is covered
    if not covered:
        assert result.reason == UNUSED_QUERY_VALUE and "no call uses it" in result.detail


def test_agreement_compares_the_functions_called_not_counts_or_order() -> None:
    row = [call("a", x=1), call("b", y=2), call("a", x=3)]
    assert same_functions(row, [call("b"), call("a", x=9)])
    assert not same_functions(row, [call("a"), call("a")])  # b is missing
    assert not same_functions(row, [call("a"), call("b"), call("c")])


def test_answer_schema_and_parse() -> None:
    tools = [Tool(name="is_prime", description="d", parameters={
        "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})]
    schema = answer_schema(tools)
    assert schema["properties"]["calls"]["items"]["properties"]["name"] == {"const": "is_prime"}
    assert parse_answer('{"calls": [{"name": "is_prime", "arguments": {"n": 7}}]}') == [call("is_prime", n=7)]
    assert parse_answer('{"calls": [{"arguments": {}}]}') is None
    assert parse_answer("not json") is None
