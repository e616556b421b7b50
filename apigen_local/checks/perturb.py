"""Perturbed copies of correct rows, the negatives of a calibration set (issue 13).

Each negative keeps the row well-formed against its tools (same argument types, offered functions
only), so it is one the format stage cannot reject; whether it still executes is for the caller to
check in the sandbox. Kinds: ``query_swap``, ``value_change``, ``other_function``, ``drop_call``,
``extra_call``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel

from ..types import FunctionCall, Tool

PerturbationKind = Literal["query_swap", "value_change", "other_function", "drop_call", "extra_call"]
KINDS: tuple[PerturbationKind, ...] = ("query_swap", "value_change", "other_function", "drop_call", "extra_call")


class LabelledRow(BaseModel):
    """One calibration row: a correct row (``kind`` None) or a perturbed copy of one."""

    query: str
    answers: list[FunctionCall]
    tools: list[Tool]
    kind: PerturbationKind | None = None

    @property
    def positive(self) -> bool:
        return self.kind is None


def _changed(value: Any, rng: random.Random) -> Any:
    """Another value of the same JSON type, or ``None`` when none can be made."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.choice([-3, -2, 2, 3, 7]) if value not in (0,) else rng.choice([5, 9])
    if isinstance(value, float):
        return round(value + rng.choice([1.5, 2.5, 10.0]), 6)
    if isinstance(value, str) and value:
        words = value.split()
        return " ".join(reversed(words)) if len(words) > 1 and words != words[::-1] else value + "x"
    if isinstance(value, list) and value:
        return value[:-1] if len(value) > 1 else [_changed(value[0], rng)]
    return None


def _calls_by_name(rows: Sequence[LabelledRow]) -> dict[str, list[FunctionCall]]:
    calls: dict[str, list[FunctionCall]] = {}
    for row in rows:
        for call in row.answers:
            calls.setdefault(call.name, []).append(call)
    return calls


def perturb(rows: Sequence[LabelledRow], seed: int = 0) -> list[LabelledRow]:
    """Every perturbation that applies to each correct row in ``rows``, at most one per kind per row."""
    rng = random.Random(seed)
    known = _calls_by_name(rows)
    out: list[LabelledRow] = []
    for i, row in enumerate(rows):
        names = {c.name for c in row.answers}
        others = [r for j, r in enumerate(rows) if j != i and r.query != row.query]
        if others:
            out.append(row.model_copy(update={"query": rng.choice(others).query, "kind": "query_swap"}))
        changeable = [(k, c, n) for k, c in enumerate(row.answers) for n, v in c.arguments.items()
                      if not isinstance(v, bool) and _changed(v, rng) not in (None, v)]
        if changeable:
            k, call, arg = rng.choice(changeable)
            new = FunctionCall(name=call.name, arguments={**call.arguments, arg: _changed(call.arguments[arg], rng)})
            answers = [*row.answers[:k], new, *row.answers[k + 1:]]
            out.append(row.model_copy(update={"answers": answers, "kind": "value_change"}))
        swaps = [t.name for t in row.tools if t.name not in names and known.get(t.name)]
        if swaps:
            replacement = rng.choice(known[rng.choice(swaps)])
            k = rng.randrange(len(row.answers))
            answers = [*row.answers[:k], replacement, *row.answers[k + 1:]]
            out.append(row.model_copy(update={"answers": answers, "kind": "other_function"}))
        if len(row.answers) > 1:
            k = rng.randrange(len(row.answers))
            out.append(row.model_copy(update={"answers": row.answers[:k] + row.answers[k + 1:], "kind": "drop_call"}))
        extras = [c for t in row.tools for c in known.get(t.name, []) if c not in row.answers]
        if extras:
            out.append(row.model_copy(update={"answers": [*row.answers, rng.choice(extras)], "kind": "extra_call"}))
    return out
