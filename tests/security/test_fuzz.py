"""Fuzzing the tool-spec normaliser: any JSON yields a Tool or a LibraryError, nothing else.

The format checker (``check_generation`` / ``check_answers``) is fuzzed in
``tests/test_format_check.py`` already; this adds what was missing there: the spec normaliser.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apigen_local.errors import LibraryError
from apigen_local.tool_specs import load_tool_specs, normalize_tool, xlam_tools
from apigen_local.types import Tool

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
TYPE_NAMES = st.sampled_from([
    "string", "str", "integer", "int", "number", "float", "boolean", "bool", "array", "list",
    "object", "dict", "null", "None", "any", "List[int]", "Optional[str]", "Dict[str, Any]",
    "Tuple[int, int]", "int | str", "str, optional", "List[", "Union[]", "Set[int, str]", "???",
])
KEYS = st.sampled_from(["type", "properties", "required", "items", "anyOf", "nullable",
                        "description", "default", "enum", "additionalProperties", "prefixItems"])
SCHEMA = st.recursive(
    st.fixed_dictionaries({}, optional={"type": TYPE_NAMES | JSON, "description": JSON}),
    lambda inner: st.dictionaries(KEYS, inner | JSON | st.lists(inner, max_size=3)
                                  | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                                  max_size=4),
    max_leaves=15,
)
PARAMETERS = SCHEMA | st.dictionaries(
    st.text(max_size=6),
    st.fixed_dictionaries({"type": TYPE_NAMES}, optional={"description": JSON, "default": JSON}) | JSON,
    max_size=4,
) | JSON
SPEC_BODY = st.fixed_dictionaries(
    {}, optional={"name": st.text(max_size=8) | JSON, "description": JSON | st.text(),
                  "parameters": PARAMETERS}
)
SPECS = SPEC_BODY | st.fixed_dictionaries({"type": st.just("function"), "function": SPEC_BODY}) | JSON


def _normalised_or_rejected(spec: Any) -> Tool | None:
    try:
        tool = normalize_tool(spec)
    except LibraryError as exc:
        assert str(exc)
        return None
    assert tool.parameters["type"] == "object"
    xlam_tools([tool])  # a normalised tool can always be written out again
    return tool


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=SPECS)
def test_normalize_tool_never_raises_anything_else(spec: Any) -> None:
    _normalised_or_rejected(spec)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=st.lists(SPECS, max_size=3) | SPECS)
def test_load_tool_specs_never_raises_anything_else(specs: Any) -> None:
    try:
        tools = load_tool_specs(json.dumps(specs))
    except LibraryError as exc:
        assert str(exc)
        return
    assert tools and len({tool.name for tool in tools}) == len(tools)


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_load_tool_specs_on_arbitrary_text(text: str) -> None:
    try:
        load_tool_specs("[" + text)
    except LibraryError:
        pass


def test_deeply_nested_parameters_are_a_library_error() -> None:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(300):
        node = {"type": "array", "items": node}
    spec = {"name": "f", "parameters": {"type": "object", "properties": {"x": node}}}
    deep_xlam = {"name": "g", "parameters": {"x": {"type": "List[" * 2000 + "int" + "]" * 2000}}}
    for case in (spec, deep_xlam):
        with pytest.raises(LibraryError, match="nested too deeply"):
            normalize_tool(case)
