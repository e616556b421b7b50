"""A new user's second round (issue 43): the trips they hit, each from new cases in its class."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from apigen_local import cli
from apigen_local.bfcl.export import bfcl_schema
from apigen_local.checks.grounding import check_grounding
from apigen_local.errors import ConfigError
from apigen_local.run.backends.base import Task
from apigen_local.run.backends.memory import InMemory, SimulatedCrash
from apigen_local.run.files import read_records
from apigen_local.run.job import ramped
from apigen_local.run.progress import LineProgress
from apigen_local.run.verify import VerifyConfig, VerifyJob
from apigen_local.types import CheckResult, FunctionCall, Record, Tool

from .conftest import EXAMPLE_LIBRARY, empty_gguf
from .fakes import FakeGenerate, FakeWorker
from .test_run_loop import TOOL, _rows_file


class Generate(FakeGenerate):
    def __init__(self, library: Path, out: Path, model: Path, backend: InMemory) -> None:
        super().__init__(out, model, backend, library=library, rows=24, batch_rows=4)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return empty_gguf(tmp_path / "fake.gguf", padding=40)


def _package(folder: Path) -> Path:
    """A package library: the example's functions in ``__init__``, which reads a constant from a
    submodule; returns the submodule."""
    package = folder / "shoplib"
    package.mkdir()
    (package / "__init__.py").write_text(EXAMPLE_LIBRARY.read_text() + "\nfrom .limits import LIMIT  # noqa: E402\n")
    (package / "limits.py").write_text("LIMIT = 3\n")
    return package / "limits.py"


@pytest.mark.parametrize("edit", [
    lambda lib: lib.write_text(lib.read_text().replace("return", "return  # edited\n    return", 1)),
    lambda lib: lib.write_text(lib.read_text() + "\n# only a comment\n"),
])
def test_a_resume_with_an_edited_library_is_refused_naming_it(tmp_path: Path, model: Path, edit) -> None:
    library = tmp_path / "shop.py"
    shutil.copy(EXAMPLE_LIBRARY, library)
    out = tmp_path / "out"
    with pytest.raises(SimulatedCrash):
        Generate(library, out, model, InMemory(FakeWorker(TOOL), crash_after=8)).run()
    before = (out / "records.jsonl").read_bytes()
    original = library.read_bytes()
    edit(library)
    with pytest.raises(ConfigError, match=rf"the library {library} changed since the run"):
        Generate(library, out, model, InMemory(FakeWorker(TOOL))).run()
    assert (out / "records.jsonl").read_bytes() == before
    library.write_bytes(original)  # the same source again: the run resumes
    Generate(library, out, model, InMemory(FakeWorker(TOOL))).run()
    assert len(list(read_records(out / "records.jsonl"))) == 24


def test_verify_refuses_a_resume_when_a_file_of_a_package_library_changed(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    limits = _package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # a package library is given by its module name
    rows = _rows_file(tmp_path / "rows.jsonl")
    out = tmp_path / "out"

    def verify(crash_after: int | None = None) -> None:
        job = VerifyJob(rows, "shoplib", VerifyConfig(out_dir=str(out), batch_rows=4, stages="format,execution"),
                        runs_on=InMemory(FakeWorker(TOOL), crash_after=crash_after))
        job.run()

    with pytest.raises(SimulatedCrash):
        verify(crash_after=6)
    limits.write_text("LIMIT = 4\n")  # a file other than __init__.py
    with pytest.raises(ConfigError, match=r"shoplib/__init__\.py changed since the run"):
        verify()


def test_the_first_row_is_written_after_one_row_of_work(tmp_path: Path, model: Path) -> None:
    assert [len(b) for b in ramped(range(40), 16)] == [1, 2, 4, 8, 16, 9]
    assert [len(b) for b in ramped(range(3), 1)] == [1, 1, 1]
    backend = SizesBackend(FakeWorker(TOOL))
    Generate(EXAMPLE_LIBRARY, tmp_path / "out", model, backend).run()
    assert backend.sizes == [1, 2, 4, 4, 4, 4, 4, 1]  # 24 rows, batch_rows 4


class SizesBackend(InMemory):
    """An in-memory backend that keeps the size of each batch sent to be generated."""

    def __init__(self, worker: FakeWorker) -> None:
        super().__init__(worker)
        self.sizes: list[int] = []

    def submit(self, task: Task) -> None:
        if task.kind == "generate":
            self.sizes.append(len(task.indices))
        super().submit(task)


def _record(i: int, accepted: bool) -> Record:
    record = Record(id=i, seed=i, style="simple", tools=[TOOL], format_check=CheckResult.ok(),
                    stages=["format"])
    if not accepted:
        record.format_check = CheckResult.fail("invalid_json", "cut short")
    return record


def test_a_run_whose_output_is_not_a_terminal_prints_a_line_every_few_rows(capfd: pytest.CaptureFixture[str]) -> None:
    progress = cli._progress("generating")  # stderr is captured here: not a terminal
    assert isinstance(progress, LineProgress)
    text = io.StringIO()
    with LineProgress(Console(file=text, width=200), every_rows=10, every_seconds=3600) as lines:
        lines.start(45, [_record(i, True) for i in range(5)])
        for i in range(5, 45):
            lines.generated(1)
            lines.advance(_record(i, i % 2 == 0))
    shown = text.getvalue().splitlines()
    assert shown[0] == "generating: 45 rows, 5 already written; a line every 10 rows or 3600 s"
    assert [line.split(" · ")[0] for line in shown[1:]] == [f"generating: written {n}/45" for n in (15, 25, 35, 45)]
    assert "accepted 25 (56%)" in shown[-1] and "rows/min" in shown[-1]


def test_a_slow_run_prints_a_line_every_so_many_seconds() -> None:
    text = io.StringIO()
    lines = LineProgress(Console(file=text, width=200), every_rows=1000, every_seconds=0.0)
    lines.start(3, [])
    lines.generated(1)
    lines.advance(_record(0, True))
    assert text.getvalue().count("written") == 2  # after the one generated row, and after the written one
    assert text.getvalue().splitlines()[-1].startswith("generating: written 1/3 · generated 1")


PLAN = Tool(name="watering_plan", description="Plans watering for a plant in a season.",
            parameters={"type": "object", "required": ["plant", "season"], "properties": {
                "plant": {"type": "string"},
                "season": {"type": "string", "enum": ["spring", "summer", "autumn", "winter"]}}})
STOCK = Tool(name="check_stock", description="Checks the stock of a plant at a shop.",
             parameters={"type": "object", "required": ["plant"], "properties": {
                 "plant": {"type": "string"}, "shop": {"type": "string"}}})


@pytest.mark.parametrize("query, call, reason", [
    ("What is the best-fitting watering plan for my soil?",
     FunctionCall(name="watering_plan", arguments={"plant": "watering plan", "season": "spring"}),
     "ungrounded_argument"),  # an allowed value no word of the request names
    ("How often should I water roses in the summer heat?",
     FunctionCall(name="watering_plan", arguments={"plant": "roses", "season": "winter"}), "ungrounded_argument"),
    ("How many lavender plants are in stock, 1000 or more?",
     FunctionCall(name="check_stock", arguments={"plant": ", 1000"}), "fragment_value"),
    ("Check stock of rose, tulip and iris at Leeds: now.",
     FunctionCall(name="check_stock", arguments={"plant": "rose,", "shop": "Leeds"}), "fragment_value"),
    ("Check stock of rose, tulip and iris at Leeds: now.",
     FunctionCall(name="check_stock", arguments={"plant": "tulip", "shop": "Leeds:"}), "fragment_value"),
    ("Check stock of rose, tulip and iris at Leeds: now.",
     FunctionCall(name="check_stock", arguments={"plant": " tulip"}), "fragment_value"),
])
def test_invented_allowed_values_and_cut_pieces_are_not_grounded(query: str, call: FunctionCall, reason: str) -> None:
    assert check_grounding(query, [call], [PLAN, STOCK]).reason == reason


@pytest.mark.parametrize("query, call", [
    ("Plan watering for my roses this summer.",
     FunctionCall(name="watering_plan", arguments={"plant": "roses", "season": "summer"})),
    ("Check stock of 'Rose, climbing' at the Leeds shop.",
     FunctionCall(name="check_stock", arguments={"plant": "Rose, climbing", "shop": "Leeds"})),
])
def test_stated_allowed_values_and_values_with_inner_commas_are_grounded(query: str, call: FunctionCall) -> None:
    assert check_grounding(query, [call], [PLAN, STOCK]).passed


@pytest.mark.parametrize("schema, bfcl_type", [
    ({"type": ["boolean", "null"], "default": None}, "boolean"),
    ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, "integer"),
    ({"type": ["array", "null"], "items": {"type": "string"}}, "array"),
    ({"type": ["number", "null"]}, "float"),
    ({"type": ["integer", "string"]}, "any"),  # a real union stays one BFCL cannot name
])
def test_an_optional_parameter_keeps_its_type_in_the_bfcl_export(schema: dict, bfcl_type: str) -> None:
    assert bfcl_schema(schema)["type"] == bfcl_type


def test_review_of_a_small_run_says_how_many_rows_it_shows(tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from apigen_local.review import serve as serve_module
    from apigen_local.review.session import ReviewSession

    out = tmp_path / "out"
    with pytest.raises(SimulatedCrash):
        Generate(EXAMPLE_LIBRARY, out, model, InMemory(FakeWorker(TOOL), crash_after=10)).run()
    accepted = sum(r.accepted for r in read_records(out / "records.jsonl"))
    assert 0 < accepted < 50

    def serve(run_dir, *, size, seed, rejected, reviewer, port, announce):  # no server: only what it says
        announce(ReviewSession(run_dir, size=size, rejected=rejected), type("S", (), {"url": "http://x"})())

    monkeypatch.setattr(serve_module, "serve", serve)
    assert cli.main(["review", str(out)]) == 0
    assert f"reviewing all {accepted} of the {accepted} accepted rows written in" in capsys.readouterr().out


def test_verify_reads_a_library_whose_file_name_is_no_module_name(tmp_path: Path) -> None:
    library = tmp_path / "my-tools.py"
    shutil.copy(EXAMPLE_LIBRARY, library)
    rows = _rows_file(tmp_path / "rows.jsonl")
    job = VerifyJob(rows, library, VerifyConfig(out_dir=str(tmp_path / "out"), stages="format,grounding"))
    job.run()
    assert len(list(read_records(tmp_path / "out" / "records.jsonl"))) > 0
