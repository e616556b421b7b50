"""The run report: aggregation against a run directory with known numbers, the CLI, the hooks in
``verify``, and the page itself opened offline in a real headless Chromium."""

from __future__ import annotations

import json
import logging
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest

from apigen_local import cli
from apigen_local.errors import ConfigError
from apigen_local.run import report
from apigen_local.run.files import RunFiles
from apigen_local.run.report import build_report, digest_records, funnel, render_html, write_report
from apigen_local.run.stats import RunStats, compute_stats
from apigen_local.types import CallResult, CheckResult, FunctionCall, Record, Tool

from .browser import Chromium
from .conftest import EXAMPLE_LIBRARY, EXAMPLE_SEEDS

TOOLS = [Tool(name=name, description=f"{name} two numbers.",
              parameters={"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                          "required": ["a", "b"]})
         for name in ("add", "mul")]
OK = CheckResult.ok()


def _record(row_id: int, style: str, calls: list[str], *, format_fail: str | None = None,
            dedup_fail: bool = False, results: list[CallResult] | None = None,
            execution_fail: str | None = None, semantic_fail: bool = False) -> Record:
    """One row that fails at the first stage given (or passes all)."""
    record = Record(id=row_id, seed=7, style=style, tools=TOOLS, raw_output=f"raw {row_id}",
                    format_check=CheckResult.fail(format_fail, "broken") if format_fail else OK,
                    model_name="tiny-test", timings={"generation": 0.5}, tokens={"generation": 20})
    if format_fail:
        return record
    record.query = f"Query number {row_id}: combine 2 and 3."
    record.answers = [FunctionCall(name=name, arguments={"a": 2, "b": 3}) for name in calls]
    record.dedup_check = CheckResult.fail("duplicate", "same query as row 7") if dedup_fail else OK
    if dedup_fail:
        return record
    record.execution_result = results or [CallResult(name=name, ok=True, result=5) for name in calls]
    record.execution_check = CheckResult.fail(execution_fail, "a call failed") if execution_fail else OK
    record.timings["execution"] = 0.25
    if execution_fail:
        return record
    record.semantic_check = CheckResult.fail("judged_wrong", "the calls do not answer") if semantic_fail else OK
    record.thought = "The call adds the two numbers the query gives."
    record.timings["semantic"] = 0.1
    return record


def known_records() -> list[Record]:
    """Twelve rows: 3 fail format, 1 dedup, 2 execution, 1 semantic; 5 accepted."""
    return [
        _record(0, "simple", [], format_fail="invalid_json"),
        _record(1, "multiple", [], format_fail="invalid_json"),
        _record(2, "parallel", [], format_fail="missing_required"),
        _record(3, "simple", ["add"], dedup_fail=True),
        _record(4, "simple", ["mul"], execution_fail="exception",
                results=[CallResult(name="mul", ok=False, reason="exception", error_type="ValueError",
                                    error_message="b must be positive")]),
        _record(5, "parallel", ["add", "add"], execution_fail="timeout",
                results=[CallResult(name="add", ok=True, result=5),
                         CallResult(name="add", ok=False, reason="timeout")]),
        _record(6, "parallel_multiple", ["add", "mul"], semantic_fail=True),
        *(_record(i, "simple", ["add"]) for i in (7, 8, 9)),
        *(_record(i, "multiple", ["mul"]) for i in (10, 11)),
    ]


def make_run(out: Path, records: list[Record], **extra: Any) -> Path:
    """A run directory written the way a run writes it: run.json, records.jsonl and its copies,
    stats.json (with ``extra`` keys, such as ``calibration``)."""
    files = RunFiles(out)
    files.open({"library": "examples/library.py", "seed": 7, "styles": {"simple": 1.0}})
    for record in records:
        files.append([record])
    files.close()
    stats = json.loads(compute_stats(records, wall_seconds=60.0).model_dump_json())
    files.stats.write_text(json.dumps({**stats, **extra}, indent=2))
    return out


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path / "run", known_records())


# --------------------------------------------------------------------------- aggregation


def test_funnel_reasons_and_groups_match_the_known_numbers(run_dir: Path) -> None:
    data = build_report(run_dir)
    assert (data.rows, data.accepted, data.acceptance) == (12, 5, round(5 / 12, 4))
    steps = {step.stage: step for step in data.funnel}
    expected = {  # stage: checked, passed, rejected here, rows left
        "format": (12, 9, 3, 9), "dedup": (9, 8, 1, 8), "execution": (8, 6, 2, 6), "semantic": (6, 5, 1, 5),
    }
    for stage, numbers in expected.items():
        step = steps[stage]
        assert (step.checked, step.passed, step.rejected, step.remaining) == numbers, stage
    assert steps["semantic"].rate == round(5 / 6, 4) and steps["dedup"].remaining_share == round(8 / 12, 4)
    for stage in set(steps) - set(expected):  # a stage this run did not use (such as grounding)
        assert steps[stage].checked == steps[stage].rejected == 0
    order = [s for s in data.stages if s in expected]
    assert order == ["format", "dedup", "execution", "semantic"]
    assert data.funnel[-1].remaining == data.accepted

    assert [(r.stage, r.reason, r.count) for r in data.reasons] == [
        ("format", "invalid_json", 2), ("format", "missing_required", 1), ("dedup", "duplicate", 1),
        ("execution", "exception", 1), ("execution", "timeout", 1), ("semantic", "judged_wrong", 1),
    ]
    styles = {g.name: (g.total, g.passed) for g in data.styles}
    assert styles == {"simple": (6, 3), "multiple": (3, 2), "parallel": (2, 0), "parallel_multiple": (1, 0)}
    functions = {g.name: g for g in data.functions}
    assert [(g.name, g.total, g.passed) for g in data.functions] == [("add", 6, 3), ("mul", 4, 2)]
    assert {(r.stage, r.reason, r.count) for r in functions["add"].top_reasons} == {
        ("dedup", "duplicate", 1), ("execution", "timeout", 1), ("semantic", "judged_wrong", 1)}
    assert {f"{r.stage}/{r.reason}" for r in functions["mul"].top_reasons} == {
        "execution/exception", "semantic/judged_wrong"}

    t = data.throughput
    assert t.wall_seconds == 60.0 and t.rows_per_minute == 12.0 and t.sandbox_calls == 10
    assert t.stage_seconds == {"execution": 2.0, "generation": 6.0, "semantic": 0.6}
    assert t.tokens_per_second == 40.0 and t.sandbox_calls_per_second == 5.0
    assert data.models == {"tiny-test": 12}
    assert data.settings["seed"] == 7 and data.calibration is None


def test_samples_show_query_calls_results_and_reason(run_dir: Path) -> None:
    data = build_report(run_dir)
    assert [row.id for row in data.accepted_samples] == [7, 8, 9, 10, 11]
    assert [row.id for row in data.rejected_samples] == [0, 1, 2, 3, 4, 5, 6]
    rejected = {row.id: row for row in data.rejected_samples}
    failed = rejected[4]
    assert (failed.stage, failed.reason, failed.detail) == ("execution", "exception", "a call failed")
    assert failed.calls[0].name == "mul" and failed.calls[0].outcome == "exception"
    assert failed.calls[0].result == "ValueError: b must be positive"
    assert json.loads(failed.calls[0].arguments) == {"a": 2, "b": 3}
    assert [c.outcome for c in rejected[5].calls] == ["ok", "timeout"]
    assert rejected[0].raw_output == "raw 0" and rejected[0].query is None  # unreadable: raw output shown
    accepted = data.accepted_samples[0]
    assert accepted.accepted and accepted.query and accepted.calls[0].result == "5" and accepted.thought


def test_samples_are_seeded_bounded_and_independent_of_order() -> None:
    records = [_record(i, "simple", ["add"], execution_fail=None if i % 2 else "exception") for i in range(400)]
    digest = digest_records(records, seed=3)
    assert len(digest.accepted) == len(digest.rejected) == report.SAMPLE_ROWS
    assert all(row.accepted for row in digest.accepted) and not any(row.accepted for row in digest.rejected)
    shuffled = records[:]
    random.Random(1).shuffle(shuffled)
    again = digest_records(shuffled, seed=3)
    assert [r.id for r in again.accepted] == [r.id for r in digest.accepted]
    assert [r.id for r in again.rejected] == [r.id for r in digest.rejected]
    other = digest_records(records, seed=4)
    assert [r.id for r in other.accepted] != [r.id for r in digest.accepted]
    assert digest.function_reasons == {"add": {"execution/exception": 200}}


def test_a_new_stage_in_stats_json_joins_the_funnel_in_its_place() -> None:
    stats = RunStats.model_validate({
        "rows": 10, "accepted": 4,
        "stages": {"format": {"total": 10, "passed": 9}, "dedup": {"total": 9, "passed": 9},
                   "grounding": {"total": 9, "passed": 6}, "execution": {"total": 6, "passed": 5},
                   "semantic": {"total": 5, "passed": 4}},
        "reasons": {"grounding/ungrounded_value": 3, "format/invalid_json": 1, "execution/timeout": 1,
                    "semantic/judged_wrong": 1},
    })
    steps = funnel(stats)
    assert [s.stage for s in steps] == ["format", "dedup", "grounding", "execution", "semantic"]
    assert [s.remaining for s in steps] == [9, 9, 6, 5, 4]
    assert (steps[2].checked, steps[2].passed, steps[2].rejected) == (9, 6, 3)


def test_calibration_from_stats_json_is_shown_as_tables(tmp_path: Path) -> None:
    calibration = {"model": "tiny-test", "judge": "verdict", "positives": 40, "negatives": 60,
                   "stages": {"semantic": {"positives_kept": 0.9, "negatives_rejected": 0.45},
                              "execution": {"positives_kept": 1.0, "negatives_rejected": 0.2}},
                   "by_kind": {"query_swap": {"hit": 9, "total": 12, "rate": 0.75}},
                   "deeper": {"semantic": {"by_kind": {"drop_call": {"hit": 3, "total": 4, "rate": 0.75}}}}}
    out = make_run(tmp_path / "run", known_records(), calibration=calibration)
    data = build_report(out)
    tables = {t.title: t for t in data.calibration or []}
    assert tables["summary"].rows == [["model", "tiny-test"], ["judge", "verdict"], ["positives", 40],
                                      ["negatives", 60]]
    assert tables["stages"].columns == ["", "positives_kept", "negatives_rejected"]
    assert tables["stages"].rows == [["semantic", 0.9, 0.45], ["execution", 1.0, 0.2]]
    assert tables["by_kind"].columns == ["", "hit", "total", "rate"]
    assert tables["by_kind"].rows == [["query_swap", 9, 12, 0.75]]
    assert tables["deeper"].rows == [["semantic", "75.0% (3/4)"]]  # a rate nested deeper: one cell
    assert tables["deeper"].columns == ["", "by_kind.drop_call"]
    page = render_html(data)
    assert 'id="calibration"' in page and "negatives_rejected" in page and "75.0% (3/4)" in page
    assert 'id="calibration"' not in render_html(build_report(make_run(tmp_path / "plain", known_records())))


def test_sixty_thousand_rows_give_a_page_of_bounded_size(tmp_path: Path) -> None:
    styles = ["simple", "multiple", "parallel", "parallel_multiple"]
    base = _record(0, "simple", ["add"])
    bad = CheckResult.fail("exception", "x")
    records = []
    for i in range(60_000):
        record = base.model_copy(update={"id": i, "style": styles[i % 4],
                                         "answers": [FunctionCall(name=f"function_{i % 150}", arguments={"a": i})]})
        if i % 3 == 0:
            record.execution_check, record.semantic_check = bad, None
        records.append(record)
    out = tmp_path / "big"
    out.mkdir()
    (out / "stats.json").write_text(compute_stats(records, wall_seconds=3600).model_dump_json())
    started = time.perf_counter()
    page = render_html(build_report(out, records=records))
    seconds = time.perf_counter() - started
    assert len(page) < 1_500_000, len(page)
    assert page.count('<article class="row"') == 20 and page.count('<article class="row rejected"') == 20
    assert page.count("<tr><td>function_") == 150  # the table lists every function
    assert "(30 with the most rows)" in page  # the chart shows the 30 largest
    assert "60,000" in page and seconds < 30


# --------------------------------------------------------------------------- writing it


def test_cli_report_writes_the_page_and_reports_a_bad_directory_on_one_line(
        run_dir: Path, tmp_path: Path, capsys) -> None:
    assert cli.main(["report", str(run_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "report.html")
    page = (run_dir / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") >= 4
    assert not re.search(r'(src|href)="(https?:)?//', page), "the page must not load anything"
    assert cli.main(["report", str(run_dir), "--out", str(tmp_path / "elsewhere.html"), "--seed", "5"]) == 0
    assert (tmp_path / "elsewhere.html").is_file()
    capsys.readouterr()

    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "stats.json").write_text("{not json")
    for bad, message in ((tmp_path / "missing", "is not a run directory"), (tmp_path / "empty", "holds no run"),
                         (tmp_path / "broken", "is not a valid stats.json")):
        assert cli.main(["report", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and message in err and "Traceback" not in err
        assert len(err.splitlines()) == 1, err
    assert cli.main(["report", str(run_dir), "--out", str(tmp_path / "no" / "such" / "dir.html")]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "dir.html" in err and "does not exist" in err


def test_report_from_records_alone(tmp_path: Path) -> None:
    out = make_run(tmp_path / "run", known_records())
    (out / "stats.json").unlink()
    data = build_report(out)
    assert data.rows == 12 and data.accepted == 5


def test_an_empty_run_still_gets_a_page(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    (out / "stats.json").write_text(compute_stats([]).model_dump_json())
    (out / "records.jsonl").write_text("")
    page = write_report(out).read_text()
    assert "No accepted rows." in page and "No row was rejected." in page


def _seed_rows_file(tmp_path: Path) -> Path:
    rows = [line for line in EXAMPLE_SEEDS.read_text().splitlines() if line.strip()][:3]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_verify_writes_the_report_at_the_end_of_its_run(tmp_path: Path) -> None:
    from apigen_local.run.verify import verify_dataset

    result = verify_dataset(_seed_rows_file(tmp_path), EXAMPLE_LIBRARY, stages="format", out_dir=tmp_path / "o")
    page = (tmp_path / "o" / "report.html").read_text()
    assert result.stats.rows == 3 and 'data-stage="format"' in page


def test_a_report_that_cannot_be_written_warns_and_keeps_the_run(tmp_path: Path, monkeypatch, caplog) -> None:
    from apigen_local.run.verify import verify_dataset

    def broken(*args: Any, **kwargs: Any) -> Path:
        raise RuntimeError("matplotlib exploded\nsecond line")

    monkeypatch.setattr(report, "write_report", broken)
    with caplog.at_level(logging.WARNING):
        result = verify_dataset(_seed_rows_file(tmp_path), EXAMPLE_LIBRARY, stages="format",
                                out_dir=tmp_path / "o")
    assert result.stats.rows == 3 and result.stats_path.is_file() and result.dataset_path.is_file()
    assert not (tmp_path / "o" / "report.html").exists()
    warnings = [r.getMessage() for r in caplog.records if "run report" in r.getMessage()]
    assert len(warnings) == 1 and "RuntimeError: matplotlib exploded" in warnings[0]
    assert "\n" not in warnings[0]


def test_write_report_rejects_a_file_as_run_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a run directory"):
        write_report(tmp_path / "file")


# --------------------------------------------------------------------------- in a real browser


def test_the_error_check_sees_console_errors_and_failed_loads(browser: Chromium, tmp_path: Path) -> None:
    """A control for the test below: a broken page is caught, so a clean one means something."""
    page = tmp_path / "broken.html"
    page.write_text('<html><body><img src="http://example.invalid/x.png">'
                    '<script>console.error("deliberate"); undefined_function();</script></body></html>')
    browser.open(page.as_uri())
    errors = " | ".join(browser.errors())
    assert "deliberate" in errors and "undefined_function" in errors and "load failed" in errors


def test_report_opens_offline_in_chromium_with_the_funnel_of_stats_json(
        browser: Chromium, run_dir: Path, tmp_path: Path) -> None:
    path = write_report(run_dir)
    browser.open(path.as_uri())
    assert browser.errors() == []
    assert [url for url in browser.requests() if not url.startswith("file:")] == []

    stats = json.loads((run_dir / "stats.json").read_text())
    shown = browser.evaluate("""Array.from(document.querySelectorAll('#funnel tbody tr')).map(function (tr) {
        var cells = {};
        tr.querySelectorAll('td[data-field]').forEach(function (td) { cells[td.dataset.field] = td.innerText; });
        return {stage: tr.dataset.stage, cells: cells, first: tr.cells[1].innerText};
    })""")
    assert shown[0]["stage"] == "all" and int(shown[0]["first"].replace(",", "")) == stats["rows"]
    stages = [row for row in shown[1:]]
    assert [row["stage"] for row in stages] == list(stats["stages"])
    for row in stages:
        expected = stats["stages"][row["stage"]]
        cells = row["cells"]
        assert int(cells["checked"].replace(",", "")) == expected["total"], row
        assert int(cells["passed"].replace(",", "")) == expected["passed"], row
        assert cells["rate"] == f"{expected['rate']:.1%}", row
    assert int(stages[-1]["cells"]["remaining"]) == stats["accepted"]
    assert browser.evaluate("document.querySelector('#card-accepted b').innerText") == str(stats["accepted"])

    # every chart is drawn with a real size; the sample rows are there
    sizes = browser.evaluate("Array.from(document.querySelectorAll('figure.chart svg')).map(function (svg) {"
                             " var box = svg.getBoundingClientRect(); return [box.width, box.height]; })")
    assert len(sizes) >= 5 and all(w > 200 and h > 50 for w, h in sizes), sizes
    assert browser.evaluate("document.querySelectorAll('#accepted-rows article').length") == 5
    assert browser.evaluate("document.querySelectorAll('#rejected-rows article').length") == 7

    # clicking a header sorts the table: pass rate descending, then ascending
    rates = ("Array.from(document.querySelectorAll('#styles tbody tr'))"
             ".map(function (tr) { return parseFloat(tr.cells[3].dataset.value); })")
    browser.evaluate("document.querySelectorAll('#styles thead th')[3].click()")
    assert browser.evaluate(rates) == sorted(browser.evaluate(rates), reverse=True)
    browser.evaluate("document.querySelectorAll('#styles thead th')[3].click()")
    assert browser.evaluate(rates) == sorted(browser.evaluate(rates))
    assert browser.errors() == []

    shot = tmp_path / "report.png"
    browser.screenshot(shot)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 1000 and height > 2000, (width, height)
