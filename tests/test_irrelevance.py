"""Irrelevance rows (``generate --irrelevance``): which rows become no-call rows, the check that no
remaining tool could serve the request, and how the run loop writes, counts and exports them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apigen_local.bfcl.export import export_bfcl
from apigen_local.checks.irrelevance import NO_TOOL_LEFT, TOOL_COULD_SERVE, check_irrelevance, words
from apigen_local.checks.request import NOT_A_REQUEST
from apigen_local.errors import ConfigError
from apigen_local.generation.generator import Generator, as_generation, request_schema
from apigen_local.generation.sampling import RequestSampler, load_seed_examples
from apigen_local.model.bounds import SchemaBounds
from apigen_local.model.local import Completion
from apigen_local.run.backends.memory import InMemory
from apigen_local.run.files import read_records
from apigen_local.tools import load_library
from apigen_local.types import FunctionCall, Record, Tool

from .conftest import EXAMPLE_LIBRARY, EXAMPLE_SEEDS, empty_gguf
from .fakes import FakeGenerate, FakeWorker

LIBRARY = load_library(EXAMPLE_LIBRARY)
DIVIDE, SLUG, GCD, PRIME = (LIBRARY.by_name[n] for n in ("getdivision", "slugify", "greatest_common_divisor",
                                                           "is_prime"))
CALL = [FunctionCall(name="getdivision", arguments={"dividend": 6, "divisor": 3})]
SPLIT = Tool(name="split_evenly", description="Divide an amount into equal shares.")


@pytest.fixture
def fake_model(tmp_path: Path) -> Path:
    path = tmp_path / "fake.gguf"
    empty_gguf(path, padding=40)  # the generate job only resolves the model's file
    return path


def test_no_remaining_tool_or_one_that_could_serve_is_refused() -> None:
    assert check_irrelevance("Divide 6 by 3.", [SLUG, PRIME], CALL).passed
    assert check_irrelevance("Divide 6 by 3.", [], CALL).reason == NO_TOOL_LEFT
    near = check_irrelevance("What is the greatest common divisor of 12 and 18?", [DIVIDE, SLUG], [])
    assert near.reason == TOOL_COULD_SERVE and "divisor" in near.detail  # getdivision's "divisor"
    assert words("Calculate the numbers' value, please") == set()  # generic words carry nothing


def test_irrelevance_rows_are_a_seeded_share_that_leaves_the_other_rows_alone() -> None:
    plain = RequestSampler(LIBRARY.tools, [], seed=5)
    mixed = RequestSampler(LIBRARY.tools, [], seed=5, irrelevance=0.3)
    marked = [i for i in range(300) if mixed.is_irrelevance(i)]
    assert 60 <= len(marked) <= 120  # about 30 %
    assert marked == [i for i in range(300) if RequestSampler(LIBRARY.tools, [], seed=5, irrelevance=0.3)
                      .is_irrelevance(i)]
    sources = []
    for i in range(300):
        request = mixed.request(i)
        if i in marked:
            assert request.irrelevance and request.style == "multiple" and len(request.tools) >= 2
            sources.append(request.irrelevance)
            if request.irrelevance == "written":  # the model writes the request alone, with no call
                assert (request.min_calls, request.max_calls, request.calls) == (0, 0, [])
                assert request.writes_request_only
        else:
            assert request == plain.request(i)
    assert 0.3 < sources.count("written") / len(sources) < 0.7
    with pytest.raises(ConfigError, match="at least 2 functions"):
        RequestSampler([DIVIDE], [], seed=0, irrelevance=0.2)


def test_a_written_irrelevance_row_asks_the_model_for_a_request_alone() -> None:
    sampler = RequestSampler(LIBRARY.tools, load_seed_examples(EXAMPLE_SEEDS), seed=2, irrelevance=0.5,
                             mode="calls_first")
    request = next(r for r in map(sampler.request, range(100)) if r.irrelevance == "written")
    generator = Generator(None, bounds=SchemaBounds())  # type: ignore[arg-type] - no decoding here
    assert generator.schema(request) == request_schema(SchemaBounds())
    messages = generator.messages(request)
    assert "none of these functions can do" in messages[-1]["content"]
    offered = {tool.name for tool in request.tools}
    for reply in (m for m in messages if m["role"] == "assistant"):  # seed requests for other functions
        query = json.loads(reply["content"])["query"]
        example = next(e for e in request.examples if e.query == query)
        assert not example.functions & offered
    reply = Completion(text=json.dumps({"query": "Book me a table for two."}), prompt_tokens=1,
                       completion_tokens=1, seconds=0.1)
    text = as_generation(request, reply).text
    assert json.loads(text) == {"pairs": [{"query": "Book me a table for two.", "answers": []}]}


class TwoToolWorker(FakeWorker):
    """The fake rows ("Divide 7 by 2."), every third one an irrelevance row offering getdivision and
    one other tool: slugify (unrelated) for even ids, split_evenly (it divides too) for odd ones;
    every twelfth is a statement, not a request. Rows 9, 21 and 33 are written ones (no call): 9 and
    33 offer slugify and is_prime, 21 getdivision itself."""

    def row(self, i: int) -> Record:
        record = super().row(i)
        if i % 3 == 0:
            record.style = "irrelevance"
            record.tools = [self.tool, SLUG if i % 2 == 0 else SPLIT]
            if i % 12 == 0 and record.query is not None:
                record.query = f"The quotient of {i + 1} and {i % 5}."
            if i in (9, 21, 33):
                record.answers = []
                record.tools = [SLUG, PRIME] if i != 21 else [self.tool, SLUG]
        return record


class Generate(FakeGenerate):
    def __init__(self, out: Path, model: Path, backend: InMemory) -> None:
        super().__init__(out, model, backend, rows=36, batch_rows=4)


def test_a_passing_irrelevance_row_loses_its_function_and_its_calls(tmp_path: Path, fake_model: Path) -> None:
    worker = TwoToolWorker(DIVIDE)
    result = Generate(tmp_path / "run", fake_model, InMemory(worker)).run()
    records = {r.id: r for r in read_records(result.records_path)}
    assert not {i for i in worker.checked if i % 3 == 0}  # its calls are dropped: nothing to execute
    assert all(records[i].grounding_check is None for i in range(0, 36, 3))
    irrelevant = [r for r in records.values() if r.style == "irrelevance"]
    converted = [r for r in irrelevant if r.irrelevance_check is not None]
    written = {9, 21, 33}
    assert converted and all(r.answers == [] and [t.name for t in r.tools] != [] for r in converted)
    assert all("getdivision" not in {t.name for t in r.tools} and r.irrelevant_to[0].name == "getdivision"
               for r in converted if r.id not in written)
    assert records[21].rejection == ("irrelevance", TOOL_COULD_SERVE) and records[21].irrelevant_to == []
    kept = {r.id for r in converted if r.accepted}
    assert {9, 33} <= kept and all(i % 2 == 0 and i % 12 for i in kept - written)  # requests beside slugify only
    assert all(records[i].rejection == ("irrelevance", NOT_A_REQUEST) for i in {r.id for r in converted} if i % 12 == 0)
    assert all(records[i].rejection == ("irrelevance", TOOL_COULD_SERVE) for i in {r.id for r in converted} - written
               if i % 2 and i % 12)
    # a row that failed an earlier check stays as it was, rejected there
    assert all(r.answers and r.irrelevance_check is None for r in irrelevant if r not in converted)
    stats = result.stats
    assert stats.styles["irrelevance"].total == len(irrelevant) and stats.styles["irrelevance"].passed == len(kept)
    assert stats.stages["irrelevance"].total == len(converted)
    rows = [json.loads(line) for line in result.dataset_path.read_text().splitlines()]
    assert sorted(row["id"] for row in rows if row["answers"] == "[]") == sorted(kept)
    bfcl = export_bfcl(records.values(), tmp_path / "bfcl")
    assert bfcl.written["irrelevance"] == len(kept) and not bfcl.refused


def test_runs_without_irrelevance_show_no_such_stage(tmp_path: Path, fake_model: Path) -> None:
    result = Generate(tmp_path / "run", fake_model, InMemory(FakeWorker(DIVIDE))).run()
    assert "irrelevance" not in result.stats.stages and "irrelevance" not in result.stats.styles


def test_the_model_writes_a_no_call_row_under_its_constraint(local_model) -> None:
    """Real llama.cpp (the tiny model): a written irrelevance row comes out as a request and no call."""
    from apigen_local.checks.format import check_generation

    sampler = RequestSampler(LIBRARY.tools, load_seed_examples(EXAMPLE_SEEDS), seed=4, irrelevance=0.5)
    request = next(r for r in map(sampler.request, range(100)) if r.irrelevance == "written")
    completion = Generator(local_model, bounds=SchemaBounds()).generate(request)
    pair, verdict = check_generation(completion.text, request.tools, min_calls=0, max_calls=0)[0]
    assert verdict.passed and pair is not None and pair.answers == [] and len(pair.query) >= 8
