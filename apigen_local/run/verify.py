"""Verify an existing function-calling dataset with the checkers ``generate`` uses.

Each input line is one row, in the xlam-60k form (``query``; ``answers`` and ``tools`` as JSON
strings or as JSON values; optional ``id``) or the OpenAI chat form (``messages`` holding one user
message and assistant ``tool_calls``, plus ``tools``). The row's ``tools`` only say which functions
are offered: their schemas come from the library, so a row passes only against the code that runs
it. Outputs, reason codes and resume are those of ``generate``; unreadable lines are rejected with
``invalid_row`` at the format stage.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..checks.format import INVALID_JSON, UNKNOWN_FUNCTION, check_answers
from ..checks.grounding import check_grounding
from ..checks.semantic import SemanticChecker
from ..errors import ConfigError
from ..model.files import find_model
from ..model.local import LocalModel
from ..sandbox.executor import SandboxExecutor
from ..tools import load_library
from ..types import CheckResult, FunctionCall, JudgeDesign, QueryStyle, Record, Stage, Tool
from .batch_runner import BatchRunner, ProgressReporter
from .files import RunFiles
from .pipeline import DatasetResult, judge_calibration, previous_wall_seconds, write_stats
from .report import write_report_or_warn

VERIFY_STAGES: tuple[Stage, ...] = ("format", "grounding", "execution", "semantic")
INVALID_ROW = "invalid_row"
MAX_TOOLS_PER_ROW = 1000


class InputRow(BaseModel):
    """One line of the input file, read but not yet checked."""

    line: int = Field(description="1-based line number in the input file")
    id: int
    source_id: Any = Field(None, description='the row\'s own "id", any JSON value, kept for joining back')
    text: str = Field(description="the line as read")
    query: str | None = None
    answers: Any = None
    tool_names: list[str] = Field(default_factory=list)
    problem: CheckResult | None = Field(None, description="invalid_row / invalid_json found while reading")


class _Unreadable(Exception):
    """A row that cannot be read: ``reason`` is invalid_row or invalid_json, the message says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


# --------------------------------------------------------------------------- reading rows


def read_rows(path: str | Path) -> list[InputRow]:
    """Read every non-blank line of a JSONL file of rows; unreadable lines carry their problem.

    A row's id is its integer ``id`` when it has one, else its 0-based line index; an id already
    taken by an earlier line is replaced by a fresh one above every other id, so ids are unique.
    """
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"the rows file {file} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"the rows file {file} cannot be read: {exc.strerror}") from exc
    rows: list[InputRow] = []
    for index, raw in enumerate(data.split(b"\n")):
        if raw.strip():
            rows.append(_read_line(raw, index))
    taken: set[int] = set()
    fresh = max((row.id for row in rows), default=-1) + 1
    for row in rows:
        if row.id in taken:
            row.id, fresh = fresh, fresh + 1
        taken.add(row.id)
    return rows


