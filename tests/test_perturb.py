"""Perturbation builder for calibration sets (pure logic, issue 13)."""

from __future__ import annotations

from apigen_local.checks.format import check_answers
from apigen_local.checks.perturb import KINDS, LabelledRow, perturb
from apigen_local.types import FunctionCall, Tool

ADD = Tool(
    name="add",
    description="Add two numbers.",
    parameters={"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"]},
)
UPPER = Tool(
    name="upper",
    description="Upper-case a text.",
    parameters={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
)
ROWS = [
    LabelledRow(query="Add 2 and 3.", answers=[FunctionCall(name="add", arguments={"a": 2, "b": 3})],
                tools=[ADD, UPPER]),
    LabelledRow(query="Shout 'good day' and add 4 to 5.",
                answers=[FunctionCall(name="upper", arguments={"text": "good day"}),
                         FunctionCall(name="add", arguments={"a": 4, "b": 5})],
                tools=[ADD, UPPER]),
    LabelledRow(query="Upper-case 'hi there'.", answers=[FunctionCall(name="upper", arguments={"text": "hi there"})],
                tools=[UPPER, ADD]),
]


def test_every_kind_is_built_and_differs_from_its_source() -> None:
    negatives = perturb(ROWS, seed=1)
    assert {n.kind for n in negatives} == set(KINDS)
    sources = {(r.query, tuple(c.model_dump_json() for c in r.answers)) for r in ROWS}
    for neg in negatives:
        assert not neg.positive
        assert (neg.query, tuple(c.model_dump_json() for c in neg.answers)) not in sources


def test_negatives_stay_well_formed() -> None:
    for neg in perturb(ROWS, seed=2):
        result = check_answers(neg.query, [c.model_dump() for c in neg.answers], neg.tools)
        assert result.passed, (neg.kind, result)


def test_drop_call_only_on_multi_call_rows() -> None:
    drops = [n for n in perturb(ROWS, seed=3) if n.kind == "drop_call"]
    assert len(drops) == 1 and len(drops[0].answers) == 1


def test_same_seed_same_set() -> None:
    assert perturb(ROWS, seed=4) == perturb(ROWS, seed=4)
