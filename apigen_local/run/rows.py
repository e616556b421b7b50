"""Reading rows people wrote: one JSON object per line, in the xlam-60k, OpenAI chat or BFCL form.

A row is xlam-60k (``query``; ``answers`` and ``tools`` as JSON strings or as JSON values;
optional ``id``), OpenAI chat (``messages`` holding one user message and assistant
``tool_calls``, plus ``tools``) or BFCL (``question`` and ``function`` from its question file,
with ``ground_truth`` from its possible-answer file). A line that cannot be read keeps its problem (``invalid_row`` or
``invalid_json``) for the format stage to report; reading never raises for a bad line.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, Field

from ..checks.format import INVALID_JSON
from ..errors import ConfigError
from ..types import CheckResult

INVALID_ROW: Final = "invalid_row"
MAX_TOOLS_PER_ROW = 1000
MAX_ID = 2**63  # record ids are 64-bit integers; a larger integer id stays the row's own id only


class InputRow(BaseModel):
    """One line of the input file, read but not yet checked."""

    line: int = Field(description="1-based line number in the input file")
    id: int
    source_id: Any = Field(None, description='the row\'s own "id", any JSON value, kept for joining back')
    text: str = Field(description="the line as read")
    query: str | None = None
    answers: Any = None
    tool_names: list[str] = Field(default_factory=list)
    tool_specs: list[Any] = Field(default_factory=list, description="the row's own tool specs, as written")
    problem: CheckResult | None = Field(None, description="invalid_row / invalid_json found while reading")


class _Unreadable(Exception):
    """A row that cannot be read: ``reason`` is invalid_row or invalid_json, the message says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def read_rows(path: str | Path) -> list[InputRow]:
    """Read every non-blank line of a JSONL file of rows; unreadable lines carry their problem.

    A row's id is its integer ``id`` when it has one, else its 0-based line index; an id already
    taken by an earlier line is replaced by a fresh one above every other id, so ids are unique.
    """
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"the rows file {file} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"the rows file {file} cannot be read: {exc.strerror}") from exc
    rows: list[InputRow] = []
    for index, raw in enumerate(data.split(b"\n")):
        if raw.strip():
            rows.append(_read_line(raw, index))
    taken: set[int] = set()
    fresh = max((row.id for row in rows), default=-1) + 1
    for row in rows:
        if row.id in taken:
            row.id, fresh = fresh, fresh + 1
        taken.add(row.id)
    return rows


