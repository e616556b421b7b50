"""The training-ready export (``export --format messages``): a row as chat messages and tools in
the form transformers' ``apply_chat_template(messages, tools=...)`` and TRL's trainers read.

- The user's request is a ``user`` message; the calls are one ``assistant`` message with an
  empty ``content`` (templates read it) and ``tool_calls`` of ``{"id", "type": "function",
  "function": {"name", "arguments"}}``, the arguments **as a dict**: chat templates write them
  with ``tojson``, so a JSON string there comes out quoted twice (the OpenAI export keeps the API's
  string form). An id is nine letters and digits, as the strictest templates (Mistral's) want.
- An irrelevance row (no call: no offered tool serves the request) is a plain assistant reply,
  :data:`NO_TOOL_REPLY`.
- With ``results``, each call's sandbox result follows as a ``tool`` message, with its call's id,
  whose content is a string (JSON for anything but a string).
- With ``json_strings``, ``tools`` and every ``arguments`` are JSON strings, the form Arrow (and so
  ``datasets``) takes when argument and parameter types differ from row to row.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..types import CallResult, FunctionCall, Record

#: the assistant's reply to a request that no offered tool serves
NO_TOOL_REPLY = "None of the tools I have can do that."


def _result_text(result: CallResult) -> str:
    """A call's outcome as a tool message's content: its result, or the error it raised."""
    if not result.ok:
        return json.dumps({"error": result.error_message or result.reason or "failed"}, ensure_ascii=False)
    return result.result if isinstance(result.result, str) else json.dumps(result.result, ensure_ascii=False)


def call_id(row_id: Any, position: int) -> str:
    """The id of call ``position`` of row ``row_id``: nine letters and digits, the same on every export."""
    return hashlib.sha256(f"{row_id}:{position}".encode()).hexdigest()[:9]


def _tool_call(call: FunctionCall, identifier: str, json_strings: bool) -> dict[str, Any]:
    arguments: Any = json.dumps(call.arguments, ensure_ascii=False) if json_strings else call.arguments
    return {"id": identifier, "type": "function", "function": {"name": call.name, "arguments": arguments}}


def messages_row(record: Record, *, json_strings: bool = False, results: bool = False) -> dict[str, Any]:
    """``{"id", "messages", "tools"}`` for one accepted row (see the module)."""
    row_id = record.written_id
    ids = [call_id(row_id, position) for position in range(len(record.answers))]
    messages: list[dict[str, Any]] = [{"role": "user", "content": record.query}]
    if record.answers:
        messages.append({"role": "assistant", "content": "", "tool_calls": [
            _tool_call(call, identifier, json_strings) for call, identifier in zip(record.answers, ids, strict=True)]})
    else:
        messages.append({"role": "assistant", "content": NO_TOOL_REPLY})
    if results:
        messages += [{"role": "tool", "tool_call_id": identifier, "name": call.name, "content": _result_text(result)}
                     for call, identifier, result in zip(record.answers, ids, record.execution_result, strict=False)]
    tools: Any = [tool.openai() for tool in record.tools]
    return {"id": row_id, "messages": messages,
            "tools": json.dumps(tools, ensure_ascii=False) if json_strings else tools}
