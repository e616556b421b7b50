"""The whole pipeline on real llama.cpp and real Docker, resume after SIGKILL, and its pieces."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apigen_local import cli
from apigen_local.checks.dedup import Deduplicator, normalise_query
from apigen_local.checks.grounding import CUT_VALUE, REGROUPED_VALUE, REUSED_VALUE, UNGROUNDED_ARGUMENT
from apigen_local.errors import ConfigError
from apigen_local.run.config import GenerationConfig, build_config
from apigen_local.run.files import RunFiles, read_records
from apigen_local.run.generate import generate_dataset
from apigen_local.types import CheckResult, FunctionCall, Record, Tool

from .conftest import EXAMPLE_LIBRARY, EXAMPLE_SEEDS, REPO


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.docker
@pytest.mark.model
def test_thirty_rows_end_to_end(tmp_path: Path, local_model) -> None:
    # the tiny model's values are random, so grounding (tested below) would stop every row; and its
    # random text is never a request, which the semantic stage rejects (test_request_checks.py)
    result = generate_dataset(EXAMPLE_LIBRARY, local_model, 30, out_dir=tmp_path, seed=2,
                              seed_file=str(EXAMPLE_SEEDS), grounding=False, semantic=False)
    records = list(read_records(result.records_path))
    dataset = _lines(result.dataset_path)
    rejected = _lines(result.rejected_path)
    assert sorted(r.id for r in records) == list(range(30))
    assert len(dataset) + len(rejected) == 30
    assert result.stats.rows == 30 and result.stats.accepted == len(dataset)
    assert result.stats.stages["format"].rate == 1.0  # the constraint holds on every row
    for row in dataset:
        assert set(row) == {"id", "query", "answers", "tools"}
        answers, tools = json.loads(row["answers"]), json.loads(row["tools"])
        assert answers and {call["name"] for call in answers} <= {tool["name"] for tool in tools}
    by_id = {r.id: r for r in records}
    for row in dataset:  # accepted rows really ran; the semantic stage was off
        record = by_id[row["id"]]
        assert record.keep_row_after_execution_check
        assert record.semantic_check is None
        assert len(record.execution_result) == len(record.answers)
    for row in rejected:
        assert row["stage"] in {"format", "dedup", "grounding", "execution", "semantic"} and row["reason"]
    stats = json.loads(result.stats_path.read_text())
    assert stats["sandbox_calls"] > 0 and stats["tokens_per_second"] > 0
    _assert_loads_with_hf_datasets(result.dataset_path, len(dataset), tmp_path)


@pytest.mark.docker
@pytest.mark.model
def test_grounding_runs_between_dedup_and_execution(tmp_path: Path, local_model) -> None:
    result = generate_dataset(EXAMPLE_LIBRARY, local_model, 8, out_dir=tmp_path, seed=2,
                              seed_file=str(EXAMPLE_SEEDS))
    records = list(read_records(result.records_path))
    deduplicated = [r for r in records if r.dedup_check is not None and r.dedup_check.passed]
    assert deduplicated and all(r.grounding_check is not None for r in deduplicated)
    ungrounded = [r for r in deduplicated if not r.grounding_check.passed]
    assert ungrounded, "the tiny model's random values should not be grounded in its queries"
    grounding_reasons = {UNGROUNDED_ARGUMENT, CUT_VALUE, REUSED_VALUE, REGROUPED_VALUE}
    for record in ungrounded:  # stopped before the sandbox, with the call named
        assert record.execution_check is None and record.rejection[0] == "grounding"
        assert record.rejection[1] in grounding_reasons
        assert any(record.grounding_check.detail.startswith(f"{call.name}: ") for call in record.answers)
    # the tiny model's random values: most are simply not in the query, with the argument named
    invented = [r for r in ungrounded if r.rejection[1] == UNGROUNDED_ARGUMENT]
    assert invented and all(": argument " in r.grounding_check.detail for r in invented)
    assert result.stats.stages["grounding"].total == len(deduplicated)
    assert list(result.stats.stages)[:3] == ["format", "dedup", "grounding"]


def _assert_loads_with_hf_datasets(path: Path, rows: int, tmp_path: Path) -> None:
    """dataset.jsonl is what `datasets.load_dataset("json", ...)` reads, column for column."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets

    loaded = datasets.load_dataset("json", data_files=str(path), split="train",
                                   cache_dir=str(tmp_path / "hf-cache"))
    assert loaded.num_rows == rows
    assert set(loaded.column_names) == {"id", "query", "answers", "tools"}
    assert all(isinstance(json.loads(answers), list) for answers in loaded["answers"])


def _generate_command(out: Path, rows: int) -> list[str]:
    # grounding and semantic off: the tiny model's random rows are never grounded nor requests, and
    # with them on every row is rejected, so the accepted datasets compared below would be empty
    return [sys.executable, "-m", "apigen_local.cli", "generate", "--library", str(EXAMPLE_LIBRARY),
            "--seed-file", str(EXAMPLE_SEEDS), "--model", str(REPO / "models" / "tiny-test.gguf"),
            "--rows", str(rows), "--out", str(out), "--seed", "9", "--quiet", "--batch-rows", "4",
            "--no-grounding", "--no-semantic"]


