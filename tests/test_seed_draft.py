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
    assert cli.main(["seed", "--library", str(KITCHEN), "--out", str(out), "--per-function", "1", "--no-run"]) == 0
    assert len(out.read_text().splitlines()) == 5 and "--seed-file" in capsys.readouterr().err
    before = out.read_text()
    assert cli.main(["seed", "--library", str(KITCHEN), "--out", str(out), "--no-run"]) == 2
    assert "exists: pass --force" in capsys.readouterr().err and out.read_text() == before


def test_generate_without_a_seed_file_says_how_to_get_one(tmp_path: Path, caplog) -> None:
    from apigen_local.run.config import build_config
    from apigen_local.run.generate import GenerateJob

    from .conftest import empty_gguf

    model = empty_gguf(tmp_path / "m.gguf")
    with caplog.at_level(logging.WARNING):
        GenerateJob(build_config({"library": str(KITCHEN), "model": str(model), "out_dir": str(tmp_path / "o")}))
    assert f"apigen-local seed --library {KITCHEN}" in caplog.text


SHOP = '''"""A garden shop."""


def quote_delivery(weight_kg: float, postcode: str, express: bool = False, insured: bool = False) -> float:
    """Quotes the price of delivering a parcel.

    Args:
        weight_kg: Weight of the parcel in kilograms.
        postcode: The UK postcode to deliver to.
        express: Next-day delivery.
        insured: Insure the parcel.
    """
    return round(4.5 + weight_kg * (2.0 if express else 1.2) + (3 if insured else 0), 2)


def stock_level(plant: str) -> int:
    """Looks up how many of a plant the shop holds.

    Args:
        plant: The plant's name.
    """
    raise LookupError(f"no stock database here for {plant}")
'''


def test_drafts_run_in_the_sandbox_and_the_first_one_shows_the_options(tmp_path: Path, sandbox_image: str,
                                                                         capsys) -> None:
    library = tmp_path / "shop.py"
    library.write_text(SHOP)
    out = tmp_path / "seed.jsonl"
    assert cli.main(["seed", "--library", str(library), "--out", str(out), "--per-function", "3"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    calls = [json.loads(row["answers"])[0] for row in rows]
    assert {call["name"] for call in calls} == {"quote_delivery"}  # stock_level raises for every draw
    assert "no draft for stock_level" in capsys.readouterr().err
    assert {"express", "insured"} & set(calls[0]["arguments"])  # the first draft passes an option
    assert len(rows) == 3


def test_without_docker_the_drafts_are_written_unrun_with_a_warning(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    out = tmp_path / "seed.jsonl"
    assert cli.main(["seed", "--library", str(KITCHEN), "--out", str(out), "--per-function", "1"]) == 0
    assert len(out.read_text().splitlines()) == 5
    assert "warning: the drafts are not run" in capsys.readouterr().err
