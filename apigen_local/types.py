"""Data that crosses a module boundary or a file, as pydantic models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

QueryStyle = Literal["simple", "multiple", "parallel", "parallel_multiple"]
#: How the model takes part in the semantic stage (see :mod:`apigen_local.checks.semantic`).
JudgeDesign = Literal["coverage", "verdict", "agreement", "round_trip"]
Stage = Literal["input", "format", "dedup", "grounding", "execution", "semantic", "irrelevance"]
#: The checking stages in the order a row meets them; a row's rejection is its first failed one.
#: ``irrelevance`` runs only on irrelevance rows (``generate --irrelevance``).
STAGE_ORDER: tuple[Stage, ...] = ("format", "dedup", "grounding", "execution", "semantic", "irrelevance")


def query_style(n_tools: int, n_calls: int) -> QueryStyle:
    """The APIGen query style of a row with ``n_tools`` offered tools and ``n_calls`` calls (one or
    more of each): one or several tools, one or several calls."""
    if n_tools > 1:
        return "multiple" if n_calls == 1 else "parallel_multiple"
    return "simple" if n_calls == 1 else "parallel"


class Tool(BaseModel):
    """One callable function, described in JSON Schema (the OpenAI tool format's ``function``)."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}, "required": []}
    )

    def openai(self) -> dict[str, Any]:
        """The OpenAI tool form: ``{"type": "function", "function": {...}}``."""
        return {"type": "function", "function": self.model_dump()}


class FunctionCall(BaseModel):
    """One call in an answer: the function name and its keyword arguments."""

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class QueryAnswer(BaseModel):
    """One generated pair: a user query and the calls that answer it."""

    query: str
    answers: list[FunctionCall]


class CheckResult(BaseModel):
    """The outcome of one checker on one row: passed, or a reason code and a detail sentence."""

    passed: bool
    reason: str | None = None
    detail: str = ""

    @classmethod
    def ok(cls) -> CheckResult:
        return cls(passed=True)

    @classmethod
    def fail(cls, reason: str, detail: str = "") -> CheckResult:
        return cls(passed=False, reason=reason, detail=detail)


class CallResult(BaseModel):
    """What happened when one call ran in the sandbox."""

    name: str
    ok: bool
    result: Any = None
    reason: str | None = None  # exception, timeout, crash, oom, not_serializable, ...
    error_type: str | None = None
    error_message: str | None = None
    signal: str | None = None
    stdout: str = ""
    stderr: str = ""
    wall_time: float = 0.0
    coerced: dict[str, Any] = Field(default_factory=dict)  # argument -> original value


class Record(BaseModel):
    """One candidate row with every stage's outcome; written once to ``records.jsonl``."""

    id: int
    source_id: Any = None  # verify: the input row's own "id" (any JSON value), for joining back
    seed: int
    # "unknown": a verified row without tools or calls; "irrelevance": a row answered by no call
    style: QueryStyle | Literal["unknown", "irrelevance"]
    tools: list[Tool]
    examples: list[dict[str, str]] = Field(default_factory=list)
    raw_output: str = ""
    query: str | None = None
    answers: list[FunctionCall] = Field(default_factory=list)
    format_check: CheckResult
    dedup_check: CheckResult | None = None
    grounding_check: CheckResult | None = None
    execution_check: CheckResult | None = None
    execution_result: list[CallResult] = Field(default_factory=list)
    semantic_check: CheckResult | None = None
    irrelevance_check: CheckResult | None = None  # irrelevance rows: no remaining tool could serve the request
    irrelevant_to: list[FunctionCall] = Field(
        default_factory=list, description="irrelevance rows: the calls the request needs, their functions removed")
    thought: str = ""
    raw_verdict: str = ""
    model_name: str = ""
    timings: dict[str, float] = Field(default_factory=dict)
    tokens: dict[str, int] = Field(default_factory=dict)
    stages: list[Stage] | None = None  # the stages a verify run asked for; None: every stage
    not_run: list[Stage] = Field(default_factory=list)  # stages the run could not run: "execution" without a library
    write_repairs: list[str] = Field(default_factory=list)  # what was escaped or cut so the row could be written

    @property
    def keep_row_after_execution_check(self) -> bool:
        return self.execution_check is not None and self.execution_check.passed

    @property
    def keep_row_after_semantic_check(self) -> bool:
        return self.semantic_check is not None and self.semantic_check.passed

    def checks(self) -> list[tuple[Stage, CheckResult]]:
        """``(stage, outcome)`` of every stage that ran on this row, in :data:`STAGE_ORDER`."""
        outcomes = (self.format_check, self.dedup_check, self.grounding_check,
                    self.execution_check, self.semantic_check, self.irrelevance_check)
        return [(stage, check) for stage, check in zip(STAGE_ORDER, outcomes, strict=True)
                if check is not None]

    @property
    def passed_before_execution(self) -> bool:
        """True when every stage before execution that ran (format, dedup, grounding) passed."""
        return all(check.passed for stage, check in self.checks() if stage in ("format", "dedup", "grounding"))

    @property
    def written_id(self) -> Any:
        """The id a written row carries: the input row's own id (verify), else the record's."""
        return self.source_id if self.source_id is not None else self.id

    @property
    def accepted(self) -> bool:
        """True when the row passed every stage that ran."""
        return self.rejection is None

    @property
    def rejection(self) -> tuple[Stage, str] | None:
        """``(stage, reason)`` of the first failed stage, or ``None`` for an accepted row."""
        for stage, check in self.checks():
            if not check.passed:
                return stage, check.reason or "failed"  # type: ignore[return-value]
        if self.execution_check is None and (self.stages is None or "execution" in self.stages):
            return "execution", "not_executed"
        return None
