"""A new user's second round (issue 43): the trips they hit, each from new cases in its class."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from apigen_local.errors import ConfigError
from apigen_local.run.backends.base import ExecutionBackend
from apigen_local.run.config import build_config
from apigen_local.run.files import read_records
from apigen_local.run.generate import GenerateJob
from apigen_local.run.verify import VerifyConfig, VerifyJob

from .conftest import EXAMPLE_LIBRARY, empty_gguf
from .fakes import FakeBackend, FakeCrash, FakeWorker
from .test_run_loop import TOOL, _rows_file


class Generate(GenerateJob):
    def __init__(self, library: Path, out: Path, model: Path, backend: ExecutionBackend) -> None:
        super().__init__(build_config({"library": str(library), "model": str(model), "rows": 24,
                                       "out_dir": str(out), "batch_rows": 4}))
        self._backend = backend

    def backend(self) -> ExecutionBackend:
        return self._backend


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
    with pytest.raises(FakeCrash):
        Generate(library, out, model, FakeBackend(FakeWorker(TOOL), crash_after=8)).run()
    before = (out / "records.jsonl").read_bytes()
    original = library.read_bytes()
    edit(library)
    with pytest.raises(ConfigError, match=rf"the library {library} changed since the run"):
        Generate(library, out, model, FakeBackend(FakeWorker(TOOL))).run()
    assert (out / "records.jsonl").read_bytes() == before
    library.write_bytes(original)  # the same source again: the run resumes
    Generate(library, out, model, FakeBackend(FakeWorker(TOOL))).run()
    assert len(list(read_records(out / "records.jsonl"))) == 24


def test_verify_refuses_a_resume_when_a_file_of_a_package_library_changed(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    limits = _package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # a package library is given by its module name
    rows = _rows_file(tmp_path / "rows.jsonl")
    out = tmp_path / "out"

    def verify(crash_after: int | None = None) -> None:
        job = VerifyJob(rows, "shoplib", VerifyConfig(out_dir=str(out), batch_rows=4, stages="format,execution"))
        job.backend = lambda: FakeBackend(FakeWorker(TOOL), crash_after=crash_after)  # type: ignore[method-assign]
        job.run()

    with pytest.raises(FakeCrash):
        verify(crash_after=6)
    limits.write_text("LIMIT = 4\n")  # a file other than __init__.py
    with pytest.raises(ConfigError, match=r"shoplib/__init__\.py changed since the run"):
        verify()
