"""Calls-first: whether the request written for one drawn call states it, on its own.

The generator writes the request of each drawn call on its own and joins them (generation/
generator.py). :func:`states_call` chooses among candidate requests for one call: the first that
is a request, states every value of its call and no other value (grounding, the request check and
coverage, each on that call alone). :func:`check_parts` holds a finished row of several calls to
the same: a value stated only in another call's request, or a call whose request is a statement,
is not hidden by the rest of the row ("The cat and the hat is the cat. Also, count the words in
'...'").

Four rules hold only here, for a drawn call, whose options were drawn, not asked for:

- ``flag``: an optional boolean the call sets away from its default is named by its request, by a
  word of its own (its name, or its description's words that the function's description does not
  use): ``unique=True`` for "How many distinct words ...", not for "Count the words in ...";
- ``choice``: when the request names exactly one allowed value of a parameter ("sort ... by first
  name"), the call passes that value, not another or the default;
- ``ways``: a request that asks "how many ways" asks for a count of arrangements, which only a
  function whose description speaks of them gives ("How many ways can you divide 220 by 10?"
  is not a division);
- ``cut``: a request as long as the bound it was written under (``REQUEST_MAX_CHARS``) was cut
  there, as a looping model's is, not finished.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from ..generation.generator import split_requests
from ..model.bounds import REQUEST_MAX_CHARS, STRING_MAX_CHARS
from ..types import CheckResult, FunctionCall, Tool
from .coverage import UNUSED_QUERY_VALUE, check_coverage
from .fit import WRONG_FUNCTION
from .grounding import UNGROUNDED_ARGUMENT, check_grounding, enum_named, singular
from .request import NOT_A_REQUEST, check_request

#: a call of a calls-first row is not stated by the request written for it
PART_NOT_STATED: Final = "part_not_stated"


#: words too common to name a flag
_PLAIN_WORDS = frozenset({"the", "and", "for", "with", "from", "into", "than", "that", "this", "each", "every",
                          "only", "same", "instead", "whether", "when", "also", "its", "not", "all", "any"})


def _words(text: str) -> set[str]:
    return {word for word in singular(text.replace("_", " ")).split() if len(word) > 2 and word not in _PLAIN_WORDS}


def unnamed_flag(query: str, call: FunctionCall, tool: Tool) -> str | None:
    """The first optional boolean of ``call`` set away from its default whose own words ``query``
    does not use (see the module), or ``None``."""
    properties = tool.parameters.get("properties", {})
    required = set(tool.parameters.get("required", []))
    said = _words(query)
    for name, value in call.arguments.items():
        schema = properties.get(name) if isinstance(properties, dict) else None
        if (not isinstance(value, bool) or name in required or not isinstance(schema, dict)
                or not isinstance(schema.get("default"), bool) or value == schema["default"]):
            continue
        own = _words(f"{name} {schema.get('description', '')}") - _words(tool.description)
        if own and not own & said:
            return name
    return None


def unused_choice(query: str, call: FunctionCall, tool: Tool) -> tuple[str, str] | None:
    """The first ``(parameter, value)`` where ``query`` names exactly one allowed value of the
    parameter and ``call`` (or the default it keeps) holds another, or ``None``."""
    properties = tool.parameters.get("properties", {})
    for name, schema in (properties.items() if isinstance(properties, dict) else ()):
        allowed = schema.get("enum") if isinstance(schema, dict) else None
        if not isinstance(allowed, list) or len(allowed) < 2 or not all(isinstance(v, str) for v in allowed):
            continue
        named = [value for value in allowed if enum_named(value, query)]
        held = call.arguments.get(name, schema.get("default"))
        if len(named) == 1 and held != named[0]:
            return name, named[0]
    return None


_WAYS_RE = re.compile(r"\bhow many (?:(?:different|distinct|possible|unique) )*ways\b", re.IGNORECASE)
_ARRANGING_RE = re.compile(r"\b(?:permutation|combination|arrangement|arrange|ordering|choose|choice|select|ways)",
                           re.IGNORECASE)


def counts_ways(query: str, tool: Tool) -> bool:
    """Whether ``query`` asks "how many ways" and ``tool``'s description speaks of no arrangements."""
    return _WAYS_RE.search(query) is not None and _ARRANGING_RE.search(tool.description) is None


