"""Stage 1 of APIGen, the format checker: is a generated pair well-formed against its tools?

The checks do not rely on the generation constraint having worked: any value or text gets a
verdict, and nothing here raises on malformed input.

Tool schemas may come from untrusted rows, so the validators built here never fetch a reference
(their registry refuses every retrieval: a reference that is not inside the schema is
``invalid_tools``, as :mod:`apigen_local.tool_specs` already refuses it when reading the spec), and
evaluate ``pattern`` and ``patternProperties`` (also where ``additionalProperties`` and
``propertyNames`` use them) with the ``regex`` module, whose search takes a timeout, instead of
``re``, which can backtrack for hours (``^(a+)+$`` against ``"aaa...ab"``). A search may take
0.05 s, all of one row's searches 0.5 s; a pattern over 1,000 characters, a value over 10,000, a
pattern ``regex`` cannot compile, or a search out of time gives ``pattern_unchecked``. A time
bound keeps every pattern ``re`` accepts (a linear-time engine such as RE2 refuses lookarounds
and backreferences), at the cost of a verdict that can depend on the machine for a search that
takes about that long. (``unevaluatedProperties`` would still search ``patternProperties`` with
``re``: a spec with both is refused when it is read.)
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, Final, Literal

import regex
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.exceptions import NoSuchResource, Unresolvable

from ..types import CheckResult, FunctionCall, QueryAnswer, Tool

INVALID_JSON: Final = "invalid_json"
UNKNOWN_FUNCTION: Final = "unknown_function"
MISSING_REQUIRED: Final = "missing_required"
UNEXPECTED_ARGUMENT: Final = "unexpected_argument"
TYPE_MISMATCH: Final = "type_mismatch"
WRONG_CALL_COUNT: Final = "wrong_call_count"
EMPTY_QUERY: Final = "empty_query"
INVALID_TOOLS: Final = "invalid_tools"  # a tool spec that cannot be read or refers outside itself
PATTERN_UNCHECKED: Final = "pattern_unchecked"  # a value its tool's pattern cannot be checked against in time

FormatReason = Literal[
    "invalid_json",
    "unknown_function",
    "missing_required",
    "unexpected_argument",
    "type_mismatch",
    "wrong_call_count",
    "empty_query",
    "invalid_tools",
    "pattern_unchecked",
]
REASONS: Final[tuple[str, ...]] = (
    INVALID_JSON,
    UNKNOWN_FUNCTION,
    MISSING_REQUIRED,
    UNEXPECTED_ARGUMENT,
    TYPE_MISMATCH,
    WRONG_CALL_COUNT,
    EMPTY_QUERY,
    INVALID_TOOLS,
    PATTERN_UNCHECKED,
)

_CALL_KEYS = {"name", "arguments"}
_MAX_SHOWN = 120  # characters of a value or message quoted in a detail sentence
_SEARCH_SECONDS = 0.05  # one pattern search
_ROW_PATTERN_SECONDS = 0.5  # all the pattern searches of one row's calls
_MAX_PATTERN_CHARS = 1_000
_MAX_PATTERN_TEXT_CHARS = 10_000  # a value, or an object key, checked against a pattern
_VALIDATORS = 512  # validators kept, one per distinct parameters schema


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
    checkers: dict[str, Any] = {}  # each tool's validator, found once per row
    budget = _pattern_budget.set(_Budget(_ROW_PATTERN_SECONDS))
    try:
        for index, call in enumerate(answers):
            tool = by_name.get(call["name"])
            if tool is None:
                return CheckResult.fail(
                    UNKNOWN_FUNCTION,
                    f"answers[{index}] calls {_shown(call['name'])}, which is not among the "
                    f"offered functions ({_cut(', '.join(by_name)) or 'none'}).",
                )
            verdict = _check_arguments(index, tool, call["arguments"], checkers)
            if not verdict.passed:
                return verdict
    finally:
        _pattern_budget.reset(budget)
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


def _check_arguments(index: int, tool: Tool, arguments: dict[str, Any], checkers: dict[str, Any]) -> CheckResult:
    where = f"answers[{index}] calls {tool.name}"
    properties = tool.parameters.get("properties", {})
    for name in arguments:
        if name not in properties:
            return CheckResult.fail(
                UNEXPECTED_ARGUMENT,
                f"{where} with the argument {_shown(name)}, which it does not take.",
            )
    try:
        if tool.name not in checkers:
            checkers[tool.name] = _validator(tool.parameters)
        errors = list(checkers[tool.name].iter_errors(arguments))
    except RecursionError:
        return CheckResult.fail(
            TYPE_MISMATCH, f"{where} with arguments nested too deeply to check."
        )
    except _Unchecked as exc:
        return CheckResult.fail(PATTERN_UNCHECKED, f"{where} with a value its pattern cannot be checked "
                                                   f"against: {exc}.")
    except (OverflowError, ValueError) as exc:  # multipleOf 0.5 on a 400-digit integer: too large for a float
        return CheckResult.fail(TYPE_MISMATCH, f"{where} with a value its schema cannot compare: {_cut(str(exc))}.")
    except Unresolvable as exc:
        return CheckResult.fail(INVALID_TOOLS, f"{where}, whose parameters schema refers to "
                                               f"{_shown(str(exc.ref))}, which is not inside it.")
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


class _Budget:
    """The seconds one row's pattern searches have left."""

    def __init__(self, seconds: float) -> None:
        self.left = seconds


