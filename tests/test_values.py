"""Values that make sense for calls-first (issue 38): seed values varied within their kind, the
schema's and the description's ranges, lists and examples, and a pool of calls that ran."""

from __future__ import annotations

import importlib.util
import json
import random
from datetime import date
from pathlib import Path

import pytest

from apigen_local.generation.calls_first import build_pool, sample_calls
from apigen_local.generation.sampling import (
    ALL_STYLES,
    STYLE_PLANS,
    RequestSampler,
    closest_example,
    load_seed_examples,
)
from apigen_local.generation.values import ValueDrawer, hints, typed_value
from apigen_local.tools import load_library
from apigen_local.types import FunctionCall

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(f"values_test_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _runs(module, call: FunctionCall) -> bool:
    try:
        getattr(module, call.name)(**call.arguments)
    except (ValueError, TypeError, KeyError, ZeroDivisionError):
        return False
    return True


@pytest.fixture(scope="module")
def seeds() -> ValueDrawer:
    return ValueDrawer(example.answers for example in load_seed_examples(EXAMPLES / "seed.jsonl"))


def test_the_description_gives_ranges_lists_examples_and_keys() -> None:
    planner = {tool.name: tool.parameters["properties"] for tool in load_library(EXAMPLES / "planner_library.py").tools}
    duration = hints(planner["schedule_meeting"]["duration_minutes"])
    assert (duration.low, duration.high) == (1, 720)
    assert hints(planner["split_bill"]["people"]).low == 1
    assert hints(planner["split_bill"]["tip_percent"]).examples == [15]
    assert hints(planner["normalize_phone_number"]["country_code"]).examples == ["44"]  # typed as its schema
    assert hints(planner["sort_names"]["names"]).examples == ["Ada Lovelace"]
    assert "formal dinner" in hints(planner["packing_list"]["activities"]).choices
    assert hints(planner["format_address"]["address"]).keys == ["street", "city", "postcode", "country"]
    swapi = load_library(EXAMPLES / "library.py").by_name["swapi_planet_resource"].parameters["properties"]
    assert (hints(swapi["planet_id"]).low, hints(swapi["planet_id"]).high) == (1, 10)


@pytest.mark.parametrize("path", [EXAMPLES / "planner_library.py", EXAMPLES / "library.py"])
def test_with_no_seed_rows_nearly_every_drawn_call_runs(path: Path) -> None:
    """A library with no seed file gets values its functions accept: ranges, formats, keys."""
    module, drawer = _module(path), ValueDrawer([])
    tools = load_library(path).tools
    rng = random.Random(3)
    drawn = [call for tool in tools for call in (drawer.call(rng, tool) for _ in range(20)) if call]
    ran = sum(_runs(module, call) for call in drawn)
    if path.stem == "planner_library":
        assert len(drawn) == 20 * len(tools)
        assert ran == len(drawn)
    else:  # names of Disney characters are known only to the seed rows
        assert ran >= 0.85 * len(drawn)


def test_seed_values_are_varied_within_their_kind_and_magnitude(seeds: ValueDrawer) -> None:
    library = load_library(EXAMPLES / "library.py").by_name
    rng = random.Random(0)
    principals, planets, spans, binaries, kept = [], [], [], [], 0
    for _ in range(200):
        call = seeds.call(rng, library["compound_interest"])
        principals.append(call.arguments["principal"])
        planets.append(seeds.call(rng, library["swapi_planet_resource"]).arguments["planet_id"])
        days = seeds.call(rng, library["days_between"]).arguments
        spans.append((date.fromisoformat(days["end_date"]) - date.fromisoformat(days["start_date"])).days)
        pair = seeds.call(rng, library["binary_addition"]).arguments
        binaries += [pair["a"], pair["b"]]
        kept += call.arguments["principal"] in (10000, 2500)
    assert all(1250 <= value <= 20000 for value in principals)
    assert 40 < kept < 160 and len(set(principals)) > 20  # kept as seeded, or varied
    assert set(planets) <= set(range(1, 11)) and len(set(planets)) > 5
    assert all(span > 0 for span in spans)  # both dates move together: the order holds
    assert all(set(b) <= {"0", "1"} and b.startswith("1") for b in binaries)
    names = {seeds.call(rng, library["disney_character"]).arguments["name"] for _ in range(50)}
    assert names == {"Stitch", "Elsa"}  # names are reused, never made up


def test_numbers_keep_their_precision(seeds: ValueDrawer) -> None:
    library = load_library(EXAMPLES / "library.py").by_name
    rng = random.Random(1)
    for _ in range(100):
        rate = seeds.call(rng, library["compound_interest"]).arguments["annual_rate"]
        assert 0.0225 <= rate <= 0.12 and round(rate, 3) == rate  # seeds 0.045 and 0.06


def test_a_pool_keeps_only_the_calls_that_ran_and_rows_draw_from_it(seeds: ValueDrawer) -> None:
    tools = load_library(EXAMPLES / "library.py").tools
    module = _module(EXAMPLES / "library.py")
    checked: list[FunctionCall] = []

    def check(calls: list[FunctionCall]) -> list[bool]:
        checked.extend(calls)
        return [_runs(module, call) and call.name != "is_prime" for call in calls]

    pool = build_pool(tools, seeds, seed=4, check=check)
    assert not pool.has("is_prime") and pool.has("getdivision")
    assert all(_runs(module, call) for calls in pool.calls.values() for call in calls)
    assert len(pool) < len(checked)
    rng = random.Random(2)
    for style in ALL_STYLES:
        plan = STYLE_PLANS[style]
        offered = [tool for tool in tools if tool.name != "is_prime"][:3]
        for _ in range(20):
            calls = sample_calls(rng, style, offered, pool, plan.min_calls, plan.max_calls)
            assert calls and all(call in pool.calls[call.name] for call in calls)
            assert len({json.dumps(c.model_dump(), sort_keys=True) for c in calls}) == len(calls)


def test_the_sampler_offers_no_function_without_a_verified_call() -> None:
    library = load_library(EXAMPLES / "library.py")
    examples = load_seed_examples(EXAMPLES / "seed.jsonl")
    sampler = RequestSampler(library.tools, examples, seed=1, mode="calls_first",
                             call_check=lambda calls: [call.name != "slugify" for call in calls])
    assert "slugify" not in {tool.name for tool in sampler.tools}
    for index in range(30):
        assert all(call.name != "slugify" for call in sampler.request(index).calls)


def test_typed_values_follow_the_format_the_description_names() -> None:
    rng = random.Random(5)
    iso = typed_value(rng, "day", {"type": "string", "description": "The day in ISO format, YYYY-MM-DD."})
    assert date.fromisoformat(iso)
    clock = typed_value(rng, "start", {"type": "string", "description": "On a 24-hour clock, HH:MM."})
    assert len(clock) == 5 and clock[2] == ":"
    percent = typed_value(rng, "tip", {"type": "number", "description": "The tip as a percent."})
    assert 1 <= percent <= 30


def test_an_optional_argument_is_drawn_only_with_a_value_other_than_its_default() -> None:
    library = load_library(EXAMPLES / "library.py").by_name
    drawer, rng = ValueDrawer([]), random.Random(8)
    separators = [drawer.call(rng, library["slugify"]).arguments.get("separator") for _ in range(200)]
    assert "-" not in separators and any(s is not None for s in separators)


def test_two_arguments_of_one_call_do_not_share_a_value(seeds: ValueDrawer) -> None:
    library = load_library(EXAMPLES / "library.py").by_name
    rng = random.Random(9)
    for _ in range(200):
        scales = seeds.call(rng, library["convert_temperature"]).arguments
        assert scales["from_scale"] != scales["to_scale"]


def test_calls_first_shows_one_call_seed_rows_and_each_call_its_closest_seed_row_last() -> None:
    library = load_library(EXAMPLES / "library.py")
    examples = load_seed_examples(EXAMPLES / "seed.jsonl")
    sampler = RequestSampler(library.tools, examples, seed=3, mode="calls_first", example_group=16)
    closest_shown = 0
    for index in range(40):
        request = sampler.request(index)
        called = {call.name for call in request.calls}
        for position, call in enumerate(request.calls):
            part = request.part(position)
            assert all(example.call_count == 1 for example in part.examples)
            assert [c.model_dump() for c in part.calls] == [call.model_dump()]
            same = [e for e in part.examples if e.functions & called]
            assert same in ([], [part.examples[-1]])
            if same:  # the seed row shown last calls this call's function and sets no argument it leaves out
                shown = [c for c in json.loads(same[0].answers) if c["name"] == call.name]
                assert shown and set(shown[0]["arguments"]) <= set(call.arguments)
                closest_shown += 1
    assert closest_shown >= 20


def test_the_closest_seed_row_sets_the_most_arguments_of_the_call_and_none_it_leaves_out() -> None:
    examples = load_seed_examples(EXAMPLES / "seed.jsonl")
    single = [e for e in examples if e.call_count == 1]

    def closest(name: str, **arguments: object) -> str | None:
        found = closest_example(FunctionCall(name=name, arguments=arguments), single)
        return found.query if found else None

    assert closest("word_count", text="a b") == "Count the words in 'Offline datasets are verifiable by design.'"
    assert closest("word_count", text="a b", unique=True).startswith("How many distinct words")
    assert closest("compound_interest", principal=1, annual_rate=2, years=3).startswith("How much will $2,500")
    assert closest("compound_interest", principal=1, annual_rate=2, years=3,
                   compounds_per_year=4).startswith("If I invest $10,000")
    # the one-call slug row sets a separator: a call that keeps the default is shown none
    assert closest("slugify", title="My Title") is None
    assert closest("slugify", title="My Title", separator="_") is not None
