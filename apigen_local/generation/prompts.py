"""All prompt text in one place: the generator's and the semantic judge's messages."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..tool_specs import normalize_tool
from ..types import CallResult, FunctionCall, QueryStyle, Tool
from .sampling import FewShotExample, GenerationRequest
from .seed_draft import draft_query

Message = dict[str, str]

GENERATOR_SYSTEM = """\
You write training data for function-calling assistants. You are given some functions. You \
write one request that a real user could type, and the exact calls of those functions that \
fulfil it, as JSON.

Rules:
- Each request is plain, natural English about a concrete situation, and names every value \
the calls use: names, numbers, dates, units, words.
- The calls use only the functions given, with the argument names and types of their schemas.
- Each argument value is taken from what the user wrote, in the same or an equivalent form.
- Each request is new: do not repeat the examples or these instructions."""

STYLE_INSTRUCTIONS: dict[str, str] = {
    "simple": "Write a request that needs exactly one call of {function}.",
    "multiple": "Write a request that needs exactly one call of the best-fitting function; the others are not needed.",
    "parallel": (
        "Write a request that asks for the same kind of thing {min_calls} to {max_calls} times "
        "with different values, answered by that many calls of {function}."
    ),
    "parallel_multiple": (
        "Write a request with {min_calls} to {max_calls} separate parts, answered by that many "
        "calls, using at least two different functions."
    ),
}

REQUEST_SYSTEM = """\
You write training data for function-calling assistants. You are given some functions and the \
calls an assistant made. Write the message a real user typed that these calls answer, as JSON.

Rules:
- The message is a question or an instruction to the assistant, in plain, natural English.
- It asks for exactly what the calls do: one ask for each call.
- It states every argument value the calls use, in the same or an equivalent form.
- It never names the functions or the arguments."""

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


ANSWER_SYSTEM = """\
You are a function-calling assistant. Given some functions and a user request, reply with the \
calls of those functions that fulfil the request, as JSON. Make one call for each separate ask. \
Take every argument value from the request."""


def answer_messages(query: str, tools: Sequence[Tool]) -> list[Message]:
    """The chat messages that ask the model to answer ``query`` itself with ``tools``."""
    user = f"Functions:\n{describe_tools(tools)}\n\nRequest: {query}\n\nReply with the JSON only."
    return [{"role": "system", "content": ANSWER_SYSTEM}, {"role": "user", "content": user}]


def _format_tools(tools: Sequence[Tool]) -> str:
    return json.dumps([tool.openai() for tool in tools], ensure_ascii=False)


def _type_name(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if "enum" in schema:
        return " | ".join(json.dumps(value) for value in schema["enum"])
    if kind == "array":
        return f"list of {_type_name(schema.get('items') or {})}"
    if isinstance(kind, list):
        return " or ".join(kind)
    if "anyOf" in schema:
        return " or ".join(_type_name(option) for option in schema["anyOf"])
    return str(kind or "any")


def describe_tools(tools: Sequence[Tool]) -> str:
    """Tools as short text: one line per function and one line per argument."""
    lines: list[str] = []
    for tool in tools:
        properties = tool.parameters.get("properties") or {}
        required = set(tool.parameters.get("required") or [])
        lines.append(f"{tool.name}: {tool.description}")
        for name, schema in properties.items():
            flag = "required" if name in required else f"optional, default {json.dumps(schema.get('default'))}"
            text = schema.get("description", "")
            lines.append(f"  - {name} ({_type_name(schema)}, {flag}){': ' + text if text else ''}")
    return "\n".join(lines)


def example_output(example: FewShotExample, *, answers_first: bool = False) -> str:
    """A few-shot example written exactly as the model's reply must look."""
    answers = json.loads(example.answers)
    pair = {"answers": answers, "query": example.query} if answers_first else \
        {"query": example.query, "answers": answers}
    return json.dumps({"pairs": [pair]}, ensure_ascii=False)


def _task(style: QueryStyle, tools: Sequence[Tool], min_calls: int, max_calls: int) -> str:
    instruction = STYLE_INSTRUCTIONS[style].format(min_calls=min_calls, max_calls=max_calls,
                                                   function=tools[0].name if tools else "the function")
    return f"Functions:\n{describe_tools(tools)}\n\n{instruction} Reply with the JSON only."