def _read_line(raw: bytes, index: int) -> InputRow:
    number = index + 1
    text = raw.decode("utf-8", errors="replace").rstrip("\r")
    row = InputRow(line=number, id=index, text=text)
    try:
        try:
            value = _loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise _Unreadable(INVALID_ROW, "it is not UTF-8 text") from exc
        except (ValueError, RecursionError) as exc:
            raise _Unreadable(INVALID_ROW, f"it is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise _Unreadable(INVALID_ROW, "it is not a JSON object")
        row.source_id = value.get("id")
        if isinstance(value.get("id"), int) and not isinstance(value["id"], bool):
            row.id = value["id"]
        row.tool_names = _tool_names(value)
        if "messages" in value:
            row.query, row.answers = _chat_row(value["messages"])
        else:
            row.query, row.answers = _xlam_row(value)
    except _Unreadable as exc:
        row.problem = CheckResult.fail(exc.reason, f"line {number}: {exc}.")
    return row


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _decoded(value: Any, what: str, reason: str) -> Any:
    """``value`` itself, or the JSON it holds when it is a string."""
    if not isinstance(value, str):
        return value
    try:
        return _loads(value)
    except (ValueError, RecursionError) as exc:
        raise _Unreadable(reason, f"{what} is not valid JSON: {exc}") from exc


def _tool_names(row: dict[str, Any]) -> list[str]:
    """The function names a row offers, from xlam, bare-function or OpenAI tool specs."""
    if "tools" not in row:
        raise _Unreadable(INVALID_ROW, 'it has no "tools"')
    specs = _decoded(row["tools"], '"tools"', INVALID_ROW)
    if not isinstance(specs, list) or not specs:
        raise _Unreadable(INVALID_ROW, '"tools" is not a non-empty list of tool specs')
    if len(specs) > MAX_TOOLS_PER_ROW:
        raise _Unreadable(INVALID_ROW, f'"tools" lists {len(specs)} tools, more than {MAX_TOOLS_PER_ROW}')
    names: dict[str, None] = {}  # ordered set
    for position, spec in enumerate(specs):
        name = None
        if isinstance(spec, dict):
            inner = spec.get("function")
            name = (inner if isinstance(inner, dict) else spec).get("name")
        if not isinstance(name, str) or not name:
            raise _Unreadable(INVALID_ROW, f"tools[{position}] has no function name")
        names.setdefault(name)
    return list(names)


def _xlam_row(row: dict[str, Any]) -> tuple[str, Any]:
    for key in ("query", "answers"):
        if key not in row:
            raise _Unreadable(INVALID_ROW, f'it has neither "messages" nor "{key}"')
    if not isinstance(row["query"], str):
        raise _Unreadable(INVALID_ROW, '"query" is not a string')
    return row["query"], _decoded(row["answers"], '"answers"', INVALID_JSON)


def _chat_row(messages: Any) -> tuple[str, list[Any]]:
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise _Unreadable(INVALID_ROW, '"messages" is not a list of message objects')
    users = [m.get("content") for m in messages if m.get("role") == "user"]
    if len(users) != 1 or not isinstance(users[0], str):
        raise _Unreadable(INVALID_ROW, '"messages" must hold exactly one user message with text')
    calls: list[Any] = []
    for message in messages:
        if message.get("role") != "assistant":
            continue
        tool_calls = message.get("tool_calls") or []
        if not isinstance(tool_calls, list):
            raise _Unreadable(INVALID_ROW, "an assistant message has tool_calls that are not a list")
        for call in tool_calls:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                calls.append(call)  # the format check says what is wrong with it
                continue
            shaped = {key: function[key] for key in ("name", "arguments") if key in function}
            if "arguments" in shaped:
                shaped["arguments"] = _decoded(shaped["arguments"],
                                               f"the arguments of tool call {len(calls)}",
                                               INVALID_JSON)
            calls.append(shaped)
    return users[0], calls


# --------------------------------------------------------------------------- the format stage


def format_record(row: InputRow, tools: dict[str, Tool], stages: Sequence[Stage]) -> Record:
    """The record of one input row after the format stage, checked against the library's tools."""
    offered = [tools[name] for name in row.tool_names if name in tools]
    calls = row.answers if isinstance(row.answers, list) else []
    record = Record(id=row.id, source_id=row.source_id, seed=0, style=_style(len(row.tool_names), len(calls)),
                    tools=offered, raw_output=row.text, query=row.query,
                    format_check=CheckResult.ok(), stages=list(stages))
    missing = [name for name in row.tool_names if name not in tools]
    if row.problem is not None:
        record.format_check = row.problem
    elif missing:
        record.format_check = CheckResult.fail(
            UNKNOWN_FUNCTION,
            f"The row offers {', '.join(map(repr, missing))}, which the library does not define.",
        )
    else:
        record.format_check = check_answers(row.query, row.answers, offered, min_calls=1)
    if record.format_check.passed:
        record.answers = [FunctionCall(name=c["name"], arguments=c["arguments"]) for c in calls]
        if "grounding" in stages and row.query is not None:
            record.grounding_check = check_grounding(row.query, record.answers, offered)
    return record


def goes_to_execution(record: Record) -> bool:
    """True for a row that passed format and (when it ran) grounding: it gets executed."""
    return record.format_check.passed and (record.grounding_check is None or record.grounding_check.passed)


def _style(n_tools: int, n_calls: int) -> QueryStyle | Literal["unknown"]:
    """The APIGen query style a row has: one or several offered tools, one or several calls."""
    if n_tools < 1 or n_calls < 1:
        return "unknown"
    if n_tools == 1:
        return "simple" if n_calls == 1 else "parallel"
    return "multiple" if n_calls == 1 else "parallel_multiple"


# --------------------------------------------------------------------------- the run


def _chosen_stages(stages: str | Sequence[str], model: object, grounding: bool = True) -> tuple[Stage, ...]:
    """The stages to run, in order; semantic only with a model. Bad choices are a ConfigError."""
    names = [s.strip() for s in stages.split(",")] if isinstance(stages, str) else list(stages)
    if not grounding:
        names = [name for name in names if name != "grounding"]
    unknown = [name for name in names if name not in VERIFY_STAGES]
    if unknown:
        raise ConfigError(f"unknown stage {unknown[0]!r}: choose from {', '.join(VERIFY_STAGES)}")
    if "format" not in names:
        raise ConfigError("the format stage reads the rows, so the stages must include format")
    if "semantic" in names and "execution" not in names:
        raise ConfigError("the semantic stage judges execution results, so it needs execution too")
    return tuple(s for s in VERIFY_STAGES if s in names and (s != "semantic" or model is not None))


def verify_dataset(
    rows_path: str | Path,
    library: str | Path,
    *,
    stages: str | Sequence[str] = VERIFY_STAGES,
    model: str | Path | LocalModel | None = None,
    out_dir: str | Path,
    grounding: bool = True,
    judge: JudgeDesign = "coverage",
    lenient: bool = False,
    call_timeout: float = 5.0,
    max_containers: int = 2,
    calls_per_container: int = 64,
    batch_rows: int = 64,
    n_ctx: int = 8192,
    n_threads: int | None = None,
    n_gpu_layers: int = 0,
    result_chars: int = 400,
    progress: ProgressReporter | None = None,
    ray: str | None = None,
    ray_workers: int | None = None,
    ray_ship_model: bool = False,
) -> DatasetResult:
    """Run the format, grounding, execution and (with a ``model``) semantic checkers over rows.

    ``rows_path`` is a JSONL file in the xlam-60k or OpenAI chat form; ``library`` the Python file
    or module whose functions the rows call. ``model`` is a GGUF path or a loaded
    :class:`LocalModel`; without one the semantic stage is skipped. ``grounding=False`` skips
    the grounding stage whatever ``stages`` says. Rows that pass go to
    ``dataset.jsonl`` in ``out_dir``; rerunning with the same arguments resumes. ``ray``,
    ``ray_workers`` and ``ray_ship_model`` execute and judge on a Ray cluster, as for
    :func:`generate_dataset`; this process still reads, format-checks and writes every row.
    """
    started = time.perf_counter()
    chosen = _chosen_stages(stages, model, grounding)
    if batch_rows < 1:
        raise ConfigError("batch_rows must be at least 1")
    lib = load_library(library, strict=not lenient)
    model_path = find_model(model) if "semantic" in chosen and isinstance(model, (str, Path)) else None
    model_file = model.path if isinstance(model, LocalModel) else model_path
    rows = read_rows(rows_path)
    files = RunFiles(out_dir)
    identity = {"mode": "verify", "rows": str(Path(rows_path).expanduser().resolve()),
                "library": lib.path, "stages": list(chosen)}
    calibration = None
    if "semantic" in chosen:
        identity["judge"] = judge
        calibration = judge_calibration(model_file)
    done = files.open(identity)
    wall_before = previous_wall_seconds(files) if done else 0.0
    done_ids = {record.id for record in done}
    pending = [row for row in rows if row.id not in done_ids]
    if progress is not None:
        progress.start(len(rows), len(rows) - len(pending))
    records = list(done)
    per_worker: dict[str, int] | None = None
    try:
        if pending and ray is not None:
            from ..scale.ray import verify_on_ray

            per_worker = verify_on_ray(
                ray, ray_workers,
                ([format_record(row, lib.by_name, chosen) for row in pending[start:start + batch_rows]]
                 for start in range(0, len(pending), batch_rows)),
                {"library": str(library), "lenient": lenient, "execution": "execution" in chosen,
                 "semantic": "semantic" in chosen, "n_ctx": n_ctx, "n_threads": n_threads,
                 "n_gpu_layers": n_gpu_layers, "max_containers": max_containers,
                 "call_timeout": call_timeout, "calls_per_container": calls_per_container,
                 "result_chars": result_chars, "judge": {"design": judge}},
                files, progress, records, ship_model=ray_ship_model,
                model_path=model_file)
        elif pending:
            with ExitStack() as stack:
                sandbox = stack.enter_context(SandboxExecutor(
                    lib.path, max_containers=max_containers, call_timeout=call_timeout,
                )) if "execution" in chosen else None
                checker = None
                if "semantic" in chosen:
                    loaded = model if isinstance(model, LocalModel) else None
                    if loaded is None and judge != "coverage":  # coverage alone needs no model
                        loaded = stack.enter_context(LocalModel(model_path, n_ctx=n_ctx, n_threads=n_threads,
                                                                n_gpu_layers=n_gpu_layers))
                    checker = SemanticChecker(loaded, design=judge, result_chars=result_chars,
                                              fit_margin=None)  # verify has no function-fit check yet
                runner = BatchRunner(sandbox, lib.tools, files, runnable=goes_to_execution, judge=checker,
                                     seed=0, calls_per_container=calls_per_container, progress=progress)
                records += runner.run(
                    [format_record(row, lib.by_name, chosen) for row in pending[start:start + batch_rows]]
                    for start in range(0, len(pending), batch_rows)
                )
    finally:
        files.close()
        stats = write_stats(files, records, wall_before + time.perf_counter() - started,
                            rows_per_worker=per_worker, calibration=calibration)
        write_report_or_warn(files.dir, records=records)
    return DatasetResult(
        out_dir=files.dir, dataset_path=files.dataset, records_path=files.records,
        rejected_path=files.rejected, stats_path=files.stats, resumed_rows=len(done),
        stats=stats,
    )
