"""`verify` with no library: each row's own tools, nothing executed (and said so), and grounding
that keeps what people imply (``--grounding implied``) but still rejects what nothing explains."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apigen_local import cli, verify_dataset
from apigen_local.checks import implied
from apigen_local.checks.grounding import check_grounding, value_evidence
from apigen_local.errors import ConfigError
from apigen_local.run.files import read_records
from apigen_local.run.report import write_report
from apigen_local.run.rows import read_rows
from apigen_local.types import FunctionCall, Tool

WEATHER = {"name": "get_weather", "description": "Current weather of a city.",
           "parameters": {"type": "dict", "required": ["city"],
                          "properties": {"city": {"type": "string", "description": "City, State"},
                                         "unit": {"type": "string", "enum": ["celsius", "fahrenheit"],
                                                  "default": "celsius"}}}}


def _xlam(row_id: int, query: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    tools = [{"name": "get_weather", "description": "Current weather of a city.",
              "parameters": {"city": {"type": "str", "description": "City, State"},
                             "unit": {"type": "str, optional", "description": "celsius or fahrenheit"}}}]
    return {"id": row_id, "query": query, "answers": json.dumps(calls), "tools": json.dumps(tools)}


def _chat(row_id: int, query: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    tool_calls = [{"id": f"c{i}", "type": "function",
                   "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                  for i, c in enumerate(calls)]
    return {"id": row_id, "messages": [{"role": "user", "content": query},
                                       {"role": "assistant", "content": None, "tool_calls": tool_calls}],
            "tools": [{"type": "function", "function": {**WEATHER, "parameters": {
                **WEATHER["parameters"], "type": "object"}}}]}


def _bfcl(row_id: str, query: str, truth: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": row_id, "question": [[{"role": "user", "content": query}]], "function": [WEATHER],
            "ground_truth": truth}


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _call(city: str, **more: Any) -> dict[str, Any]:
    return {"name": "get_weather", "arguments": {"city": city, **more}}


# --------------------------------------------------------------------------- the three forms


def test_xlam_openai_and_bfcl_rows_are_verified_against_their_own_tools(tmp_path: Path) -> None:
    rows = _write(tmp_path / "rows.jsonl", [
        _xlam(1, "What's the weather in Boston?", [_call("Boston, MA")]),        # implied qualifier
        _xlam(2, "What's the weather in Boston?", [_call("Denver, CO")]),        # invented
        _chat(3, "What is the weather in Paris in fahrenheit?", [_call("Paris", unit="fahrenheit")]),
        _chat(4, "Weather in Paris", [_call("Paris", unit="kelvin")]),          # outside the enum
        _bfcl("simple_0", "How warm is it in Tel Aviv?",
              [{"get_weather": {"city": ["Tel Aviv, Israel", "Tel Aviv"], "unit": ["", "celsius"]}}]),
        _xlam(6, "What's the weather in Oslo?", [{"name": "get_forecast", "arguments": {"city": "Oslo"}}]),
    ])
    result = verify_dataset(rows, out_dir=tmp_path / "out")
    records = {r.source_id: r for r in read_records(result.records_path)}
    assert {key for key, r in records.items() if r.accepted} == {1, 3, "simple_0"}
    assert records[2].rejection == ("grounding", "ungrounded_argument")
    assert records[4].rejection == ("format", "type_mismatch")
    assert records[6].rejection == ("format", "unknown_function")  # a tool the row does not define
    assert records["simple_0"].answers[0].arguments == {"city": "Tel Aviv, Israel"}  # "" allowed: left out
    assert "get_weather.city = 'Boston, MA' (implied:place_qualifier)" in records[1].grounding_check.detail
    # nothing ran, and every record and the stats say so: not executed, never passed
    assert all(r.execution_check is None and r.not_run == ["execution"] for r in records.values())
    assert result.stats.not_run == {"execution": 6} and result.stats.stages["execution"].total == 0
    page = write_report(result.out_dir).read_text()
    assert 'data-not-run="6"' in page and "not executed: no library" in page


def test_strict_grounding_rejects_what_implied_grounding_keeps(tmp_path: Path) -> None:
    rows = _write(tmp_path / "rows.jsonl", [_xlam(1, "Weather in Boston?", [_call("Boston, MA")])])
    strict = verify_dataset(rows, out_dir=tmp_path / "strict", grounding_mode="strict")
    assert strict.stats.accepted == 0 and strict.stats.reasons == {"grounding/ungrounded_argument": 1}
    assert verify_dataset(rows, out_dir=tmp_path / "implied").stats.accepted == 1  # implied: verify's default


def test_an_unreadable_tool_spec_is_its_own_reason(tmp_path: Path) -> None:
    broken = {"id": 1, "query": "Weather in Oslo?", "answers": json.dumps([_call("Oslo")]),
              "tools": json.dumps([{"name": "get_weather", "description": "d",
                                    "parameters": {"city": {"type": "List[[int"}}}])}
    result = verify_dataset(_write(tmp_path / "rows.jsonl", [broken]), out_dir=tmp_path / "out")
    record = next(read_records(result.records_path))
    assert record.rejection == ("format", "invalid_tools") and "tools[0] cannot be read" in record.format_check.detail


def test_the_coverage_judge_runs_without_execution(tmp_path: Path) -> None:
    rows = _write(tmp_path / "rows.jsonl", [
        _xlam(1, "What is the weather in Paris for the next 3 days?", [_call("Paris")]),  # 3 reaches no call
        _xlam(2, "Weather in Paris?", [_call("Paris")]),
    ])
    result = verify_dataset(rows, out_dir=tmp_path / "out", stages="format,grounding,semantic")
    records = {r.source_id: r for r in read_records(result.records_path)}
    assert records[1].rejection == ("semantic", "unused_query_value") and records[2].accepted
    assert records[2].semantic_check is not None and records[2].execution_check is None


def test_execution_without_a_library_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    rows = _write(tmp_path / "rows.jsonl", [_xlam(1, "Weather in Oslo?", [_call("Oslo")])])
    with pytest.raises(ConfigError, match="execution stage runs the functions: give --library"):
        verify_dataset(rows, out_dir=tmp_path / "out", stages="format,execution")
    assert cli.main(["verify", str(rows), "--out", str(tmp_path / "cli"), "--grounding", "strict", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "execution  not run on 1 rows (not executed: no library)" in out and "accepted: 1" in out


def test_a_request_in_another_language_is_verified_and_says_what_was_not_judged(tmp_path: Path) -> None:
    rows = _write(tmp_path / "rows.jsonl", [
        _xlam(1, "北京后天的天气如何", [_call("北京")]),   # "how is the weather in Beijing the day after tomorrow?"
        _xlam(2, "北京后天的天气如何", [_call("上海")]),   # Shanghai: not in the request
        _xlam(3, "What's the weather in Oslo?", [_call("Oslo")]),
    ])
    records = {r.source_id: r for r in read_records(verify_dataset(rows, out_dir=tmp_path / "out").records_path)}
    assert records[1].accepted and records[1].semantic_check.detail == "not judged: the query is not in English"
    assert records[2].rejection == ("grounding", "ungrounded_argument")
    assert records[3].accepted and records[3].semantic_check.detail == ""


def test_bfcl_ground_truth_takes_the_first_allowed_value_at_every_depth(tmp_path: Path) -> None:
    row = _bfcl("live_1", "Cool the room to 20 degrees", [{"set_ac": {
        "body": [{"mode": ["COOL", "cool"], "temp": [20], "timer": ["", 60]}], "power": [True], "note": [""]}}])
    parsed = read_rows(_write(tmp_path / "rows.jsonl", [row]))[0]
    assert parsed.query == "Cool the room to 20 degrees" and parsed.tool_names == ["get_weather"]
    assert parsed.answers == [{"name": "set_ac", "arguments": {"body": {"mode": "COOL", "temp": 20}, "power": True}}]


def test_bfcl_keeps_a_required_parameter_that_may_also_be_empty(tmp_path: Path) -> None:
    """BFCL writes ``[True, ""]`` for a required flag too (simple_python_17's ``formatted``): the
    row's own spec says it is required, so it takes its first stated value instead of being dropped."""
    spec = {"name": "set_ac", "description": "Set the air conditioner", "parameters": {
        "type": "dict", "required": ["body", "formatted"], "properties": {
            "formatted": {"type": "boolean"}, "note": {"type": "string"},
            "body": {"type": "array", "items": {"type": "dict", "required": ["timer"], "properties": {
                "mode": {"type": "string"}, "timer": {"type": "integer"}}}}}}}
    row = {"id": "simple_17", "question": [[{"role": "user", "content": "Cool for 60 minutes"}]],
           "function": [spec], "ground_truth": [{"set_ac": {
               "body": [[{"mode": ["", "cool"], "timer": ["", 60]}]], "formatted": [True, ""], "note": ["", "hi"]}}]}
    parsed = read_rows(_write(tmp_path / "rows.jsonl", [row]))[0]
    assert parsed.answers == [{"name": "set_ac", "arguments": {"body": [{"timer": 60}], "formatted": True}}]
    result = verify_dataset(tmp_path / "rows.jsonl", out_dir=tmp_path / "out", stages=["format"])
    assert result.stats.accepted == 1


# --------------------------------------------------------------------------- the implied rules


@pytest.mark.parametrize(("value", "query", "rule"), [
    ("San Francisco, CA", "Find a restaurant in San Francisco?", implied.PLACE_QUALIFIER),
    ("Tel Aviv, Israel", "weather in Tel Aviv", implied.PLACE_QUALIFIER),
    ("London, UK", "a hotel in London", implied.PLACE_QUALIFIER),
    ("New York, NY", "get the weather of nyc", implied.PLACE_NICKNAME),
    ("Chicago, IL", "a house in Chi-town", implied.PLACE_NICKNAME),
    ("CA", "I live in California", implied.REGION_CODE),
    ("GB", "shipping to the United Kingdom", implied.REGION_CODE),
    ("Florida", "Naples, FL please", implied.REGION_CODE),
    ("USD", "pay $45 to Ana", implied.CURRENCY_CODE),
    ("JPY", "convert 300 yen", implied.CURRENCY_CODE),
    ("a/b,c/d", "star the repos a/b and c/d", implied.JOINED_LIST),
    ('["alpha", "beta"]', "locations alpha and beta", implied.JSON_TEXT),
    ("2023-03-09", "rent from March 9th to March 10th 2023", implied.MONTH_DAY),
    ("03/04/2023", "a train on the 4th of March, in 2023", implied.MONTH_DAY),
    ("Chicago", "weather update for Chcicago", implied.NEAR_SPELLING),
    ("Orlando, FL", "a theme park in Orlanda", implied.PLACE_QUALIFIER),  # a misspelt place, qualified
    ("Ji Sung Park", "who is park ji sung", implied.WORD_ORDER),
    ("16/03/2024", "a flight on the 16th of March 2024", implied.DATE_FORMAT),
    ("20-09-2023", "flying out on the 20th of september 2023", implied.DATE_FORMAT),
    ("2023-10-01 to 2023-10-07", "news from 2023.10.1 to 2023.10.7", implied.DATE_FORMAT),
    ("12/03/2023 15:00", "on the 12th of March 2023 at 3 in the afternoon", implied.DATE_FORMAT),
    ("2021-04-15T13:45:00Z", "move it to the 15th of April 2021 at 1:45 pm, UTC", implied.DATE_FORMAT),
    ("2023-10-02", "the weather in New York tomorrow? today is 2023.10.1", implied.RELATIVE_DATE),
    ("2023-10-01", "events this Sunday? Today is Friday 2023-09-29.", implied.RELATIVE_DATE),
    ("2023-04-10", "on the upcoming Monday, assuming today is April 4th, 2023", implied.RELATIVE_DATE),
    ("2024-03-03", "Miami on March 3rd next year? today is 2023.10.1", implied.RELATIVE_DATE),
    ("2023-10-12", "an SUV from today until the 12th. today is 2023.10.1", implied.RELATIVE_DATE),
    ("2023-09-30", "a train tomorrow, today is 20230929", implied.RELATIVE_DATE),
    ("2024-03-22 00:00:00", "a cleaner on the 22nd of March, 2024", implied.DATE_FORMAT),  # midnight: no time
    ("北京", "北京后天的天气如何", implied.UNSPACED_TEXT),  # Beijing, in a sentence written without spaces
    ("서울", "서울의 날씨", implied.UNSPACED_TEXT),  # Seoul, with a suffix
    ("New York, NY", "something to do in NY", implied.PLACE_NICKNAME),
])
def test_each_implied_rule_explains_what_it_names(value: str, query: str, rule: str) -> None:
    assert value_evidence(value, query, mode="implied")[0].rule == rule
    assert value_evidence(value, query, mode="strict")[0].rule is None  # strict mode never uses it


@pytest.mark.parametrize(("value", "query"), [
    ("Paris, CA", "weather in London"),             # the place itself is not stated
    ("London, Paris", "a hotel in London"),          # Paris is no region qualifier
    ("Boston, Narnia", "weather in Boston"),         # nor is Narnia
    ("TX", "I live in California"),                  # the code of another state
    ("Florida", "Naples, fl please"),                # a code in lower case is a word, not a code
    ("EUR", "pay 45 dollars"),                       # another currency
    ("a/b,c/e", "star the repos a/b and c/d"),       # one part is not stated
    ('["alpha", "gamma"]', "locations alpha and beta"),
    ("2023-03-09", "rent from March 9th"),           # the year is nowhere
    ("2024-03-09", "rent from March 9th 2023"),      # another year
    ("Austin", "in Boston"),                         # not one letter away
    ("Parma", "weather in Paris"),
    ("Ohio", "in Ohoi"),                              # short words must match exactly
    ("Ji Sung Kim", "who is park ji sung"),          # a word not in the request
    ("17/03/2024", "a flight on the 16th of March 2024"),
    ("2023-10-01 to 2023-10-09", "news from 2023.10.1 to 2023.10.7"),  # one end of the range moved
    ("12/03/2023 16:00", "on the 12th of March 2023 at 3 in the afternoon"),  # another hour
    ("2023-03-09 Extra", "rent from March 9th to March 10th 2023"),
    ("2023-10-03", "the weather in New York tomorrow? today is 2023.10.1"),
    ("2023-10-02", "the weather in New York tomorrow?"),  # no day is stated as today
    ("2023-10-04", "events this Sunday? Today is Friday 2023-09-29."),
    ("2025-03-03", "Miami on March 3rd next year? today is 2023.10.1"),
    ("2024-03-22 09:00:00", "a cleaner on the 22nd of March, 2024"),  # a time nobody stated
    ("上海", "北京后天的天气如何"),                   # Shanghai is not in it
    ("1月3日", "11月3日の天気を教えて"),               # January 3 is not November 3
    ("北", "北京天气"),                                # one character
    ("low to high", "Sort the results from high to low"),
    ("2023-10-01T13:45:59+05:00", "On 2023-10-01 at 1:45 pm, book it"),  # invented seconds and zone
    ("2023-10-01T00:00:00", "Book on 2023-10-01 at 3pm"),  # midnight against a stated time
    ("2023-01-01", "today is 9999-12-31, book tomorrow"),  # no overflow, no grounding
])
def test_values_nothing_explains_are_still_rejected_in_implied_mode(value: str, query: str) -> None:
    assert value_evidence(value, query, mode="implied")[0].rule is None


MONTH = {"type": "integer", "description": "The month, 1 to 12."}
STORE = {"type": "integer", "description": "Store id"}
SERVICE = {"type": "integer", "description": "The service's ID. For example, 1 for cleaning service, "
                                             "2 for ironing service, 3 for deep cleaning service."}
PROVINCE = {"type": "integer", "description": "The province's ID: 1 represents Bangkok, 2 for Chiang Mai."}
PER_PAGE = {"type": "integer", "description": "Entries per page, 3 to 100. If user doesn't specify, please use 100."}
SONG = {"type": "string", "description": "The search, in the format 'track:SongName artist:ArtistName'."}
LANGUAGE = {"type": "string", "description": "A BCP 47 code, such as 'en' for English, 'zh' for Chinese."}


@pytest.mark.parametrize(("value", "query", "schema", "rule"), [
    (2, "a housekeeper for ironing services", SERVICE, implied.DESCRIBED_CODE),
    (1, "professional cleaning in Bangkok", PROVINCE, implied.DESCRIBED_CODE),
    ("en", "translate this English text to Danish", LANGUAGE, implied.DESCRIBED_CODE),
    (100, "the latest readings of all sensors", PER_PAGE, implied.DESCRIBED_DEFAULT),
    ("track:Friends artist:Marshmello", "Play the song 'Friends' by Marshmello", SONG, implied.DESCRIBED_FORMAT),
    ([2], "a housekeeper for ironing services", {"type": "array", "items": {"type": "integer"},
                                                 "description": SERVICE["description"]}, implied.DESCRIBED_CODE),
    (2, "What is the host count for February 2022?", MONTH, implied.MONTH_NUMBER),
    (5, "May I see the host count?", MONTH, None),  # "may" is not the month here
    (3, "What is the host count for February 2022?", MONTH, None),
    (8, "What were the sales in August?", STORE, None),  # not a month parameter
    (42, "the top results", {"type": "integer", "description": "There is no default. Example: 42"}, None),
    (100, "the years", {"type": "integer", "description": "Defaults to the current year. Maximum 100."}, None),
    # what the description gives does not match what the request names:
    (3, "a housekeeper for cleaning services", SERVICE, None),  # 3 is deep cleaning
    (2, "professional cleaning in Bangkok", PROVINCE, None),
    ("zh", "translate this English text to Danish", LANGUAGE, None),
    (50, "the latest readings of all sensors", PER_PAGE, None),
    (3, "the latest readings of all sensors", PER_PAGE, None),  # a bound, not the default
    (50, "the top results", {"type": "integer", "description": "Defaults to 10, max 50."}, None),
    ("track:Shape of You artist:Ed Sheeran", "search for the song 'Shape of You'", SONG, None),  # artist invented
    ("song:Friends", "Play 'Friends', please", SONG, None),  # a label the template does not have
])
def test_values_the_parameter_description_gives(value: Any, query: str, schema: dict[str, Any],
                                                rule: str | None) -> None:
    assert {e.rule for e in value_evidence(value, query, schema, mode="implied")} == {rule}
    assert None in {e.rule for e in value_evidence(value, query, schema, mode="strict")} or value == 1


def test_values_the_description_gives_may_repeat_each_other() -> None:
    tool = Tool(name="find", description="Find a cleaner.", parameters={
        "type": "object", "properties": {"service_id": SERVICE, "province_id": PROVINCE}})
    call = FunctionCall(name="find", arguments={"service_id": 1, "province_id": 1})
    query = "find professional cleaning in Bangkok"
    implied_result = check_grounding(query, [call], [tool], mode="implied")
    assert implied_result.passed
    assert implied_result.detail == ("find.service_id = 1 (implied:described_code); "
                                     "find.province_id = 1 (implied:described_code)")
    assert check_grounding(query, [call], [tool]).reason == "reused_value"  # strict: the query says 1 once at most
    twice = FunctionCall(name="find", arguments={"service_id": 2, "province_id": 2, "rooms": 2, "guests": 2})
    result = check_grounding("2 rooms for ironing in Chiang Mai", [twice], [tool], mode="implied")
    assert (result.reason, result.detail) == ("reused_value", "find: rooms, guests use one value more times than "
                                                             "the query states it.")  # the others still count


def test_grounding_records_each_implied_value_with_its_rule() -> None:
    tool = Tool(name="book", description="Book a hotel.")
    result = check_grounding("A hotel in Boston from March 9th to March 12th 2023",
                             [FunctionCall(name="book", arguments={"city": "Boston, MA", "day": "2023-03-09"})],
                             [tool], mode="implied")
    assert result.passed
    assert result.detail == ("book.city = 'Boston, MA' (implied:place_qualifier); "
                             "book.day = '2023-03-09' (implied:month_day)")


def test_the_review_page_explains_values_as_the_run_grounded_them(tmp_path: Path) -> None:
    from apigen_local.review.session import ReviewSession

    rows = _write(tmp_path / "rows.jsonl", [_xlam(1, "What's the weather in Boston?", [_call("Boston, MA")])])
    verify_dataset(rows, out_dir=tmp_path / "ungrounded", stages="format")  # grounding did not run: strict rules
    implied_run = verify_dataset(rows, out_dir=tmp_path / "grounded")
    state = ReviewSession(implied_run.out_dir).state()
    evidence = state["rows"][0]["calls"][0]["arguments"][0]["evidence"][0]
    assert evidence["rule"] == implied.PLACE_QUALIFIER
    plain = ReviewSession(tmp_path / "ungrounded").state()["rows"][0]["calls"][0]["arguments"][0]
    assert plain["evidence"][0]["rule"] is None


def test_the_review_page_explains_every_grounding_rule() -> None:
    from apigen_local.checks import grounding

    script = (Path(grounding.__file__).parent.parent / "review" / "static" / "review.js").read_text()
    implied_rules = {value for value in vars(implied).values()
                     if isinstance(value, str) and value.startswith("implied:")}
    stated_rules = {grounding.STATED, grounding.STATED_NUMBER, grounding.STATED_TIME, grounding.STATED_DATE,
                    grounding.FROM_ENUM, grounding.FROM_DEFAULT, grounding.PASSED_ON}
    assert len(implied_rules) == 16
    assert [rule for rule in sorted(implied_rules) if f'"{rule}":' not in script] == []
    assert [rule for rule in sorted(stated_rules) if f"  {rule}:" not in script] == []
