"""The function-fit check: the pure verdict, the scorer on the real default model, and its place
in the semantic stage."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from apigen_local.checks.fit import DEFAULT_MARGIN, WRONG_FUNCTION, check_fit, fit_prompt, fit_verdict
from apigen_local.checks.semantic import SemanticChecker
from apigen_local.model.files import fetch_default_model
from apigen_local.model.local import LocalModel
from apigen_local.tools import load_library
from apigen_local.types import FunctionCall

from .conftest import EXAMPLE_LIBRARY, REPO


def test_fit_verdict_passes_only_with_the_margin_over_every_uncalled_function() -> None:
    scores = {"is_prime": -2.0, "permutation_count": -2.5, "slugify": -4.0}
    assert fit_verdict(scores, {"is_prime"}, 0.3).passed
    tight = fit_verdict(scores, {"is_prime"}, 0.6)
    assert tight.reason == WRONG_FUNCTION and "permutation_count" in tight.detail
    assert fit_verdict(scores, {"slugify"}, 0.3).reason == WRONG_FUNCTION
    # the weakest called function decides
    assert fit_verdict(scores, {"is_prime", "slugify"}, 0.0).reason == WRONG_FUNCTION
    assert fit_verdict(scores, set(scores), 0.3).passed  # nothing to compare with


class _Scores:
    """A stand-in scorer for pure logic: fixed scores per function name, from the prompt text."""

    def __init__(self, by_name: dict[str, float]) -> None:
        self.by_name = by_name
        self.calls = 0

    def score_after(self, prompts: Sequence[Sequence[dict[str, str]]], text: str) -> list[float]:
        self.calls += 1
        return [next(v for k, v in self.by_name.items() if f"Function: {k}:" in p[0]["content"]) for p in prompts]


def test_the_semantic_stage_runs_fit_after_the_model_free_checks_only_with_a_model_and_a_margin() -> None:
    tools = load_library(EXAMPLE_LIBRARY).tools
    scorer = _Scores({tool.name: (-1.0 if tool.name == "permutation_count" else -3.0) for tool in tools})
    prime = [FunctionCall(name="is_prime", arguments={"n": 5})]
    judge = SemanticChecker(scorer, library=tools, fit_margin=DEFAULT_MARGIN)  # type: ignore[arg-type]
    verdict = judge.judge("How many permutations of 5 are there?", tools[:2], prime, [], seed=0)
    assert verdict.check.reason == WRONG_FUNCTION
    assert judge.judge("The number 5 is prime.", tools[:2], prime, [], seed=0).check.reason == "not_a_request"
    assert scorer.calls == 1  # a row the model-free checks reject is never scored
    assert SemanticChecker(None, library=tools, fit_margin=DEFAULT_MARGIN).judge(
        "How many permutations of 5 are there?", tools, prime, [], seed=0).passes
    assert SemanticChecker(scorer, library=tools).judge(  # type: ignore[arg-type]  # off by default
        "How many permutations of 5 are there?", tools, prime, [], seed=0).passes


@pytest.fixture(scope="module")
def default_model() -> LocalModel:
    with LocalModel(fetch_default_model(REPO / "models"), n_ctx=2048) as model:
        yield model


@pytest.mark.real_model
def test_scores_are_log_probabilities_and_repeat_exactly(default_model: LocalModel) -> None:
    tools = load_library(EXAMPLE_LIBRARY).tools
    prompts = [fit_prompt(tool) for tool in tools]
    first = default_model.score_after(prompts, "Is 221 a prime number?")
    again = default_model.score_after(list(reversed(prompts)), "Is 221 a prime number?")
    assert all(-20 < score < 0 and math.isfinite(score) for score in first)
    assert first == pytest.approx(list(reversed(again)), abs=1e-4)  # the reused prefix changes nothing


@pytest.mark.real_model
@pytest.mark.parametrize(("query", "function", "passed"), [
    # real rows of the default model (benchmarks/labelled/real_dev.jsonl)
    ("Is 5 prime?", "is_prime", True),
    ("What is the greatest common divisor of 105 and 15?", "greatest_common_divisor", True),
    ("How many permutations of 5 are there?", "is_prime", False),
])
def test_fit_on_the_default_model_tells_the_right_function_from_a_wrong_one(
        default_model: LocalModel, query: str, function: str, passed: bool) -> None:
    tools = load_library(EXAMPLE_LIBRARY).tools
    result = check_fit(default_model, query, [FunctionCall(name=function, arguments={})], tools)
    assert result.passed is passed


def test_fit_prompt_keeps_long_descriptions_short(tmp_path: Path) -> None:
    tool = load_library(EXAMPLE_LIBRARY).tools[0].model_copy(update={"description": "x" * 5000})
    assert len(fit_prompt(tool)[0]["content"]) < 400
