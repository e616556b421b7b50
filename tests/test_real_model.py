"""The real default model (SmolLM2-135M-Instruct, Q4_1) and quantized GGUFs on real llama.cpp.

Quantized weights used to segfault llama.cpp's AMX kernel on this kind of CPU for any prompt
longer than one token; each quantized load here decodes a multi-token prompt. Loads that could
crash run in a child process, so a regression fails one test instead of killing the session.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from apigen_local.errors import ModelError
from apigen_local.generation.generator import output_schema
from apigen_local.generation.prompts import generation_messages
from apigen_local.generation.sampling import RequestSampler, load_seed_examples
from apigen_local.model import engine as engine_module
from apigen_local.model.bounds import SchemaBounds
from apigen_local.model.engine import BatchEngine, _sample
from apigen_local.model.files import DEFAULT_MODEL, fetch_default_model, file_sha256, find_model
from apigen_local.model.local import LocalModel
from apigen_local.model.weights import gguf_file_type
from apigen_local.run.files import read_records
from apigen_local.run.generate import generate_dataset
from apigen_local.tools import load_library

from .conftest import EXAMPLE_LIBRARY, EXAMPLE_SEEDS, REPO

pytestmark = pytest.mark.real_model

DECODE_SCRIPT = """
import json, sys
from apigen_local.generation.generator import output_schema
from apigen_local.generation.prompts import generation_messages
from apigen_local.generation.sampling import RequestSampler, load_seed_examples
from apigen_local.model import engine as engine_module
from apigen_local.model.bounds import SchemaBounds
from apigen_local.model.engine import BatchEngine, _sample
from apigen_local.model.local import LocalModel
schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20},
          "days": {"type": "integer", "minimum": 1}}, "required": ["city", "days"],
          "additionalProperties": False}
with LocalModel(sys.argv[1], n_ctx=1024, seed=3, reencode_weights=sys.argv[2] == "reencode") as model:
    out = model.complete_json([{"role": "user", "content": "Plan a trip to Paris for three days, as JSON."}],
                              schema, temperature=0.0)
    print(json.dumps({"text": out.text, "prompt_tokens": out.prompt_tokens,
                      "completion_tokens": out.completion_tokens}))
