"""``export --format bfcl``: a run's accepted rows as BFCL test data, each proven by BFCL's rules.

For every accepted row this writes a question entry (``id``, ``question``, ``function``) and, but
for irrelevance rows, a possible-answer entry (``id``, ``ground_truth``), to one pair of JSONL
files per BFCL category, laid out as BFCL lays out its own data:

    OUT/apigen_<category>.json                  questions
    OUT/possible_answer/apigen_<category>.json  answers

- **Categories** by the row's offered tools and calls: one tool and one call is ``simple``;
  several tools and one call ``multiple``; one tool and several calls ``parallel``; several tools
  and several calls ``parallel_multiple``; no call ``irrelevance``.
- **Functions** in BFCL's dialect: ``"type": "dict"`` parameters, ``float`` for JSON Schema's
  number, an optional parameter's one type (``Optional[bool]`` is ``boolean``), ``any`` for a
  type BFCL cannot name (a union or none).
- **Ground truth.** Each value the row's call gives is an allowed value of its parameter, with the
  other ways of writing it that grounding reads as the same (a date, a clock time; BFCL's own
  comparison already ignores case, spaces and ``,./-_*^``); an optional parameter the call gives
  at its documented default may also be left out (``""``), and one the call leaves out is allowed
  to be left out or given at its default. Objects and lists of
  objects are written key by key, as BFCL writes them.
- **Self-check.** Every entry is checked against its own ground truth by
  :func:`apigen_local.bfcl.checker.check` with the category's rules, as if a model had answered
  with the row's own calls; an entry that fails is not written, and is counted with its reason.
"""

from __future__ import annotations

import calendar
import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..errors import ConfigError
from ..run.files import write_atomic
from ..types import Record, Tool, query_style
from .checker import check

CATEGORIES = ("simple", "multiple", "parallel", "parallel_multiple", "irrelevance")
_TYPES = {"string": "string", "integer": "integer", "number": "float", "boolean": "boolean", "array": "array",
          "object": "dict"}


class BfclExport(BaseModel):
    """What :func:`export_bfcl` wrote: entries per category, and rows the self-check refused."""

    written: dict[str, int] = Field(default_factory=dict)
    refused: dict[str, int] = Field(default_factory=dict)  # BFCL error type -> rows not written
    files: list[str] = Field(default_factory=list)


def category(record: Record) -> str:
    """The BFCL category of an accepted row."""
    return query_style(len(record.tools), len(record.answers)) if record.answers else "irrelevance"


def bfcl_function(tool: Tool) -> dict[str, Any]:
    """``tool`` in BFCL's function dialect."""
    parameters = bfcl_schema(tool.parameters)
    parameters.setdefault("properties", {})
    parameters["required"] = list(tool.parameters.get("required", []))
    return {"name": tool.name, "description": tool.description, "parameters": parameters}


def bfcl_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema in BFCL's types (dict, float, any, ...), keeping descriptions, enums and defaults."""
    schema = _without_null(schema)
    kind = schema.get("type")
    converted: dict[str, Any] = {"type": _TYPES.get(kind, "any") if isinstance(kind, str) else "any"}
    for key in ("description", "enum", "default"):
        if key in schema:
            converted[key] = schema[key]
    if isinstance(schema.get("items"), dict):
        converted["items"] = bfcl_schema(schema["items"])
    if isinstance(schema.get("properties"), dict):
        converted["properties"] = {name: bfcl_schema(sub) if isinstance(sub, dict) else {"type": "any"}
                                   for name, sub in schema["properties"].items()}
    return converted


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter's schema as its one type: ``Optional[bool]`` (``["boolean", "null"]``,
    or ``anyOf`` a type and null) is BFCL's ``boolean``, since BFCL marks optional by ``required``."""
    kind = schema.get("type")
    if isinstance(kind, list):
        named = [k for k in kind if k != "null"]
        return {**schema, "type": named[0]} if len(named) == 1 else schema
    members = schema.get("anyOf")
    if kind is None and isinstance(members, list):
        named = [m for m in members if isinstance(m, dict) and m.get("type") != "null"]
        if len(named) == 1 and len(named) < len(members):
            return {**{k: v for k, v in schema.items() if k != "anyOf"}, **named[0]}
    return schema


