"""Drafted seed rows for a user's own library (apigen-local seed)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from apigen_local import cli
from apigen_local.checks.format import check_answers
from apigen_local.checks.grounding import check_grounding
from apigen_local.generation.sampling import load_seed_examples
from apigen_local.generation.seed_draft import draft_seed_rows, imperative
from apigen_local.tool_specs import load_tool_specs
from apigen_local.tools import load_library
from apigen_local.types import FunctionCall

from .conftest import EXAMPLE_LIBRARY, REPO

KITCHEN = REPO / "benchmarks" / "libraries" / "kitchen.py"


@pytest.mark.parametrize("description, expected", [
    ("Calculates the final velocity.", "Calculate the final velocity"),
    ("Divides two numbers and returns the quotient.", "Divide two numbers and return the quotient"),
    ("Searches the catalogue. Slow.", "Search the catalogue"),
    ("Copies a file", "Copy a file"),
    ("Convert a length.", "Convert a length"),
    ("", "Count vowels"),
])
def test_a_description_becomes_a_command(description: str, expected: str) -> None:
    assert imperative(description, "count_vowels") == expected


@pytest.mark.parametrize("library", [EXAMPLE_LIBRARY, KITCHEN])
def test_drafted_rows_are_well_formed_grounded_and_readable_as_seeds(library: Path, tmp_path: Path) -> None:
    tools = load_library(library).tools
    rows = draft_seed_rows(tools, per_function=2, seed=3)
    assert {json.loads(r["answers"])[0]["name"] for r in rows} == {t.name for t in tools}
    assert len(rows) >= 2 * len(tools) - 2 and len({r["query"] for r in rows}) == len(rows)
    for row in rows:
        offered = load_tool_specs_from_row(row, tmp_path)
        calls = json.loads(row["answers"])
        assert check_answers(row["query"], calls, offered, min_calls=1).passed, row
        grounded = check_grounding(row["query"], [FunctionCall(**c) for c in calls], offered)
        assert grounded.passed, (row["query"], grounded.detail)
    seeds = tmp_path / "seed.jsonl"
    seeds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert len(load_seed_examples(seeds)) == len(rows)


def load_tool_specs_from_row(row: dict, tmp_path: Path):
    spec = tmp_path / "spec.json"
    spec.write_text(row["tools"])
    return load_tool_specs(spec)


def test_the_seed_command_writes_a_file_and_keeps_an_existing_one(tmp_path: Path, capsys) -> None:
    out = tmp_path / "seed.jsonl"
    assert cli.main(["seed", "--library", str(KITCHEN), "--out", str(out), "--per-function", "1"]) == 0
    assert len(out.read_text().splitlines()) == 5 and "--seed-file" in capsys.readouterr().err
    before = out.read_text()
    assert cli.main(["seed", "--library", str(KITCHEN), "--out", str(out)]) == 2
    assert "exists: pass --force" in capsys.readouterr().err and out.read_text() == before


def test_generate_without_a_seed_file_says_how_to_get_one(tmp_path: Path, caplog) -> None:
    from apigen_local.run.config import build_config
    from apigen_local.run.generate import GenerateJob

    from .conftest import empty_gguf

    model = empty_gguf(tmp_path / "m.gguf")
    with caplog.at_level(logging.WARNING):
        GenerateJob(build_config({"library": str(KITCHEN), "model": str(model), "out_dir": str(tmp_path / "o")}))
    assert f"apigen-local seed --library {KITCHEN}" in caplog.text