def _read_line(raw: bytes, index: int) -> InputRow:
    number = index + 1
    text = raw.decode("utf-8", errors="replace").rstrip("\r")
    row = InputRow(line=number, id=index, text=text)
    try:
        try:
            value = _loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise _Unreadable(INVALID_ROW, "it is not UTF-8 text") from exc
        except (ValueError, RecursionError) as exc:
            raise _Unreadable(INVALID_ROW, f"it is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise _Unreadable(INVALID_ROW, "it is not a JSON object")
        row.source_id = value.get("id")
        if isinstance(value.get("id"), int) and not isinstance(value["id"], bool) and abs(value["id"]) < MAX_ID:
            row.id = value["id"]  # a larger integer id is kept only as the row's own id (source_id)
        row.tool_specs = _tool_specs(value)
        row.tool_names = _tool_names(row.tool_specs)
        if "messages" in value:
            row.query, row.answers = _chat_row(value["messages"])
        elif "question" in value:
            row.query, row.answers = _bfcl_row(value)
        else:
            row.query, row.answers = _xlam_row(value)
    except _Unreadable as exc:
        row.problem = CheckResult.fail(exc.reason, f"line {number}: {exc}.")
    return row


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    """A JSON number as a float; one too large for a float (``1e400``) is refused, not made infinite."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large for a float")
    return value


# one decoder for every line: json.loads with options builds a new one per call (a third of the
# cost of reading a line that is not JSON)
_loads = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite).decode


def _decoded(value: Any, what: str, reason: str) -> Any:
    """``value`` itself, or the JSON it holds when it is a string."""
    if not isinstance(value, str):
        return value
    try:
        return _loads(value)
    except (ValueError, RecursionError) as exc:
        raise _Unreadable(reason, f"{what} is not valid JSON: {exc}") from exc


def _tool_specs(row: dict[str, Any]) -> list[Any]:
    """The tool specs a row offers: its ``tools`` (or BFCL's ``function``), a list or a JSON string of one."""
    key = "tools" if "tools" in row else "function" if "function" in row else None
    if key is None:
        raise _Unreadable(INVALID_ROW, 'it has no "tools"')
    specs = _decoded(row[key], f'"{key}"', INVALID_ROW)
    if not isinstance(specs, list) or not specs:
        raise _Unreadable(INVALID_ROW, f'"{key}" is not a non-empty list of tool specs')
    if len(specs) > MAX_TOOLS_PER_ROW:
        raise _Unreadable(INVALID_ROW, f'"{key}" lists {len(specs)} tools, more than {MAX_TOOLS_PER_ROW}')
    return specs


def _tool_names(specs: list[Any]) -> list[str]:
    """The function names a row offers, from xlam, bare-function, OpenAI or BFCL tool specs."""
    names: dict[str, None] = {}  # ordered set
    for position, spec in enumerate(specs):
        name = None
        if isinstance(spec, dict):
            inner = spec.get("function")
            name = (inner if isinstance(inner, dict) else spec).get("name")
        if not isinstance(name, str) or not name:
            raise _Unreadable(INVALID_ROW, f"tools[{position}] has no function name")
        names.setdefault(name)
    return list(names)


def _xlam_row(row: dict[str, Any]) -> tuple[str, Any]:
    for key in ("query", "answers"):
        if key not in row:
            raise _Unreadable(INVALID_ROW, f'it has neither "messages" nor "{key}"')
    if not isinstance(row["query"], str):
        raise _Unreadable(INVALID_ROW, '"query" is not a string')
    return row["query"], _decoded(row["answers"], '"answers"', INVALID_JSON)


def _bfcl_row(row: dict[str, Any]) -> tuple[str, Any]:
    """A BFCL row: its question file's ``question`` (turns of messages) and ``function``, with
    the matching possible-answer entry's ``ground_truth`` in the same object. Each parameter takes
    the first value BFCL allows; an optional one that BFCL lets be left out (``""`` among its
    values) is left out."""
    question = row["question"]
    turns = question if isinstance(question, list) else []
    messages = [m for turn in turns for m in (turn if isinstance(turn, list) else [turn])]
    users = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if len(users) != 1 or not isinstance(users[0], str):
        raise _Unreadable(INVALID_ROW, '"question" must hold exactly one user message with text')
    if "ground_truth" not in row:
        raise _Unreadable(INVALID_ROW, 'a BFCL row needs its "ground_truth" (from the possible-answer file)')
    truth = _decoded(row["ground_truth"], '"ground_truth"', INVALID_JSON)
    if not isinstance(truth, list):
        return users[0], truth  # the format check says what is wrong with it
    calls: list[Any] = []
    for entry in truth:
        if not isinstance(entry, dict) or len(entry) != 1 or not isinstance(next(iter(entry.values())), dict):
            calls.append(entry)
            continue
        name, allowed = next(iter(entry.items()))
        calls.append({"name": name, "arguments": _first_allowed(allowed, _parameters_of(row, name))})
    return users[0], calls


def _parameters_of(row: dict[str, Any], name: str) -> dict[str, Any]:
    """The parameters schema of the row's function ``name``; empty when the row does not define it."""
    functions = row.get("function")
    for function in functions if isinstance(functions, list) else []:
        if isinstance(function, dict) and function.get("name") == name:
            parameters = function.get("parameters")
            return parameters if isinstance(parameters, dict) else {}
    return {}


def _first_allowed(allowed: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """BFCL's ``{param: [allowed values]}`` as ``{param: first value}``, nested objects alike.
    ``""`` among a parameter's values means it may be left out: an optional one is left out, a
    required one (by ``schema``, the object's parameters schema) takes its first other value."""
    required = schema.get("required")
    required = set(required) if isinstance(required, list) else set()
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    chosen: dict[str, Any] = {}
    for param, values in allowed.items():
        if not isinstance(values, list):
            chosen[param] = values
            continue
        stated = [value for value in values if value != ""]
        if stated and (param in required or len(stated) == len(values)):
            chosen[param] = _collapse(stated[0], _schema(properties.get(param)))
    return chosen


def _collapse(value: Any, schema: dict[str, Any]) -> Any:
    if isinstance(value, dict) and all(isinstance(v, list) for v in value.values()):
        return _first_allowed(value, schema)
    if isinstance(value, list):
        return [_collapse(v, _schema(schema.get("items"))) for v in value]
    return value


def _schema(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _chat_row(messages: Any) -> tuple[str, list[Any]]:
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise _Unreadable(INVALID_ROW, '"messages" is not a list of message objects')
    users = [m.get("content") for m in messages if m.get("role") == "user"]
    if len(users) != 1 or not isinstance(users[0], str):
        raise _Unreadable(INVALID_ROW, '"messages" must hold exactly one user message with text')
    calls: list[Any] = []
    for message in messages:
        if message.get("role") != "assistant":
            continue
        tool_calls = message.get("tool_calls") or []
        if not isinstance(tool_calls, list):
            raise _Unreadable(INVALID_ROW, "an assistant message has tool_calls that are not a list")
        for call in tool_calls:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                calls.append(call)  # the format check says what is wrong with it
                continue
            shaped = {key: function[key] for key in ("name", "arguments") if key in function}
            if "arguments" in shaped:
                shaped["arguments"] = _decoded(shaped["arguments"],
                                               f"the arguments of tool call {len(calls)}",
                                               INVALID_JSON)
            calls.append(shaped)
    return users[0], calls