class _Unchecked(Exception):
    """A value a pattern could not be checked against; the message says why."""


_pattern_budget: ContextVar[_Budget] = ContextVar("pattern_budget")


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> regex.Pattern[str] | None:
    try:
        return regex.compile(pattern, flags=regex.VERSION0)  # re's syntax and meaning
    except (regex.error, RecursionError, OverflowError, ValueError):
        return None


def _search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` finds a match in ``text``; :class:`_Unchecked` when that cannot be
    told within the bounds of the module docstring."""
    if len(pattern) > _MAX_PATTERN_CHARS:
        raise _Unchecked(f"the pattern {_shown(pattern)} is longer than {_MAX_PATTERN_CHARS} characters")
    if len(text) > _MAX_PATTERN_TEXT_CHARS:
        raise _Unchecked(f"{_shown(text)} is longer than the {_MAX_PATTERN_TEXT_CHARS} characters a pattern "
                         f"is checked against")
    compiled = _compiled(pattern)
    if compiled is None:
        raise _Unchecked(f"the pattern {_shown(pattern)} cannot be compiled by the bounded matcher")
    budget = _pattern_budget.get(None) or _Budget(_SEARCH_SECONDS)
    seconds = min(_SEARCH_SECONDS, budget.left)
    started = time.perf_counter()
    try:
        if seconds <= 0:
            raise TimeoutError
        return compiled.search(text, timeout=seconds) is not None
    except TimeoutError:
        raise _Unchecked(f"the pattern {_shown(pattern)} did not finish on {_shown(text)} in "
                         f"{seconds:.2f} s") from None
    finally:
        budget.left -= time.perf_counter() - started


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any,
                        schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "object"):
        for pattern, subschema in patterns.items():
            for key, value in instance.items():
                if _search(pattern, key):
                    yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    properties, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
    extras = [key for key in instance if key not in properties and not any(_search(p, key) for p in patterns)]
    if validator.is_type(extra, "object"):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)
    elif extra is False and extras:
        names = ", ".join(repr(key) for key in sorted(extras))
        yield ValidationError(f"Additional properties are not allowed ({names} "
                              f"{'was' if len(extras) == 1 else 'were'} unexpected)")


def _refuse(uri: str) -> Any:
    raise NoSuchResource(ref=uri)


# Draft 2020-12 with the regex keywords bounded; its registry fetches nothing
_Validator = validators.extend(Draft202012Validator, {
    "pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties,
})
_NO_REMOTE: Registry[Any] = Registry(retrieve=_refuse)
_validators: dict[bytes, Any] = {}  # by the sha256 of the schema's JSON


def _validator(parameters: dict[str, Any]) -> Any:
    """The validator of one tool's ``parameters``, built once per distinct schema."""
    text = json.dumps(parameters, sort_keys=True)
    key = hashlib.sha256(text.encode()).digest()
    if key not in _validators:
        if len(_validators) >= _VALIDATORS:
            _validators.clear()
        _validators[key] = _Validator(json.loads(text), registry=_NO_REMOTE)
    return _validators[key]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _shown(value: Any) -> str:
    return _cut(repr(value))


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."
