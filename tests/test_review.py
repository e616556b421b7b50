"""The review: the labels log, the sample, the figures, the loopback server, the CLI, and the page
itself labelled with the keyboard in a real headless Chromium."""

from __future__ import annotations

import json
import math
import multiprocessing
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from apigen_local import cli
from apigen_local.errors import ConfigError
from apigen_local.review.rows import review_row, sample_rows
from apigen_local.review.serve import ReportRefresher
from apigen_local.review.server import ReviewServer
from apigen_local.review.session import ReviewSession
from apigen_local.run.files import RunFiles, read_records
from apigen_local.run.labels import measure, read_labelled
from apigen_local.run.review_figures import review_figures
from apigen_local.run.review_log import ERROR_CLASSES, ReviewLabel, append_labels, labels_path, read_labels
from apigen_local.types import CallResult, CheckResult, FunctionCall, Record, Tool

from .browser import Chromium, Page
from .test_report import known_records, make_run

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """Twelve rows: 5 accepted (ids 7, 8, 9 simple/add; 10, 11 multiple/mul), 7 rejected."""
    return make_run(tmp_path / "run", known_records())


def _label(row: int, label: str | None, error_class: str | None = None, accepted: bool = True) -> ReviewLabel:
    return ReviewLabel(row=row, label=label, error_class=error_class, accepted=accepted)  # type: ignore[arg-type]


def wilson_by_hand(hit: int, total: int) -> tuple[float, float]:
    """The Wilson 95 % score interval, written out again here (not the package's code)."""
    z = 1.959964
    p = hit / total
    denominator = 1 + z ** 2 / total
    centre = (p + z ** 2 / (2 * total)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / total + z ** 2 / (4 * total ** 2))
    return centre - half, centre + half


