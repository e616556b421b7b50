"""The ``generate`` job: workers write and format-check rows; the driver deduplicates and grounds
them in index order; workers execute and judge the rows that pass; the driver writes them.

Rows are seeded by index, so a row comes out the same whichever worker makes it, and a rerun
with the same output folder and settings continues where the last one stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..checks.dedup import Deduplicator
from ..checks.irrelevance import check_irrelevance
from ..checks.part import ground_row
from ..checks.request import check_request
from ..generation.sampling import load_seed_examples
from ..model.files import find_model
from ..model.local import LocalModel
from ..tools import load_library
from ..types import Record, Stage
from .backends.base import Backend, Batch, ExecutionBackend
from .backends.local import InProcess
from .calibration import judge_calibration
from .config import GenerationConfig, build_config
from .job import DatasetResult, Job, ProgressReporter, library_identity, model_identity, ramped
from .labels import load_for_model as load_label_report
from .worker import WorkerSettings

log = logging.getLogger(__name__)
#: what an irrelevance row goes through: its calls are dropped, so neither grounding nor execution applies
IRRELEVANCE_STAGES: tuple[Stage, ...] = ("format", "dedup", "irrelevance")


class GenerateJob(Job):
    """A ``generate`` run of ``config`` on ``runs_on`` (default: in this process, on ``model`` when given).

    Everything a user can get wrong (model, library, seed file) is checked here, before any
    output exists.
    """

    def __init__(self, config: GenerationConfig, *, model: LocalModel | None = None,
                 progress: ProgressReporter | None = None, runs_on: Backend | None = None) -> None:
        super().__init__(config.out_dir, progress, runs_on or InProcess())
        self.config = config
        self.model = model
        self.model_path = (model.path if model is not None else find_model(config.model)).resolve()
        if config.semantic:
            self.calibration = judge_calibration(self.model_path)
        self.labelled = load_label_report(self.model_path)
        self.library = load_library(config.library, strict=not config.lenient)
        if config.seed_file:
            load_seed_examples(config.seed_file)
        else:
            log.warning("no --seed-file: the model sees no example rows, and a small one then writes bare "
                        "function names; draft some with 'apigen-local seed --library %s --out seed.jsonl', "
                        "edit them, and pass --seed-file seed.jsonl", config.library)
        self.dedup = Deduplicator()

    def identity(self) -> dict[str, Any]:
        return {**self.config.identity(), "model": model_identity(self.model_path),
                "library_source": library_identity(self.library)}

    def total(self) -> int:
        return self.config.rows

    def batches(self, done: set[int]) -> Iterator[Batch]:
        pending = [i for i in range(self.config.rows) if i not in done]
        return (Batch(indices=indices) for indices in ramped(pending, self.config.batch_rows))

    def backend(self) -> ExecutionBackend:
        return self.runs_on.start(WorkerSettings.for_generation(self.config, str(self.model_path)),
                                  model=self.model, library=self.library)

    def resume(self, done: Sequence[Record]) -> None:
        for record in done:  # the queries a straight run would remember: each first occurrence
            if record.query is not None and record.dedup_check is not None and record.dedup_check.passed:
                self.dedup.check(record.id, record.query)

    def admit(self, records: list[Record]) -> list[Record]:
        """Deduplicate each format-checked row against the earlier ones, then ground it, and a
        calls-first row each call in its own request (checks/part.py); an irrelevance row is not
        grounded: its calls are dropped, so their values do not matter."""
        for record in records:
            if record.style == "irrelevance":
                record.stages = list(IRRELEVANCE_STAGES)
            if record.query is None:
                continue
            record.dedup_check = self.dedup.check(record.id, record.query)
            if self.config.grounding and record.dedup_check.passed and record.style != "irrelevance":
                record.grounding_check = ground_row(record.query, record.answers, record.tools,
                                                    calls_first=self.config.mode == "calls_first",
                                                    string_bound=self.config.max_string_chars)
        return records


    def executes(self, record: Record) -> bool:
        return record.style != "irrelevance" and record.passed_before_execution

    def finish(self, records: list[Record]) -> list[Record]:
        """Make each irrelevance row that passed format and dedup a no-call row, and check that it is
        a request and that no tool left could serve it (checks/irrelevance.py)."""
        for record in records:
            if record.style == "irrelevance" and record.accepted and record.query is not None:
                request = check_request(record.query, record.tools)  # phrased for the tools it was written for
                called = {call.name for call in record.answers}
                record.irrelevant_to, record.answers = record.answers, []
                record.tools = [tool for tool in record.tools if tool.name not in called]
                record.irrelevance_check = (check_irrelevance(record.query, record.tools, record.irrelevant_to)
                                            if request.passed else request)
        return records


def generate_dataset(
    library: str | Path,
    model: str | Path | LocalModel | None = None,
    n_rows: int = 100,
    *,
    out_dir: str | Path = "out",
    seed: int = 0,
    styles: str | dict[str, float] | None = None,
    config: GenerationConfig | None = None,
    progress: ProgressReporter | None = None,
    backend: Backend | None = None,
    **settings: Any,
) -> DatasetResult:
    """Generate ``n_rows`` candidate rows from ``library`` with a local GGUF ``model``.

    ``model`` is a GGUF path, an already loaded :class:`LocalModel`, or ``None`` to use
    ``$APIGEN_MODEL`` / the GGUF in ``models/``. Further settings are the fields of
    :class:`GenerationConfig`; ``config`` replaces all of them. Rerunning with the same
    ``out_dir`` and settings resumes. ``backend`` is where the workers are: in this process by
    default, ``RayCluster("auto", workers=4)`` (``run/backends/ray.py``) to spread the rows over a
    Ray cluster, or ``InMemory(worker)`` (``run/backends/memory.py``) for tests.
    """
    loaded = model if isinstance(model, LocalModel) else None
    if config is None:
        values: dict[str, Any] = {"library": str(library), "rows": n_rows,
                                  "out_dir": str(out_dir), "seed": seed, **settings}
        if model is not None and loaded is None:
            values["model"] = str(model)
        if styles is not None:
            values["styles"] = styles
        config = build_config(values)
    return GenerateJob(config, model=loaded, progress=progress, runs_on=backend).run()
