"""Stage 1, generation: the output schema for a request's offered tools, and one constrained
completion per request. The format checker validates the text afterwards, independently."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..model.bounds import SchemaBounds, bound_schema
from ..model.local import Completion, LocalModel
from ..types import Tool
from .prompts import Message, generation_messages, request_messages, unanswerable_messages
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


def request_schema(bounds: SchemaBounds) -> dict[str, Any]:
    """Calls-first: the ``{"query": ...}`` schema of the request the model writes for given calls."""
    return {
        "type": "object",
        "properties": {"query": {"type": "string", "minLength": 8, "maxLength": bounds.query_max_chars}},
        "required": ["query"],
        "additionalProperties": False,
    }


def as_generation(request: GenerationRequest, completion: Completion) -> Completion:
    """Calls-first: the model's request joined with the drawn calls (none for an irrelevance row it
    wrote), in the query-first output form, so the format check reads every mode alike. An
    unreadable request is kept as it came."""
    try:
        query = json.loads(completion.text)["query"]
    except (ValueError, KeyError, TypeError):
        return completion
    pair = {"query": query, "answers": [call.model_dump() for call in request.calls]}
    return completion.model_copy(update={"text": json.dumps({"pairs": [pair]}, ensure_ascii=False)})


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
        if request.writes_request_only:
            return request_schema(self.bounds)
        return output_schema(request.tools, min_calls=request.min_calls,
                             max_calls=request.max_calls, bounds=self.bounds,
                             answers_first=self.answers_first)

    def messages(self, request: GenerationRequest) -> list[Message]:
        """The prompt for ``request``: the calls-first one when its calls are already drawn, the
        irrelevance one when it has none."""
        if request.irrelevance == "written":
            return unanswerable_messages(request)
        if request.calls:
            return request_messages(request)
        return generation_messages(request, answers_first=self.answers_first)

    def prepare(self, requests: Iterable[GenerationRequest]) -> None:
        """Compile the constraints of upcoming ``requests`` in the background (see
        :meth:`LocalModel.prepare`)."""
        self.model.prepare(self.schema(request) for request in requests)

    def generate_many(self, requests: Sequence[GenerationRequest], *, batch: int = 8,
                      on_done: Callable[[int], None] | None = None) -> list[Completion]:
        """One constrained completion per request, ``batch`` decoded at once (see
        :meth:`LocalModel.complete_json_many`); in order. The format checker validates each.
        ``on_done(i)`` is called as request ``i`` finishes."""
        completions = self.model.complete_json_many(
            [(self.messages(r), self.schema(r)) for r in requests],
            max_tokens=self.max_tokens, temperature=self.temperature,
            seeds=[r.sample_seed for r in requests], batch=batch, on_done=on_done,
        )
        return [as_generation(r, c) if r.writes_request_only else c for r, c in zip(requests, completions, strict=True)]

    def generate(self, request: GenerationRequest) -> Completion:
        """One constrained completion for ``request``."""
        completion = self.model.complete_json(
            self.messages(request), self.schema(request), max_tokens=self.max_tokens,
            temperature=self.temperature, seed=request.sample_seed,
        )
        return as_generation(request, completion) if request.writes_request_only else completion
