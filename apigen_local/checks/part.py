"""Calls-first: whether the request written for one drawn call states it, on its own.

The generator writes the request of each drawn call on its own and joins them (generation/
generator.py). :func:`states_call` chooses among candidate requests for one call: the first that
is a request, states every value of its call and no other value (grounding, the request check and
coverage, each on that call alone). :func:`check_parts` holds a finished row of several calls to
the same: a value stated only in another call's request, or a call whose request is a statement,
is not hidden by the rest of the row ("The cat and the hat is the cat. Also, count the words in
'...'").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ..generation.generator import split_requests
from ..model.bounds import STRING_MAX_CHARS
from ..types import CheckResult, FunctionCall, Tool
from .coverage import check_coverage
from .grounding import check_grounding
from .request import check_request

#: a call of a calls-first row is not stated by the request written for it
PART_NOT_STATED: Final = "part_not_stated"


def _check_part(query: str, call: FunctionCall, tools: Sequence[Tool], string_bound: int) -> CheckResult:
    """The first of the request check, grounding and coverage that ``query`` fails for ``call`` alone."""
    for check in (lambda: check_request(query, tools),
                  lambda: check_grounding(query, [call], tools, string_bound=string_bound),
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
    """A calls-first row of several calls: each call's own request states it (:func:`states_call`).
    A row of one call, or whose query does not split into one request per call, passes here."""
    parts = split_requests(query, len(calls)) if len(calls) > 1 else None
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
