"""Stage 1, generation: the output schema for a request's offered tools, and one constrained
completion per request. The format checker validates the text afterwards, independently."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..model.bounds import SchemaBounds, bound_schema
from ..model.local import Completion, LocalModel
from ..types import FunctionCall, Tool
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


#: whether a request written for one drawn call states it (checks/part.py)
ChooseRequest = Callable[[str, FunctionCall, Sequence[Tool]], bool]
_PART_SEED = 7_919  # seed offsets of a calls-first row's parts and candidates
_CANDIDATE_SEED = 104_729


def _query_of(text: str) -> str | None:
    try:
        query = json.loads(text)["query"]
    except (ValueError, KeyError, TypeError):
        return None
    return query.strip() if isinstance(query, str) and query.strip() else None


#: what joins the requests written for the calls of one row
JOINER = " Also, "


def split_requests(query: str, count: int) -> list[str] | None:
    """The ``count`` requests :func:`join_requests` joined into ``query``, in call order; ``None`` when
    it does not split into exactly that many (a request that says "Also, " itself)."""
    parts = query.split(JOINER)
    return parts if len(parts) == count else None


def join_requests(parts: Sequence[str]) -> str:
    """One request of several asks, from the request written for each: "Is 77 prime? Also, divide
    144 by 12." A later part loses the capital of its first word unless it is a name or "I"."""
    joined = ""
    for part in parts:
        if not joined:
            joined = part
            continue
        if joined[-1] not in ".?!":
            joined += "."
        if part.split(" ", 1)[0].lower() in _COMMON_OPENERS:
            part = part[0].lower() + part[1:]
        joined += f"{JOINER}{part}"
    return joined


#: first words of requests that are not names: lowercased after "Also,"
_COMMON_OPENERS = frozenset([
    "what", "how", "is", "are", "can", "could", "would", "will", "do", "does", "did", "which", "who", "when",
    "where", "why", "please", "convert", "divide", "add", "find", "get", "fetch", "count", "make", "give", "tell",
    "show", "compute", "calculate", "check", "encrypt", "list", "sort", "merge", "split", "schedule", "format",
    "normalise", "normalize", "shorten", "truncate", "build", "plan", "total", "turn", "create", "summarise",
    "summarize", "return", "work", "look"])


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
                 bounds: SchemaBounds | None = None, answers_first: bool = False, candidates: int = 1,
                 choose: ChooseRequest | None = None) -> None:
        """``candidates``: requests written for each drawn call of a calls-first row; ``choose``
        picks among them (the first it accepts; without it, or when it accepts none, the first)."""
        self.model = model
        self.candidates = max(1, candidates)
        self.choose = choose
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

    def _items(self, request: GenerationRequest) -> list[tuple[GenerationRequest, int]]:
        """What the model writes for ``request``: a calls-first row asks ``candidates`` requests for
        each of its calls (``(part, seed)`` pairs, part by part); any other row asks once."""
        if not request.calls:
            return [(request, request.sample_seed)]
        return [(request.part(part), (request.sample_seed + _PART_SEED * part + _CANDIDATE_SEED * candidate) % 2**31)
                for part in range(len(request.calls)) for candidate in range(self.candidates)]

    def _finish(self, request: GenerationRequest, completions: Sequence[Completion]) -> Completion:
        """The row's completion: a calls-first row joins, call by call, the first candidate that
        ``choose`` accepts (else the first candidate), in the query-first output form."""
        if not request.calls:
            return as_generation(request, completions[0]) if request.writes_request_only else completions[0]
        queries: list[str] = []
        for part, call in enumerate(request.calls):
            candidates = completions[part * self.candidates:(part + 1) * self.candidates]
            texts = [_query_of(c.text) for c in candidates]
            chosen = next((t for t in texts if t is not None and self.choose is not None
                           and self.choose(t, call, request.tools)), None)
            first = next((t for t in texts if t is not None), None)
            if chosen is None and first is None:  # nothing readable: the format check says why
                return as_generation(request, candidates[0])
            queries.append(chosen if chosen is not None else first)  # type: ignore[arg-type]
        text = json.dumps({"query": join_requests(queries)}, ensure_ascii=False)
        merged = completions[0].model_copy(update={
            "text": text, "prompt_tokens": sum(c.prompt_tokens for c in completions),
            "completion_tokens": sum(c.completion_tokens for c in completions),
            "seconds": sum(c.seconds for c in completions)})
        return as_generation(request, merged)

    def generate_many(self, requests: Sequence[GenerationRequest], *, batch: int = 8,
                      on_done: Callable[[int], None] | None = None) -> list[Completion]:
        """One constrained completion per request, ``batch`` decoded at once (see
        :meth:`LocalModel.complete_json_many`); in order. The format checker validates each.
        ``on_done(i)`` is called as request ``i`` finishes."""
        plans = [self._items(r) for r in requests]
        owners = [i for i, plan in enumerate(plans) for _ in plan]
        left = [len(plan) for plan in plans]

        def item_done(item: int) -> None:
            left[owners[item]] -= 1
            if on_done is not None and left[owners[item]] == 0:
                on_done(owners[item])

        completions = self.model.complete_json_many(
            [(self.messages(part), self.schema(part)) for plan in plans for part, _ in plan],
            max_tokens=self.max_tokens, temperature=self.temperature,
            seeds=[seed for plan in plans for _, seed in plan], batch=batch, on_done=item_done,
        )
        finished, start = [], 0
        for request, plan in zip(requests, plans, strict=True):
            finished.append(self._finish(request, completions[start:start + len(plan)]))
            start += len(plan)
        return finished

    def generate(self, request: GenerationRequest) -> Completion:
        """One constrained completion for ``request`` (a calls-first row: its candidates, one at a time)."""
        completions = [self.model.complete_json(self.messages(part), self.schema(part), max_tokens=self.max_tokens,
                                                temperature=self.temperature, seed=seed)
                       for part, seed in self._items(request)]
        return self._finish(request, completions)
