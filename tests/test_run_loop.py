"""The run loop (run/job.py, run/backends/base.py) with the real generate and verify jobs on an
in-memory backend: resume, ordering, admission order, a crash at every point, stats, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apigen_local.errors import ConfigError
from apigen_local.run.backends.base import Backend, ExecutionBackend
from apigen_local.run.backends.memory import InMemory, SimulatedCrash
from apigen_local.run.files import read_records
from apigen_local.run.generate import generate_dataset
from apigen_local.run.job import ramped
from apigen_local.run.verify import VerifyConfig, VerifyJob, verify_dataset
from apigen_local.run.worker import WorkerSettings
from apigen_local.tools import load_library

from . import fakes
from .conftest import EXAMPLE_LIBRARY, empty_gguf
from .fakes import FakeWorker

ROWS = 40
BATCH = 4
TOOL = load_library(EXAMPLE_LIBRARY).by_name["getdivision"]


@pytest.fixture
def fake_model(tmp_path: Path) -> Path:
    path = tmp_path / "fake.gguf"
    empty_gguf(path, padding=40)  # the generate job only resolves the model's file
    return path


class FakeGenerate(fakes.FakeGenerate):
    def __init__(self, out: Path, model: Path, backend: InMemory) -> None:
        super().__init__(out, model, backend, rows=ROWS, batch_rows=BATCH)


def _generate(out: Path, model: Path, **options) -> tuple[InMemory, object]:
    backend = InMemory(FakeWorker(TOOL), **options)
    return backend, FakeGenerate(out, model, backend).run()


def _contents(out: Path) -> list[dict]:
    return [r.model_dump(exclude={"timings"}) for r in read_records(out / "records.jsonl")]


def test_batches_that_finish_out_of_order_are_admitted_and_written_in_order(tmp_path: Path, fake_model: Path) -> None:
    fifo, _ = _generate(tmp_path / "fifo", fake_model, order="fifo")
    newest, _ = _generate(tmp_path / "newest", fake_model, order="newest", window=5)
    assert [r.id for r in read_records(tmp_path / "newest" / "records.jsonl")] == list(range(ROWS))
    # dedup saw the rows in index order: the later of two equal queries is the duplicate
    assert _contents(tmp_path / "newest") == _contents(tmp_path / "fifo")
    records = list(read_records(tmp_path / "fifo" / "records.jsonl"))
    duplicates = [r.id for r in records if r.dedup_check is not None and not r.dedup_check.passed]
    assert duplicates and all(i % 6 == 5 for i in duplicates)
    assert newest.most_out <= 5 and fifo.most_out <= 3


def test_only_rows_that_passed_every_earlier_check_reach_the_sandbox(tmp_path: Path, fake_model: Path) -> None:
    backend, result = _generate(tmp_path / "out", fake_model)
    records = list(read_records(tmp_path / "out" / "records.jsonl"))
    expected = [r.id for r in records if r.format_check.passed and r.dedup_check.passed
                and r.grounding_check is not None and r.grounding_check.passed]
    assert backend.worker.checked == expected and 0 < len(expected) < ROWS
    rejected = {r.id: r.rejection for r in records if not r.accepted}
    assert rejected[8] == ("format", "invalid_json") and rejected[3][0] == "grounding"
    assert rejected[5] == ("dedup", "duplicate") and rejected[10] == ("execution", "exception")
    # stats and report come from the records; each row counted once, for the worker that made it
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["accepted"] == result.stats.accepted == sum(r.accepted for r in records) > 0
    assert stats["rows"] == ROWS and sum(stats["rows_per_worker"].values()) == ROWS
    assert (tmp_path / "out" / "report.html").is_file()
    assert len((tmp_path / "out" / "dataset.jsonl").read_text().splitlines()) == stats["accepted"]
    assert backend.opened and backend.closed


def test_a_crash_at_every_point_loses_nothing_written_and_the_rerun_completes(tmp_path: Path,
                                                                             fake_model: Path) -> None:
    _generate(tmp_path / "whole", fake_model)
    expected = _contents(tmp_path / "whole")
    results = 2 * len(list(ramped(range(ROWS), BATCH)))  # a generate and a check result per batch, at most
    resumed = set()
    for crash_after in range(results + 1):
        out = tmp_path / f"crash{crash_after}"
        backend = InMemory(FakeWorker(TOOL), order="newest", crash_after=crash_after)
        try:
            FakeGenerate(out, fake_model, backend).run()
        except SimulatedCrash:
            pass
        assert backend.closed, crash_after  # the workers were stopped however the run ended
        written = [r.id for r in read_records(out / "records.jsonl")]
        assert written == list(range(len(written))), crash_after  # a prefix, in order, each once
        stats = json.loads((out / "stats.json").read_text())  # stats match the files at the crash
        assert stats["rows"] == len(written), crash_after
        assert (out / "report.html").is_file()
        again = FakeGenerate(out, fake_model, InMemory(FakeWorker(TOOL))).run()
        assert again.resumed_rows == len(written)
        assert _contents(out) == expected, crash_after
        resumed.add(len(written))
    assert min(resumed) == 0 and max(resumed) == ROWS and len(resumed) > 3  # crashes at many points


def test_a_resumed_run_remembers_the_queries_of_rows_that_failed_grounding(tmp_path: Path, fake_model: Path) -> None:
    """A straight run remembers every first occurrence of a query, grounded or not; so must a resume."""
    worker = FakeWorker(TOOL)
    first, repeat = worker.row(3), worker.row(6)  # row 3 is ungrounded (i % 4 == 3)
    repeat.query = first.query
    straight = FakeGenerate(tmp_path / "a", fake_model, InMemory(worker))
    straight.admit([first])
    assert first.rejection == ("grounding", "ungrounded_argument")
    resumed = FakeGenerate(tmp_path / "b", fake_model, InMemory(worker))
    resumed.resume([first])  # as written by a run that then stopped
    assert [r.dedup_check.reason for r in resumed.admit([repeat])] == ["duplicate"]


def test_a_resume_does_not_generate_written_rows_again(tmp_path: Path, fake_model: Path) -> None:
    out = tmp_path / "out"
    backend = InMemory(FakeWorker(TOOL), crash_after=6)
    with pytest.raises(SimulatedCrash):
        FakeGenerate(out, fake_model, backend).run()
    written = {r.id for r in read_records(out / "records.jsonl")}
    assert written
    rerun = InMemory(FakeWorker(TOOL))
    FakeGenerate(out, fake_model, rerun).run()
    assert sorted(rerun.worker.generated) == sorted(set(range(ROWS)) - written)  # only the rest
    assert not written & set(rerun.worker.checked)  # nothing written was executed again
    lines = [json.loads(line)["id"] for line in (out / "records.jsonl").read_text().splitlines()]
    assert sorted(lines) == list(range(ROWS))  # each row once


def test_a_finished_run_opens_no_backend(tmp_path: Path, fake_model: Path) -> None:
    _generate(tmp_path / "out", fake_model)
    backend, result = _generate(tmp_path / "out", fake_model)
    assert not backend.opened and result.resumed_rows == ROWS


def _rows_file(path: Path) -> Path:
    worker = FakeWorker(TOOL)
    lines = []
    for i in range(ROWS):
        row = worker.row(i)
        if row.query is None:
            lines.append("{not json")
            continue
        lines.append(json.dumps({"id": 100 + i, "query": row.query, "tools": [{"name": TOOL.name}],
                                 "answers": [c.model_dump() for c in row.answers]}))
    path.write_text("\n".join(lines) + "\n")
    return path


class FakeVerify(VerifyJob):
    def __init__(self, rows: Path, out: Path, backend: InMemory) -> None:
        super().__init__(rows, EXAMPLE_LIBRARY, VerifyConfig(out_dir=str(out), batch_rows=BATCH,
                                                             stages="format,grounding,execution"), runs_on=backend)


def test_verify_runs_through_the_same_loop_and_resumes(tmp_path: Path) -> None:
    rows = _rows_file(tmp_path / "rows.jsonl")
    whole = InMemory(FakeWorker(TOOL), order="newest")
    FakeVerify(rows, tmp_path / "whole", whole).run()
    records = list(read_records(tmp_path / "whole" / "records.jsonl"))
    # written in file order; an unreadable line keeps its line index as its id
    assert [r.source_id if r.source_id is not None else r.id for r in records] == \
        [i if i % 9 == 8 else 100 + i for i in range(ROWS)]
    assert sorted(whole.worker.checked) == [r.id for r in records if r.format_check.passed and r.grounding_check.passed]
    assert records[8].rejection == ("format", "invalid_row") and records[10].rejection == ("execution", "exception")
    out = tmp_path / "out"
    with pytest.raises(SimulatedCrash):
        FakeVerify(rows, out, InMemory(FakeWorker(TOOL), crash_after=3)).run()
    partial = len(list(read_records(out / "records.jsonl")))
    resumed = FakeVerify(rows, out, InMemory(FakeWorker(TOOL))).run()
    assert resumed.resumed_rows == partial
    assert _contents(out) == _contents(tmp_path / "whole")


def test_a_resume_with_another_model_is_refused_before_anything_is_written(tmp_path: Path, fake_model: Path) -> None:
    out = tmp_path / "out"
    backend = InMemory(FakeWorker(TOOL), crash_after=4)
    with pytest.raises(SimulatedCrash):
        FakeGenerate(out, fake_model, backend).run()
    before = (out / "records.jsonl").read_bytes()
    other = tmp_path / "other.gguf"
    empty_gguf(other, padding=100)
    with pytest.raises(ConfigError, match=r"other settings \(model\)"):
        FakeGenerate(out, other, InMemory(FakeWorker(TOOL))).run()
    assert (out / "records.jsonl").read_bytes() == before
    assert json.loads((out / "run.json").read_text())["model"] == {"file": "fake.gguf", "bytes": 64}


def test_the_folder_stays_held_until_its_stats_and_report_are_written(tmp_path: Path, fake_model: Path,
                                                                      monkeypatch) -> None:
    import apigen_local.run.job as job
    from apigen_local.run.files import RunFiles

    held: list[bool] = []
    write = job.write_report_or_warn

    def watched(run_dir, **options):  # the review rewrites the report only when the folder is free
        held.append(RunFiles(run_dir).being_written())
        return write(run_dir, **options)

    monkeypatch.setattr(job, "write_report_or_warn", watched)
    _generate(tmp_path / "out", fake_model)
    assert held == [True] and not RunFiles(tmp_path / "out").being_written()


class StartedWith(Backend):
    """A third backend, written outside the package: it keeps what each run started it with."""

    def __init__(self) -> None:
        self.settings: list[WorkerSettings] = []
        self.models: list[object] = []

    def start(self, settings: WorkerSettings, *, model: object, library: object) -> ExecutionBackend:
        self.settings.append(settings)
        self.models.append(model)
        return InMemory(FakeWorker(TOOL))


def test_a_backend_is_an_object_the_caller_passes_to_generate_and_verify(tmp_path: Path, fake_model: Path) -> None:
    backend = StartedWith()
    result = generate_dataset(EXAMPLE_LIBRARY, fake_model, 12, out_dir=tmp_path / "gen", batch_rows=BATCH,
                              backend=backend)
    assert len(list(read_records(result.records_path))) == 12
    (settings,) = backend.settings
    assert settings.generation is not None and settings.model is not None
    assert Path(settings.model.path) == fake_model.resolve() and backend.models == [None]  # workers load it
    verified = verify_dataset(_rows_file(tmp_path / "rows.jsonl"), EXAMPLE_LIBRARY, out_dir=tmp_path / "ver",
                              stages="format,execution", batch_rows=BATCH, backend=backend)
    assert len(list(read_records(verified.records_path))) == ROWS
    assert backend.settings[1].sandbox is not None and backend.settings[1].model is None  # no judge: no model


def test_ray_options_without_a_cluster_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from apigen_local import cli

    code = cli.main(["generate", "--library", str(EXAMPLE_LIBRARY), "--rows", "2", "--out", str(tmp_path / "o"),
                     "--ray-workers", "2"])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "need --ray ADDRESS" in error and len(error.splitlines()) == 1, error
    assert not (tmp_path / "o").exists()
