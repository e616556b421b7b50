"""`calibrate`: the labelled set, the per-stage tally, the CLI, and the figures `generate` reads."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from apigen_local import cli
from apigen_local.checks.perturb import LabelledRow
from apigen_local.run.calibrate import RowOutcome, tally
from apigen_local.run.calibration import Calibration, judge_calibration, load_for_model
from apigen_local.types import CheckResult, FunctionCall

from .conftest import EXAMPLE_LIBRARY, EXAMPLE_SEEDS

OK, NO = CheckResult.ok(), CheckResult.fail("x")


def _outcome(kind: str | None, **checks: CheckResult) -> RowOutcome:
    row = LabelledRow(query="q", answers=[FunctionCall(name="f")], tools=[], kind=kind)  # type: ignore[arg-type]
    return RowOutcome(row=row, checks={"format": OK, "grounding": OK, "execution": OK, **checks})


def test_tally_counts_each_stage_and_kind_and_drops_negatives_that_do_not_run() -> None:
    outcomes = [
        _outcome(None, semantic=OK),  # kept everywhere
        _outcome(None, grounding=NO, semantic=OK),  # a false reject by grounding
        _outcome("query_swap", grounding=NO, semantic=OK),  # caught by grounding only
        _outcome("drop_call", semantic=NO),  # caught by the semantic stage only
        _outcome("extra_call", semantic=OK),  # missed
        _outcome("value_change", execution=NO),  # fails execution: not a negative to catch
    ]
    figures, dropped = tally(outcomes)
    assert dropped == 1
    assert (figures["grounding"].positives_kept.passed, figures["grounding"].positives_kept.total) == (1, 2)
    assert (figures["semantic"].negatives_rejected.passed, figures["semantic"].negatives_rejected.total) == (1, 3)
    assert figures["all"].positives_kept.rate == 0.5
    assert figures["all"].negatives_rejected.rate == round(2 / 3, 4)
    assert figures["all"].by_kind["query_swap"].rate == 1.0
    assert figures["all"].by_kind["extra_call"].rate == 0.0
    assert figures["all"].by_kind["value_change"].total == 0


@pytest.mark.docker
@pytest.mark.model
def test_calibrate_cli_writes_figures_that_generate_then_records(
        tmp_path: Path, tiny_model_path: Path, sandbox_image: str, monkeypatch, capsys, caplog) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "cal"
    assert cli.main(["calibrate", "--library", str(EXAMPLE_LIBRARY), "--rows", str(EXAMPLE_SEEDS),
                     "--model", str(tiny_model_path), "--limit", "4", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "positives: 4" in printed and "grounding" in printed and "query_swap" in printed
    calibration = Calibration.model_validate_json((out / "calibration.json").read_text())
    assert calibration.positives == 4 and calibration.negatives > 4
    lines = (out / "calibration_rows.jsonl").read_text().splitlines()
    assert len(lines) == calibration.positives + calibration.negatives + calibration.dropped_negatives
    judged = [json.loads(line) for line in lines if "semantic" in json.loads(line)["checks"]]
    assert judged, "the model judged no row"
    # the seed rows state their values, so grounding keeps them and catches swapped queries
    assert calibration.stages["grounding"].positives_kept.rate == 1.0
    assert calibration.stages["grounding"].by_kind["query_swap"].rate == 1.0
    assert load_for_model(tiny_model_path) == calibration
    with caplog.at_level(logging.WARNING):
        assert judge_calibration(tiny_model_path) == calibration
    weak = calibration.stages["semantic"].negatives_rejected.rate < 0.5
    assert ("caught only" in caplog.text) is weak


def test_calibrate_without_rows_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    library = tmp_path / "lib.py"
    library.write_text(EXAMPLE_LIBRARY.read_text())
    assert cli.main(["calibrate", "--library", str(library)]) == 2
    err = capsys.readouterr().err.strip()
    assert "give --rows" in err and len(err.splitlines()) == 1


def test_a_rate_over_no_rows_reads_n_a_not_zero() -> None:
    from apigen_local.run.stats import Rate

    assert Rate().percent() == "n/a"
    assert Rate(total=4, passed=3).percent() == "75%" and Rate(total=2, passed=0).percent() == "0%"
