"""``export --format messages``: rows that real tools-aware chat templates render as they are, and
that ``datasets`` loads (issue 41).

The templates are two models' own, from a registry package (``scripts/fetch_chat_templates.py``
puts them in ``.cache/chat-templates`` at set-up); transformers' ``apply_chat_template`` renders
them. The run holds 60 accepted rows of both example libraries, every style and irrelevance rows,
whose calls are drawn by the calls-first value drawer from the seed rows.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from apigen_local import cli
from apigen_local.generation.values import ValueDrawer
from apigen_local.run.files import RunFiles
from apigen_local.run.messages import NO_TOOL_REPLY, messages_row
from apigen_local.tools import load_library
from apigen_local.types import CallResult, CheckResult, FunctionCall, Record

from .conftest import EXAMPLE_LIBRARY

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / ".cache" / "chat-templates"
_TOOL_CALL_RE = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)


def _qwen_calls(rendered: str) -> list[dict[str, Any]]:
    """Qwen 2.5 writes each call as ``<tool_call>{"name", "arguments"}</tool_call>``."""
    return [json.loads(block) for block in _TOOL_CALL_RE.findall(rendered.split("<|im_start|>user", 1)[1])]


def _mistral_calls(rendered: str) -> list[dict[str, Any]]:
    """Mistral Nemo writes the calls as ``[TOOL_CALLS]`` and a JSON list of ``{"name", "arguments", "id"}``."""
    if "[TOOL_CALLS]" not in rendered:
        return []
    calls, _ = json.JSONDecoder().raw_decode(rendered.split("[TOOL_CALLS]", 1)[1])
    return [{"name": call["name"], "arguments": call["arguments"]} for call in calls]


#: the templates, and how each writes an assistant's calls into the prompt
TEMPLATE_READERS = {"Qwen-Qwen2.5-7B-Instruct.jinja": _qwen_calls,
                    "mistralai-Mistral-Nemo-Instruct-2407.jinja": _mistral_calls}


def _drawn_records(count: int) -> list[Record]:
    """``count`` accepted rows over both example libraries: 1 to 3 calls among 1 to 3 offered
    tools, every fifth an irrelevance row, each call with a result."""
    rng = random.Random(41)
    libraries = []
    for name, seed in (("library.py", "seed.jsonl"), ("planner_library.py", "planner_seed.jsonl")):
        tools = load_library(Path(EXAMPLE_LIBRARY).with_name(name)).tools
        answers = [json.loads(line)["answers"] for line in
                   (Path(EXAMPLE_LIBRARY).with_name(seed)).read_text().splitlines() if line.strip()]
        libraries.append((tools, ValueDrawer(answers)))
    records = []
    for row in range(count):
        tools, drawer = libraries[row % 2]
        offered = rng.sample(tools, rng.randint(1, 3))
        calls = [] if row % 5 == 4 else [c for c in (drawer.call(rng, rng.choice(offered))
                                                     for _ in range(rng.randint(1, 3))) if c is not None]
        records.append(Record(
            id=row, seed=0, style="irrelevance" if not calls else "simple", tools=offered, query=f"request {row}",
            answers=calls, format_check=CheckResult.ok(), execution_check=CheckResult.ok(),
            execution_result=[CallResult(name=c.name, ok=True, result={"value": row}) for c in calls]))
    return records


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("messages") / "run"
    files = RunFiles(folder)
    files.open({"run": 41})
    files.append(_drawn_records(60))
    files.close()
    return folder


def _export(run_dir: Path, out: Path, *options: str) -> list[dict[str, Any]]:
    assert cli.main(["export", str(run_dir), "--format", "messages", "--out", str(out), *options]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def _render(template: str, row: dict[str, Any]) -> str:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocabulary = WordLevel({"[UNK]": 0, "</s>": 1}, unk_token="[UNK]")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(vocabulary), eos_token="</s>")
    return tokenizer.apply_chat_template(row["messages"], tools=row["tools"], chat_template=template, tokenize=False)


@pytest.mark.parametrize("name", sorted(TEMPLATE_READERS))
def test_every_row_renders_through_a_real_template_with_its_calls_as_objects(run_dir: Path, tmp_path: Path,
                                                                           name: str) -> None:
    assert (TEMPLATES / name).is_file(), f"run 'make test' (scripts/setup.sh fetches {name})"
    template, read_calls = (TEMPLATES / name).read_text(), TEMPLATE_READERS[name]
    rows = _export(run_dir, tmp_path / "messages.jsonl")
    assert len(rows) == 60 and sum("tool_calls" not in row["messages"][1] for row in rows) == 12
    for row in rows:
        calls = row["messages"][1].get("tool_calls", [])
        assert all(isinstance(call["function"]["arguments"], dict) for call in calls)
        rendered = _render(template, row)
        assert read_calls(rendered) == [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
                                        for c in calls]
        for tool in row["tools"]:
            assert json.dumps(tool["function"]["name"]) in rendered
        if not calls:
            assert NO_TOOL_REPLY in rendered


def test_the_json_string_form_loads_with_datasets_and_reads_back_to_the_object_form(run_dir: Path,
                                                                                  tmp_path: Path) -> None:
    import datasets

    objects = _export(run_dir, tmp_path / "objects.jsonl")
    strings = _export(run_dir, tmp_path / "strings.jsonl", "--json-strings")
    loaded = datasets.load_dataset("json", data_files=str(tmp_path / "strings.jsonl"), split="train")
    assert len(loaded) == 60
    for row, plain in zip(loaded, objects, strict=True):
        assert json.loads(row["tools"]) == plain["tools"]
        for call, plain_call in zip(row["messages"][1].get("tool_calls") or [],
                                    plain["messages"][1].get("tool_calls", []), strict=True):
            assert json.loads(call["function"]["arguments"]) == plain_call["function"]["arguments"]
    assert [row["id"] for row in strings] == [row["id"] for row in objects]
    as_objects = datasets.load_dataset("json", data_files=str(tmp_path / "objects.jsonl"), split="train")
    assert [row["messages"] for row in as_objects] == [row["messages"] for row in objects]


def test_results_follow_as_tool_messages_and_the_options_belong_to_messages(run_dir: Path, tmp_path: Path,
                                                                          capsys) -> None:
    record = Record(id=1, seed=0, style="simple", tools=[], query="Divide 144 by 12 and 1 by 0.",
                    answers=[FunctionCall(name="getdivision", arguments={"dividend": 144, "divisor": 12}),
                             FunctionCall(name="getdivision", arguments={"dividend": 1, "divisor": 0})],
                    format_check=CheckResult.ok(),
                    execution_result=[CallResult(name="getdivision", ok=True, result=12.0),
                                      CallResult(name="getdivision", ok=False, error_message="division by zero")])
    row = messages_row(record, results=True)
    first, second = (call["id"] for call in row["messages"][1]["tool_calls"])
    assert re.fullmatch(r"[0-9a-z]{9}", first) and first != second
    assert row["messages"][2:] == [{"role": "tool", "tool_call_id": first, "name": "getdivision", "content": "12.0"},
                                   {"role": "tool", "tool_call_id": second, "name": "getdivision",
                                    "content": '{"error": "division by zero"}'}]
    assert cli.main(["export", str(run_dir), "--format", "openai", "--json-strings"]) == 2
    assert "apply to --format messages only" in capsys.readouterr().err
