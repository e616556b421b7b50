"""All prompt text in one place: the generator's and the semantic judge's messages."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .sampling import GenerationRequest
from ..types import CallResult, FunctionCall, Tool

Message = dict[str, str]

GENERATOR_SYSTEM = """\
You label data for training function-calling assistants. For the functions you are given, \
write realistic user requests and the exact function calls that fulfil them, as JSON.

A good request:
- sounds like something a real person would ask, in plain words, brief and unambiguous;
- states a concrete, believable value for every argument the calls need (real-looking names, \
dates such as 2024-03-15, amounts, identifiers); numbers may be written as digits or words;
- varies in difficulty, from simple everyday uses to advanced ones.

A good answer:
- is a list of calls, one call for each separate thing the request asks for;
- uses only the functions offered, with argument names and value types exactly as their \
schemas define, and every required argument filled in;
- would, once executed, fully satisfy the request."""

STYLE_INSTRUCTIONS: dict[str, str] = {
    "simple": "Write a request that needs exactly one call of the single function offered.",
    "multiple": (
        "Several functions are offered but only one fits: write a request that needs exactly "
        "one call of the most suitable function."
    ),
    "parallel": (
        "Write a request that asks for the same kind of thing {min_calls} to {max_calls} times "
        "with different values, answered by that many calls of the one function offered."
    ),
    "parallel_multiple": (
        "Write a request made of {min_calls} to {max_calls} independent parts, answered by "
        "that many calls, using at least two different functions from those offered."
    ),
}

JUDGE_SYSTEM = """\
You check the quality of training data for function-calling assistants. You see a user \
request, the function calls another model chose for it, and what those calls returned when \
they were executed. Decide whether the calls truly serve the request.

Answer "no" when any of these holds:
1. a call does not serve the request's goal, or an argument value is wrong or invented;
2. a call uses a function that does not fit, when a better one was available;
3. there are more or fewer calls than the request has separate asks;
4. a result is unrelated to what the function is for;
5. a result shows an error, or that the call did not really succeed.

Functions may be simple stand-ins and results may be cut short; neither is a reason to fail. \
Keep the thought short; when the data passes, it may be empty."""


def _format_tools(tools: Sequence[Tool]) -> str:
    return json.dumps([tool.openai() for tool in tools], ensure_ascii=False)


def generation_messages(request: GenerationRequest) -> list[Message]:
    """The chat messages that ask the model for one query/answer pair."""
    parts: list[str] = []
    if request.examples:
        shots = "\n\n".join(
            f"## Query:\n{example.query}\n## Answers:\n{example.answers}"
            for example in request.examples
        )
        parts.append(f"Examples of requests and answers for other functions:\n{shots}")
    parts.append(f"Functions offered:\n{_format_tools(request.tools)}")
    instruction = STYLE_INSTRUCTIONS[request.style].format(
        min_calls=request.min_calls, max_calls=request.max_calls
    )
    parts.append(
        f"{instruction}\n\nReply with JSON only, in this shape:\n"
        '{"pairs": [{"query": "the request", "answers": '
        '[{"name": "function_name", "arguments": {"argument": "value"}}]}]}'
    )
    return [
        {"role": "system", "content": GENERATOR_SYSTEM},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def judge_messages(
    query: str,
    tools: Sequence[Tool],
    calls: Sequence[FunctionCall],
    results: Sequence[CallResult],
    *,
    result_chars: int = 400,
) -> list[Message]:
    """The chat messages that ask the model to judge one executed row."""
    shown: list[Any] = []
    for result in results:
        text = json.dumps(result.result if result.ok else {"error": result.error_message},
                          ensure_ascii=False, default=str)
        shown.append(text if len(text) <= result_chars else text[:result_chars] + "…")
    user = (
        f"Functions offered:\n{_format_tools(tools)}\n\n"
        f"User request:\n{query}\n\n"
        f"Calls made:\n{json.dumps([c.model_dump() for c in calls], ensure_ascii=False)}\n\n"
        f"Execution results, in order:\n" + "\n".join(f"{i + 1}. {s}" for i, s in enumerate(shown))
        + '\n\nReply with JSON only: {"thought": "short reasoning", "passes": "yes" or "no"}'
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]
