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
        "properties": {"query": {"type": "string", "minLength": 8, "maxLength": bounds.request_max_chars}},
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
        """``candidates``: the most requests written for each drawn call of a calls-first row; the
        next is written only while ``choose`` accepts none of them (without ``choose``, one)."""
        self.model = model
        self.candidates = max(1, candidates) if choose is not None else 1
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

    def generate_many(self, requests: Sequence[GenerationRequest], *, batch: int = 8,
                      on_done: Callable[[int], None] | None = None) -> list[Completion]:
        """One constrained completion per request, ``batch`` decoded at once (see
        :meth:`LocalModel.complete_json_many`); in order. The format checker validates each.
        A calls-first row is written in rounds: each round writes the next candidate request of
        every call whose requests so far ``choose`` accepted none of. ``on_done(i)`` is called as
        request ``i`` is settled."""
        drafts = [_Draft(request, self.candidates, self.choose) for request in requests]
        waiting = [(row, part) for row, draft in enumerate(drafts) for part in range(draft.parts)]
        while waiting:
            items = [(row, part, drafts[row].start(part)) for row, part in waiting]

            def item_done(item: int, text: str, items: list[tuple[int, int, int]] = items) -> None:
                row, part, candidate = items[item]
                drafts[row].judge(part, candidate, text)
                if on_done is not None and drafts[row].settled:
                    on_done(row)

            asked = [drafts[row].item(part) for row, part, _ in items]
            completions = self.model.complete_json_many(
                [(self.messages(item), self.schema(item)) for item in asked],
                max_tokens=self.max_tokens, temperature=self.temperature,
                seeds=[drafts[row].seed(part, candidate) for row, part, candidate in items], batch=batch,
                on_done=item_done)
            for (row, part, _), completion in zip(items, completions, strict=True):
                drafts[row].written[part].append(completion)
            waiting = [(row, part) for row, draft in enumerate(drafts) for part in draft.open_parts()]
        return [draft.finish() for draft in drafts]

    def generate(self, request: GenerationRequest) -> Completion:
        """One constrained completion for ``request`` (a calls-first row: its candidates, one at a time)."""
        draft = _Draft(request, self.candidates, self.choose)
        while parts := draft.open_parts():
            for part in parts:
                candidate, item = draft.start(part), draft.item(part)
                completion = self.model.complete_json(self.messages(item), self.schema(item),
                                                      max_tokens=self.max_tokens, temperature=self.temperature,
                                                      seed=draft.seed(part, candidate))
                draft.judge(part, candidate, completion.text)
                draft.written[part].append(completion)
        return draft.finish()


class _Draft:
    """What the model has written so far for one request: for a calls-first row, the candidate
    requests of each drawn call and the first that ``choose`` accepted; else its one completion."""

    def __init__(self, request: GenerationRequest, candidates: int, choose: ChooseRequest | None) -> None:
        self.request = request
        self.parts = max(1, len(request.calls))
        self.limit = candidates if request.calls else 1
        self.choose = choose if request.calls else None
        self.written: list[list[Completion]] = [[] for _ in range(self.parts)]
        self.started = [0] * self.parts
        self.finished = [0] * self.parts
        self.kept: list[int | None] = [None] * self.parts

    def item(self, part: int) -> GenerationRequest:
        """What the model is asked for ``part``: the row itself, or one drawn call's request."""
        return self.request.part(part) if self.request.calls else self.request

    def seed(self, part: int, candidate: int) -> int:
        """The sampling seed of ``candidate`` of ``part``: fixed by the row, so a rerun writes the same."""
        if not self.request.calls:
            return self.request.sample_seed
        return (self.request.sample_seed + _PART_SEED * part + _CANDIDATE_SEED * candidate) % 2**31

    def start(self, part: int) -> int:
        """Count one more candidate of ``part`` as asked for, and return its number."""
        self.started[part] += 1
        return self.started[part] - 1

    def judge(self, part: int, candidate: int, text: str) -> None:
        """Note that ``candidate`` of ``part`` is written, and keep it if ``choose`` accepts it first."""
        self.finished[part] += 1
        if self.choose is None or self.kept[part] is not None:
            return
        query = _query_of(text)
        if query is not None and self.choose(query, self.request.calls[part], self.request.tools):
            self.kept[part] = candidate

    def open_parts(self) -> list[int]:
        """The parts that need another candidate: none accepted, and fewer than the limit written."""
        return [part for part in range(self.parts) if self.kept[part] is None and self.started[part] < self.limit]

    @property
    def settled(self) -> bool:
        """Whether nothing more will be written for this request."""
        return self.started == self.finished and not self.open_parts()

    def finish(self) -> Completion:
        """The row's completion: a calls-first row joins, call by call, its kept candidate (else its
        first readable one), in the query-first output form."""
        if not self.request.calls:
            only = self.written[0][0]
            return as_generation(self.request, only) if self.request.writes_request_only else only
        queries: list[str] = []
        for part in range(self.parts):
            texts = [_query_of(c.text) for c in self.written[part]]
            kept = self.kept[part]
            query = texts[kept] if kept is not None else next((t for t in texts if t is not None), None)
            if query is None:  # nothing readable: the format check says why
                return as_generation(self.request, self.written[part][0])
            queries.append(query)
        every = [c for written in self.written for c in written]
        text = json.dumps({"query": join_requests(queries)}, ensure_ascii=False)
        merged = every[0].model_copy(update={
            "text": text, "prompt_tokens": sum(c.prompt_tokens for c in every),
            "completion_tokens": sum(c.completion_tokens for c in every), "seconds": sum(c.seconds for c in every)})
        return as_generation(self.request, merged)
