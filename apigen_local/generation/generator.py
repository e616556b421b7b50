"""Stage 1, generation: the output schema for a request's offered tools, and one constrained
completion per request. The format checker validates the text afterwards, independently."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..model.bounds import SchemaBounds, bound_schema
from ..model.local import Completion, LocalModel
from ..types import Tool
from .prompts import generation_messages
from .sampling import GenerationRequest


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
    tools: Sequence[Tool], *, min_calls: int, max_calls: int, bounds: SchemaBounds | None = None,
    answers_first: bool = False,
) -> dict[str, Any]:
    """The ``{"pairs": [{"query", "answers"}]}`` schema the model's output is held to.

    The constraint emits keys in schema order: ``answers_first`` makes the model choose the
    calls before it writes the query that asks for them.
    """
    bounds = bounds or SchemaBounds()
    calls = [call_schema(tool, bounds) for tool in tools]
    query = {"type": "string", "minLength": 8, "maxLength": bounds.query_max_chars}
    answers = {
        "type": "array",
        "items": calls[0] if len(calls) == 1 else {"anyOf": calls},
        "minItems": min_calls,
        "maxItems": max_calls,
    }
    pair = {
        "type": "object",
        "properties": {"answers": answers, "query": query} if answers_first else {"query": query, "answers": answers},
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
    """Turns a :class:`GenerationRequest` into the model's raw, constrained output.

    ``max_tokens=None`` lets the schema's length bound set the budget, so JSON is never cut.
    """

    def __init__(self, model: LocalModel, *, max_tokens: int | None = None, temperature: float = 0.7,
                 bounds: SchemaBounds | None = None, answers_first: bool = False) -> None:
        self.model = model
        self.answers_first = answers_first
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.bounds = bounds or SchemaBounds()

    def schema(self, request: GenerationRequest) -> dict[str, Any]:
        """The output schema for ``request``."""
        return output_schema(request.tools, min_calls=request.min_calls,
                             max_calls=request.max_calls, bounds=self.bounds,
                             answers_first=self.answers_first)

    def prepare(self, requests: Iterable[GenerationRequest]) -> None:
        """Compile the constraints of upcoming ``requests`` in the background (see
        :meth:`LocalModel.prepare`)."""
        self.model.prepare(self.schema(request) for request in requests)

    def generate_many(self, requests: Sequence[GenerationRequest], *, batch: int = 8) -> list[Completion]:
        """One constrained completion per request, ``batch`` decoded at once (see
        :meth:`LocalModel.complete_json_many`); in order. The format checker validates each."""
        return self.model.complete_json_many(
            [(generation_messages(r, answers_first=self.answers_first), self.schema(r)) for r in requests],
            max_tokens=self.max_tokens, temperature=self.temperature,
            seeds=[r.sample_seed for r in requests], batch=batch,
        )

    def generate(self, request: GenerationRequest) -> Completion:
        """One constrained completion for ``request``."""
        return self.model.complete_json(
            generation_messages(request, answers_first=self.answers_first),
            self.schema(request),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            seed=request.sample_seed,
        )
