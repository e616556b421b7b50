"""The rows a review shows: a seeded sample of a run's written rows, each with what a person needs
to judge it (the request, the offered tools, the calls, what running them gave, and how grounding
explained each value).

The sample is the ``size`` rows with the smallest :func:`~apigen_local.run.report.data.sample_key`
among the accepted (or rejected) rows written so far, so the same seed picks the same rows on
every reopening, and rows a still-running run writes later only join where their key falls.
Rejected rows without a readable request (format failures) are never sampled: there is nothing
to judge.
"""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field

from ..checks.grounding import GroundingMode, value_evidence
from ..run.report.data import call_outcome, cut_text, json_text, sample_key
from ..types import Record

TEXT_CHARS = 2_000  # longest text shown for one value or result


class ValueView(BaseModel):
    """One scalar of an argument and the rule that grounds it (``None``: none does)."""

    path: str
    value: str  # as JSON
    rule: str | None
    span: tuple[int, int] | None = None  # where the query writes it (UTF-16 positions, as JS counts)


class ArgumentView(BaseModel):
    name: str
    value: str  # the whole value as JSON
    evidence: list[ValueView]


class CallView(BaseModel):
    name: str
    arguments: list[ArgumentView]
    outcome: str = ""  # "ok", the failure reason, or "" when the call did not run
    result: str = ""


class ToolView(BaseModel):
    name: str
    description: str
    parameters: str  # the JSON schema, indented


class ReviewRow(BaseModel):
    """One row as the review page shows it."""

    id: int
    source_id: Any = None
    style: str
    accepted: bool
    stage: str = ""
    reason: str = ""
    detail: str = ""
    query: str
    tools: list[ToolView]
    calls: list[CallView]
    thought: str = ""
    called: list[str] = Field(default_factory=list)  # the functions the calls name, once each
    removed: list[str] = Field(default_factory=list)  # irrelevance rows: the functions taken out of the tools


def sample_rows(records: Iterable[Record], *, size: int, seed: int, accepted: bool = True) -> list[Record]:
    """The seeded sample of ``size`` accepted (or rejected, judgeable) rows, in sample order."""
    eligible = (r for r in records if r.accepted == accepted and r.query is not None)
    return heapq.nsmallest(size, eligible, key=lambda r: (sample_key(seed, r.id), r.id))


def review_row(record: Record, grounding_mode: GroundingMode = "strict") -> ReviewRow:
    """How the review page shows ``record``, its values explained as its run grounded them."""
    query = record.query or ""
    schemas = {tool.name: tool.parameters.get("properties", {}) for tool in record.tools}
    calls = []
    for index, call in enumerate(record.answers):
        properties = schemas.get(call.name)
        properties = properties if isinstance(properties, dict) else {}
        arguments = [ArgumentView(name=name, value=_cut(json_text(value)),
                                  evidence=[_value_view(e.path, e.value, e.rule, query)
                                            for e in value_evidence(value, query, properties.get(name),
                                                                    mode=grounding_mode)])
                     for name, value in call.arguments.items()]
        outcome, result = call_outcome(record, index)
        calls.append(CallView(name=call.name, arguments=arguments, outcome=outcome, result=_cut(result)))
    stage, reason = record.rejection or ("", "")
    check = getattr(record, f"{stage}_check", None) if stage else None
    return ReviewRow(
        id=record.id, source_id=record.source_id, style=record.style, accepted=record.accepted,
        stage=stage, reason=reason, detail=_cut(check.detail) if check is not None else "",
        query=query, thought=_cut(record.thought),
        tools=[ToolView(name=t.name, description=t.description, parameters=json.dumps(t.parameters, indent=1))
               for t in record.tools],
        calls=calls, called=sorted({call.name for call in record.answers}),
        removed=sorted({call.name for call in record.irrelevant_to}),
    )


def _value_view(path: str, value: Any, rule: str | None, query: str) -> ValueView:
    found = next((span for text in _literals(value) if (span := _find(text, query))), None)
    span = (_utf16(query[:found[0]]), _utf16(query[:found[1]])) if found else None
    return ValueView(path=path, value=_cut(json_text(value)), rule=rule, span=span)


def _utf16(text: str) -> int:
    """The length of ``text`` in UTF-16 code units, as the page's JavaScript counts string positions."""
    return len(text.encode("utf-16-le")) // 2


def _literals(value: Any) -> list[str]:
    """How a query would most likely write ``value``, most exact first (none for true, false, null)."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, float) and value.is_integer():
        return [str(value), str(int(value))]
    return [str(value)] if str(value).strip() else []


def _find(text: str, query: str) -> tuple[int, int] | None:
    """Where ``query`` writes ``text`` as a whole word or number (``1`` is not found in ``14``, but
    ``mm`` is in ``10mm``): a letter edge must not touch a letter, a digit edge not a digit."""
    def edge(char: str) -> str:
        return "[^\\W\\d_]" if char.isalpha() else "\\d" if char.isdigit() else "(?!)"

    pattern = f"(?<!{edge(text[0])}){re.escape(text)}(?!{edge(text[-1])})"
    found = re.search(pattern, query, re.IGNORECASE)
    return found.span() if found else None


def _cut(text: str) -> str:
    """``text`` cut at the page's longer limit (the report's is shorter)."""
    return cut_text(text, TEXT_CHARS)
