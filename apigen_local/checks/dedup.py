"""The dedup stage: a query already seen earlier in the run, exactly or up to case, spacing and
punctuation, is rejected as ``duplicate``. The driver runs it in row order, so the same rows are
rejected however the rows were spread over workers."""

from __future__ import annotations

import re
from typing import Final

from ..types import CheckResult

DUPLICATE: Final = "duplicate"


def normalise_query(query: str) -> str:
    """The form two queries share when they differ only in case, spacing or punctuation."""
    return " ".join(re.sub(r"[^\w\s]", " ", query.casefold()).split())


class Deduplicator:
    """Remembers every query that passed the format check, exactly and normalised."""

    def __init__(self) -> None:
        self.exact: dict[str, int] = {}
        self.normalised: dict[str, int] = {}

    def check(self, record_id: int, query: str) -> CheckResult:
        """Pass a query not seen before (and remember it); fail a repeat, naming the first row."""
        if query in self.exact:
            return CheckResult.fail(DUPLICATE, f"same query as row {self.exact[query]}")
        key = normalise_query(query)
        if key in self.normalised:
            return CheckResult.fail(DUPLICATE, f"same query as row {self.normalised[key]} "
                                               "up to case, spacing and punctuation")
        self.exact[query] = record_id
        self.normalised[key] = record_id
        return CheckResult.ok()
