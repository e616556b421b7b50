"""Stage 3 of APIGen: do the executed calls serve the query? Deterministic checks, then the model.

First the deterministic head: :func:`~apigen_local.checks.request.check_request`
(``not_a_request``), :func:`~apigen_local.checks.request.check_repeats` (``repeated_call``) and
:func:`~apigen_local.checks.coverage.check_coverage` (``unused_query_value``). With a model, the
function-fit check (:mod:`~apigen_local.checks.fit`, ``wrong_function``) compares the called
functions with the library's others, when a ``fit_margin`` is set (off by default: on the
held-out labelled rows it cost more correct rows than wrong ones, ``benchmarks/README.md``).
Then, by the ``design``:

- ``coverage`` (the default): nothing more. Measured on the default model (SmolLM2-135M), both
  model designs below cost correct rows and caught no wrong row that grounding and coverage let
  through (``benchmarks/README.md``); calibrate a stronger model before choosing one of them.

- ``verdict``: the same local model reads the query, calls and results and answers yes or no, constrained to
  :data:`VERDICT_SCHEMA` (``judged_wrong``; an unreadable reply is ``invalid_verdict``);
- ``agreement``: the model answers the query itself, at temperature 0 with the same offered tools,
  and the row passes when both answers call the same set of functions (``disagrees``). Counts
  are not compared, since small models at temperature 0 repeat a call until the length limit;
  argument values are grounding's and coverage's job;
- ``round_trip``: the model answers the query itself, as for ``agreement``, and the row passes
  only when that answer, identical repeats counted once, is the row's calls: the same functions
  with the same values, in any order (``round_trip_differs``). For calls-first rows, whose calls were drawn before the
  request was written, it asks whether the request says what the calls do (issue 38).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from ..generation.generator import call_schema
from ..generation.prompts import answer_messages, judge_messages
from ..model.bounds import SchemaBounds
from ..model.local import Completion, LocalModel
from ..types import CallResult, CheckResult, FunctionCall, JudgeDesign, Tool
from .coverage import check_coverage
from .fit import check_fit
from .request import check_repeats, check_request

MAX_ANSWER_CALLS = 4

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


def answer_schema(tools: Sequence[Tool], bounds: SchemaBounds | None = None) -> dict[str, Any]:
    """The ``{"calls": [...]}`` schema of the model's own answer over ``tools``."""
    calls = [call_schema(tool, bounds or SchemaBounds()) for tool in tools]
    return {
        "type": "object",
        "properties": {"calls": {"type": "array", "items": calls[0] if len(calls) == 1 else {"anyOf": calls},
                                 "minItems": 1, "maxItems": MAX_ANSWER_CALLS}},
        "required": ["calls"],
        "additionalProperties": False,
    }


def parse_answer(text: str) -> list[FunctionCall] | None:
    """The calls of the model's own answer, or ``None`` if the text is not one."""
    try:
        value = json.loads(text)
        return [FunctionCall.model_validate(call) for call in value["calls"]]
    except (json.JSONDecodeError, TypeError, KeyError, ValidationError):
        return None


def same_functions(row: Sequence[FunctionCall], answer: Sequence[FunctionCall]) -> bool:
    """Whether two answers call the same set of functions."""
    return {call.name for call in row} == {call.name for call in answer}


