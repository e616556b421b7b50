"""Data that crosses a module boundary or a file, as pydantic models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

QueryStyle = Literal["simple", "multiple", "parallel", "parallel_multiple"]
Stage = Literal["input", "format", "execution", "semantic", "dedup"]


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
