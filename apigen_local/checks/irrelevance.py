"""Irrelevance rows: a request whose needed function is not among the offered tools, answered by
no call (``generate --irrelevance F``).

Such a row is generated as an ordinary row and checked for format and duplicates; then the
functions its calls name are taken out of its offered tools and its answer becomes ``[]``
(``run/generate.py``). It is kept only when it is a request (``checks/request.py``) and no
remaining tool could serve it. Rules (pure, deterministic; reason codes below):

- ``no_tool_left``: removing the needed functions left nothing to offer.
- ``tool_could_serve``: a remaining tool shares a distinctive word with the request: a word of
  four letters or more (singular, case-folded) from the tool's name, description or parameter
  names that is not a generic word of tool descriptions ("calculate", "number", "value", ...).
  Near tools (the least common multiple beside the greatest common divisor) share one and are
  refused; the rule prefers refusing a good row to keeping a request a tool could answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from ..types import CheckResult, FunctionCall, Tool
from .grounding import singular

NO_TOOL_LEFT: Final = "no_tool_left"
TOOL_COULD_SERVE: Final = "tool_could_serve"

_WORD = re.compile(r"[a-z]+")
_GENERIC_WORDS = """
    about above after again against also another answer anything based because been before being
    below between both calculate calculates calculated calculation check checks compute computes
    computed could does doing each either every find finds from function functions gets give gives
    given have having here input into item items just like list lists make makes many more most much
    must need needs number numbers other output over parameter parameters please provide provides
    result results return returns same should show some such than that their them then there these
    they thing this those through under using value values want what when where whether which while
    will with within without would your default optional true false string strings whole
"""
_GENERIC = frozenset(_GENERIC_WORDS.split())


def words(text: str) -> set[str]:
    """The distinctive words of ``text``: four letters or more, singular, not generic."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", text).casefold().replace("_", " ")
    found = {singular(w) for w in _WORD.findall(spaced)}
    return {w for w in found if len(w) >= 4 and w not in _GENERIC}


def tool_words(tool: Tool) -> set[str]:
    """The distinctive words of a tool's name, description and parameter names."""
    properties = tool.parameters.get("properties")
    names = " ".join(properties) if isinstance(properties, dict) else ""
    return words(f"{tool.name} {tool.description} {names}")


def check_irrelevance(query: str, remaining: Sequence[Tool], needed: Sequence[FunctionCall]) -> CheckResult:
    """Pass when no tool of ``remaining`` could serve ``query`` (whose ``needed`` calls were removed)."""
    if not remaining:
        return CheckResult.fail(NO_TOOL_LEFT, "removing " + ", ".join(sorted({c.name for c in needed}))
                                + " left no tool to offer.")
    asked = words(query)
    for tool in remaining:
        shared = asked & tool_words(tool)
        if shared:
            return CheckResult.fail(TOOL_COULD_SERVE, f"{tool.name} shares {', '.join(sorted(shared))} with the "
                                                      "request: it might serve it.")
    return CheckResult.ok()
