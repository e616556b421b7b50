"""A worker for the in-memory backend (run/backends/memory.py): the real run loop (run/job.py,
run/backends/base.py) with no model and no Docker, for the run-loop tests. The real-Docker and
real-Ray tests stay the net."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from apigen_local.run.backends.memory import InMemory
from apigen_local.run.config import build_config
from apigen_local.run.generate import GenerateJob
from apigen_local.types import CallResult, CheckResult, FunctionCall, Record, Tool


class FakeGenerate(GenerateJob):
    """The real generate job on ``backend``: ``settings`` (``rows``, ``batch_rows``, ``library`` ...)
    over the example library's defaults; ``model`` need only be a file (tests/conftest.empty_gguf)."""

    def __init__(self, out: Path, model: Path, backend: InMemory, **settings: Any) -> None:
        from .conftest import EXAMPLE_LIBRARY

        super().__init__(build_config({"library": str(EXAMPLE_LIBRARY), "model": str(model), "out_dir": str(out),
                                       **{k: str(v) if isinstance(v, Path) else v for k, v in settings.items()}}),
                         runs_on=backend)


class FakeWorker:
    """Rows from indices by a fixed rule, and 'execution' that divides in Python.

    Row ``i`` asks to divide ``i + 1`` by ``i % 5`` (0: the call fails). Every 9th row (i % 9 == 8)
    fails the format check; a row with i % 6 == 5 repeats row i - 3's query (a duplicate, often of a
    row in the batch before);
    a row with i % 4 == 3 calls with a value its query does not state (ungrounded).
    """

    def __init__(self, tool: Tool) -> None:
        self.tool = tool
        self.generated: list[int] = []  # indices generated, in order
        self.checked: list[int] = []  # ids of the records sent to the sandbox, in order

    def generate(self, indices: Sequence[int]) -> list[Record]:
        self.generated += indices
        return [self.row(i) for i in indices]

    def row(self, i: int) -> Record:
        record = Record(id=i, seed=i, style="simple", tools=[self.tool], format_check=CheckResult.ok())
        if i % 9 == 8:
            record.raw_output = "{"
            record.format_check = CheckResult.fail("invalid_json", "cut short")
            return record
        q = i - 3 if i % 6 == 5 else i
        record.query = f"Divide {q + 1} by {q % 5}."
        divisor = 77 if i % 4 == 3 else q % 5
        record.answers = [FunctionCall(name=self.tool.name, arguments={"dividend": q + 1, "divisor": divisor})]
        return record

    def check(self, records: Sequence[Record]) -> list[Record]:
        checked = []
        for record in records:
            self.checked.append(record.id)
            arguments = record.answers[0].arguments
            ok = arguments["divisor"] != 0
            record.execution_result = [CallResult(
                name=record.answers[0].name, ok=ok,
                result=arguments["dividend"] / arguments["divisor"] if ok else None,
                reason=None if ok else "exception")]
            record.execution_check = CheckResult.ok() if ok else CheckResult.fail("exception", "ZeroDivisionError")
            if ok:
                record.semantic_check = CheckResult.ok()
            checked.append(record)
        return checked