"""


def _decode_in_child(path: Path, *, reencode: bool = True) -> dict:
    """Decode in a child process, so that a crash of llama.cpp's kernels fails the test, not the run;
    ``reencode=False`` computes with the file's own quantization (the AMX path of issue 5)."""
    done = subprocess.run([sys.executable, "-c", DECODE_SCRIPT, str(path), "reencode" if reencode else "as-is"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"decoding {path.name} failed with {done.returncode}: {done.stderr[-800:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def default_model_path() -> Path:
    """The default model, fetched once by the set-up (``apigen-local model fetch``)."""
    return fetch_default_model(REPO / "models")


def test_default_model_is_the_pinned_file(default_model_path: Path) -> None:
    assert default_model_path.stat().st_size == DEFAULT_MODEL.size
    assert file_sha256(default_model_path) == DEFAULT_MODEL.sha256


def test_default_model_is_found_when_the_user_names_none(default_model_path: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        tiny_model_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / DEFAULT_MODEL.name).symlink_to(default_model_path)
    (models / tiny_model_path.name).symlink_to(tiny_model_path)
    monkeypatch.delenv("APIGEN_MODEL", raising=False)
    monkeypatch.setenv("APIGEN_MODELS_DIR", str(models))
    assert find_model() == models / DEFAULT_MODEL.name


def test_fetch_keeps_a_good_file_and_explains_a_failed_download(default_model_path: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    here = tmp_path / "models"
    here.mkdir()
    (here / DEFAULT_MODEL.name).symlink_to(default_model_path)
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # no registry: a present, checked file needs none
    assert fetch_default_model(here) == here / DEFAULT_MODEL.name
    empty = tmp_path / "empty"
    monkeypatch.setenv("APIGEN_MODELS_DIR", str(empty))  # the only folder searched: no copy to link
    with pytest.raises(ModelError, match="bring it by hand") as caught:
        fetch_default_model(empty)
    assert "\n" not in str(caught.value)
    assert not list(empty.glob("*.gguf"))


@pytest.mark.parametrize("reencode", [True, False], ids=["as-q8_0", "as-q4_1"])
def test_quantized_default_model_decodes_a_multi_token_prompt(default_model_path: Path, reencode: bool) -> None:
    out = _decode_in_child(default_model_path, reencode=reencode)
    assert out["prompt_tokens"] > 1 and out["completion_tokens"] > 3
    value = json.loads(out["text"])
    assert set(value) == {"city", "days"} and value["days"] >= 1


def test_q4_1_weights_are_computed_as_a_cached_q8_0_copy(default_model_path: Path, tiny_model_path: Path,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
              "required": ["city"], "additionalProperties": False}
    messages = [{"role": "user", "content": "Name a city in France, as JSON."}]
    with LocalModel(default_model_path, n_ctx=1024, seed=0) as model:
        copy = model.weights_path
        assert copy.parent == tmp_path / "cache" / "apigen-local" / "weights"
        assert model.llama.metadata["general.file_type"] == "7"  # LLAMA_FTYPE_MOSTLY_Q8_0
        assert model.path == default_model_path  # records and calibration name the user's file
        assert set(json.loads(model.complete_json(messages, schema, temperature=0.0).text)) == {"city"}
    written = copy.stat().st_mtime_ns
    with LocalModel(default_model_path, n_ctx=1024, seed=0) as again:
        assert again.weights_path == copy
    assert copy.stat().st_mtime_ns == written  # reused, not written again
    assert [p.name for p in copy.parent.iterdir()] == [copy.name]  # no partial file left
    with LocalModel(default_model_path, n_ctx=1024, seed=0, reencode_weights=False) as as_is:
        assert as_is.weights_path == default_model_path
        assert as_is.llama.metadata["general.file_type"] == "3"  # LLAMA_FTYPE_MOSTLY_Q4_1
    with LocalModel(tiny_model_path, n_ctx=1024, seed=0) as tiny:  # F32: computed as it is
        assert tiny.weights_path == tiny_model_path
    assert (gguf_file_type(default_model_path), gguf_file_type(copy), gguf_file_type(tiny_model_path)) == (3, 7, 0)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(default_model_path.read_bytes()[:40])  # header cut off before the file type
    assert gguf_file_type(cut) is None
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    with pytest.raises(ModelError, match="cannot write the Q8_0 copy") as caught:
        LocalModel(default_model_path, n_ctx=1024, seed=0)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kind", ["Q8_0", "Q4_0", "Q4_1", "Q5_K_M", "Q4_K_M"])
def test_every_common_quantization_decodes(kind: str, tiny_model_path: Path, tmp_path: Path) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}")
    target = tmp_path / f"tiny-{kind}.gguf"
    assert llama_cpp.llama_model_quantize(str(tiny_model_path).encode(), str(target).encode(), params) == 0
    assert target.stat().st_size < tiny_model_path.stat().st_size
    assert gguf_file_type(target) == params.ftype  # read from the header, without loading
    out = _decode_in_child(target, reencode=False)  # computed in its own quantization, not as Q8_0
    assert out["prompt_tokens"] > 1 and out["completion_tokens"] >= 1


@pytest.mark.docker
class GreedySteps:
    """Records, per request of each engine call, every greedy token and the gap between the best
    and second-best logit it was chosen from (after the constraint's mask)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[dict[int, list[tuple[int, float]]]] = []
        advance = BatchEngine._sample_and_advance
        recorder = self

        def sample_and_advance(engine, slots, logits, *rest):
            owners = [slot.index for slot in slots]  # _sample runs once per slot, in slot order
            steps = recorder.calls[-1]

            def sample(row, temperature, rng):
                token = _sample(row, temperature, rng)
                allowed = np.sort(row[np.isfinite(row)])
                gap = float(allowed[-1] - allowed[-2]) if len(allowed) > 1 else np.inf
                steps.setdefault(owners.pop(0), []).append((token, gap))
                return token

            monkeypatch.setattr(engine_module, "_sample", sample)
            try:
                return advance(engine, slots, logits, *rest)
            finally:
                monkeypatch.setattr(engine_module, "_sample", _sample)

        run = BatchEngine.run

        def run_recorded(engine, *args, **kwargs):
            recorder.calls.append({})
            return run(engine, *args, **kwargs)

        monkeypatch.setattr(BatchEngine, "_sample_and_advance", sample_and_advance)
        monkeypatch.setattr(BatchEngine, "run", run_recorded)


# Logits of one token computed in a batch and alone differ by rounding only (float32 sums in another
# order), far below this; a row that read another row's logits parted at a gap of 0.09.
NEAR_TIE = 0.02


def test_temperature_zero_batched_parts_from_one_at_a_time_only_at_near_ties(default_model_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # the default model, not the tiny one: the tiny model's random weights write nearly the same
    # text whatever the prompt, so rows that read each other's logits would go unnoticed there
    library = load_library(EXAMPLE_LIBRARY)
    sampler = RequestSampler(library.tools, load_seed_examples(EXAMPLE_SEEDS), seed=5, n_examples=1)
    bounds = SchemaBounds(query_max_chars=60, string_max_chars=12, array_max_items=2)
    items = [(generation_messages(r), output_schema(r.tools, min_calls=r.min_calls, max_calls=r.max_calls,
                                                    bounds=bounds))
             for r in (sampler.request(i) for i in range(4))]
    steps = GreedySteps(monkeypatch)
    with LocalModel(default_model_path, n_ctx=4096, seed=3) as model:
        alone_texts = [model.complete_json_many([item], temperature=0.0, batch=1)[0].text for item in items]
        together_texts = [c.text for c in model.complete_json_many(items, temperature=0.0, batch=4)]
    assert len(set(alone_texts)) == 4  # the rows differ, so a row that read another's logits would show
    alone = [call[0] for call in steps.calls[:4]]
    together = steps.calls[4]
    assert sorted(together) == [0, 1, 2, 3] and all(alone)
    for i, own in enumerate(alone):
        batched = together[i]
        # greedy decoding in a batch follows the request's own prompt and constraint: where it
        # parts from the one-at-a-time tokens, both paths had two allowed tokens within rounding
        # of each other (README: batched arithmetic rounds differently, so a near-tie can flip)
        parted = next((k for k, (a, b) in enumerate(zip(own, batched, strict=False)) if a[0] != b[0]), None)
        if parted is None:
            assert len(own) == len(batched) and alone_texts[i] == together_texts[i], i
        else:
            assert min(own[parted][1], batched[parted][1]) < NEAR_TIE, (i, parted, own[parted], batched[parted])


def test_default_model_generates_executes_and_judges(default_model_path: Path, tmp_path: Path) -> None:
    # grounding off: this test follows rows through the sandbox and the judge, and a small model
    # invents most values (test_grounding_rejects_invented_values covers the grounding stage)
    result = generate_dataset(EXAMPLE_LIBRARY, default_model_path, 10, out_dir=tmp_path, seed=1,
                              seed_file=str(EXAMPLE_SEEDS), grounding=False, judge="verdict")
    records = list(read_records(result.records_path))
    assert len(records) == 10
    assert all(r.format_check.passed for r in records)  # the constraint holds on a real vocabulary
    # every row says how much of its generation time the model waited for a core (Linux schedstat)
    assert all(0 <= r.timings["generation_waiting"] <= r.timings["generation"] for r in records)
    queries = [r.query or "" for r in records]
    # real sentences, not fragments or digits: batched sampling is not bit-for-bit repeatable across
    # runs, and the 135M model writes an odd fragment now and then, so one row in five may miss
    wordy = [q for q in queries if len(q.split()) >= 3 and sum(c.isalpha() for c in q) > len(q) / 2]
    assert len(wordy) >= 8, queries
    assert not any("the request" in q.casefold() for q in queries)  # nothing copied from the prompt
    assert len({q.casefold() for q in queries}) >= 8
    executed = [r for r in records if r.execution_check is not None]
    judged = [r for r in records if r.semantic_check is not None]
    assert executed and judged, "no row reached the sandbox and the judge"
    # each judged row failed a model-free check before the model was asked, or carries its verdict
    model_free = {"unused_query_value", "not_a_request", "repeated_call"}
    assert all(r.raw_verdict or r.semantic_check.reason in model_free for r in judged)
    assert any(r.raw_verdict for r in judged), "the model judged no row"


def test_default_model_judges_in_both_model_designs(default_model_path: Path) -> None:
    from apigen_local.checks.semantic import SemanticChecker, parse_answer, parse_verdict
    from apigen_local.run.calibrate import correct_rows
    from apigen_local.tools import load_library

    row = correct_rows(EXAMPLE_SEEDS, load_library(EXAMPLE_LIBRARY))[0]
    with LocalModel(default_model_path, n_ctx=4096, seed=0) as model:
        verdict = SemanticChecker(model, design="verdict").judge(row.query, row.tools, row.answers, [], seed=0)
        parsed = parse_verdict(verdict.raw)
        assert parsed is not None  # the constrained verdict is always readable
        # the stage follows the model's own yes or no, whichever it is (a judge that always
        # rejects, or always accepts, fails here)
        assert verdict.check.passed is parsed[1]
        assert verdict.check.passed or verdict.check.reason == "judged_wrong"
        agreement = SemanticChecker(model, design="agreement").judge(row.query, row.tools, row.answers, [], seed=0)
        own = parse_answer(agreement.raw)
        assert own and {call.name for call in own} <= {tool.name for tool in row.tools}
        # passes exactly when the model's own answer calls the row's functions
        assert agreement.check.passed is ({call.name for call in own} == {call.name for call in row.answers})
        assert agreement.check.passed or agreement.check.reason == "disagrees"
        assert "independent answer calls" in agreement.thought  # the reasoning kept in records.jsonl


def test_a_real_completion_says_how_long_the_model_waited(default_model_path: Path) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    with LocalModel(default_model_path, n_ctx=512) as model:
        batched = model.complete_json_many([([{"role": "user", "content": "Say a number."}], schema)],
                                           max_tokens=8, batch=1)[0]
    assert batched.core_wait is not None and 0.0 <= batched.core_wait <= 1.0
