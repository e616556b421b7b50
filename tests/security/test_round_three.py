"""Third hostile round (issue 42), the run folder's classes: one odd character or one bad line in a
run's files, files that reach outside the folder through links, and tracebacks where one line belongs.

Each case is a new one in its class, not only the example the outside suite named. Runs use the
real run loop on the in-memory backend (tests/fakes.py); the commands go through ``cli.main``.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from apigen_local import cli
from apigen_local.errors import ConfigError
from apigen_local.generation.sampling import load_seed_examples
from apigen_local.jsonl import split_lines
from apigen_local.review.session import ReviewSession
from apigen_local.run import files as run_files
from apigen_local.run.backends.memory import InMemory, SimulatedCrash
from apigen_local.run.files import read_records
from apigen_local.run.review_log import read_labels
from apigen_local.tools import load_library
from apigen_local.types import Record

from ..conftest import empty_gguf
from ..fakes import FakeGenerate, FakeWorker
from ..test_run_loop import TOOL

# Characters str.splitlines() breaks at that JSON leaves unescaped, or that scraped text holds.
ODD = ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r", "\r\n"]
ROWS = 60


class OddWorker(FakeWorker):
    """FakeWorker whose queries hold one odd line-breaking character each."""

    def row(self, i: int) -> Record:
        record = super().row(i)
        if record.query is not None:
            record.query = record.query.replace(" by ", f" by{ODD[i % len(ODD)]} ")
        return record




@pytest.fixture
def model(tmp_path: Path) -> Path:
    return empty_gguf(tmp_path / "fake.gguf", padding=40)


def _run(out: Path, model: Path, crash_after: int | None = None) -> None:
    FakeGenerate(out, model, InMemory(OddWorker(TOOL), crash_after=crash_after), rows=ROWS, batch_rows=4).run()


def _one_line_error(argv: Sequence[str], capfd: pytest.CaptureFixture[str]) -> str:
    assert cli.main(list(argv)) == 2
    out, err = capfd.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in out + err, err
    return lines[0]


# -- 1. one character or one line makes a run unreadable -------------------------------------------------


def test_a_run_whose_queries_hold_line_separators_resumes_and_exports(tmp_path: Path, model: Path,
                                                                     capfd: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    with pytest.raises(SimulatedCrash):
        _run(out, model, crash_after=7)
    _run(out, model)  # the resume reads every record written before the crash
    records = list(read_records(out / "records.jsonl"))
    assert [r.id for r in records] == list(range(ROWS))
    written = {r.id: r.query for r in records if r.query is not None}
    assert {ch for q in written.values() for ch in ODD if ch in q} == set(ODD)
    accepted = {r.id: r.query for r in records if r.accepted}
    assert len(accepted) > 10
    for fmt in ("xlam", "openai", "sharegpt"):
        target = tmp_path / f"export.{fmt}.jsonl"
        assert cli.main(["export", str(out), "--format", fmt, "--out", str(target)]) == 0
        rows = [json.loads(line.raw) for line in split_lines(target.read_bytes())]
        queries = [r.get("query") or (r.get("messages") or r.get("conversations"))[0].get("content", "")
                   or r["conversations"][0]["value"] for r in rows]
        assert queries == list(accepted.values()), fmt
    assert cli.main(["export", str(out), "--format", "bfcl", "--out", str(tmp_path / "bfcl")]) == 0
    assert cli.main(["stats", str(out)]) == 0
    session = ReviewSession(out, size=ROWS)
    assert {i: r.query for i, r in session.records().items() if r.query is not None} == written
    dataset = [json.loads(line.raw)["query"] for line in split_lines((out / "dataset.jsonl").read_bytes())]
    assert dataset == list(accepted.values())
    capfd.readouterr()


def test_a_seed_file_whose_query_holds_a_line_separator_is_one_example(tmp_path: Path) -> None:
    seeds = tmp_path / "seed.jsonl"
    rows = [{"query": f"Divide 8{ch}by 2.", "answers": [{"name": "getdivision", "arguments": {}}]} for ch in ODD]
    seeds.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert [e.query for e in load_seed_examples(seeds)] == [r["query"] for r in rows]


def _finished_run(tmp_path: Path, model: Path) -> Path:
    out = tmp_path / "run"
    _run(out, model)
    return out


@pytest.mark.parametrize("damage, fragment", [
    (lambda lines: lines[:3] + [lines[3][: len(lines[3]) // 2]] + lines[4:], "line 4 (byte"),  # hand-cut
    (lambda lines: lines[:5] + ['{"id": 5, "query": "caf\xe9"}'.encode("latin-1")] + lines[6:], "not UTF-8"),
    (lambda lines: lines[:2] + [b"[" * 100_000 + b"]" * 100_000] + lines[3:], "line 3 (byte"),
    (lambda lines: lines[:1] + [b'{"id": "x"}'] + lines[2:], "line 2 (byte"),
])
def test_a_bad_line_in_records_is_one_line_with_its_number_and_offset(tmp_path: Path, model: Path, damage,
                                                                     fragment: str,
                                                                     capfd: pytest.CaptureFixture[str]) -> None:
    out = _finished_run(tmp_path, model)
    records = out / "records.jsonl"
    records.write_bytes(b"\n".join(damage(records.read_bytes().split(b"\n"))))
    for argv in (["export", str(out)], ["report", str(out)]):
        line = _one_line_error(argv, capfd)
        assert fragment in line and "records.jsonl" in line, line
    with pytest.raises(ConfigError, match="byte"):
        _run(out, model)


def test_a_failed_export_leaves_the_earlier_export_whole(tmp_path: Path, model: Path,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    out = _finished_run(tmp_path, model)
    target = tmp_path / "dataset-export.jsonl"
    assert cli.main(["export", str(out), "--out", str(target)]) == 0
    capfd.readouterr()
    before = target.read_bytes()
    records = out / "records.jsonl"
    lines = records.read_bytes().split(b"\n")
    records.write_bytes(b"\n".join(lines[:-3] + [b"garbage"] + lines[-2:]))  # late in the file
    _one_line_error(["export", str(out), "--out", str(target)], capfd)
    assert target.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


# -- 3. writes outside the run folder through links -------------------------------------------------------


@pytest.mark.parametrize("name", ["records.jsonl", "run.json", ".lock", "labels.jsonl"])
def test_a_link_in_a_shared_run_folder_is_refused_and_its_target_untouched(tmp_path: Path, model: Path,
                                                                           name: str) -> None:
    out = _finished_run(tmp_path, model)
    target = tmp_path / "precious.txt"
    target.write_text("do not touch\n")
    victim = out / name
    if victim.exists():
        victim.unlink()
    victim.symlink_to(target)
    attempts = [lambda: _run(out, model),
                lambda: ReviewSession(out, size=5).label(json.dumps({"row": 0, "label": "correct"}).encode()),
                lambda: list(read_records(out / "records.jsonl", repair=True))]
    refused = 0
    for attempt in attempts:
        try:
            attempt()
        except ConfigError as exc:
            assert "symbolic link" in str(exc) or "another run" in str(exc), exc
            refused += 1
    assert refused >= 1
    assert target.read_text() == "do not touch\n"


def test_a_hard_linked_or_special_records_file_is_refused(tmp_path: Path, model: Path,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    with pytest.raises(SimulatedCrash):
        _run(out, model, crash_after=5)
    records = out / "records.jsonl"
    outside = tmp_path / "outside.jsonl"
    os.link(records, outside)
    before = outside.read_bytes()
    with pytest.raises(ConfigError, match="other names"):
        _run(out, model)
    assert outside.read_bytes() == before
    records.unlink()
    os.mkfifo(records)  # reading a FIFO would block the command for ever
    assert "not a regular file" in _one_line_error(["export", str(out)], capfd)


def test_derived_files_linked_outside_are_replaced_not_written_through(tmp_path: Path, model: Path) -> None:
    out = _finished_run(tmp_path, model)
    targets = {}
    for name in ("dataset.jsonl", "rejected.jsonl", "stats.json", "report.html"):
        target = tmp_path / f"outside-{name}"
        target.write_text("keep\n")
        (out / name).unlink()
        (out / name).symlink_to(target)
        targets[name] = target
    (out / "stats.json").unlink()  # a linked stats.json is refused on reading; the run writes its own
    _run(out, model)
    for name, target in targets.items():
        assert target.read_text() == "keep\n", name
        if name != "stats.json":
            assert not (out / name).is_symlink(), name


def test_reading_labels_never_follows_a_link(tmp_path: Path, model: Path) -> None:
    out = _finished_run(tmp_path, model)
    secret = tmp_path / "secret.jsonl"
    secret.write_text(json.dumps({"row": 0, "label": "correct", "accepted": True}) + "\n")
    (out / "labels.jsonl").symlink_to(secret)
    with pytest.raises(ConfigError, match="symbolic link"):
        read_labels(out / "labels.jsonl")


# -- 5. one line where a traceback was --------------------------------------------------------------------


@pytest.mark.parametrize("name, content, fragment", [
    ("stats.json", b'{"rows": ', "stats.json"),
    ("stats.json", b"[" * 100_000, "stats.json"),
    ("stats.json", b'{"rows": "many"}', "stats.json"),
    ("run.json", b"\xff\xfe", "run.json is damaged"),
    ("run.json", b"{" * 100_000, "run.json is damaged"),
])
def test_a_damaged_stats_or_run_file_is_one_line(tmp_path: Path, model: Path, name: str, content: bytes,
                                                 fragment: str, capfd: pytest.CaptureFixture[str]) -> None:
    out = _finished_run(tmp_path, model)
    (out / name).write_bytes(content)
    if name == "stats.json":
        assert fragment in _one_line_error(["stats", str(out)], capfd)
        assert fragment in _one_line_error(["report", str(out)], capfd)
    else:
        with pytest.raises(ConfigError, match=fragment):
            _run(out, model)


def test_labels_with_a_line_nested_too_deep_break_nothing(tmp_path: Path, model: Path,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    out = _finished_run(tmp_path, model)
    good = json.dumps({"row": 0, "label": "correct", "accepted": True})
    (out / "labels.jsonl").write_text(good + "\n" + "[" * 100_000 + "\n" + "{" * 50_000 + "\n" + good + "\n")
    log = read_labels(out / "labels.jsonl")
    assert log.bad_lines == [2, 3] and list(log.current) == [0]
    assert cli.main(["stats", str(out)]) == 0
    assert ReviewSession(out, size=5).state()["bad_lines"] == [2, 3]
    _run(out, model)  # a resume reads the labels too
    capfd.readouterr()


def test_export_to_a_missing_folder_or_a_full_disk_is_one_line(tmp_path: Path, model: Path,
                                                               capfd: pytest.CaptureFixture[str]) -> None:
    out = _finished_run(tmp_path, model)
    missing = tmp_path / "no" / "such" / "folder" / "x.jsonl"
    assert "folder" in _one_line_error(["export", str(out), "--out", str(missing)], capfd)
    assert "does not exist" in _one_line_error(["export", str(out), "--format", "openai", "--out", str(missing)],
                                               capfd)
    assert "is full" in _one_line_error(["export", str(out), "--out", "/dev/full"], capfd)
    (out / "records.jsonl").rename(tmp_path / "records-elsewhere")
    (out / "records.jsonl").mkdir()
    assert "not a regular file" in _one_line_error(["export", str(out)], capfd)


def test_a_full_disk_mid_run_is_one_error_and_the_rerun_completes(tmp_path: Path, model: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    calls = {"n": 0}
    real_fsync = os.fsync

    def fsync_until_full(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] > 20:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(run_files.os, "fsync", fsync_until_full)
    with pytest.raises(ConfigError, match="is full: free some space"):
        _run(out, model)
    monkeypatch.setattr(run_files.os, "fsync", real_fsync)
    _run(out, model)
    assert [r.id for r in read_records(out / "records.jsonl")] == list(range(ROWS))


def test_a_read_error_the_machine_causes_is_one_line(tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    out = _finished_run(tmp_path, model)

    def denied(path: Path) -> bytes:  # tests run as root, where permissions do not stop reads
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(run_files, "read_own", denied)
    line = _one_line_error(["export", str(out)], capfd)
    assert "records.jsonl" in line and "permissions" in line, line


EXPLODING_LIBRARY = '''
class Boom:
    def __repr__(self):
        raise RuntimeError("repr exploded")

    def __eq__(self, other):
        raise RuntimeError("eq exploded")

    __hash__ = None


class Items(dict):
    def items(self):
        raise RuntimeError("items exploded")


class Annotation:
    def __getattr__(self, name):
        raise KeyError(name)


def good(a: int) -> int:
    """Add one.

    Args:
        a: A number.
    """
    return a + 1


def bad_hint(a: "1/0") -> int:
    """Hint that divides by zero.

    Args:
        a: A number.
    """
    return a


def bad_default(a: int, b: dict = Items(x=1)) -> int:
    """Default whose items() raises.

    Args:
        a: A number.
        b: A map.
    """
    return a


def exiting_hint(a: "__import__('sys').exit(3)") -> int:
    """Hint that exits.

    Args:
        a: A number.
    """
    return a


def object_hint(a: Annotation()) -> int:
    """Hint that is a hostile object.

    Args:
        a: A number.
    """
    return a


def boom_default(a: int, b: int = Boom()) -> int:
    """Default that explodes on repr and comparison.

    Args:
        a: A number.
        b: Another.
    """
    return a


alias = Boom()
'''


def test_lenient_loading_skips_functions_whose_inspection_raises_by_name(tmp_path: Path,
                                                                         capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "exploding_lib.py"
    path.write_text(EXPLODING_LIBRARY)
    library = load_library(path, strict=False)
    assert [t.name for t in library.tools] == ["good"]
    assert {"bad_hint", "bad_default", "exiting_hint"} <= set(library.skipped)
    with pytest.raises(Exception, match="bad_hint") as strict:
        load_library(path)
    assert "\n" not in str(strict.value)
    capfd.readouterr()


def test_a_tool_spec_file_whose_description_holds_a_line_separator_is_one_tool(tmp_path: Path) -> None:
    from apigen_local.tool_specs import load_tool_specs

    spec = {"name": "greet", "description": "Greets\u2028someone\u0085politely.",
            "parameters": {"type": "object", "properties": {"name": {"type": "string"}}}}
    path = tmp_path / "tools.jsonl"
    path.write_text(json.dumps(spec, ensure_ascii=False) + "\n", encoding="utf-8")
    assert [t.description for t in load_tool_specs(path)] == [spec["description"]]


def test_export_to_standard_output_streams_and_never_replaces_what_it_is_redirected_to(tmp_path: Path,
                                                                                      model: Path) -> None:
    import subprocess
    import sys

    out = _finished_run(tmp_path, model)
    command = [sys.executable, "-m", "apigen_local.cli", "export", str(out), "--out", "/dev/stdout"]
    piped = subprocess.run(command, capture_output=True, text=True, check=True)
    exported = list(split_lines(piped.stdout.encode("utf-8")))
    assert len(exported) == len(list(split_lines((out / "dataset.jsonl").read_bytes())))
    log = tmp_path / "log.jsonl"
    log.write_text("keep me\n")
    with open(log, "a") as appended:  # `--out /dev/stdout >> log.jsonl`
        subprocess.run(command, stdout=appended, stderr=subprocess.PIPE, check=True)
    assert log.read_text().startswith("keep me\n") and len(list(split_lines(log.read_bytes()))) == len(exported) + 1


def test_an_error_naming_a_path_with_brackets_is_still_one_line(tmp_path: Path,
                                                                capfd: pytest.CaptureFixture[str]) -> None:
    odd = tmp_path / "run[" / "x][bold]"  # the path reads "run[/x][bold]": markup to rich
    odd.mkdir(parents=True)
    assert "holds no records.jsonl" in _one_line_error(["export", str(odd)], capfd)


def test_an_export_that_cannot_read_the_records_names_the_records(tmp_path: Path, model: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capfd: pytest.CaptureFixture[str]) -> None:
    out = _finished_run(tmp_path, model)

    def denied(path: Path) -> bytes:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(run_files, "read_own", denied)
    line = _one_line_error(["export", str(out), "--out", str(tmp_path / "x.jsonl")], capfd)
    assert "records.jsonl" in line and "x.jsonl" not in line, line


def test_a_run_from_before_the_library_digest_still_resumes(tmp_path: Path, model: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(SimulatedCrash):
        _run(out, model, crash_after=6)
    settings = json.loads((out / "run.json").read_text())
    del settings["library_source"]
    (out / "run.json").write_text(json.dumps(settings))
    _run(out, model)
    assert len(list(read_records(out / "records.jsonl"))) == ROWS
