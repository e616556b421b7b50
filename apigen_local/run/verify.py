"""The ``verify`` job: check an existing function-calling dataset with the checkers ``generate`` uses.

The driver reads each row (``run/rows.py``), format-checks it and grounds it; workers execute
and judge the rows that pass; the driver writes them. Outputs, reason codes and resume are those
of ``generate``.

- **With a library**, a row's ``tools`` only say which functions are offered: their schemas come
  from the library, so a row passes only against the code that runs it.
- **Without one**, each row's own tool specs (xlam, OpenAI or BFCL) define its format check, and
  nothing executes: the execution stage is ``not executed`` in the records, the stats and the
  report, never passed, and the semantic stage judges the calls as written.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..checks.format import INVALID_TOOLS, UNKNOWN_FUNCTION, check_answers
from ..checks.grounding import GroundingMode, check_grounding
from ..errors import ConfigError, LibraryError
from ..model.files import find_model
from ..model.local import LocalModel
from ..tool_specs import normalize_tool
from ..tools import load_library
from ..types import CheckResult, FunctionCall, JudgeDesign, QueryStyle, Record, Stage, Tool, query_style
from .backends.base import Backend, Batch, ExecutionBackend
from .backends.local import InProcess
from .calibration import judge_calibration
from .job import DatasetResult, Job, ProgressReporter, library_identity, model_identity, ramped
from .rows import InputRow, read_rows
from .worker import JudgeSettings, ModelSettings, SandboxSettings, WorkerSettings

VERIFY_STAGES: tuple[Stage, ...] = ("format", "grounding", "execution", "semantic")


class VerifyConfig(BaseModel):
    """Settings of one ``verify`` run. Unknown keys are an error, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")

    stages: str | list[str] = Field(",".join(VERIFY_STAGES), description="stages to run, in order")
    model: str | None = Field(None, description="GGUF of the semantic stage's judge; none: no semantic stage")
    out_dir: str
    grounding: bool = Field(True, description="False skips grounding whatever stages says")
    grounding_mode: GroundingMode = Field(
        "implied", description="strict: every value stated; implied: also values the request implies, by a "
                               "recorded rule (checks/implied.py)")
    judge: JudgeDesign = "coverage"
    lenient: bool = Field(False, description="skip undescribable functions instead of failing")
    call_timeout: float = Field(5.0, gt=0)
    max_containers: int = Field(2, ge=1)
    calls_per_container: int = Field(64, ge=1)
    batch_rows: int = Field(64, ge=1, description="rows read and format-checked before they execute")
    n_ctx: int = Field(8192, ge=512)
    n_threads: int | None = None
    n_gpu_layers: int = 0
    result_chars: int = Field(400, ge=50)


# --------------------------------------------------------------------------- the format stage


def format_record(row: InputRow, tools: dict[str, Tool] | None, stages: Sequence[Stage],
                  grounding_mode: GroundingMode = "strict") -> Record:
    """The record of one input row after the format stage, checked against the library's tools
    (``tools``), or against the row's own tool specs when there is no library (``None``)."""
    problem = row.problem
    not_run: list[Stage] = ["execution"] if tools is None else []
    if tools is None and problem is None:
        tools, problem = _own_tools(row)
    tools = tools or {}
    offered = [tools[name] for name in row.tool_names if name in tools]
    calls = row.answers if isinstance(row.answers, list) else []
    record = Record(id=row.id, source_id=row.source_id, seed=0, style=_style(len(row.tool_names), len(calls)),
                    tools=offered, raw_output=row.text, query=row.query,
                    format_check=CheckResult.ok(), stages=list(stages), not_run=not_run)
    missing = [name for name in row.tool_names if name not in tools]
    if problem is not None:
        record.format_check = problem
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
            record.grounding_check = check_grounding(row.query, record.answers, offered, mode=grounding_mode)
    return record


def _own_tools(row: InputRow) -> tuple[dict[str, Tool], CheckResult | None]:
    """The tools a row's own specs describe, or the problem that stops one from being read."""
    tools: dict[str, Tool] = {}
    for position, spec in enumerate(row.tool_specs):
        try:
            tool = normalize_tool(spec)
        except LibraryError as exc:
            return {}, CheckResult.fail(INVALID_TOOLS, f"line {row.line}: tools[{position}] cannot be read: {exc}")
        tools.setdefault(tool.name, tool)
    return tools, None


def _style(n_tools: int, n_calls: int) -> QueryStyle | Literal["unknown"]:
    """The APIGen query style a row has: one or several offered tools, one or several calls."""
    if n_tools < 1 or n_calls < 1:
        return "unknown"
    return query_style(n_tools, n_calls)


# --------------------------------------------------------------------------- the run


def _chosen_stages(stages: str | Sequence[str], judge: JudgeDesign, has_model: bool,
                   grounding: bool = True, has_library: bool = True) -> tuple[Stage, ...]:
    """The stages to run, in order. The semantic stage's ``coverage`` design needs no model; the
    model designs do. Without a library nothing executes. Bad choices are a ConfigError."""
    names = [s.strip() for s in stages.split(",")] if isinstance(stages, str) else list(stages)
    asked_for_execution = "execution" in names and names != list(VERIFY_STAGES)
    if not grounding:
        names = [name for name in names if name != "grounding"]
    unknown = [name for name in names if name not in VERIFY_STAGES]
    if unknown:
        raise ConfigError(f"unknown stage {unknown[0]!r}: choose from {', '.join(VERIFY_STAGES)}")
    if "format" not in names:
        raise ConfigError("the format stage reads the rows, so the stages must include format")
    if not has_library:
        if asked_for_execution:
            raise ConfigError("the execution stage runs the functions: give --library LIB, or leave execution out")
        names = [name for name in names if name != "execution"]
    elif "semantic" in names and "execution" not in names:
        raise ConfigError("the semantic stage judges execution results, so it needs execution too")
    if "semantic" in names and judge != "coverage" and not has_model:
        raise ConfigError(f"the {judge} judge is the model's: pass --model GGUF, or use --judge coverage")
    return tuple(s for s in VERIFY_STAGES if s in names)


