"""Stage 1, generation: the output schema for a request's offered tools, and one constrained
completion per request. The format checker validates the text afterwards, independently."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from .model import Completion, LocalModel
from .prompts import generation_messages
from .sampling import GenerationRequest
from .types import Tool

QUERY_MAX_CHARS = 280
STRING_MAX_CHARS = 48
ARRAY_MAX_ITEMS = 4
INTEGER_MAX_DIGITS = 6
FRACTION_MAX_DIGITS = 4


class SchemaBounds(BaseModel):
    """Length limits written into every generated string and list."""

    query_max_chars: int = QUERY_MAX_CHARS
    string_max_chars: int = STRING_MAX_CHARS
    array_max_items: int = ARRAY_MAX_ITEMS


def bound_schema(schema: dict[str, Any], bounds: SchemaBounds) -> dict[str, Any]:
    """A copy of a parameter schema where every string, list and number has a length bound.

    Objects get ``additionalProperties: false``; existing tighter bounds are kept.
    """
    bounded = copy.deepcopy(schema)
    _bound_in_place(bounded, bounds)
    return bounded


def _bound_in_place(node: Any, bounds: SchemaBounds) -> None:
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind}
    if "string" in kinds and "enum" not in node and "const" not in node:
        node["maxLength"] = min(node.get("maxLength", bounds.string_max_chars), bounds.string_max_chars)
    if "array" in kinds:
        node["maxItems"] = min(node.get("maxItems", bounds.array_max_items), bounds.array_max_items)
        node.setdefault("items", {"type": "string"})
    if "integer" in kinds:
        node["maxDigits"] = min(node.get("maxDigits", INTEGER_MAX_DIGITS), INTEGER_MAX_DIGITS)
    if "number" in kinds:
        node.update(maxDigitsInteger=INTEGER_MAX_DIGITS, minDigitsFraction=1,
                    maxDigitsFraction=FRACTION_MAX_DIGITS, minDigitsExponent=1,
                    maxDigitsExponent=1)
    if "object" in kinds:
        # Outlines cannot bound the keys of a free-form object, so such an object stays empty.
        node.setdefault("properties", {})
        node["additionalProperties"] = False
    for key in ("properties", "$defs", "definitions"):
        for child in (node.get(key) or {}).values():
            _bound_in_place(child, bounds)
    _bound_in_place(node.get("items"), bounds)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for child in node.get(key) or []:
            _bound_in_place(child, bounds)


def call_schema(tool: Tool, bounds: SchemaBounds) -> dict[str, Any]:
    """Schema of one call of ``tool``: its name as a constant and its bounded arguments."""
    arguments = bound_schema(tool.parameters, bounds)
    arguments["type"] = "object"
    arguments.setdefault("properties", {})
    arguments["additionalProperties"] = False
    return {
        "type": "object",
        "properties": {"name": {"const": tool.name}, "arguments": arguments},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def output_schema(
    tools: Sequence[Tool], *, min_calls: int, max_calls: int, bounds: SchemaBounds | None = None
) -> dict[str, Any]:
    """The ``{"pairs": [{"query", "answers"}]}`` schema the model's output is held to."""
    bounds = bounds or SchemaBounds()
    calls = [call_schema(tool, bounds) for tool in tools]
    pair = {
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 8, "maxLength": bounds.query_max_chars},
            "answers": {
                "type": "array",
                "items": calls[0] if len(calls) == 1 else {"anyOf": calls},
                "minItems": min_calls,
                "maxItems": max_calls,
            },
        },
        "required": ["query", "answers"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"pairs": {"type": "array", "items": pair, "minItems": 1, "maxItems": 1}},
        "required": ["pairs"],
        "additionalProperties": False,
    }


class Generator:
    """Turns a :class:`GenerationRequest` into the model's raw, constrained output."""

    def __init__(self, model: LocalModel, *, max_tokens: int = 1024, temperature: float = 0.7,
                 bounds: SchemaBounds | None = None) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.bounds = bounds or SchemaBounds()

    def schema(self, request: GenerationRequest) -> dict[str, Any]:
        """The output schema for ``request``."""
        return output_schema(request.tools, min_calls=request.min_calls,
                             max_calls=request.max_calls, bounds=self.bounds)

    def generate(self, request: GenerationRequest) -> Completion:
        """One constrained completion for ``request``."""
        return self.model.complete_json(
            generation_messages(request),
            self.schema(request),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            seed=request.sample_seed,
        )