def figures_from_file(path: Path, accepted_ids: set[int]) -> tuple[int, int]:
    """(correct, labelled) among accepted rows, read straight from labels.jsonl: last line per row wins."""
    last: dict[int, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        event = json.loads(line)
        last[event["row"]] = event
    verdicts = [e["label"] for row, e in last.items() if row in accepted_ids and e["label"] in ("correct", "wrong")]
    return verdicts.count("correct"), len(verdicts)


# --------------------------------------------------------------------------- the labels log


def test_the_last_label_of_a_row_counts_and_null_undoes_it(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    append_labels(path, [_label(7, "correct"), _label(8, "wrong", "wrong_value"), _label(9, "skip")])
    append_labels(path, [_label(7, "wrong", "invented_value"), _label(8, None)])
    log = read_labels(path)
    assert log.events == 5 and log.bad_lines == []
    assert {row: (lab.label, lab.error_class) for row, lab in log.current.items()} == {
        7: ("wrong", "invented_value"), 9: ("skip", None)}
    assert [lab.row for lab in log.verdicts()] == [7]


def test_a_corrupt_file_keeps_its_good_lines_and_names_the_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    append_labels(path, [_label(7, "correct")])
    with open(path, "a") as handle:  # a bad line, then a line torn by a crash (no newline)
        handle.write('{"row": "seven", "label": "correct"}\n{"row": 8, "label": "wro')
    append_labels(path, [_label(9, "correct")])
    log = read_labels(path)
    assert sorted(log.current) == [7, 9]
    assert log.bad_lines == [2, 3]
    # the torn line was closed, so the new label is a line of its own
    assert json.loads(path.read_text().splitlines()[3])["row"] == 9


def _append_many(path: str, start: int) -> None:
    for row in range(start, start + 300):
        append_labels(path, [_label(row, "correct")])


def test_two_writers_at_once_lose_no_label(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append_many, args=(str(path), start)) for start in (0, 1000)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    log = read_labels(path)
    assert log.bad_lines == [] and log.events == 600
    assert sorted(log.current) == [*range(300), *range(1000, 1300)]


# --------------------------------------------------------------------------- sample and figures


def test_the_sample_is_seeded_order_free_and_holds_only_judgeable_rows() -> None:
    records = known_records()
    first = [r.id for r in sample_rows(records, size=3, seed=1)]
    assert first == [r.id for r in sample_rows(list(reversed(records)), size=3, seed=1)]
    assert len(first) == 3 and all(records[i].accepted for i in first)
    seeds = {tuple(r.id for r in sample_rows(records, size=3, seed=s)) for s in range(6)}
    assert len(seeds) > 1  # another seed picks other rows
    rejected = sample_rows(records, size=50, seed=0, accepted=False)
    assert sorted(r.id for r in rejected) == [3, 4, 5, 6]  # rows 0-2 failed format: no request to judge


def test_figures_count_the_labels_per_style_and_function_with_wilson_intervals() -> None:
    records = {r.id: r for r in known_records()}
    log = read_labels(Path("/nonexistent"))
    for label in (_label(7, "correct"), _label(8, "correct"), _label(9, "wrong", "wrong_value"),
                  _label(10, "correct"), _label(11, "skip"), _label(4, "correct", accepted=False),
                  _label(99, "wrong", "nonsense")):  # row 99 is not in the run
        log.current[label.row] = label
    figures = review_figures(log, records)
    assert (figures.precision.hit, figures.precision.total) == (3, 4)
    assert (figures.rejected_correct.hit, figures.rejected_correct.total) == (1, 1)
    assert (figures.labelled, figures.skipped) == (5, 1)
    assert {k: (v.hit, v.total) for k, v in figures.styles.items()} == {"simple": (2, 3), "multiple": (1, 1)}
    assert {k: (v.hit, v.total) for k, v in figures.functions.items()} == {"add": (2, 3), "mul": (1, 1)}
    assert figures.wrong_classes == {"wrong_value": 1}
    low, high = figures.precision.interval or (0, 0)
    assert (low, high) == pytest.approx(wilson_by_hand(3, 4), abs=1e-4)


def test_each_value_shows_the_rule_that_grounds_it_and_where_the_request_states_it() -> None:
    tool = Tool(name="convert", description="Convert a length.", parameters={
        "type": "object", "properties": {"value": {"type": "number"}, "unit": {"type": "string", "enum": ["km", "mi"]},
                                         "points": {"type": "array", "items": {"type": "integer"}},
                                         "label": {"type": "string"}}})
    record = Record(id=1, seed=0, style="simple", tools=[tool], query="Convert 10 km for Paris, points 3 and 14",
                    answers=[FunctionCall(name="convert", arguments={
                        "value": 10, "unit": "km", "points": [3, 14], "label": "London"})],
                    format_check=CheckResult.ok(), execution_check=CheckResult.ok(),
                    execution_result=[CallResult(name="convert", ok=True, result=6.2)])
    view = review_row(record)
    evidence = {a.name: [(e.path, e.rule, e.span) for e in a.evidence] for a in view.calls[0].arguments}
    assert evidence["value"] == [("", "stated_number", (8, 10))]
    assert evidence["unit"] == [("", "enum", (11, 13))]
    assert evidence["points"] == [("[0]", "stated_number", (32, 33)), ("[1]", "stated_number", (38, 40))]
    assert [record.query[a:b] for a, b in (evidence[k][i][2] for k, i in (("value", 0), ("points", 0), ("points", 1)))
            ] == ["10", "3", "14"]  # whole numbers: the 1 of 14 and 10 is not taken for a 1
    assert evidence["label"] == [("", None, None)]  # London is nowhere in the request
    assert view.calls[0].outcome == "ok" and view.calls[0].result == "6.2"
    assert view.called == ["convert"] and '"enum"' in view.tools[0].parameters


def test_an_irrelevance_row_names_the_functions_taken_out_of_its_tools() -> None:
    tool = Tool(name="slugify", description="Make a slug.")
    record = Record(id=1, seed=0, style="irrelevance", tools=[tool], query="How many balls fit in a box?",
                    irrelevant_to=[FunctionCall(name="permutation_count", arguments={"n": 3})],
                    format_check=CheckResult.ok())
    view = review_row(record)
    assert view.calls == [] and view.removed == ["permutation_count"] and [t.name for t in view.tools] == ["slugify"]


def test_highlight_positions_count_as_the_page_does() -> None:
    query = "🎉🎉 weather in Paris"
    record = Record(id=1, seed=0, style="simple", tools=[Tool(name="w", description="Weather.")], query=query,
                    answers=[FunctionCall(name="w", arguments={"city": "Paris"})], format_check=CheckResult.ok())
    start, end = review_row(record).calls[0].arguments[0].evidence[0].span or (0, 0)
    assert query.encode("utf-16-le")[2 * start:2 * end].decode("utf-16-le") == "Paris"  # JavaScript's units


def test_a_value_is_found_where_the_request_writes_it_glued_to_a_unit() -> None:
    tool = Tool(name="convert", description="Convert a length.")
    query = "How many units are there in 10.0mm, or 14 m?"
    record = Record(id=1, seed=0, style="simple", tools=[tool], query=query,
                    answers=[FunctionCall(name="convert", arguments={"value": 10.0, "unit": "mm", "n": 1, "m": 14.0})],
                    format_check=CheckResult.ok())
    spans = {a.name: a.evidence[0].span for a in review_row(record).calls[0].arguments}
    assert query[slice(*spans["value"])] == "10.0" and query[slice(*spans["unit"])] == "mm"
    assert spans["n"] is None  # not the 1 of 14 or of 10.0
    assert query[slice(*spans["m"])] == "14"


# --------------------------------------------------------------------------- the run's lock


def test_a_run_being_written_refuses_a_second_writer_and_the_review_says_so(run_dir: Path) -> None:
    files = RunFiles(run_dir)
    files.open({"library": "examples/library.py", "seed": 7, "styles": {"simple": 1.0}})
    try:
        with pytest.raises(ConfigError, match="another run is writing"):
            RunFiles(run_dir).open({"library": "examples/library.py", "seed": 7, "styles": {"simple": 1.0}})
        assert ReviewSession(run_dir).state()["being_written"] is True
    finally:
        files.close()
    assert ReviewSession(run_dir).state()["being_written"] is False
    with pytest.raises(ConfigError, match="other settings"):  # the lock is free; the settings differ
        RunFiles(run_dir).open({"library": "other.py"})
    assert ReviewSession(run_dir).state()["being_written"] is False  # a refused open lets go too


def test_a_lock_that_cannot_be_taken_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").mkdir()  # a folder where the lock file goes
    with pytest.raises(ConfigError, match="cannot lock"):
        RunFiles(tmp_path / "run").open({"run": 1})
    assert RunFiles(tmp_path / "run").being_written() is False


def test_the_session_reads_rows_appended_while_it_is_open(tmp_path: Path) -> None:
    records = known_records()
    files = RunFiles(tmp_path / "run")
    files.open({"run": 1})
    for record in records[:8]:
        files.append([record])
    session = ReviewSession(tmp_path / "run", size=50)
    first = session.state()
    assert first["written_rows"] == 8 and first["being_written"] and [r["id"] for r in first["rows"]] == [7]
    with open(files.records, "a") as handle:  # half a line: a row being written is not shown yet
        handle.write('{"id": 99, "se')
    assert session.state()["written_rows"] == 8
    files.records.write_bytes(files.records.read_bytes()[: files.records.read_bytes().rfind(b"\n") + 1])
    for record in records[8:]:
        files.append([record])
    files.close()
    later = session.state()
    assert later["written_rows"] == 12 and not later["being_written"]
    assert sorted(r["id"] for r in later["rows"]) == [7, 8, 9, 10, 11]


# --------------------------------------------------------------------------- the server


def _request(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    method = "POST" if data is not None else "GET"
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            body, status = answer.read(), answer.status
            kind = answer.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        body, status, kind = error.read(), error.code, error.headers.get("Content-Type", "")
    return status, json.loads(body) if kind.startswith("application/json") else body.decode()


@pytest.fixture
def server(run_dir: Path):
    with ReviewServer(ReviewSession(run_dir, size=5, reviewer="ana"), 0) as serving:
        serving.start()
        yield serving
        serving.shutdown()


def _post_label(server: ReviewServer, body: dict[str, Any], **headers: str) -> tuple[int, Any]:
    return _request(server.url + "api/label", data=json.dumps(body).encode(),
                    headers={"Content-Type": "application/json", **headers})


def test_the_server_listens_on_loopback_only(server: ReviewServer) -> None:
    assert server.socket.getsockname()[0] == "127.0.0.1"
    assert server.url.startswith("http://127.0.0.1:")
    outward = _outward_address()
    if outward is not None:  # the same port on this machine's other address answers nothing
        with pytest.raises(OSError):
            socket.create_connection((outward, server.port), timeout=2).close()


def _outward_address() -> str | None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outward interface
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def test_labels_are_saved_and_bad_ones_refused_with_a_reason(server: ReviewServer, run_dir: Path) -> None:
    status, state = _post_label(server, {"row": 7, "label": "correct"})
    assert status == 200 and state["labels"]["7"] == {"label": "correct", "error_class": None, "reviewer": "ana"}
    assert state["figures"]["precision"]["text"].startswith("100.0 % (1/1")
    assert _post_label(server, {"row": 8, "label": "wrong"})[1]["error"].startswith(
        "the label was not saved: a wrong row needs an error class")
    assert _post_label(server, {"row": 8, "label": "wrong", "error_class": "rude"})[0] == 400
    assert "not in this run" in _post_label(server, {"row": 12345, "label": "correct"})[1]["error"]
    assert _post_label(server, {"row": 8, "label": "maybe"})[0] == 400
    saved = [json.loads(line) for line in labels_path(run_dir).read_text().splitlines()]
    assert [(e["row"], e["label"], e["reviewer"], e["accepted"]) for e in saved] == [(7, "correct", "ana", True)]


def test_requests_from_other_sites_and_names_are_refused(server: ReviewServer, run_dir: Path) -> None:
    assert _request(server.url + "api/state", headers={"Host": "evil.example"})[0] == 403  # DNS rebinding
    assert _post_label(server, {"row": 7, "label": "correct"}, Origin="http://evil.example")[0] == 403
    assert _post_label(server, {"row": 7, "label": "correct"}, Origin="null")[0] == 403  # a sandboxed frame
    assert _post_label(server, {"row": 7, "label": "correct"}, Host="evil.example")[0] == 403
    text = _request(server.url + "api/label", data=b'{"row": 7, "label": "correct"}',
                    headers={"Content-Type": "text/plain"})  # a form or no-cors fetch from another site
    assert text[0] == 415
    assert _request(server.url + "api/label", data=b"x" * 70_000,
                    headers={"Content-Type": "application/json"})[0] == 413
    assert not labels_path(run_dir).exists()
    status, page = _request(server.url)
    assert status == 200 and '<script src="/review.js"' in page
    with urllib.request.urlopen(server.url, timeout=10) as answer:
        policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy


def test_a_taken_port_and_a_folder_that_is_no_run_are_one_line_each(run_dir: Path, tmp_path: Path, capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["review", str(run_dir), "--port", str(port)]) == 2
    assert f"port {port} on 127.0.0.1 is taken" in capsys.readouterr().err
    assert cli.main(["review", str(tmp_path)]) == 2
    out = capsys.readouterr().err
    assert "is not a run directory (no records.jsonl or run.json)" in out and "Traceback" not in out
    assert cli.main(["review", str(run_dir), "--sample", "0"]) == 2
    assert "--sample must be at least 1, not 0" in capsys.readouterr().err
    for port in ("70000", "-1"):
        assert cli.main(["review", str(run_dir), "--port", port]) == 2
        assert f"--port must be 0 to 65535, not {port}" in capsys.readouterr().err


def test_the_command_serves_until_ctrl_c_and_keeps_the_labels(run_dir: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "apigen_local.cli", "review", str(run_dir), "--port", "0", "--reviewer", "bo"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a background launch may ignore it
    try:
        lines = [process.stdout.readline() for _ in range(3)]  # type: ignore[union-attr]
        url = next(word for line in lines for word in line.split() if word.startswith("http://127.0.0.1:"))
        status, state = _request(url + "api/label", data=b'{"row": 10, "label": "correct"}',
                                 headers={"Content-Type": "application/json"})
        assert status == 200 and state["reviewer"] == "bo"
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0 and "stopped; the labels are saved" in out and "Traceback" not in out
    assert read_labels(labels_path(run_dir)).current[10].label == "correct"
    assert "Precision from your review" in (run_dir / "report.html").read_text()  # written on the way out


# --------------------------------------------------------------------------- where the figures go


def test_stats_report_and_calibrate_use_the_labels(run_dir: Path, capsys) -> None:
    append_labels(labels_path(run_dir), [_label(7, "correct"), _label(8, "correct"), _label(9, "wrong", "wrong_value"),
                                         _label(10, "skip"), _label(4, "wrong", "nonsense", accepted=False)])
    assert cli.main(["stats", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "reviewed precision: 66.7 % (2/3, 95 % CI 20.8-93.9) of labelled accepted rows" in out
    assert tuple(round(100 * x, 1) for x in wilson_by_hand(2, 3)) == (20.8, 93.9)
    assert "correct among labelled rejected rows: 0.0 % (0/1" in out
    assert cli.main(["stats", str(run_dir), "--json"]) == 0
    reviewed = json.loads(capsys.readouterr().out)["reviewed"]
    assert (reviewed["correct"], reviewed["accepted_labelled"], reviewed["styles"]["simple"]["total"]) == (2, 3, 3)

    assert cli.main(["report", str(run_dir)]) == 0
    page = (run_dir / "report.html").read_text()
    assert 'id="reviewed"' in page and "66.7 % (2/3, 95 % CI 20.8-93.9)" in page
    assert "reviewed precision" in page and "wrong_value 1" in page

    rows = read_labelled(labels_path(run_dir))
    assert sorted((r.row_id.split(":")[1], r.label, r.error_class) for r in rows) == [
        ("4", "wrong", "nonsense"), ("7", "correct", None), ("8", "correct", None), ("9", "wrong", "wrong_value")]
    figures = measure(rows)
    assert figures.rows == 4 and figures.correct == 2
    execution = next(r for r in rows if r.row_id.endswith(":4")).execution
    assert execution == {"passed": False, "reason": "exception"}  # the run's own outcome comes along


def test_the_report_is_rewritten_after_labels(run_dir: Path) -> None:
    session = ReviewSession(run_dir)
    refresher = ReportRefresher(session)
    try:
        append_labels(session.labels_file, [_label(7, "correct")])
        refresher.mark()
        deadline = time.monotonic() + 15
        report = run_dir / "report.html"
        while time.monotonic() < deadline and not (report.exists() and 'id="reviewed"' in report.read_text()):
            time.sleep(0.1)
        assert "100.0 % (1/1" in report.read_text()
    finally:
        refresher.stop()


# --------------------------------------------------------------------------- the page in a real browser


def _shown(page: Page) -> dict[str, Any]:
    return page.evaluate("""({
        row: Number(document.querySelector('article.row').dataset.id),
        precision: document.getElementById('precision').textContent,
        progress: document.getElementById('progress').textContent,
        marks: Array.from(document.querySelectorAll('#sample li')).map(li => [Number(li.dataset.id), li.className]),
    })""")


def _press_and_wait(page: Page, keys: str, events_before: int, path: Path) -> None:
    for key in keys:
        page.press(key)
    deadline = time.monotonic() + 15
    while (len(path.read_text().splitlines()) if path.exists() else 0) < events_before + 1:
        assert time.monotonic() < deadline, f"no label written after {keys!r}"
        time.sleep(0.05)
    page.wait_until("!document.querySelector('#classes:not([hidden])') && !busy && applied === issued")


def test_label_with_the_keyboard_undo_and_reload(browser: Chromium, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", known_records())
    path = labels_path(run)
    accepted = {r.id for r in read_records(run / "records.jsonl") if r.accepted}
    with ReviewServer(ReviewSession(run, size=5, reviewer="ana"), 0) as server:
        server.start()
        page = browser.first
        page.open(server.url)
        page.wait_until("!!document.querySelector('article.row')")
        order = [row for row, _ in _shown(page)["marks"]]
        assert sorted(order) == sorted(accepted) and _shown(page)["row"] == order[0]
        assert _shown(page)["precision"] == "no labels yet"

        _press_and_wait(page, "y", 0, path)           # row 1 correct
        assert _shown(page)["row"] == order[1]
        _press_and_wait(page, "n3", 1, path)          # row 2 wrong: wrong_function
        _press_and_wait(page, "s", 2, path)           # row 3 skipped
        _press_and_wait(page, "y", 3, path)           # row 4 correct
        _press_and_wait(page, "u", 4, path)           # ... undone: row 4 unlabelled again
        assert _shown(page)["row"] == order[3]
        _press_and_wait(page, "n9", 5, path)          # row 4 wrong: wrong_value

        log = read_labels(path)
        assert {row: (lab.label, lab.error_class) for row, lab in log.current.items()} == {
            order[0]: ("correct", None), order[1]: ("wrong", ERROR_CLASSES[2]), order[2]: ("skip", None),
            order[3]: ("wrong", ERROR_CLASSES[8])}
        hit, total = figures_from_file(path, accepted)
        low, high = wilson_by_hand(hit, total)
        expected = f"{100 * hit / total:.1f} % ({hit}/{total}, 95 % CI {100 * low:.1f}-{100 * high:.1f})"
        assert (hit, total) == (1, 3) and _shown(page)["precision"] == expected

        page.reload()  # reopening resumes at the first unlabelled row, with every label shown
        page.wait_until("!!document.querySelector('article.row')")
        shown = _shown(page)
        assert shown["row"] == order[4] and shown["precision"] == expected and shown["progress"] == "4 / 5"
        classes = dict(shown["marks"])
        assert "correct" in classes[order[0]] and "wrong" in classes[order[1]] and "skip" in classes[order[2]]
        assert page.errors() == []
        assert all(url.startswith(server.url) for url in page.requests()), page.requests()
        server.shutdown()


def _show_row(page: Page, row: int) -> None:
    page.evaluate(f"document.querySelector('#sample li[data-id=\"{row}\"]').click()")
    page.wait_until(f"document.querySelector('article.row').dataset.id === '{row}'")


def test_two_pages_at_once_lose_no_label(browser: Chromium, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", known_records())
    path = labels_path(run)
    with ReviewServer(ReviewSession(run, size=5), 0) as server:
        server.start()
        pages = [browser.first, browser.new_page()]
        for page in pages:
            page.open(server.url)
            page.wait_until("!!document.querySelector('article.row')")
        order = [row for row, _ in _shown(pages[0])["marks"]]
        plan = [(0, order[0], "y"), (1, order[1], "n2"), (0, order[2], "n8"), (1, order[3], "y"), (0, order[4], "s")]
        for written, (tab, row, keys) in enumerate(plan):  # the tabs take turns, each on its own row
            _show_row(pages[tab], row)
            _press_and_wait(pages[tab], keys, written, path)
        expected = {order[0]: ("correct", None), order[1]: ("wrong", ERROR_CLASSES[1]),
                    order[2]: ("wrong", ERROR_CLASSES[7]), order[3]: ("correct", None), order[4]: ("skip", None)}
        assert {row: (lab.label, lab.error_class) for row, lab in read_labels(path).current.items()} == expected
        assert len(path.read_text().splitlines()) == 5
        for page in pages:
            page.reload()
            page.wait_until("!!document.querySelector('article.row')")
            assert _shown(page)["progress"] == "5 / 5" and _shown(page)["precision"].startswith("50.0 % (2/4")
            assert page.errors() == []
        server.shutdown()


def test_a_held_key_labels_once(browser: Chromium, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", known_records())
    path = labels_path(run)
    with ReviewServer(ReviewSession(run, size=5), 0) as server:
        server.start()
        page = browser.first
        page.open(server.url)
        page.wait_until("!!document.querySelector('article.row')")
        _press_and_wait(page, "y", 0, path)
        for _ in range(5):  # what a held key sends after its first press
            page.press("y", repeat=True)
        page.wait_until("!busy && applied === issued")
        assert len(path.read_text().splitlines()) == 1 and _shown(page)["progress"] == "1 / 5"
        server.shutdown()


def test_a_run_still_being_written_is_said_on_the_page(browser: Chromium, tmp_path: Path) -> None:
    files = RunFiles(tmp_path / "run")
    files.open({"run": 1})
    try:
        with ReviewServer(ReviewSession(files.dir), 0) as server:
            server.start()
            page = browser.first
            page.open(server.url)
            note = page.wait_until("document.querySelector('.notice.warn') && "
                                   "document.querySelector('.notice.warn').textContent")
            assert "still being written (0 rows so far)" in note
            assert "No accepted rows are written yet" in page.evaluate("document.getElementById('current').textContent")
            records = known_records()
            for record in records[:10]:  # rows 7, 8, 9 accepted so far
                files.append([record])
            page.wait_until("document.querySelectorAll('#sample li').length === 3")  # it looks again by itself
            shown = _shown(page)["marks"][-1][0]  # seed 0 orders the rows 7, 9, 8: show 8
            _show_row(page, shown)
            for record in records[10:]:  # rows 10 and 11 join the sample: 7, 9, 11, 8, 10
                files.append([record])
            page.wait_until("document.querySelectorAll('#sample li').length === 5")
            assert _shown(page)["row"] == shown  # the row being read stays on screen
            assert page.errors() == []
            server.shutdown()
    finally:
        files.close()


def test_the_page_renders_untrusted_text_as_text(browser: Chromium, tmp_path: Path) -> None:
    hostile = '<img src=x onerror="document.title=\'owned\'"><script>document.title="owned"</script>'
    records = known_records()
    target = next(r for r in records if r.accepted)
    target.query = hostile + " combine 2 and 3"
    target.tools = [Tool(name=t.name, description=hostile, parameters=t.parameters) for t in target.tools]
    target.answers[0].arguments["a"] = hostile
    target.execution_result = [CallResult(name="add", ok=True, result=hostile)]
    target.thought = hostile
    run = make_run(tmp_path / "run", records)
    with ReviewServer(ReviewSession(run, size=1, seed=_seed_picking(records, target.id)), 0) as server:
        server.start()
        page = browser.first
        page.open(server.url)
        page.wait_until("!!document.querySelector('article.row')")
        assert page.evaluate("document.querySelectorAll('img, script:not([src])').length") == 0
        text = page.evaluate("document.querySelector('article.row').textContent")
        assert text.count(hostile) == 4  # the query, the judge's thought, both tool descriptions: as text
        assert text.count(json.dumps(hostile)) == 2  # the argument and the result, as JSON text
        assert [url for url in page.requests() if not url.startswith(server.url)] == []
        server.shutdown()


def _seed_picking(records: list[Record], row: int) -> int:
    return next(seed for seed in range(1000) if sample_rows(records, size=1, seed=seed)[0].id == row)


def test_a_screenshot_of_the_page_on_a_labelled_run(browser: Chromium, tmp_path: Path) -> None:
    """The page is drawn: a full-page PNG of a real size."""
    run = make_run(tmp_path / "run", known_records())
    append_labels(labels_path(run), [_label(7, "correct"), _label(8, "wrong", "wrong_value")])
    with ReviewServer(ReviewSession(run, size=5), 0) as server:
        server.start()
        page = browser.first
        page.open(server.url)
        page.wait_until("!!document.querySelector('article.row')")
        shot = tmp_path / "review.png"
        page.screenshot(shot)
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
        server.shutdown()
