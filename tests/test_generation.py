"""Stage 1: sampling and prompts are seed-determined; Outlines really constrains the tiny model."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from apigen_local.checks.format import check_generation
from apigen_local.errors import ConfigError, ConstraintError, ModelError
from apigen_local.generation.generator import Generator, output_schema
from apigen_local.generation.prompts import generation_messages
from apigen_local.generation.sampling import (
    ALL_STYLES,
    STYLE_PLANS,
    RequestSampler,
    load_seed_examples,
    parse_style_mix,
)
from apigen_local.model.bounds import SchemaBounds, bound_schema, max_json_bytes
from apigen_local.model.local import LocalModel, _widen_number_regex
from apigen_local.tools import load_library

from .conftest import EXAMPLE_LIBRARY, EXAMPLE_SEEDS


@pytest.fixture(scope="module")
def library():
    return load_library(EXAMPLE_LIBRARY)


@pytest.fixture(scope="module")
def examples():
    return load_seed_examples(EXAMPLE_SEEDS)


def test_same_seed_gives_identical_prompts(library, examples) -> None:
    first = RequestSampler(library.tools, examples, seed=11)
    second = RequestSampler(library.tools, examples, seed=11)
    for index in range(60):
        assert generation_messages(first.request(index)) == generation_messages(second.request(index))
    # order does not matter: row 40 is the same whether or not rows 0..39 were sampled first
    assert RequestSampler(library.tools, examples, seed=11).request(40) == first.request(40)


def test_different_seeds_give_different_tool_samples(library, examples) -> None:
    def tool_samples(seed: int) -> list[list[str]]:
        sampler = RequestSampler(library.tools, examples, seed=seed)
        return [[t.name for t in sampler.request(i).tools] for i in range(40)]

    assert tool_samples(1) != tool_samples(2)


def test_styles_follow_their_plans_and_the_mix(library, examples) -> None:
    sampler = RequestSampler(library.tools, examples, seed=3)
    styles = Counter()
    for index in range(400):
        request = sampler.request(index)
        plan = STYLE_PLANS[request.style]
        styles[request.style] += 1
        assert plan.min_tools <= len(request.tools) <= plan.max_tools
        assert len({t.name for t in request.tools}) == len(request.tools)
        assert (request.min_calls, request.max_calls) == (plan.min_calls, plan.max_calls)
        assert len(request.examples) == 3
    assert set(styles) == set(ALL_STYLES)
    only_parallel = RequestSampler(library.tools, examples, seed=3,
                                   styles=parse_style_mix("parallel"))
    assert {only_parallel.request(i).style for i in range(30)} == {"parallel"}


def test_an_example_group_reads_the_examples_in_one_order(library, examples) -> None:
    sampler = RequestSampler(library.tools, examples, seed=4, example_group=8)
    for group in range(5):
        requests = [sampler.request(i) for i in range(8 * group, 8 * group + 8)]
        # all rows of the group take examples from one shuffled order: the examples a row took
        # appear in that order for every other row of the group, minus the ones it may not use
        order = {e.query: i for i, e in enumerate(requests[0].examples)}
        for request in requests:
            offered = {tool.name for tool in request.tools}
            assert len(request.examples) == 3
            assert not any(example.functions & offered for example in request.examples)
            positions = [order[e.query] for e in request.examples if e.query in order]
            assert positions == sorted(positions)
        firsts = Counter(r.examples[0].query for r in requests)
        assert firsts.most_common(1)[0][1] >= 4  # most of the group starts with the same example
    # groups differ from each other; rows of the group are still the same whatever the order
    assert sampler.request(0).examples != sampler.request(8).examples
    assert RequestSampler(library.tools, examples, seed=4, example_group=8).request(13) == sampler.request(13)
    with pytest.raises(ConfigError):
        RequestSampler(library.tools, examples, seed=4, example_group=0)


def test_prompts_hold_no_placeholder_and_show_exact_replies(library, examples) -> None:
    seed_rows = {(e.query, e.answers) for e in examples}
    sampler = RequestSampler(library.tools, examples, seed=5)
    for index in range(80):
        request = sampler.request(index)
        messages = generation_messages(request)
        assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
        text = "\n".join(m["content"] for m in messages)
        for placeholder in ("the request", "function_name", '{"argument": "value"}'):
            assert placeholder not in text
        for tool in request.tools:  # the offered functions are in the final turn
            assert f"{tool.name}: {tool.description}" in messages[-1]["content"]
        replies = [m["content"] for m in messages if m["role"] == "assistant"]
        assert len(replies) == len(request.examples)
        for reply in replies:  # each example reply is a real seed row in the exact output shape
            pair = json.loads(reply)["pairs"][0]
            assert list(pair) == ["query", "answers"]
            assert (pair["query"], json.dumps(pair["answers"])) in seed_rows
        offered = {tool.name for tool in request.tools}
        assert not any(example.functions & offered for example in request.examples)


def test_answers_first_orders_the_schema_and_the_examples(library, examples) -> None:
    request = RequestSampler(library.tools, examples, seed=5).request(0)
    schema = output_schema(request.tools, min_calls=1, max_calls=2, answers_first=True)
    assert list(schema["properties"]["pairs"]["items"]["properties"]) == ["answers", "query"]
    reply = json.loads(generation_messages(request, answers_first=True)[2]["content"])
    assert list(reply["pairs"][0]) == ["answers", "query"]


def test_style_mix_errors_are_clear() -> None:
    assert parse_style_mix("simple=3,parallel-multiple=1") == {"simple": 0.75, "parallel_multiple": 0.25}
    with pytest.raises(ConfigError, match="unknown query style 'fancy'"):
        parse_style_mix("fancy")
    with pytest.raises(ConfigError, match="weight of zero"):
        parse_style_mix("simple=0")


def test_seed_file_errors_are_clear(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="holds no example"):
        load_seed_examples(empty)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"query": "q", "answers": "[]"}\n{"query": \n')
    with pytest.raises(ConfigError, match="line 2"):
        load_seed_examples(broken)


def test_bounds_reach_every_string_list_and_number() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 5}},
            "count": {"type": "integer"},
            "ratio": {"type": "number"},
            "extra": {"type": "object"},
        },
    }
    bounded = bound_schema(schema, SchemaBounds())
    props = bounded["properties"]
    assert props["name"]["maxLength"] == 48
    assert props["tags"]["maxItems"] == 4 and props["tags"]["items"]["maxLength"] == 5
    assert props["count"]["maxDigits"] == 6 and props["ratio"]["maxDigitsFraction"] == 4
    assert props["extra"]["additionalProperties"] is False
    assert "maxLength" not in schema["properties"]["name"]  # the input is not modified
    assert max_json_bytes(bounded) < 2000


def test_bounded_numbers_may_have_one_integer_digit() -> None:
    from outlines_core.json_schema import build_regex_from_schema

    number = {"type": "number"}
    bounded = bound_schema(number, SchemaBounds())
    regex = _widen_number_regex(build_regex_from_schema(json.dumps(bounded)))
    for text in ("9.8", "0", "-12.25", "123456.5"):
        assert re.fullmatch(regex, text), text
    assert not re.fullmatch(regex, "1234567")  # seven integer digits are out of bounds


@pytest.mark.model
def test_chat_template_comes_from_the_gguf(local_model: LocalModel) -> None:
    prompt = local_model.render([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert prompt == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.model
def test_two_hundred_pairs_all_parse_and_pass_the_format_checker(local_model, library, examples) -> None:
    sampler = RequestSampler(library.tools, examples, seed=5)
    generator = Generator(local_model)
    styles: Counter[str] = Counter()
    failures = []
    for index in range(200):
        request = sampler.request(index)
        styles[request.style] += 1
        text = generator.generate(request).text
        [(_pair, check)] = check_generation(text, request.tools, min_calls=request.min_calls,
                                           max_calls=request.max_calls)
        if not check.passed:
            failures.append((request.style, check.reason, check.detail, text[-200:]))
    assert set(styles) == set(ALL_STYLES)
    assert failures == []


@pytest.mark.model
def test_constraint_is_compiled_once_per_tool_set(local_model, library) -> None:
    schema = output_schema(library.tools[:12], min_calls=1, max_calls=1)
    local_model.constraint(schema)
    compiled = len(local_model.compile_seconds)
    assert local_model.constraint(schema) is local_model.constraint(schema)
    assert len(local_model.compile_seconds) == compiled


@pytest.mark.model
def test_start_up_check_fails_loudly_without_numba(tiny_model_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "numba", None)
    with pytest.raises(ConstraintError, match="numba is not installed"):
        LocalModel(tiny_model_path, n_ctx=1024)


@pytest.mark.model
def test_start_up_check_catches_an_inactive_constraint(tiny_model_path, monkeypatch) -> None:
    # A processor that lets every token through stands for a constraint that silently failed.
    monkeypatch.setattr(LocalModel, "constraint", lambda self, schema: _PassThrough())
    with pytest.raises(ConstraintError, match="constraint is not active"):
        LocalModel(tiny_model_path, n_ctx=1024)


class _PassThrough:
    def reset(self) -> None: ...

    def __call__(self, input_ids, scores):
        return scores


@pytest.mark.model
def test_model_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        LocalModel(tmp_path / "missing.gguf")
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 24)
    with pytest.raises(ModelError, match="could not load"):
        LocalModel(truncated)


@pytest.mark.model
def test_prepared_constraints_are_compiled_once_in_the_background(local_model, library) -> None:
    schemas = [output_schema(library.tools[i:i + 3], min_calls=1, max_calls=2) for i in (2, 5)]
    compiled = len(local_model.compile_seconds)
    local_model.prepare(schemas + schemas)
    first = [local_model.constraint(schema) for schema in schemas]
    assert len(local_model.compile_seconds) == compiled + 2
    assert [local_model.constraint(schema) for schema in schemas] == first


@pytest.mark.model
def test_the_shared_prompt_prefix_is_taken_from_the_kv_cache(local_model) -> None:
    system = {"role": "system", "content": "You write JSON for a benchmark. " * 20}
    local_model.complete_text([system, {"role": "user", "content": "first request"}], max_tokens=4)
    again = local_model.complete_text([system, {"role": "user", "content": "another one"}],
                                      max_tokens=4)
    system_tokens = local_model.llama.tokenize(system["content"].encode(), add_bos=False)
    assert again.cached_tokens >= len(system_tokens)
    local_model.llama.reset()
    cold = local_model.complete_text([system, {"role": "user", "content": "another one"}],
                                     max_tokens=4)
    assert cold.cached_tokens == 0


def test_value_bounds_are_settings_that_reach_the_schema_and_the_run_identity() -> None:
    from apigen_local.run.config import GenerationConfig
    from apigen_local.run.worker import WorkerSettings

    cfg = GenerationConfig(library=str(EXAMPLE_LIBRARY), max_string_chars=20, max_list_items=7)
    tools = load_library(EXAMPLE_LIBRARY).tools
    # what a worker's generator is built from (run/worker.py)
    bounds = WorkerSettings.for_generation(cfg, "model.gguf").generation.bounds()  # type: ignore[union-attr]
    schema = json.dumps(output_schema(tools, min_calls=1, max_calls=1, bounds=bounds))
    assert '"maxLength": 20' in schema and '"maxItems": 7' in schema and '"maxLength": 48' not in schema
    assert cfg.identity()["max_string_chars"] == 20 and cfg.identity()["max_list_items"] == 7
    with pytest.raises(ValueError):
        GenerationConfig(library="x", max_string_chars=2)
