"""Loading function libraries and normalising tool specs (pure logic, no model, no Docker)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from apigen_local.cli import main
from apigen_local.errors import LibraryError
from apigen_local.tool_specs import load_tool_specs, normalize_tool, xlam_tools
from apigen_local.tools import Library, load_library
from apigen_local.types import Tool

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_LIBRARY = ROOT / "examples" / "library.py"
BAD_LIBRARY = Path(__file__).parent / "data" / "bad_library.py"


@pytest.fixture(scope="module")
def library() -> Library:
    return load_library(EXAMPLE_LIBRARY)


# ----------------------------------------------------------------------------- load_library


def test_example_library_has_the_tutorial_functions_and_more(library: Library) -> None:
    names = [tool.name for tool in library.tools]
    assert len(names) >= 12
    assert len(set(names)) == len(names)
    for name in ("final_velocity", "permutation_count", "getdivision", "binary_addition",
                 "swapi_planet_resource", "disney_character"):  # fmt: skip
        assert name in names
    assert not any(name.startswith("_") for name in names)
    assert library.skipped == {}
    assert library.path == str(EXAMPLE_LIBRARY)


def test_final_velocity_schema(library: Library) -> None:
    tool = library.tool("final_velocity")
    assert tool.description.startswith("Calculates the final velocity")
    params = tool.parameters
    assert params["type"] == "object"
    assert params["required"] == ["initial_velocity", "acceleration", "time"]
    assert {name: spec["type"] for name, spec in params["properties"].items()} == {
        "initial_velocity": "number",
        "acceleration": "number",
        "time": "number",
    }
    assert all(spec["description"] for spec in params["properties"].values())


def test_defaults_literals_lists_and_optionals_are_described(library: Library) -> None:
    interest = library.by_name["compound_interest"].parameters
    assert interest["required"] == ["principal", "annual_rate", "years"]
    assert interest["properties"]["compounds_per_year"] == {
        "type": "integer",
        "description": "How many times per year interest is added.",
        "default": 12,
    }
    units = library.tool("convert_length").parameters["properties"]["from_unit"]
    assert units["type"] == "string"
    assert units["enum"] == ["mm", "cm", "m", "km", "in", "ft", "yd", "mi"]
    stats = library.tool("list_statistics").parameters["properties"]
    assert stats["values"]["type"] == "array"
    assert stats["values"]["items"] == {"type": "number"}
    # ``int | None`` comes out of transformers as OpenAPI "nullable"; we store plain JSON Schema.
    assert stats["precision"]["type"] == ["integer", "null"]
    assert "nullable" not in stats["precision"]


def test_unknown_tool_name_is_a_library_error(library: Library) -> None:
    with pytest.raises(LibraryError, match="no tool named 'nope'"):
        library.tool("nope")


def test_library_file_does_not_stay_in_sys_modules() -> None:
    path_before = list(sys.path)
    loaded = load_library(EXAMPLE_LIBRARY)
    assert loaded.module.startswith("_apigen_library_library_")
    assert not [name for name in sys.modules if name.startswith("_apigen_library_")]
    assert sys.path == path_before


def test_library_by_module_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BAD_LIBRARY.parent))
    loaded = load_library("bad_library", strict=False)
    assert loaded.module == "bad_library"
    assert [tool.name for tool in loaded.tools] == ["add"]


def test_strict_load_lists_every_undescribable_function() -> None:
    with pytest.raises(LibraryError) as info:
        load_library(BAD_LIBRARY)
    message = str(info.value)
    for name in ("no_docstring", "no_type_hints", "custom_class", "many"):
        assert name in message
    assert "add:" not in message  # the describable function is not listed
    assert "\n" not in message


def test_lenient_load_skips_with_reasons_and_warnings(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="apigen_local.tools"):
        loaded = load_library(BAD_LIBRARY, strict=False)
    assert [tool.name for tool in loaded.tools] == ["add"]  # not sqrt (imported), not _helper
    assert set(loaded.skipped) == {"no_docstring", "no_type_hints", "custom_class", "many"}
    assert "docstring" in loaded.skipped["no_docstring"]
    assert "type hint" in loaded.skipped["no_type_hints"]
    assert "custom class" in loaded.skipped["custom_class"]
    assert "variable number" in loaded.skipped["many"]
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert all(name in warned for name in loaded.skipped)


def test_syntax_error_library(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def f(x: int) -> int:\n    return x +\n", encoding="utf-8")
    with pytest.raises(LibraryError, match=r"syntax error .* line 2"):
        load_library(broken)


def test_library_that_fails_on_import(tmp_path: Path) -> None:
    failing = tmp_path / "failing.py"
    failing.write_text("import no_such_module_for_apigen_tests\n", encoding="utf-8")
    with pytest.raises(LibraryError, match="cannot be imported: ModuleNotFoundError"):
        load_library(failing)


def test_missing_library_file(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="does not exist"):
        load_library(tmp_path / "nowhere.py")
    with pytest.raises(LibraryError, match="No library file or module named"):
        load_library("no_such_module_for_apigen_tests")


def test_library_without_usable_functions(tmp_path: Path) -> None:
    empty = tmp_path / "empty.py"
    empty.write_text("from os.path import join\n\nCONSTANT = 1\n", encoding="utf-8")
    with pytest.raises(LibraryError, match="defines no public function"):
        load_library(empty)


# ----------------------------------------------------------------------------- normalize_tool

EXPECTED_POINT = {
    "type": "object",
    "properties": {
        "x": {"type": "number", "description": "X coordinate."},
        "tags": {"type": "array", "items": {"type": "string"}, "description": "Labels."},
    },
    "required": ["x"],
}


def test_openai_wrapped_and_bare_function_specs() -> None:
    function = {"name": "point", "description": "Makes a point.", "parameters": EXPECTED_POINT}
    wrapped = normalize_tool({"type": "function", "function": function})
    bare = normalize_tool(function)
    assert (
        wrapped
        == bare
        == Tool(name="point", description="Makes a point.", parameters=EXPECTED_POINT)
    )


def test_openai_spec_without_parameters_gets_an_empty_object_schema() -> None:
    tool = normalize_tool({"type": "function", "function": {"name": "ping"}})
    assert tool.parameters == {"type": "object", "properties": {}, "required": []}
    assert tool.description == ""


def test_xlam_style_spec() -> None:
    spec = {
        "name": "search",
        "description": "Searches things.",
        "parameters": {
            "query": {"description": "Search text.", "type": "str"},
            "limit": {"description": "Max results.", "type": "int", "default": 10},
            "tags": {"description": "Filter tags.", "type": "List[str], optional"},
            "box": {"description": "Bounding box.", "type": "Tuple[int, int]"},
            "extra": {"description": "Extra fields.", "type": "Dict[str, Any]"},
            "type": {"description": "A parameter really named type.", "type": "str"},
            "ratio": {"description": "A ratio.", "type": "float, optional", "default": ""},
        },
    }
    tool = normalize_tool(spec)
    props = tool.parameters["properties"]
    assert tool.parameters["required"] == ["query", "box", "extra", "type"]
    assert props["query"] == {"type": "string", "description": "Search text."}
    assert props["limit"] == {"type": "integer", "description": "Max results.", "default": 10}
    assert props["tags"]["type"] == "array" and props["tags"]["items"] == {"type": "string"}
    assert props["box"]["prefixItems"] == [{"type": "integer"}, {"type": "integer"}]
    assert props["extra"]["type"] == "object"
    assert props["ratio"]["type"] == "number"


@pytest.mark.parametrize(
    ("type_text", "expected"),
    [
        ("List[int]", {"type": "array", "items": {"type": "integer"}}),
        ("list", {"type": "array"}),
        ("Optional[str]", {"type": ["string", "null"]}),
        ("Union[int, float]", {"type": ["integer", "number"]}),
        ("str or int", {"type": ["string", "integer"]}),
        ("Set[str]", {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        ("Tuple[float, ...]", {"type": "array", "items": {"type": "number"}}),
        ("Dict[str, List[int]]",
         {"type": "object",
          "additionalProperties": {"type": "array", "items": {"type": "integer"}}}),
        ("Any", {}),
        ("bool", {"type": "boolean"}),
    ],
)  # fmt: skip
def test_xlam_type_strings(type_text: str, expected: dict) -> None:
    tool = normalize_tool(
        {"name": "f", "description": "", "parameters": {"p": {"type": type_text}}}
    )
    assert tool.parameters["properties"]["p"] == expected


def test_bfcl_style_spec() -> None:
    spec = {
        "name": "geometry.area",
        "description": "Area of a shape.",
        "parameters": {
            "type": "dict",
            "properties": {
                "base": {"type": "float", "description": "Base length."},
                "corner": {"type": "tuple", "items": {"type": "integer"},
                           "description": "A corner."},
                "options": {
                    "type": "dict",
                    "properties": {"unit": {"type": "string"}, "scale": {"type": "any"}},
                    "required": ["unit"],
                },
                "points": {"type": "array", "items": {"type": "dict", "properties": {
                    "x": {"type": "float"}, "y": {"type": "float"}}}},
                "flag": {"type": "boolean", "default": False},
            },
            "required": ["base", "corner"],
        },
    }  # fmt: skip
    tool = normalize_tool(spec)
    params = tool.parameters
    assert params["type"] == "object"
    assert params["required"] == ["base", "corner"]
    props = params["properties"]
    assert props["base"]["type"] == "number"
    assert props["corner"] == {
        "type": "array",
        "items": {"type": "integer"},
        "description": "A corner.",
    }
    assert props["options"]["type"] == "object"
    assert props["options"]["properties"]["scale"] == {}
    assert props["points"]["items"]["type"] == "object"
    assert props["points"]["items"]["properties"]["x"] == {"type": "number"}


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("not a dict", "must be a JSON object"),
        ({"description": "no name"}, "no \"name\""),
        ({"name": "f", "parameters": ["x"]}, "not a JSON object"),
        ({"name": "f", "parameters": {"x": {"type": "np.ndarray"}}}, "not a known type"),
        ({"name": "f", "parameters": {"x": {"type": "List[int"}}}, "cannot be read"),
        ({"name": "f", "parameters": {"x": {"description": "no type"}}}, "\"type\" string"),
        ({"name": "f", "parameters": {"type": "dict", "properties": {"x": {"type": "complex"}}}},
         "unknown type 'complex'"),
        ({"name": "f", "parameters": {"type": "object", "properties": {}, "required": ["y"]}},
         "requires y"),
        ({"name": "f", "parameters": {"type": "string"}}, "not an object"),
        ({"name": "f", "parameters": {"type": "object", "properties": {"x": {"minimum": "one"}}}},
         "invalid parameters schema"),
    ],
)  # fmt: skip
def test_invalid_specs_raise_library_error_naming_the_spec(spec: object, fragment: str) -> None:
    with pytest.raises(LibraryError, match="tool spec") as info:
        normalize_tool(spec)
    assert fragment in str(info.value)
    if isinstance(spec, dict) and "name" in spec:
        assert "'f'" in str(info.value)


# ----------------------------------------------------------------------------- xlam round trip


def test_xlam_tools_round_trip_over_the_example_library(library: Library) -> None:
    described = xlam_tools(library.tools)
    for tool, spec in zip(library.tools, described, strict=True):
        assert set(spec) == {"name", "description", "parameters"}
        assert all(isinstance(entry["type"], str) for entry in spec["parameters"].values())
        assert normalize_tool(spec) == tool
    velocity = described[[t.name for t in library.tools].index("final_velocity")]
    assert velocity["parameters"]["time"]["type"] == "float"
    slug = next(spec for spec in described if spec["name"] == "slugify")
    assert slug["parameters"]["separator"] == {
        "description": "The string placed between words.",
        "type": "str, optional",
        "default": "-",
    }


def test_xlam_tools_round_trip_for_unions_and_nested_types() -> None:
    tool = Tool(
        name="mixed",
        description="Mixed types.",
        parameters={
            "type": "object",
            "properties": {
                "a": {"type": ["integer", "string"]},
                "b": {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]},
                "c": {"type": "object", "additionalProperties": {"type": "number"}},
                "d": {"type": "array", "uniqueItems": True, "items": {"type": "string"}},
                "e": {},
            },
            "required": ["a", "c"],
        },
    )
    spec = xlam_tools([tool])[0]
    assert spec["parameters"]["a"]["type"] == "Union[int, str]"
    assert spec["parameters"]["b"]["type"] == "Optional[List[int]], optional"
    assert spec["parameters"]["c"]["type"] == "Dict[str, float]"
    assert spec["parameters"]["e"]["type"] == "Any, optional"
    assert normalize_tool(spec) == tool


# ----------------------------------------------------------------------------- load_tool_specs


def test_load_tool_specs_from_json_jsonl_and_string(tmp_path: Path, library: Library) -> None:
    openai_specs = [tool.openai() for tool in library.tools[:3]]
    as_json = tmp_path / "tools.json"
    as_json.write_text(json.dumps(openai_specs), encoding="utf-8")
    assert load_tool_specs(as_json) == library.tools[:3]

    single = tmp_path / "one.json"
    single.write_text(json.dumps(openai_specs[0]), encoding="utf-8")
    assert load_tool_specs(str(single)) == library.tools[:1]

    as_jsonl = tmp_path / "tools.jsonl"
    lines = [json.dumps(openai_specs[0]), "", json.dumps(xlam_tools(library.tools[1:3]))]
    as_jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert load_tool_specs(as_jsonl) == library.tools[:3]

    xlam_string = json.dumps(xlam_tools(library.tools[:2]))
    assert load_tool_specs(xlam_string) == library.tools[:2]


def test_load_tool_specs_errors(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="does not exist"):
        load_tool_specs(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[{", encoding="utf-8")
    with pytest.raises(LibraryError, match="not valid JSON"):
        load_tool_specs(bad)
    with pytest.raises(LibraryError, match="more than once"):
        load_tool_specs(json.dumps([{"name": "f"}, {"name": "f"}]))
    with pytest.raises(LibraryError, match="entry 1 of the tools JSON"):
        load_tool_specs(json.dumps([{"name": "f"}, {"description": "nameless"}]))
    with pytest.raises(LibraryError, match="contains no tool spec"):
        load_tool_specs("[]")


# ----------------------------------------------------------------------------- CLI


def test_cli_tools_prints_openai_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", str(EXAMPLE_LIBRARY)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed) >= 12
    assert all(item["type"] == "function" for item in printed)
    assert printed[0]["function"]["name"] == "final_velocity"


def test_cli_tools_xlam_format_and_lenient(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", str(BAD_LIBRARY), "--lenient", "--format", "xlam"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == [
        {
            "name": "add",
            "description": "Adds two integers.",
            "parameters": {
                "a": {"description": "The first integer.", "type": "int"},
                "b": {"description": "The second integer.", "type": "int"},
            },
        }
    ]
    for name in ("no_docstring", "no_type_hints", "custom_class", "many"):
        assert f"skipped {name}:" in captured.err


def test_cli_tools_reads_a_spec_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = tmp_path / "specs.jsonl"
    specs.write_text(json.dumps({"name": "f", "parameters": {"x": {"type": "int"}}}) + "\n")
    assert main(["tools", str(specs)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed[0]["function"]["parameters"]["properties"]["x"] == {"type": "integer"}


def test_cli_tools_missing_library_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tools", str(tmp_path / "missing.py")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert "does not exist" in captured.err


def test_cli_tools_strict_failure_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", str(BAD_LIBRARY)]) == 2
    assert "cannot be described as tools" in " ".join(capsys.readouterr().err.split())