@pytest.mark.docker
@pytest.mark.model
def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rows = 30
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    process = subprocess.Popen(_generate_command(killed, rows), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = killed / "records.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if records.exists() and records.read_text().count("\n") >= 8:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    written = [line for line in records.read_text().splitlines(keepends=True) if line.endswith("\n")]
    done_before = len(written)
    assert 8 <= done_before < rows

    rerun = subprocess.run(_generate_command(killed, rows), cwd=REPO, check=True, capture_output=True, text=True)
    subprocess.run(_generate_command(clean, rows), cwd=REPO, check=True, capture_output=True)

    # a resume, not a start-over: the rerun says so and keeps the killed run's records byte for byte
    # (a redone row would differ at least in its timings)
    assert f"resumed: {done_before} rows were already done" in rerun.stdout
    assert records.read_text().startswith("".join(written))
    resumed_ids = [row["id"] for row in _lines(records)]
    assert sorted(resumed_ids) == list(range(rows))  # none missing, none twice
    accepted = [row["id"] for row in _lines(killed / "dataset.jsonl")]
    assert len(accepted) == len(set(accepted))
    reference = sorted(row["id"] for row in _lines(clean / "dataset.jsonl"))
    assert reference, "no accepted row: the comparison would prove nothing"
    assert sorted(accepted) == reference


def test_duplicate_queries_are_caught_exactly_and_normalised() -> None:
    assert normalise_query("  What's 2+2?  ") == normalise_query("what s 2 2")
    dedup = Deduplicator()
    assert dedup.check(0, "Divide 10 by 2.").passed
    exact = dedup.check(1, "Divide 10 by 2.")
    assert exact.reason == "duplicate" and "row 0" in exact.detail
    loose = dedup.check(2, "divide 10   BY 2")
    assert loose.reason == "duplicate" and "case" in loose.detail
    assert dedup.check(3, "Divide 10 by 5.").passed


def test_config_rejects_unknown_keys_and_reads_toml_and_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rowz"):
        build_config({"library": "lib.py", "rowz": 3})
    toml = tmp_path / "run.toml"
    toml.write_text('library = "examples/library.py"\nrows = 7\nstyles = "simple=1,parallel=1"\n')
    config = GenerationConfig.from_file(toml, seed=5)
    assert (config.rows, config.seed, config.styles) == (7, 5, {"simple": 0.5, "parallel": 0.5})
    yaml = tmp_path / "run.yaml"
    yaml.write_text("library: examples/library.py\nrows: 4\nsemantic: false\n")
    assert GenerationConfig.from_file(yaml).semantic is False
    bad = tmp_path / "bad.toml"
    bad.write_text("rows = = 3")
    with pytest.raises(ConfigError, match="cannot parse"):
        GenerationConfig.from_file(bad)


def _record(index: int, passed: bool) -> Record:
    tool = Tool(name="f", description="d")
    return Record(
        id=index, seed=0, style="simple", tools=[tool], query=f"q{index}",
        answers=[FunctionCall(name="f", arguments={})],
        format_check=CheckResult.ok(), dedup_check=CheckResult.ok(),
        execution_check=CheckResult.ok() if passed else CheckResult.fail("exception", "boom"),
    )


def test_outputs_survive_a_torn_last_line_and_refuse_other_settings(tmp_path: Path) -> None:
    files = RunFiles(tmp_path)
    assert files.open({"seed": 1}) == []
    files.append([_record(0, True)])
    files.append([_record(1, False)])
    files.close()
    with open(files.records, "a") as handle:  # a crash in the middle of a write
        handle.write('{"id": 2, "seed"')
    again = RunFiles(tmp_path)
    assert [r.id for r in again.open({"seed": 1})] == [0, 1]
    assert files.records.read_text().endswith("\n")  # the torn line is gone
    assert [row["id"] for row in _lines(files.dataset)] == [0]
    assert [(row["id"], row["reason"]) for row in _lines(files.rejected)] == [(1, "exception")]
    with pytest.raises(ConfigError, match="another run is writing"):  # ``again`` holds the directory
        RunFiles(tmp_path).open({"seed": 1})
    again.close()
    with pytest.raises(ConfigError, match="other settings"):
        RunFiles(tmp_path).open({"seed": 2})


def test_cli_user_mistakes_exit_2_with_one_line(tmp_path: Path, capsys) -> None:
    assert cli.main(["generate", "--library", str(tmp_path / "nope.py"), "--out", str(tmp_path / "o")]) == 2
    assert cli.main(["generate", "--library", str(EXAMPLE_LIBRARY), "--model",
                     str(tmp_path / "none.gguf"), "--out", str(tmp_path / "o2")]) == 2
    assert cli.main(["stats", str(tmp_path / "empty")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 3 and all(line.startswith("error:") for line in lines)


def test_a_damaged_model_is_named_before_any_output_exists(tmp_path: Path, tiny_model_path: Path, capsys) -> None:
    cut = tmp_path / "cut.gguf"
    data = tiny_model_path.read_bytes()
    cut.write_bytes(data[:len(data) // 2])  # the header is whole, the tensors are not
    out = tmp_path / "out"
    assert cli.main(["generate", "--library", str(EXAMPLE_LIBRARY), "--model", str(cut), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: damaged or partial GGUF") and "tensors need" in err and len(err.splitlines()) == 1
    assert not out.exists()
    cut.write_bytes(data[:1000])  # cut inside the header
    assert cli.main(["generate", "--library", str(EXAMPLE_LIBRARY), "--model", str(cut), "--out", str(out)]) == 2
    assert "damaged or partial GGUF" in capsys.readouterr().err and not out.exists()


def test_debug_is_accepted_before_or_after_the_command(tmp_path: Path) -> None:
    parser = cli.build_parser()
    for argv in (["--debug", "stats", str(tmp_path)], ["stats", str(tmp_path), "--debug"],
                 ["sandbox", "check", "--debug"]):
        assert parser.parse_args(argv).debug is True, argv
    assert parser.parse_args(["stats", str(tmp_path)]).debug is False
