"""Calls-first generation: drawn calls, the request prompt and the joined output (issue 29)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apigen_local.checks.format import check_generation
from apigen_local.generation.generator import as_generation, request_schema
from apigen_local.generation.prompts import request_messages
from apigen_local.generation.sampling import ALL_STYLES, RequestSampler, load_seed_examples
from apigen_local.model.bounds import SchemaBounds
from apigen_local.model.local import Completion
from apigen_local.tools import load_library
from apigen_local.types import Tool

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sampler() -> RequestSampler:
    library = load_library(REPO / "examples" / "planner_library.py")
    examples = load_seed_examples(REPO / "examples" / "seed.jsonl")
    return RequestSampler(library.tools, examples, seed=5, mode="calls_first",
                          styles={style: 1.0 for style in ALL_STYLES})


def test_every_row_gets_distinct_calls_that_pass_the_format_check(sampler: RequestSampler) -> None:
    styles = set()
    for index in range(60):
        request = sampler.request(index)
        styles.add(request.style)
        assert request.min_calls <= len(request.calls) <= request.max_calls
        keys = [json.dumps(call.model_dump(), sort_keys=True) for call in request.calls]
        assert len(set(keys)) == len(keys), "a row's drawn calls repeat"
        if request.style == "parallel_multiple":
            assert len({call.name for call in request.calls}) >= 2
        raw = json.dumps({"pairs": [{"query": "Plan it for me please.",
                                     "answers": [c.model_dump() for c in request.calls]}]})
        _, verdict = check_generation(raw, request.tools, min_calls=request.min_calls,
                                      max_calls=request.max_calls)[0]
        assert verdict.passed, (request.calls, verdict)
    assert styles == set(ALL_STYLES)


def test_draws_are_a_function_of_seed_and_index(sampler: RequestSampler) -> None:
    assert sampler.request(17).calls == sampler.request(17).calls
    assert [sampler.request(i).calls for i in range(10)] != [sampler.request(i).calls for i in range(10, 20)]


def test_functions_whose_arguments_cannot_be_drawn_are_not_offered(sampler: RequestSampler) -> None:
    names = {tool.name for tool in sampler.tools}
    assert {"format_address", "split_bill"} <= names  # the address's keys come from its description
    free_form = Tool(name="store", description="Stores a record.", parameters={
        "type": "object", "properties": {"record": {"type": "object", "description": "Anything."}},
        "required": ["record"]})
    library = load_library(REPO / "examples" / "planner_library.py")
    kept = RequestSampler([*library.tools, free_form], [], seed=5, mode="calls_first")
    assert "store" not in {tool.name for tool in kept.tools}


def test_the_prompt_shows_the_calls_and_the_output_joins_them(sampler: RequestSampler) -> None:
    request = sampler.request(3)
    messages = request_messages(request)
    assert json.dumps([c.model_dump() for c in request.calls], ensure_ascii=False) in messages[-1]["content"]
    assert all(json.loads(m["content"]).keys() == {"query"} for m in messages if m["role"] == "assistant")
    assert request_schema(SchemaBounds())["required"] == ["query"]
    completion = Completion(text='{"query": "Split a bill please."}', prompt_tokens=1, completion_tokens=1, seconds=0)
    joined = json.loads(as_generation(request, completion).text)
    assert joined["pairs"][0]["query"] == "Split a bill please."
    assert joined["pairs"][0]["answers"] == [c.model_dump() for c in request.calls]


def test_a_tuple_parameter_gets_one_value_of_its_type_per_position() -> None:
    import random

    from apigen_local.generation.values import typed_value

    schema = {"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}]}
    for seed in range(20):
        value = typed_value(random.Random(seed), "a", schema)
        assert isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)
