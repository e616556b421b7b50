"""The batched decoding engine (model/engine.py) on the tiny model with real llama.cpp."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from apigen_local.checks.format import check_generation
from apigen_local.errors import ModelError
from apigen_local.generation.generator import Generator, output_schema
from apigen_local.generation.prompts import generation_messages
from apigen_local.generation.sampling import RequestSampler, load_seed_examples
from apigen_local.model import engine as engine_module
from apigen_local.model.bounds import SchemaBounds
from apigen_local.model.engine import _sample, _shared_prefix
from apigen_local.model.local import LocalModel
from apigen_local.tools import load_library

from .conftest import EXAMPLE_LIBRARY, EXAMPLE_SEEDS


@pytest.fixture(scope="module")
def model(tiny_model_path: Path):
    with LocalModel(tiny_model_path, n_ctx=4096, seed=3, constraint_backend="llguidance") as loaded:
        yield loaded


@pytest.fixture(scope="module")
def requests():
    library = load_library(EXAMPLE_LIBRARY)
    # one few-shot example: prompts of a few hundred tokens keep the tests fast
    sampler = RequestSampler(library.tools, load_seed_examples(EXAMPLE_SEEDS), seed=5, n_examples=1)
    return [sampler.request(i) for i in range(6)]


# short bounds: the tiny model's random text runs to the length limit, so this keeps tests fast
BOUNDS = SchemaBounds(query_max_chars=24, string_max_chars=6, array_max_items=2)


def _items(requests):
    return [(generation_messages(r), output_schema(r.tools, min_calls=r.min_calls, max_calls=r.max_calls,
                                                   bounds=BOUNDS))
            for r in requests]


def test_batched_outputs_are_valid_json_for_their_own_schemas(model, requests):
    items = _items(requests[:5])
    assert len({json.dumps(schema) for _, schema in items}) > 1  # sequences of one batch differ
    completions = model.complete_json_many(items, temperature=0.8, seeds=range(len(items)), batch=4)
    assert len(completions) == len(items)
    for completion, (_, schema), request in zip(completions, items, requests[:5], strict=True):
        value = json.loads(completion.text)
        jsonschema.validate(value, schema)
        _, check = check_generation(completion.text, request.tools, min_calls=request.min_calls,
                                    max_calls=request.max_calls)[0]
        # the tiny model's random text may fail the semantic-looking checks, never the JSON ones
        assert check.reason not in {"invalid_json", "unknown_function", "unexpected_argument"}
        assert completion.completion_tokens > 0 and completion.prompt_tokens > completion.completion_tokens


def test_seeded_sampling_is_reproducible(model, requests):
    # Across batch sizes a seeded draw at temperature > 0 can differ: llama.cpp's kernels for one
    # token and for several round the logits differently in the last bits, which moves a draw
    # that lands near a probability boundary. The same batch size and seeds reproduce exactly.
    items = _items(requests[:3])

    def texts(seeds):
        return [c.text for c in model.complete_json_many(items, temperature=1.0, max_tokens=24, seeds=seeds,
                                                         batch=3)]

    first, again, other = texts([11, 12, 13]), texts([11, 12, 13]), texts([21, 22, 23])
    assert first == again
    assert other != first  # the seed is really used


def test_continuous_batching_serves_more_requests_than_slots(model, requests):
    model.complete_json_many(_items(requests[:1]), max_tokens=2, batch=4)  # the engine exists
    stats = model._engine.stats
    stats.peak_active = 0
    before = (stats.decode_calls, stats.generated_tokens)
    completions = model.complete_json_many(_items(requests[:5]), temperature=0.5, seeds=range(5), batch=2)
    stats = model._engine.stats
    assert len(completions) == 5 and all(json.loads(c.text) for c in completions)
    assert stats.peak_active == 2  # two at a time, never more, while five were waiting
    decodes = stats.decode_calls - before[0]
    generated = stats.generated_tokens - before[1]
    assert generated == sum(c.completion_tokens for c in completions)
    # two sequences share each step: fewer decodes than tokens, more than the longest row
    assert max(c.completion_tokens for c in completions) < decodes < generated


def test_shared_prefix_is_evaluated_once_and_copied(model, requests):
    engine_stats = model.complete_json_many(_items(requests[:2]), temperature=0.0, batch=4) and model._engine.stats
    copies, copied, evaluated = (engine_stats.prefix_copies, engine_stats.prefix_copied_tokens,
                                 engine_stats.evaluated_tokens)
    items = _items(requests[2:6])
    completions = model.complete_json_many(items, temperature=0.0, batch=4)
    stats = model._engine.stats
    shares = [c.cached_tokens for c in completions]
    assert min(shares) > 20  # at least the system prompt is shared
    assert stats.prefix_copies - copies == 4
    assert stats.prefix_copied_tokens - copied == sum(shares)
    # each request evaluates its own rest; the prefix (as long as the longest share) is evaluated
    # once, less what the previous call left in its sequence (all of it, when the prefix that saves
    # the most is the part of the system prompt the previous call shared too)
    own = sum(c.prompt_tokens - c.cached_tokens for c in completions)
    assert own <= stats.evaluated_tokens - evaluated <= max(shares) + own


def test_rows_of_an_example_group_share_their_few_shot_block(model):
    library = load_library(EXAMPLE_LIBRARY)
    seeds = load_seed_examples(EXAMPLE_SEEDS)
    shares = {}
    for group in (1, 4):
        sampler = RequestSampler(library.tools, seeds, seed=5, n_examples=2, example_group=group)
        completions = model.complete_json_many(_items([sampler.request(i) for i in range(4)]),
                                               max_tokens=2, temperature=0.0, batch=4)
        shares[group] = sum(c.cached_tokens for c in completions)
    # one shuffled order for the four rows: most of them share at least one example's turns
    assert shares[4] > shares[1] + 100


def test_shared_prefix_follows_the_majority_and_saves_the_most():
    assert _shared_prefix([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9], [7]]) == [1, 2]  # saves 2 x 2, not 3 x 1
    assert _shared_prefix([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 7], [1, 2, 9]]) == [1, 2, 3, 4, 5]  # 5 x 1 beats 2 x 2
    # calls-first: a batch shares its system prompt and generic examples; two rows share more
    shared, longer = list(range(100)), list(range(100, 400))
    rows = [shared + longer + [i] for i in range(2)] + [shared + [1000 + i] for i in range(14)]
    assert _shared_prefix(rows) == shared
    assert _shared_prefix([[1, 2], [3, 4]]) == []
    assert _shared_prefix([[5, 6, 7], [5, 6, 7]]) == [5, 6, 7]


def test_streams_fit_the_longest_prompt_and_cut_a_row_at_their_end(model, requests, monkeypatch):

    monkeypatch.setattr(engine_module, "SEQUENCE_CELLS", 64)
    monkeypatch.setattr(engine_module, "SEQUENCE_HEADROOM", 8)
    model._engine.close()
    model._engine = None
    completions = model.complete_json_many(_items(requests[:2]), max_tokens=2000, temperature=0.8,
                                           seeds=[1, 2], batch=2)
    cells = model._engine.n_ctx_seq
    assert cells >= max(c.prompt_tokens for c in completions) + 8
    # llama.cpp rounds the stream up to 256 cells; no row may run past its stream
    assert all(c.prompt_tokens + c.completion_tokens <= cells for c in completions)
    too_long = [({"role": "user", "content": "word " * 5000}, {"type": "string"})]
    with pytest.raises(ModelError, match="does not fit a batched sequence"):
        model.complete_json_many([([too_long[0][0]], too_long[0][1])], batch=2)
    model._engine.close()
    model._engine = None


def test_lone_requests_reuse_the_previous_prompt(model, requests):
    item = _items(requests[:1])[0]
    model.complete_json(*item, temperature=0.0)
    again = model.complete_json(*item, temperature=0.0)
    assert again.cached_tokens == again.prompt_tokens - 1


def test_generator_generate_many_matches_its_requests(model):
    library = load_library(EXAMPLE_LIBRARY)
    sampler = RequestSampler(library.tools, load_seed_examples(EXAMPLE_SEEDS), seed=5, n_examples=1,
                             styles={"simple": 1.0})
    # requests that each offer a different function: a completion can only name its own request's
    picked: dict[str, object] = {}
    for i in range(100):
        request = sampler.request(i)
        picked.setdefault(request.tools[0].name, request)
        if len(picked) == 3:
            break
    chosen = list(picked.values())
    assert len(chosen) == 3
    generator = Generator(model, temperature=0.8, bounds=BOUNDS)
    completions = generator.generate_many(chosen, batch=2)
    assert len(completions) == len(chosen)
    for request, completion in zip(chosen, completions, strict=True):
        calls = [c for pair in json.loads(completion.text)["pairs"] for c in pair["answers"]]
        assert calls and {c["name"] for c in calls} == {request.tools[0].name}, (request.tools[0].name, calls)


def test_sampling_never_picks_a_masked_token():
    rng = np.random.default_rng(0)
    logits = np.full(1000, -np.inf, dtype=np.float32)
    logits[[3, 500, 999]] = [1.0, 0.5, 0.2]
    picks = {_sample(logits.copy(), 1.5, rng) for _ in range(200)}
    assert picks <= {3, 500, 999} and len(picks) > 1
    assert _sample(logits.copy(), 0.0, rng) == 3
    single = np.full(10, -np.inf, dtype=np.float32)
    single[7] = -5.0
    assert _sample(single, 0.7, rng) == 7


def test_attention_keys_are_cached_as_q8_0(tiny_model_path, requests):
    import llama_cpp

    items = _items(requests[:1])
    state_bytes = {}
    for keys in ("f16", "q8_0"):
        with LocalModel(tiny_model_path, n_ctx=4096, seed=3, constraint_backend="llguidance", kv_keys=keys,
                        verify=False) as loaded:
            completion = loaded.complete_json_many(items, temperature=0.0, batch=2)[0]
            json.loads(completion.text)
            # sequence 0 keeps the prompt (all but its last token): its cached keys and values
            state_bytes[keys] = llama_cpp.llama_state_seq_get_size(loaded._engine._ctx, 0)
    # per cell and layer: keys 68 bytes as Q8_0 against 128 as F16, values 128 bytes either way
    assert 0.7 < state_bytes["q8_0"] / state_bytes["f16"] < 0.82
    with LocalModel(tiny_model_path, n_ctx=1024, verify=False) as default:
        assert default.kv_keys == "q8_0"
    with pytest.raises(ModelError, match="unknown KV key type 'q4'"):
        LocalModel(tiny_model_path, kv_keys="q4", verify=False)
