"""Draft seed rows (few-shot examples) for a library, without a model, for the user to edit.

A small model shown no example rows writes bare function names as requests. A drafted row gives
it the shape to copy: one call per function with values drawn as calls-first draws them
(:mod:`~.values`; run in the sandbox when one is given, so a draft never raises; the first
draft of a function passes the most options), and a request made from the function's description
in the imperative,
followed by every value the call passes (``Convert a temperature between units: value 36.6,
from unit celsius, to unit fahrenheit.``). Every value is stated, so the row passes grounding.
The requests read like forms, not like people: edit them into the requests your users write.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from typing import Any

from ..tool_specs import xlam_tools
from ..types import FunctionCall, Tool
from .calls_first import CallCheck, build_pool
from .values import ValueDrawer

_ES_ENDINGS = ("ches", "shes", "sses", "xes", "zes")


def imperative(description: str, name: str) -> str:
    """The description's first sentence as a command: "Calculates the mean." -> "Calculate the mean"."""
    sentence = re.split(r"(?<=[.!?])\s", description.strip(), maxsplit=1)[0].rstrip(".!? ")
    if not sentence:
        return name.replace("_", " ").capitalize()
    first, _, rest = sentence.partition(" ")
    lowered = first.casefold()
    if lowered.endswith("ies") and len(first) > 4:
        first = first[:-3] + "y"
    elif lowered.endswith(_ES_ENDINGS):
        first = first[:-2]
    elif lowered.endswith("s") and not lowered.endswith("ss") and len(first) > 3:
        first = first[:-1]
    rest = re.sub(r"\band (returns|gives|prints|outputs)\b", lambda m: f"and {m[1][:-1]}", rest)
    return f"{first[:1].upper()}{first[1:]} {rest}".strip()


def _stated(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_stated(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key.replace('_', ' ')} {_stated(item)}" for key, item in value.items())
    return str(value)


def draft_query(tool: Tool, call: FunctionCall) -> str:
    """A request that asks for ``call`` and states each of its values."""
    values = ", ".join(f"{name.replace('_', ' ')} {_stated(value)}" for name, value in call.arguments.items())
    head = imperative(tool.description, tool.name)
    return f"{head}: {values}." if values else f"{head}."


def draft_seed_rows(tools: Sequence[Tool], *, per_function: int = 2, seed: int = 0,
                    check: CallCheck | None = None) -> list[dict[str, Any]]:
    """``per_function`` drafted xlam rows per tool, from the calls :func:`~.calls_first.build_pool`
    draws (with ``check``, only calls that ran). A tool's first row is its call with the most
    arguments, so that the drafts show its options too; a tool with no call is left out."""
    rng = random.Random(seed)
    pool = build_pool(tools, ValueDrawer([]), seed, check)
    rows: list[dict[str, Any]] = []
    for tool in tools:
        calls = pool.calls.get(tool.name, [])
        if not calls:
            continue
        fullest = max(calls, key=lambda call: len(call.arguments))
        others = [call for call in calls if call is not fullest]
        for call in [fullest, *rng.sample(others, min(per_function - 1, len(others)))]:
            rows.append({"id": len(rows), "query": draft_query(tool, call),
                         "answers": json.dumps([call.model_dump()]),
                         "tools": json.dumps(xlam_tools([tool]))})
    return rows
