"""Stage 2 of APIGen: execute every call of a row in the sandbox and check what happened.

A row fails when any of its calls raises (``exception``), runs out of time (``timeout``), kills its
process (``crash``), runs out of memory (``oom``), returns something with no meaningful
representation (``not_serializable``), or returns an error-shaped result (``error_result``).

Error-shaped results are values that report a failure instead of raising it:

* a dict with a top-level ``"error"``, ``"errors"`` or ``"exception"`` key (any case) whose value is
  not empty, e.g. ``{"error": "city not found"}``;
* a string that starts with ``"error"`` or ``"exception"`` followed by ``":"``, e.g.
  ``"Error: invalid date"``.

Arguments arrive typed from stage 1. The one repair made here is coercion by the tool's JSON
schema: a numeric string for an ``integer``/``number`` parameter becomes a number and ``"true"`` /
``"false"`` for a ``boolean`` becomes a bool; the original values are kept in ``CallResult.coerced``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ..types import CallResult, CheckResult, FunctionCall, Tool

if TYPE_CHECKING:
    from ..sandbox.executor import SandboxExecutor

INTEGER = re.compile(r"[+-]?\d+")
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
ERROR_KEYS = frozenset({"error", "errors", "exception"})
ERROR_TEXT = re.compile(r"\s*(error|exception)\s*:", re.IGNORECASE)
DEFAULT_BATCH_SIZE = 100


class RowExecution(BaseModel):
    """The evidence of one row: a result per call (in order) and the checker's verdict."""

    results: list[CallResult]
    check: CheckResult


def _schema_types(schema: Any) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {item for item in kind if isinstance(item, str)}
    return set()


def _coerce_value(value: str, types: set[str]) -> Any:
    """The typed form of a string argument, or the string itself when no type asks for a change."""
    text = value.strip()
    if "string" in types:
        return value
    if "integer" in types and INTEGER.fullmatch(text):
        return int(text)
    if "number" in types and NUMBER.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return int(text) if INTEGER.fullmatch(text) else number
    if "boolean" in types and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return value


def coerce_arguments(call: FunctionCall, tool: Tool) -> tuple[FunctionCall, dict[str, Any]]:
    """Coerce string arguments to the numeric or boolean types ``tool`` declares.

    Returns the (possibly new) call and a mapping from each coerced argument to its original value.
    """
    properties = tool.parameters.get("properties") or {}
    arguments = dict(call.arguments)
    coerced: dict[str, Any] = {}
    for name, value in call.arguments.items():
        if not isinstance(value, str):
            continue
        new_value = _coerce_value(value, _schema_types(properties.get(name)))
        if new_value is not value:
            arguments[name] = new_value
            coerced[name] = value
    if not coerced:
        return call, {}
    return FunctionCall(name=call.name, arguments=arguments), coerced


def is_error_result(value: Any) -> bool:
    """Whether a returned value reports a failure (see the module docstring for the shapes)."""
    if isinstance(value, dict):
        return any(str(key).lower() in ERROR_KEYS and bool(item) for key, item in value.items())
    if isinstance(value, str):
        return ERROR_TEXT.match(value) is not None
    return False


def check_execution(results: Sequence[CallResult]) -> CheckResult:
    """Pass when every call returned a usable value; otherwise fail with the first failure's reason."""
    if not results:
        return CheckResult.fail("no_calls", "the row has no calls to execute")
    for position, result in enumerate(results, start=1):
        where = f"call {position} ({result.name})"
        if not result.ok:
            reason = result.reason or "exception"
            parts = [result.error_type, result.error_message]
            if result.signal:
                parts.append(f"signal {result.signal}")
            detail = ": ".join(str(part) for part in parts if part)
            return CheckResult.fail(reason, f"{where} failed with {reason}" + (f": {detail}" if detail else ""))
        if is_error_result(result.result):
            shown = repr(result.result)
            shown = shown if len(shown) <= 200 else shown[:200] + "..."
            return CheckResult.fail("error_result", f"{where} returned an error-shaped result: {shown}")
    return CheckResult.ok()


def execute_rows(
    executor: SandboxExecutor,
    rows: Sequence[Sequence[FunctionCall]],
    tools: Sequence[Tool],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[RowExecution]:
    """Coerce, execute and check many rows; calls are packed ``batch_size`` per container.

    A call whose name matches no tool is executed unchanged (the sandbox reports it as an
    ``exception``).
    """
    by_name = {tool.name: tool for tool in tools}
    flat: list[FunctionCall] = []
    coercions: list[dict[str, Any]] = []
    for row in rows:
        for call in row:
            tool = by_name.get(call.name)
            fixed, coerced = coerce_arguments(call, tool) if tool is not None else (call, {})
            flat.append(fixed)
            coercions.append(coerced)
    size = max(1, batch_size)
    batches = [flat[start:start + size] for start in range(0, len(flat), size)]
    results = [result for batch in executor.execute_many(batches) for result in batch]
    for result, coerced in zip(results, coercions, strict=True):
        result.coerced = coerced
    outcomes: list[RowExecution] = []
    position = 0
    for row in rows:
        row_results = results[position:position + len(row)]
        position += len(row)
        outcomes.append(RowExecution(results=row_results, check=check_execution(row_results)))
    return outcomes