def _check_drawn(query: str, call: FunctionCall, tools: Sequence[Tool]) -> CheckResult:
    """The ``cut``, ``ways``, ``flag`` and ``choice`` rules of the module for ``call``."""
    if len(query) >= REQUEST_MAX_CHARS:
        return CheckResult.fail(NOT_A_REQUEST, f"the request runs to the {REQUEST_MAX_CHARS}-character bound: "
                                "cut there, not finished.")
    tool = next((tool for tool in tools if tool.name == call.name), None)
    if tool is None:
        return CheckResult.ok()
    if counts_ways(query, tool):
        return CheckResult.fail(WRONG_FUNCTION, f"the query asks how many ways, and {call.name} counts no "
                                "arrangements.")
    flag = unnamed_flag(query, call, tool)
    if flag is not None:
        return CheckResult.fail(UNGROUNDED_ARGUMENT, f"{call.name}: argument {flag!r} = {call.arguments[flag]!r} "
                                "is not stated in the query.")
    choice = unused_choice(query, call, tool)
    if choice is not None:
        return CheckResult.fail(UNUSED_QUERY_VALUE, f"the query asks for {choice[0]} {choice[1]!r}, but the call "
                                "does not use it.")
    return CheckResult.ok()


def _check_part(query: str, call: FunctionCall, tools: Sequence[Tool], string_bound: int) -> CheckResult:
    """The first of the request check, grounding, the rules of the module and coverage that
    ``query`` fails for ``call`` alone."""
    for check in (lambda: check_request(query, tools),
                  lambda: check_grounding(query, [call], tools, string_bound=string_bound),
                  lambda: _check_drawn(query, call, tools),
                  lambda: check_coverage(query, [call])):
        outcome = check()
        if not outcome.passed:
            return outcome
    return CheckResult.ok()


def states_call(query: str, call: FunctionCall, tools: Sequence[Tool]) -> bool:
    """Whether ``query`` is a request that states every value of ``call`` and no other value."""
    return _check_part(query, call, tools, STRING_MAX_CHARS).passed


def check_parts(query: str, calls: Sequence[FunctionCall], tools: Sequence[Tool], *,
                string_bound: int = STRING_MAX_CHARS) -> CheckResult:
    """A calls-first row of several calls: each call's own request states it (:func:`states_call`);
    a row of one call: the four rules of the module (the rest ran on the whole row). A row whose
    query does not split into one request per call passes here."""
    if len(calls) == 1:
        return _check_drawn(query, calls[0], tools)
    parts = split_requests(query, len(calls))
    if parts is None:
        return CheckResult.ok()
    for number, (part, call) in enumerate(zip(parts, calls, strict=True), 1):
        outcome = _check_part(part, call, tools, string_bound)
        if not outcome.passed:
            return CheckResult.fail(PART_NOT_STATED, f"call {number} ({call.name}) is not stated by its own "
                                    f"request '{part}': {outcome.reason}: {outcome.detail}")
    return CheckResult.ok()


def ground_row(query: str, calls: Sequence[FunctionCall], tools: Sequence[Tool], *, calls_first: bool,
               string_bound: int = STRING_MAX_CHARS) -> CheckResult:
    """Grounding as a run does it: the whole row, then a calls-first row each call in its own request."""
    outcome = check_grounding(query, calls, tools, string_bound=string_bound)
    if outcome.passed and calls_first:
        outcome = check_parts(query, calls, tools, string_bound=string_bound)
    return outcome
