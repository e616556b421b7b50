"""The third outside hostile suite, classes "tool specs reach the network or stall a run" and "a
row's size makes verify slower than linear".

A row's own tool spec is untrusted: a ``$ref`` may name only a place inside it (nothing is ever
fetched), one that names nothing or loops is ``invalid_tools`` for that row alone, and a pattern is
searched with a time bound (``pattern_unchecked``), so one row never stalls the run. Rows of about
a megabyte (10,000 calls, 10,000 arguments, a long query, 1,000 tools) are written in seconds.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apigen_local.checks.format import INVALID_TOOLS, PATTERN_UNCHECKED, check_answers
from apigen_local.errors import LibraryError
from apigen_local.run.files import read_records
from apigen_local.run.verify import verify_dataset
from apigen_local.tool_specs import normalize_tool
from apigen_local.types import Record, Tool

from .conftest import record_case

STAGES = "format,grounding,semantic"  # no library: nothing executes
BACKTRACKS = "^(a|a)*$"  # exponential for a backtracking engine on "aaa...ab"


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP port on 127.0.0.1 and the peers that connected to it while the test ran."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    seen: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, peer = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            seen.append(str(peer))
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join(5)
    server.close()


def _row(row_id: int, properties: dict[str, Any], arguments: dict[str, Any] | None = None,
         **parameters: Any) -> dict[str, Any]:
    """A row asking where Boston is, offering ``find`` with ``properties`` (and more ``parameters``)."""
    spec = {"name": "find", "description": "Finds a place.",
            "parameters": {"type": "object", "properties": properties, **parameters}}
    return {"id": row_id, "query": "Where is Boston?", "tools": [spec],
            "answers": [{"name": "find", "arguments": arguments or {"place": "Boston"}}]}


def _verify(tmp_path: Path, rows: list[dict[str, Any]]) -> dict[Any, Record]:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = verify_dataset(path, stages=STAGES, out_dir=tmp_path / "out")
    records = {record.source_id: record for record in read_records(result.records_path)}
    assert len(records) == len(rows)  # every row has its record: none took the batch down with it
    return records


# --------------------------------------------------------------------------- references


def test_references_outside_the_spec_are_refused_and_nothing_connects(
        tmp_path: Path, listener: tuple[int, list[str]]) -> None:
    port, seen = listener
    url = f"http://127.0.0.1:{port}"
    place = {"place": {"type": "string"}}
    hostile = {
        10: _row(10, {"place": {"$ref": f"{url}/place.json"}}),
        11: _row(11, {"place": {"$ref": f"{url}/defs.json#/$defs/place"}}),
        12: _row(12, {"place": {"$ref": f"//127.0.0.1:{port}/place.json"}}),  # a network-path reference
        13: _row(13, {"place": {"$ref": "file:///etc/passwd"}}),
        14: _row(14, {"place": {"$ref": "other.json#/place"}}),  # relative: another document
        15: _row(15, {"place": {"$ref": "urn:example:place"}}),
        16: _row(16, {"places": {"type": "array", "items": {"$ref": f"{url}/item.json"}}}, {"places": ["Boston"]}),
        17: _row(17, {"place": {"anyOf": [{"type": "integer"}, {"$ref": f"https://127.0.0.1:{port}/p.json"}]}}),
        18: _row(18, {"place": {"$ref": "#/$defs/place"}}, **{"$defs": {"place": {"$ref": f"{url}/place.json"}}}),
        19: _row(19, place, **{"$defs": {"unused": {"$ref": f"{url}/unused.json"}}}),  # never applied, still read
        20: _row(20, {"place": {"$ref": "place.json"}}, **{"$id": f"{url}/base.json"}),  # relative to a remote $id
        21: _row(21, {"place": {"$id": f"{url}/place.json", "type": "string"}}),
        22: _row(22, {"place": {"$dynamicRef": f"{url}/place.json"}}),
        23: _row(23, {"options": {"type": "object", "additionalProperties": {"$ref": f"{url}/o.json"}}},
                 {"options": {"city": "Boston"}}),
    }
    good = {
        1: _row(1, place),
        2: _row(2, {"place": {"$ref": "#/$defs/place"}}, **{"$defs": {"place": {"type": "string"}}}),
        3: _row(3, {"place": {"type": "string", "$schema": f"{url}/meta.json"}}),  # a dialect is no reference
        4: _row(4, {"place": {"type": "string", "description": f"see {url}/doc"}}),
    }
    started = time.perf_counter()
    spread = list(hostile.values())
    records = _verify(tmp_path, [good[1], *spread[:7], good[2], *spread[7:], good[3], good[4]])
    record_case("$ref and $id naming URLs, files, other documents", f"{len(seen)} connections", 0.0)
    assert seen == []
    for row_id in hostile:
        record = records[row_id]
        assert record.rejection == ("format", INVALID_TOOLS), row_id
        assert "tools[0] cannot be read" in record.format_check.detail, row_id  # refused when read
    assert "points outside the tool spec" in records[10].format_check.detail
    assert '"$id"' in records[21].format_check.detail
    assert {row_id for row_id, record in records.items() if record.accepted} == set(good)
    assert time.perf_counter() - started < 60


def test_the_validator_fetches_nothing_even_for_a_tool_built_directly(listener: tuple[int, list[str]]) -> None:
    port, seen = listener
    for ref in (f"http://127.0.0.1:{port}/place.json", f"http://127.0.0.1:{port}/a.json#/b", "urn:x:y"):
        tool = Tool(name="find", description="Finds.",
                    parameters={"type": "object", "properties": {"place": {"$ref": ref}}, "required": []})
        verdict = check_answers("Where is Boston?", [{"name": "find", "arguments": {"place": "Boston"}}], [tool])
        assert verdict.reason == INVALID_TOOLS and ref in verdict.detail
    assert seen == []


def test_dangling_and_looping_local_references_fail_their_row_alone(tmp_path: Path) -> None:
    place = {"type": "string"}
    broken = {
        10: (_row(10, {"place": {"$ref": "#/$defs/missing"}}, **{"$defs": {"city": place}}), "points to nothing"),
        11: (_row(11, {"place": {"$ref": "#/properties/other/items/5"}}), "points to nothing"),
        12: (_row(12, {"place": {"$ref": "#/required"}}, required=["place"]), "not a schema"),
        13: (_row(13, {"place": {"$ref": "#city"}}, **{"$defs": {"city": {"$anchor": "city", **place}}}), "anchor"),
        14: (_row(14, {"place": place}, **{"$ref": "#"}), "loop"),  # the parameters apply themselves
        15: (_row(15, {"place": {"$ref": "#/$defs/a"}}, **{"$defs": {"a": {"$ref": "#/$defs/b"},
                                                                      "b": {"allOf": [{"$ref": "#/$defs/a"}]}}}),
             "loop"),
        16: (_row(16, {"place": {"$ref": "#/$defs/a"}}, **{"$defs": {"a": {"not": {"not": {"$ref": "#/$defs/a"}}}}}),
             "loop"),
    }
    node = {"type": "object", "properties": {"name": {"type": "string"},
                                              "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}
    good = {
        1: _row(1, {"place": {"$ref": "#/$defs/a~1b"}}, **{"$defs": {"a/b": place}}),  # escaped pointer
        2: _row(2, {"place": {"$ref": "#/$defs/with%20space"}}, **{"$defs": {"with space": place}}),
        3: _row(3, {"place": {"$ref": "#/$defs/node"}}, {"place": {"name": "Boston", "children": []}},
                **{"$defs": {"node": node}}),  # recursion through the value's parts is no loop
        4: _row(4, {"place": {"$ref": "#/definitions/city"}}, definitions={"city": {"type": "str"}}),  # dialect type
    }
    spread = [row for row, _ in broken.values()]
    records = _verify(tmp_path, [*spread[:4], good[1], good[2], *spread[4:], good[3], good[4]])
    for row_id, (_, why) in broken.items():
        assert records[row_id].rejection == ("format", INVALID_TOOLS), row_id
        assert why in records[row_id].format_check.detail, (row_id, records[row_id].format_check.detail)
    assert {row_id for row_id, record in records.items() if record.accepted} == set(good)


def test_unevaluated_properties_beside_pattern_properties_is_refused_when_read() -> None:
    spec = {"name": "find", "parameters": {"type": "object", "properties": {},
                                           "patternProperties": {"^p": {"type": "string"}},
                                           "unevaluatedProperties": False}}
    with pytest.raises(LibraryError, match="unevaluatedProperties"):
        normalize_tool(spec)


# --------------------------------------------------------------------------- patterns


def _pattern_tool(parameters: dict[str, Any]) -> Tool:
    return normalize_tool({"name": "find", "description": "Finds.",
                           "parameters": {"type": "object", **parameters}})


@pytest.mark.parametrize(("parameters", "arguments"), [
    ({"properties": {"code": {"type": "string", "pattern": BACKTRACKS}}}, {"code": "a" * 20 + "b"}),
    ({"properties": {"codes": {"type": "object", "patternProperties": {BACKTRACKS: {"type": "integer"}}}}},
     {"codes": {"a" * 20 + "b": 1}}),
    ({"properties": {"codes": {"type": "object", "additionalProperties": False,
                               "patternProperties": {BACKTRACKS: {}}}}}, {"codes": {"a" * 20 + "b": 1}}),
    ({"properties": {"codes": {"type": "object", "propertyNames": {"pattern": BACKTRACKS}}}},
     {"codes": {"a" * 20 + "b": 1}}),
    ({"properties": {"grid": {"type": "array", "items": {"type": "array",
                                                         "items": {"type": "string", "pattern": BACKTRACKS}}}}},
     {"grid": [["aaa"], ["a" * 20 + "b"]]}),
], ids=["pattern", "patternProperties", "additionalProperties", "propertyNames", "nested items"])
def test_a_backtracking_pattern_is_unchecked_not_run_to_its_end(parameters: dict[str, Any],
                                                                  arguments: dict[str, Any]) -> None:
    tool = _pattern_tool(parameters)
    started = time.perf_counter()
    verdict = check_answers("Find it", [{"name": "find", "arguments": arguments}] * 50, [tool])
    seconds = time.perf_counter() - started
    assert verdict.reason == PATTERN_UNCHECKED, verdict
    assert "did not finish" in verdict.detail
    assert seconds < 5  # one search's bound, not 50: the first ends the row (a full search takes over a second)


def test_patterns_that_finish_still_decide_and_long_texts_are_not_searched() -> None:
    tool = _pattern_tool({"properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}}})

    def verdict(code: str) -> tuple[bool, str | None]:
        result = check_answers("Find it", [{"name": "find", "arguments": {"code": code}}], [tool])
        return result.passed, result.reason

    assert verdict("USD") == (True, None)
    assert verdict("usd") == (False, "type_mismatch")
    assert verdict("U" * 20_000) == (False, PATTERN_UNCHECKED)  # over the length bound: not searched at all
    long_pattern = _pattern_tool({"properties": {"code": {"type": "string", "pattern": "a?" * 600 + "a" * 600}}})
    result = check_answers("Find it", [{"name": "find", "arguments": {"code": "a" * 600}}], [long_pattern])
    assert result.reason == PATTERN_UNCHECKED and "longer than 1000 characters" in result.detail


def test_catastrophic_patterns_in_a_file_end_their_rows_and_the_good_rows_pass(tmp_path: Path) -> None:
    value = "a" * 40 + "b"  # 2**40 steps for a backtracking engine such as re
    rows = [_row(1, {"place": {"type": "string"}}),
            _row(10, {"place": {"type": "string", "pattern": "^(a+)+$"}}, {"place": value}),
            _row(11, {"place": {"type": "object", "patternProperties": {"^(a|aa)+$": {"type": "string"}},
                                "additionalProperties": False}}, {"place": {value: "Boston"}}),
            _row(2, {"place": {"type": "string", "pattern": "^[A-Z][a-z]+$"}}),
            _row(12, {"place": {"type": "array", "items": {"$ref": "#/$defs/code"}}}, {"place": ["1," * 40] * 1000},
                 **{"$defs": {"code": {"type": "string", "pattern": "^(.*?,){11}P"}}}),
            _row(13, {"place": {"type": "string", "pattern": BACKTRACKS}}, {"place": value}),
            _row(14, {"place": {"type": "string", "pattern": "a{99999999999}"}}),  # re raises OverflowError
            _row(15, {"place": {"type": "number", "multipleOf": 0.5}}, {"place": 10**400})]  # so does float()
    started = time.perf_counter()
    records = _verify(tmp_path, rows)
    seconds = time.perf_counter() - started
    record_case("catastrophic patterns in a row's tool spec", "pattern_unchecked", seconds)
    rejections = {row_id: record.rejection for row_id, record in records.items()}
    # regex itself cuts the nested repeat of ^(a+)+$ short: a verdict in time either way
    assert rejections.pop(10) in {("format", "type_mismatch"), ("format", PATTERN_UNCHECKED)}
    assert rejections == {1: None, 2: None, 11: ("format", PATTERN_UNCHECKED), 12: ("format", PATTERN_UNCHECKED),
                          13: ("format", PATTERN_UNCHECKED), 14: ("format", INVALID_TOOLS),
                          15: ("format", "type_mismatch")}
    assert seconds < 60


# --------------------------------------------------------------------------- row sizes


def test_rows_of_a_megabyte_are_written_in_seconds(tmp_path: Path) -> None:
    """10,000 calls with numbers and quoted text, 10,000 arguments, a 1 MB query of filler words and
    1,000 tools, in one file: each check near-linear in its row (before: minutes for the first)."""
    n = 10_000
    number = {"name": "f", "description": "Adds.", "parameters": {"x": {"type": "float", "description": "x"}}}
    text = {"name": "g", "description": "Finds.", "parameters": {"x": {"type": "str", "description": "x"}}}
    wide = {"name": "h", "description": "Finds.",
            "parameters": {f"a{i}": {"type": "str", "description": "x"} for i in range(n)}}
    rows = [
        {"id": 1, "query": f"Add {', '.join(str(i + 2) for i in range(n))}?", "tools": [number],
         "answers": [{"name": "f", "arguments": {"x": i + 2}} for i in range(n)]},
        {"id": 2, "query": "Find " + ", ".join(f"'item {i}'" for i in range(n)) + "?", "tools": [text],
         "answers": [{"name": "g", "arguments": {"x": f"item {i}"}} for i in range(n)]},
        {"id": 3, "query": "Find " + " ".join(f"v{i}" for i in range(n)) + "?", "tools": [wide],
         "answers": [{"name": "h", "arguments": {f"a{i}": f"v{i}" for i in range(n)}}]},
        {"id": 4, "query": "please " * 150_000 + "find Boston", "tools": [text],
         "answers": [{"name": "g", "arguments": {"x": "Boston"}}]},
        {"id": 5, "query": "Find Boston?", "tools": [{**text, "name": f"g{i}"} for i in range(1000)],
         "answers": [{"name": f"g{i}", "arguments": {"x": "Boston"}} for i in range(0, 1000, 7)]},
    ]
    started = time.perf_counter()
    records = _verify(tmp_path, rows)
    seconds = time.perf_counter() - started
    record_case("rows of 1 MB: 10,000 calls, 10,000 arguments, long query, 1,000 tools", "written", seconds)
    assert all(record.format_check.passed and record.grounding_check is not None for record in records.values())
    assert records[1].accepted and records[2].accepted and records[3].accepted
    assert seconds < 90  # about 10 s on 2 cores; before, the first row alone took minutes
