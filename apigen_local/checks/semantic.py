"""Stage 3 of APIGen: the same local model judges whether the executed calls serve the query.

The verdict is constrained to :data:`VERDICT_SCHEMA` and validated again after generation; an
unreadable verdict fails the row with ``invalid_verdict``, a "no" with ``judged_wrong``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from ..generation.prompts import judge_messages
from ..model.local import Completion, LocalModel
from ..types import CallResult, CheckResult, FunctionCall, Tool

THOUGHT_MAX_CHARS = 240

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "thought": {"type": "string", "maxLength": THOUGHT_MAX_CHARS},
        "passes": {"type": "string", "enum": ["yes", "no"]},
    },
    "required": ["thought", "passes"],
    "additionalProperties": False,
}


class Verdict(BaseModel):
    """The judge's answer for one row."""

    thought: str
    passes: bool
    check: CheckResult
    raw: str
    completion_tokens: int = 0
    seconds: float = 0.0


def parse_verdict(text: str) -> tuple[str, bool] | None:
    """``(thought, passes)`` from the judge's raw text, or ``None`` if it is not a verdict."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(value, dict) or set(value) != {"thought", "passes"}:
        return None
    thought, passes = value["thought"], value["passes"]
    if not isinstance(thought, str) or passes not in ("yes", "no"):
        return None
    return thought, passes == "yes"


class SemanticChecker:
    """Judges rows with an already loaded :class:`LocalModel` (the generator's own instance)."""

    def __init__(self, model: LocalModel, *, max_tokens: int | None = None, temperature: float = 0.0,
                 result_chars: int = 400) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.result_chars = result_chars

    def judge(self, query: str, tools: Sequence[Tool], calls: Sequence[FunctionCall],
              results: Sequence[CallResult], *, seed: int) -> Verdict:
        """The verdict on one executed row."""
        messages = judge_messages(query, tools, calls, results, result_chars=self.result_chars)
        completion: Completion = self.model.complete_json(
            messages, VERDICT_SCHEMA, max_tokens=self.max_tokens,
            temperature=self.temperature, seed=seed,
        )
        parsed = parse_verdict(completion.text)
        if parsed is None:
            check = CheckResult.fail("invalid_verdict",
                                     f"the judge's reply is not a verdict: {completion.text[:120]!r}")
            thought, passes = "", False
        else:
            thought, passes = parsed
            check = CheckResult.ok() if passes else CheckResult.fail("judged_wrong", thought)
        return Verdict(thought=thought, passes=passes, check=check, raw=completion.text,
                       completion_tokens=completion.completion_tokens, seconds=completion.seconds)
