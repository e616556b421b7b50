"""``--judge round-trip``: the model reads the request back and must make exactly the row's calls (issue 38)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apigen_local.checks.semantic import SemanticChecker, same_calls
from apigen_local.cli import build_parser
from apigen_local.model.local import Completion
from apigen_local.types import FunctionCall, Tool

DIVIDE = Tool(name="getdivision", description="Divides two integers.", parameters={
    "type": "object", "properties": {"dividend": {"type": "integer"}, "divisor": {"type": "integer"}},
    "required": ["dividend", "divisor"]})


def _call(dividend: Any, divisor: Any) -> FunctionCall:
    return FunctionCall(name="getdivision", arguments={"dividend": dividend, "divisor": divisor})


class ReadsBack:
    """A model whose own answer to any request is ``calls``."""

    name = "reads-back"

    def __init__(self, calls: list[FunctionCall]) -> None:
        self.calls = calls

    def complete_json(self, messages: Any, schema: Any, **_: Any) -> Completion:
        text = json.dumps({"calls": [call.model_dump() for call in self.calls]})
        return Completion(text=text, prompt_tokens=1, completion_tokens=1, seconds=0.0)


def test_same_calls_compares_values_in_any_order() -> None:
    assert same_calls([_call(144, 12), _call(365, 7)], [_call(365.0, 7), _call(144, 12)])
    assert not same_calls([_call(144, 12)], [_call(12, 144)])
    assert not same_calls([_call(144, 12)], [_call(144, 12), _call(144, 12)])
    assert same_calls([FunctionCall(name="f", arguments={"text": "Hello  World"})],
                      [FunctionCall(name="f", arguments={"text": "hello world"})])


@pytest.mark.parametrize(("own", "passes"), [
    ([_call(144, 12)], True),
    ([_call(144, 12), _call(144, 12), _call(144, 12)], True),  # a repeat until the length limit is one call
    ([_call(12, 144)], False),
    ([_call(144, 12), _call(144, 6)], False),
])
def test_the_round_trip_design_passes_only_the_same_calls(own: list[FunctionCall], passes: bool) -> None:
    checker = SemanticChecker(ReadsBack(own), design="round_trip")  # type: ignore[arg-type]
    verdict = checker.judge("Divide 144 by 12.", [DIVIDE], [_call(144, 12)], [], seed=0)
    assert verdict.passes is passes
    assert verdict.check.reason == (None if passes else "round_trip_differs")


def test_the_cli_takes_round_trip_with_a_hyphen() -> None:
    args = build_parser().parse_args(["generate", "--library", "x.py", "--judge", "round-trip"])
    assert args.judge == "round_trip"