def _example_turns(example: FewShotExample, *, answers_first: bool) -> list[Message]:
    """One example as a user turn (its own functions and task) and the assistant's exact reply."""
    tools = [normalize_tool(spec) for spec in json.loads(example.tools)]
    calls = json.loads(example.answers)
    names = {call.get("name") for call in calls if isinstance(call, dict)}
    if len(calls) == 1:
        style: QueryStyle = "simple" if len(tools) == 1 else "multiple"
    else:
        style = "parallel" if len(names) == 1 and len(tools) == 1 else "parallel_multiple"
    return [{"role": "user", "content": _task(style, tools, len(calls), len(calls))},
            {"role": "assistant", "content": example_output(example, answers_first=answers_first)}]


def generation_messages(request: GenerationRequest, *, answers_first: bool = False) -> list[Message]:
    """The chat messages that ask the model for one query/answer pair.

    Each few-shot example is a finished exchange: its own functions and task, then its reply
    exactly as the model's reply must look. Nothing is a placeholder a weak model could copy,
    and the offered functions sit next to the task they belong to. The system prompt comes first
    and is the same for every row, so its KV state is reused.
    """
    messages: list[Message] = [{"role": "system", "content": GENERATOR_SYSTEM}]
    for example in request.examples:
        messages += _example_turns(example, answers_first=answers_first)
    messages.append({"role": "user", "content": _task(request.style, request.tools,
                                                      request.min_calls, request.max_calls)})
    return messages


def plain_request(tools: Sequence[Tool], calls: Sequence[FunctionCall]) -> str:
    """The calls as a plain, form-like request that states every value (``Split a bill evenly
    ...: total 250, people 6.``), one sentence per call."""
    by_name = {tool.name: tool for tool in tools}
    return " ".join(draft_query(by_name.get(call.name) or Tool(name=call.name, description=call.name), call)
                    for call in calls)


def _request_task(tools: Sequence[Tool], calls: Sequence[FunctionCall], *, described: bool = True) -> str:
    """One request task: the called functions (``described``), the calls and their plain request."""
    shown = json.dumps([call.model_dump() for call in calls], ensure_ascii=False)
    functions = f"Functions:\n{describe_tools(tools)}\n\n" if described else ""
    return (f"{functions}Calls:\n{shown}\n"
            f"Plain request: {plain_request(tools, calls)}\n"
            "Write it as a person would, with every value. JSON only.")


UNANSWERABLE_SYSTEM = """\
You write training data for function-calling assistants. You are given some functions. Write a \
message a real user might type to an assistant that none of these functions can do, as JSON.

Rules:
- The message is a question or an instruction to the assistant, in plain, natural English.
- It asks for something useful that no given function does, not even in part.
- It never names the functions."""


def _unanswerable_task(tools: Sequence[Tool]) -> str:
    return (f"Functions:\n{describe_tools(tools)}\n\n"
            "Write a user's message that none of these functions can do. Reply with the JSON only.")


def unanswerable_messages(request: GenerationRequest) -> list[Message]:
    """Irrelevance rows the model writes: the chat messages that ask for a request none of
    ``request.tools`` can serve. Each few-shot example shows the same functions and, as the reply,
    a seed row's request for other functions (the sampler picks examples that call none of them)."""
    messages: list[Message] = [{"role": "system", "content": UNANSWERABLE_SYSTEM}]
    for example in request.examples:
        messages += [{"role": "user", "content": _unanswerable_task(request.tools)},
                     {"role": "assistant", "content": json.dumps({"query": example.query}, ensure_ascii=False)}]
    messages.append({"role": "user", "content": _unanswerable_task(request.tools)})
    return messages


def request_messages(request: GenerationRequest) -> list[Message]:
    """Calls-first: the chat messages that ask the model for the request ``request.calls`` answer.

    Each few-shot example shows its calls and their plain, form-like request (:func:`plain_request`),
    then its request as a person wrote it, as the reply; only the task describes its functions,
    which keeps the prompt short (prompt evaluation is most of a row's time on a CPU).
    """
    messages: list[Message] = [{"role": "system", "content": REQUEST_SYSTEM}]
    for example in request.examples:
        tools = [normalize_tool(spec) for spec in json.loads(example.tools)]
        calls = [FunctionCall.model_validate(call) for call in json.loads(example.answers)]
        messages += [{"role": "user", "content": _request_task(_called(tools, calls), calls, described=False)},
                     {"role": "assistant", "content": json.dumps({"query": example.query}, ensure_ascii=False)}]
    messages.append({"role": "user", "content": _request_task(_called(request.tools, request.calls), request.calls)})
    return messages


def _called(tools: Sequence[Tool], calls: Sequence[FunctionCall]) -> list[Tool]:
    """The tools ``calls`` call: only they matter to the request (a shorter prompt); all when none match."""
    names = {call.name for call in calls}
    return [tool for tool in tools if tool.name in names] or list(tools)


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