def _normal(value: Any) -> Any:
    """A value as a round trip compares it: numbers by value, text trimmed and case-folded."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return " ".join(value.split()).casefold()
    if isinstance(value, list):
        return [_normal(item) for item in value]
    if isinstance(value, dict):
        return {key: _normal(item) for key, item in sorted(value.items())}
    return value


def same_calls(row: Sequence[FunctionCall], answer: Sequence[FunctionCall]) -> bool:
    """Whether two answers make the same calls with the same values, in any order."""
    def keys(calls: Sequence[FunctionCall]) -> list[str]:
        return sorted(json.dumps([call.name, _normal(call.arguments)], sort_keys=True) for call in calls)
    return keys(row) == keys(answer)


def _shown(calls: Sequence[FunctionCall]) -> str:
    shown = (f"{call.name}({json.dumps(call.arguments, ensure_ascii=False)[1:-1]})" for call in calls)
    return "; ".join(shown) or "nothing"


def _names(calls: Sequence[FunctionCall]) -> str:
    return ", ".join(call.name for call in calls) or "nothing"


class SemanticChecker:
    """Judges rows; the model designs use an already loaded :class:`LocalModel` (the generator's own)."""

    def __init__(self, model: LocalModel | None, *, design: JudgeDesign = "coverage", coverage: bool = True,
                 max_tokens: int | None = None, temperature: float = 0.0, result_chars: int = 400,
                 library: Sequence[Tool] = (), fit_margin: float | None = None) -> None:
        if model is None and design != "coverage":
            raise ValueError(f"the {design} design needs a model")
        self.model = model
        self.library = list(library)  # the functions the fit check compares the called ones with
        self.fit_margin = fit_margin  # None: no fit check
        self.design = design
        self.coverage = coverage
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.result_chars = result_chars

    def judge(self, query: str, tools: Sequence[Tool], calls: Sequence[FunctionCall],
              results: Sequence[CallResult], *, seed: int) -> Verdict:
        """The verdict on one executed row. A head check that passed with a note ("not judged: the
        query is not in English") keeps its note in a passing verdict's detail."""
        notes: list[str] = []
        if self.coverage:
            for head in (check_request(query, tools), check_repeats(query, calls), check_coverage(query, calls)):
                if not head.passed:
                    return Verdict(thought=head.detail, passes=False, check=head, raw="")
                notes += [head.detail] if head.detail else []
        verdict = self._judged(query, tools, calls, results, seed=seed)
        if notes and verdict.passes:
            detail = "; ".join([*notes, verdict.check.detail] if verdict.check.detail else notes)
            verdict = verdict.model_copy(update={"check": verdict.check.model_copy(update={"detail": detail})})
        return verdict

    def _judged(self, query: str, tools: Sequence[Tool], calls: Sequence[FunctionCall],
                results: Sequence[CallResult], *, seed: int) -> Verdict:
        """The verdict after the head checks: the fit check, then the design."""
        if self.model is not None and self.fit_margin is not None:
            fit = check_fit(self.model, query, calls, [*self.library, *tools], self.fit_margin)
            if not fit.passed:
                return Verdict(thought=fit.detail, passes=False, check=fit, raw="")
        if self.design in ("agreement", "round_trip"):
            return self.agreement(query, tools, calls, seed=seed, exact=self.design == "round_trip")
        if self.design == "verdict":
            return self.verdict(query, tools, calls, results, seed=seed)
        return Verdict(thought="", passes=True, check=CheckResult.ok(), raw="")

    def verdict(self, query: str, tools: Sequence[Tool], calls: Sequence[FunctionCall],
                results: Sequence[CallResult], *, seed: int) -> Verdict:
        """The ``verdict`` design: the model says yes or no with a short thought."""
        assert self.model is not None
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

    def answer(self, query: str, tools: Sequence[Tool], *, seed: int) -> tuple[list[FunctionCall] | None, Completion]:
        """The model's own calls for ``query`` at temperature 0 (``None`` if unreadable)."""
        assert self.model is not None
        completion = self.model.complete_json(answer_messages(query, tools), answer_schema(tools),
                                              max_tokens=self.max_tokens, temperature=0.0, seed=seed)
        return parse_answer(completion.text), completion

    def agreement(self, query: str, tools: Sequence[Tool], calls: Sequence[FunctionCall], *,
                  seed: int, exact: bool = False) -> Verdict:
        """The ``agreement`` design: the row passes when the model's own answer calls the same
        functions; ``exact`` (``round_trip``): the same calls, values included."""
        own, completion = self.answer(query, tools, seed=seed)
        if own is None:
            check = CheckResult.fail("invalid_verdict",
                                     f"the model's own answer is not readable: {completion.text[:120]!r}")
            thought = ""
        else:
            if exact:
                thought = f"the request read back gives {_shown(own)}; the row calls {_shown(calls)}"
                # a small model at temperature 0 repeats a call until the length limit: repeats are one call
                distinct = [call for i, call in enumerate(own) if call not in own[:i]]
                check = CheckResult.ok() if same_calls(calls, distinct) else \
                    CheckResult.fail("round_trip_differs", thought)
            else:
                thought = f"independent answer calls {_names(own)}; the row calls {_names(calls)}"
                check = CheckResult.ok() if same_functions(calls, own) else CheckResult.fail("disagrees", thought)
        return Verdict(thought=thought, passes=check.passed, check=check, raw=completion.text,
                       completion_tokens=completion.completion_tokens, seconds=completion.seconds)
