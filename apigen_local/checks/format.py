"""Stage 1 of APIGen, the format checker: is a generated pair well-formed against its tools?

The checks do not rely on the generation constraint having worked: any value or text gets a
verdict, and nothing here raises on malformed input.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Final, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ..types import CheckResult, FunctionCall, QueryAnswer, Tool

INVALID_JSON: Final = "invalid_json"
UNKNOWN_FUNCTION: Final = "unknown_function"
MISSING_REQUIRED: Final = "missing_required"
UNEXPECTED_ARGUMENT: Final = "unexpected_argument"
TYPE_MISMATCH: Final = "type_mismatch"
WRONG_CALL_COUNT: Final = "wrong_call_count"
EMPTY_QUERY: Final = "empty_query"

FormatReason = Literal[
    "invalid_json",
    "unknown_function",
    "missing_required",
    "unexpected_argument",
    "type_mismatch",
    "wrong_call_count",
    "empty_query",
]
REASONS: Final[tuple[str, ...]] = (
    INVALID_JSON,
    UNKNOWN_FUNCTION,
    MISSING_REQUIRED,
    UNEXPECTED_ARGUMENT,
    TYPE_MISMATCH,
    WRONG_CALL_COUNT,
    EMPTY_QUERY,
)

_CALL_KEYS = {"name", "arguments"}
_MAX_SHOWN = 120  # characters of a value or message quoted in a detail sentence


def check_answers(
    query: Any,
    answers: Any,
    tools: Sequence[Tool],
    *,
    min_calls: int = 1,
    max_calls: int | None = None,
) -> CheckResult:
    """Check one query and its answer calls against the tools offered for it."""
    if not isinstance(query, str) or not query.strip():
        return CheckResult.fail(EMPTY_QUERY, "The query is missing or empty.")
    if not isinstance(answers, list):
        return CheckResult.fail(INVALID_JSON, "The answers are not a list of calls.")
    for index, call in enumerate(answers):
        problem = _call_shape_problem(call)
        if problem:
            return CheckResult.fail(INVALID_JSON, f"answers[{index}] {problem}.")
    if len(answers) < min_calls or (max_calls is not None and len(answers) > max_calls):
        wanted = f"at least {min_calls}" if max_calls is None else f"{min_calls} to {max_calls}"
        return CheckResult.fail(
            WRONG_CALL_COUNT, f"The answers hold {len(answers)} call(s) but {wanted} are expected."
        )
    by_name = {tool.name: tool for tool in tools}
    for index, call in enumerate(answers):
        tool = by_name.get(call["name"])
        if tool is None:
            return CheckResult.fail(
                UNKNOWN_FUNCTION,
                f"answers[{index}] calls {_shown(call['name'])}, which is not among the "
                f"offered functions ({_cut(', '.join(by_name)) or 'none'}).",
            )
        verdict = _check_arguments(index, tool, call["arguments"])
        if not verdict.passed:
            return verdict
    return CheckResult.ok()


def parse_generation(raw: str) -> list[Any] | CheckResult:
    """The ``pairs`` list of a raw output ``{"pairs": [...]}``, or an ``invalid_json`` verdict."""
    if not isinstance(raw, str):
        return CheckResult.fail(INVALID_JSON, "The model output is not text.")
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        return CheckResult.fail(
            INVALID_JSON, f"The model output is not valid JSON: {_cut(str(exc))}."
        )
    if not isinstance(data, dict) or not isinstance(data.get("pairs"), list):
        return CheckResult.fail(
            INVALID_JSON, 'The model output is not a JSON object with a "pairs" list.'
        )
    if not data["pairs"]:
        return CheckResult.fail(INVALID_JSON, 'The model output has an empty "pairs" list.')
    return data["pairs"]


def check_generation(
    raw: str,
    tools: Sequence[Tool],
    *,
    min_calls: int = 1,
    max_calls: int | None = None,
) -> list[tuple[QueryAnswer | None, CheckResult]]:
    """One verdict per generated pair, with the :class:`QueryAnswer` when the pair passes.

    Unreadable output or a wrong top-level shape gives a single ``(None, invalid_json)`` entry.
    """
    pairs = parse_generation(raw)
    if isinstance(pairs, CheckResult):
        return [(None, pairs)]
    results: list[tuple[QueryAnswer | None, CheckResult]] = []
    for index, pair in enumerate(pairs):
        if not isinstance(pair, dict):
            results.append(
                (None, CheckResult.fail(INVALID_JSON, f"pairs[{index}] is not a JSON object."))
            )
            continue
        query, answers = pair.get("query"), pair.get("answers")
        verdict = check_answers(query, answers, tools, min_calls=min_calls, max_calls=max_calls)
        if not verdict.passed:
            results.append((None, verdict))
            continue
        calls = [FunctionCall(name=call["name"], arguments=call["arguments"]) for call in answers]
        results.append((QueryAnswer(query=query, answers=calls), verdict))
    return results


def _call_shape_problem(call: Any) -> str | None:
    """Why ``call`` is not ``{"name": str, "arguments": {str: ...}}``, or ``None``."""
    if not isinstance(call, dict):
        return "is not a JSON object"
    if set(call) != _CALL_KEYS:
        keys = ", ".join(sorted(map(str, call))) or "none"
        return f'must have exactly the keys "name" and "arguments" (it has: {_cut(keys)})'
    if not isinstance(call["name"], str):
        return 'has a "name" that is not a string'
    if not isinstance(call["arguments"], dict):
        return 'has "arguments" that are not a JSON object'
    if not all(isinstance(key, str) for key in call["arguments"]):
        return 'has "arguments" with a key that is not a string'
    return None


def _check_arguments(index: int, tool: Tool, arguments: dict[str, Any]) -> CheckResult:
    where = f"answers[{index}] calls {tool.name}"
    properties = tool.parameters.get("properties", {})
    for name in arguments:
        if name not in properties:
            return CheckResult.fail(
                UNEXPECTED_ARGUMENT,
                f"{where} with the argument {_shown(name)}, which it does not take.",
            )
    try:
        errors = list(
            _validator(json.dumps(tool.parameters, sort_keys=True)).iter_errors(arguments)
        )
    except RecursionError:
        return CheckResult.fail(
            TYPE_MISMATCH, f"{where} with arguments nested too deeply to check."
        )
    if not errors:
        return CheckResult.ok()
    error = min(errors, key=_error_rank)
    path = list(error.absolute_path)
    argument = _shown(path[0]) if path else None
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        if not path:
            return CheckResult.fail(
                MISSING_REQUIRED, f"{where} without the required argument {_shown(missing[0])}."
            )
        return CheckResult.fail(
            MISSING_REQUIRED,
            f"{where} with the argument {argument} lacking its required key {_shown(missing[0])}.",
        )
    if error.validator == "additionalProperties":
        return CheckResult.fail(
            UNEXPECTED_ARGUMENT,
            f"{where} with the argument {argument} holding an unexpected key: "
            f"{_cut(error.message)}.",
        )
    subject = f"the argument {argument}" if argument else "its arguments"
    if len(path) > 1:
        subject += " at " + str(path[0]) + "".join(f"[{step!r}]" for step in path[1:])
    why = error.message
    if len(why) > _MAX_SHOWN:
        rule = _cut(json.dumps(error.validator_value, default=repr))
        why = f"{_shown(error.instance)} breaks its {error.validator!r} rule {rule}"
    return CheckResult.fail(TYPE_MISMATCH, f"{where} with a wrong value for {subject}: {why}.")


def _error_rank(error: ValidationError) -> tuple[int, int]:
    """Order errors so the most telling one is reported: missing, unexpected, then the rest."""
    order = {"required": 0, "additionalProperties": 1}
    return order.get(str(error.validator), 2), len(error.absolute_path)


@lru_cache(maxsize=512)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _shown(value: Any) -> str:
    return _cut(repr(value))


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."