def ground_truth(record: Record) -> list[dict[str, dict[str, list[Any]]]]:
    """The possible answer of ``record``'s calls (see the module)."""
    schemas = {tool.name: tool.parameters for tool in record.tools}
    answer = []
    for call in record.answers:
        schema = schemas.get(call.name, {})
        properties = schema.get("properties", {}) if isinstance(schema.get("properties"), dict) else {}
        required = set(schema.get("required", []))
        allowed: dict[str, list[Any]] = {}
        for name, value in call.arguments.items():
            allowed[name] = [_allowed(value, bfcl_schema(properties.get(name, {}))), *written_forms(value)]
            default = properties.get(name, {}).get("default", _NONE)
            if name not in required and default is not _NONE and default == value:
                allowed[name].append("")
        for name, sub in properties.items():
            if name not in call.arguments and name not in required:
                default = sub.get("default", _NONE) if isinstance(sub, dict) else _NONE
                given = [_allowed(default, bfcl_schema(sub))] if default is not _NONE and default is not None else []
                allowed[name] = ["", *given]
        answer.append({call.name: allowed})
    return answer


_NONE = object()
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_CLOCK = re.compile(r"(\d{2}):(\d{2})")


def written_forms(value: Any) -> list[str]:
    """Other ways of writing a date or a clock time that grounding reads as the same value
    (``2024-03-05``: ``03/05/2024``, ``March 5, 2024``; ``14:30``: ``2:30 PM``), which BFCL's
    string comparison would otherwise count as different."""
    if not isinstance(value, str):
        return []
    date = _ISO_DATE.fullmatch(value.strip())
    if date:
        year, month, day = (int(part) for part in date.groups())
        if 1 <= month <= 12 and 1 <= day <= 31:
            return [f"{month:02d}/{day:02d}/{year}", f"{calendar.month_name[month]} {day}, {year}"]
    clock = _CLOCK.fullmatch(value.strip())
    if clock:
        hour, minute = int(clock[1]), int(clock[2])
        if hour < 24 and minute < 60:
            return [f"{(hour - 1) % 12 + 1}:{minute:02d} {'AM' if hour < 12 else 'PM'}"]
    return []


def _allowed(value: Any, schema: dict[str, Any]) -> Any:
    """A value as BFCL writes an allowed one: the keys of a ``dict`` parameter (and of each object
    of an array of dicts) each hold a list of allowed values, one level deep, as BFCL compares
    them; any other value is written as it is."""
    if schema.get("type") == "dict" and isinstance(value, dict):
        return {k: [v] for k, v in value.items()}
    if (schema.get("type") == "array" and (schema.get("items") or {}).get("type") == "dict"
            and isinstance(value, list) and all(isinstance(v, dict) for v in value)):
        return [{k: [item] for k, item in v.items()} for v in value]
    return value


def export_bfcl(records: Iterable[Record], out_dir: str | Path) -> BfclExport:
    """Write the accepted ``records`` to ``out_dir`` as BFCL data (see the module); return the counts."""
    out = Path(out_dir)
    try:
        (out / "possible_answer").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot write the BFCL export to {out}: {exc.strerror or exc}") from exc
    questions: dict[str, list[str]] = {name: [] for name in CATEGORIES}
    answers: dict[str, list[str]] = {name: [] for name in CATEGORIES}
    refused: Counter[str] = Counter()
    for record in records:
        if not record.accepted or record.query is None:
            continue
        kind = category(record)
        entry_id = f"apigen_{kind}_{record.written_id}"
        functions = [bfcl_function(tool) for tool in record.tools]
        truth = ground_truth(record)
        calls = [{call.name: dict(call.arguments)} for call in record.answers]
        verdict = check(functions, calls, truth, kind)
        if not verdict.valid:
            refused[verdict.error_type] += 1
            continue
        questions[kind].append(json.dumps({"id": entry_id, "question": [[{"role": "user", "content": record.query}]],
                                           "function": functions}, ensure_ascii=False))
        if kind != "irrelevance":
            answers[kind].append(json.dumps({"id": entry_id, "ground_truth": truth}, ensure_ascii=False))
    result = BfclExport(refused=dict(refused))
    for kind in CATEGORIES:
        if not questions[kind]:
            continue
        files = [(out / f"apigen_{kind}.json", questions[kind])]
        if answers[kind]:
            files.append((out / "possible_answer" / f"apigen_{kind}.json", answers[kind]))
        for path, lines in files:
            write_atomic(path, "".join(line + "\n" for line in lines))  # a failure keeps an earlier export
            result.files.append(str(path))
        result.written[kind] = len(questions[kind])
    return result
