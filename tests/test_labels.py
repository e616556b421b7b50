"""Precision and recall on labelled real rows: the figures, the file reader and ``calibrate --labels``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apigen_local import cli
from apigen_local.errors import ConfigError
from apigen_local.run.files import RunFiles
from apigen_local.run.job import write_stats
from apigen_local.run.labels import LabelledRow, load_for_model, measure, read_labelled, stage_outcomes, wilson
from apigen_local.run.report import build_report
from apigen_local.run.report.page import render_html

from .conftest import empty_gguf

PRIME = {"name": "is_prime", "description": "Checks whether a number is prime.",
         "parameters": {"type": "object", "properties": {"n": {"type": "integer", "description": "the number"}},
                        "required": ["n"]}}


def _row(row_id: str, query: str, n: int, label: str, error_class: str | None = None, *,
         executed: bool = True) -> dict:
    return {"row_id": row_id, "library": "lib", "mode": "query_first", "style": "simple", "tools": [PRIME],
            "query": query, "answers": [{"name": "is_prime", "arguments": {"n": n}}],
            "execution": {"passed": executed, "reason": None if executed else "call_error"},
            "label": label, "error_class": error_class}


ROWS = [
    _row("lib:s1:0", "Is 17 a prime number?", 17, "correct"),
    _row("lib:s1:1", "Is 91 a prime number?", 91, "correct"),
    _row("lib:s1:2", "The number 13 is prime.", 13, "wrong", "not_a_request"),  # caught: not a request
    _row("lib:s1:3", "Is 15 a prime number?", 51, "wrong", "wrong_value"),  # caught: ungrounded 51
    _row("lib:s1:4", "Is 21 prime or not?", 21, "wrong", "nonsense"),  # a mislabel on purpose: kept
    _row("lib:s1:5", "Is 23 a prime number?", 23, "correct", executed=False),  # lost at execution
]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_wilson_interval_matches_the_textbook_values() -> None:
    low, high = wilson(9, 10) or (0, 0)
    assert round(low, 3) == 0.596 and round(high, 3) == 0.982
    assert wilson(0, 0) is None
    assert wilson(10, 10)[1] == 1.0


def test_measure_counts_precision_recall_stages_and_classes(tmp_path: Path) -> None:
    figures = measure(read_labelled(_write(tmp_path / "l.jsonl", ROWS)))
    assert (figures.rows, figures.correct, figures.accepted) == (6, 3, 3)
    assert (figures.precision.hit, figures.precision.total) == (2, 3)
    assert (figures.recall.hit, figures.recall.total) == (2, 3)
    assert figures.wrong_by_class["not_a_request"].hit == 1
    assert figures.wrong_by_class["wrong_value"].hit == 1
    assert figures.wrong_by_class["nonsense"].hit == 0
    assert figures.rejected_by == {"execution:call_error": 1, "grounding:ungrounded_argument": 1,
                                   "semantic:not_a_request": 1}
    assert figures.stages["execution"].correct_kept.total == 3  # the three correct rows reached it
    assert figures.stages["execution"].correct_kept.hit == 2


def test_a_row_that_never_ran_is_not_accepted() -> None:
    row = LabelledRow.model_validate({**ROWS[0], "execution": None})
    assert stage_outcomes(row)[-1] == ("execution", stage_outcomes(row)[-1][1])
    assert not stage_outcomes(row)[-1][1].passed


@pytest.mark.parametrize("content, expected", [
    ("{not json}\n", r"line 1 \(byte 0\) is not JSON"),
    (json.dumps({**ROWS[0], "label": "maybe"}) + "\n", r"line 1 \(byte 0\) is not a labelled row"),
    ("\n", "holds no labelled rows"),
])
def test_a_bad_labels_file_is_one_config_error(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "l.jsonl"
    path.write_text(content)
    with pytest.raises(ConfigError, match=expected):
        read_labelled(path)


def test_calibrate_labels_prints_keeps_and_shows_the_figures_in_stats_and_report(
        tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = tmp_path / "m.gguf"
    empty_gguf(model)  # not loaded: the checks measured here need no model
    labels = _write(tmp_path / "l.jsonl", ROWS)
    assert cli.main(["calibrate", "--labels", str(labels), "--model", str(model), "--out", str(tmp_path / "o")]) == 0
    printed = capsys.readouterr().out
    assert "precision of accepted rows: 66.7 % (2/3, 95 % CI 20.8-93.9)" in printed
    assert json.loads((tmp_path / "o" / "labels.json").read_text())["figures"]["accepted"] == 3
    report = load_for_model(model)
    assert report is not None and report.figures.precision.hit == 2
    files = RunFiles(tmp_path / "run")
    files.dir.mkdir()
    stats = write_stats(files, [], 1.0, labelled=report)
    assert stats.labelled is not None and stats.labelled["precision"] == pytest.approx(2 / 3)
    page = render_html(build_report(files.dir))
    assert 'id="labelled"' in page and "precision_low" in page


def test_calibrate_labels_with_a_missing_file_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    assert cli.main(["calibrate", "--labels", str(tmp_path / "none.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert "labels file not found" in err and len(err.splitlines()) == 1


def test_calibrate_labels_with_fit_margin_but_no_library_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    labels = _write(tmp_path / "l.jsonl", ROWS)
    model = tmp_path / "m.gguf"
    empty_gguf(model)
    assert cli.main(["calibrate", "--labels", str(labels), "--model", str(model), "--fit-margin", "0.3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--fit-margin needs --library" in err and len(err.splitlines()) == 1