class VerifyJob(Job):
    """A ``verify`` run over the rows file ``rows_path`` on ``runs_on`` (default: in this process, on
    ``model`` when given).

    Everything a user can get wrong (stages, library, model, rows file) is checked here, before
    any output exists.
    """

    def __init__(self, rows_path: str | Path, library: str | Path | None, config: VerifyConfig, *,
                 model: LocalModel | None = None, progress: ProgressReporter | None = None,
                 runs_on: Backend | None = None) -> None:
        super().__init__(config.out_dir, progress, runs_on or InProcess())
        self.config = config
        has_model = model is not None or config.model is not None
        self.stages = _chosen_stages(config.stages, config.judge, has_model, config.grounding,
                                     has_library=library is not None)
        self.library = load_library(library, strict=not config.lenient) if library is not None else None
        self.rows_path = Path(rows_path).expanduser().resolve()
        self.model = model
        self.model_path: Path | None = None
        if "semantic" in self.stages and config.judge != "coverage":
            self.model_path = model.path if model is not None else find_model(config.model)
            self.calibration = judge_calibration(self.model_path)
        self.rows = read_rows(rows_path)
        if not self.rows:
            raise ConfigError(f"the rows file {rows_path} holds no rows: one JSON object per line")

    def identity(self) -> dict[str, Any]:
        identity: dict[str, Any] = {"mode": "verify", "rows": str(self.rows_path),
                                    "library": self.library.path if self.library is not None else None,
                                    "stages": list(self.stages)}
        if self.library is not None:
            identity["library_source"] = library_identity(self.library)
        if "grounding" in self.stages:
            identity["grounding"] = self.config.grounding_mode
        if "semantic" in self.stages:
            identity["judge"] = self.config.judge
            if self.config.judge != "coverage":
                identity["model"] = model_identity(self.model_path)
        return identity

    def total(self) -> int:
        return len(self.rows)

    def batches(self, done: set[int]) -> Iterator[Batch]:
        pending = [row for row in self.rows if row.id not in done]
        tools = self.library.by_name if self.library is not None else None
        for rows in ramped(pending, self.config.batch_rows):
            yield Batch(records=[format_record(row, tools, self.stages, self.config.grounding_mode)
                                 for row in rows])

    def executes(self, record: Record) -> bool:
        """True for a row that goes to a worker: to execute, or (with no library) to be judged."""
        return bool({"execution", "semantic"} & set(self.stages)) and record.passed_before_execution

    def backend(self) -> ExecutionBackend:
        cfg = self.config
        # the model judge needs the model; coverage alone needs none (verify has no function-fit check)
        judge = JudgeSettings(design=cfg.judge, result_chars=cfg.result_chars) if "semantic" in self.stages else None
        needs_model = judge is not None and cfg.judge != "coverage"
        settings = WorkerSettings(
            library=self.library.path if self.library is not None else None, lenient=cfg.lenient, judge=judge,
            model=ModelSettings(path=str(self.model_path), n_ctx=cfg.n_ctx, n_threads=cfg.n_threads,
                                n_gpu_layers=cfg.n_gpu_layers) if needs_model else None,
            sandbox=SandboxSettings(max_containers=cfg.max_containers, call_timeout=cfg.call_timeout,
                                    calls_per_container=cfg.calls_per_container)
            if "execution" in self.stages else None,
        )
        return self.runs_on.start(settings, model=self.model if needs_model else None, library=self.library)


def verify_dataset(
    rows_path: str | Path,
    library: str | Path | None = None,
    *,
    model: str | Path | LocalModel | None = None,
    config: VerifyConfig | None = None,
    progress: ProgressReporter | None = None,
    backend: Backend | None = None,
    **settings: Any,
) -> DatasetResult:
    """Run the format, grounding, execution and (with a ``model``) semantic checkers over rows.

    ``rows_path`` is a JSONL file in the xlam-60k, OpenAI chat or BFCL form; ``library`` the Python
    file or module whose functions the rows call, or ``None``: each row's own tools are checked
    and nothing executes. ``model`` is a GGUF path or a loaded
    :class:`LocalModel`, needed by the ``verdict`` and ``agreement`` judges; the default
    ``coverage`` judge needs none. Further settings (``out_dir``
    is required) are the fields of :class:`VerifyConfig`, e.g. ``stages="format,execution"`` or
    ``grounding=False``; ``config`` replaces all of them. Rows that pass go to ``dataset.jsonl``
    in ``out_dir``; rerunning with the same arguments resumes. ``backend`` is where rows execute
    and are judged, as for :func:`generate_dataset`; this process still reads, format-checks and
    writes every row.
    """
    loaded = model if isinstance(model, LocalModel) else None
    if config is None:
        values = {key: str(value) if isinstance(value, Path) else value for key, value in settings.items()}
        if model is not None and loaded is None:
            values["model"] = str(model)
        if isinstance(values.get("stages"), (tuple, list)):
            values["stages"] = list(values["stages"])
        try:
            config = VerifyConfig(**values)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
                                 for e in exc.errors())
            raise ConfigError(f"invalid verify settings: {problems}") from exc
    return VerifyJob(rows_path, library, config, model=loaded, progress=progress, runs_on=backend).run()
