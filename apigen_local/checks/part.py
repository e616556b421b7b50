"""Calls-first: whether a request written for one drawn call passes the text checks on its own.

The generator writes a few candidate requests for each drawn call and keeps the first that states
its call (:func:`states_call`): grounding, the request check and coverage, each run on that call
alone. A row of several calls joins the kept requests, and every check runs again on the whole
row, so this only chooses among candidates; it lets nothing through.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model.bounds import STRING_MAX_CHARS
from ..types import FunctionCall, Tool
from .coverage import check_coverage
from .grounding import check_grounding
from .request import check_request


def states_call(query: str, call: FunctionCall, tools: Sequence[Tool]) -> bool:
    """Whether ``query`` is a request that states every value of ``call`` and no other value."""
    return (check_request(query, tools).passed
            and check_grounding(query, [call], tools, string_bound=STRING_MAX_CHARS).passed
            and check_coverage(query, [call]).passed)
