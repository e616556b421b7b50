"""Length bounds for JSON schemas: every generated string, list and number gets a limit, and the
longest text a bounded schema admits is computed, so the token budget never cuts JSON short."""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import BaseModel

QUERY_MAX_CHARS = 280
#: calls-first: the request written for one drawn call. On the default model no correct one of
#: 1,232 labelled rows ran past 148 characters, and a looping one runs to the bound (issue 38)
REQUEST_MAX_CHARS = 200
STRING_MAX_CHARS = 48
ARRAY_MAX_ITEMS = 4
INTEGER_MAX_DIGITS = 6
FRACTION_MAX_DIGITS = 4


class SchemaBounds(BaseModel):
    """Length limits written into every generated string and list."""

    query_max_chars: int = QUERY_MAX_CHARS
    request_max_chars: int = REQUEST_MAX_CHARS
    string_max_chars: int = STRING_MAX_CHARS
    array_max_items: int = ARRAY_MAX_ITEMS


def bound_schema(schema: dict[str, Any], bounds: SchemaBounds) -> dict[str, Any]:
    """A copy of a parameter schema where every string, list and number has a length bound.

    Objects get ``additionalProperties: false``; existing tighter bounds are kept.
    """
    bounded = copy.deepcopy(schema)
    _bound_in_place(bounded, bounds)
    return bounded


def _bound_in_place(node: Any, bounds: SchemaBounds) -> None:
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind}
    if "string" in kinds and "enum" not in node and "const" not in node:
        node["maxLength"] = min(node.get("maxLength", bounds.string_max_chars), bounds.string_max_chars)
    if "array" in kinds:
        node["maxItems"] = min(node.get("maxItems", bounds.array_max_items), bounds.array_max_items)
        node.setdefault("items", {"type": "string"})
    if "integer" in kinds:
        node["maxDigits"] = min(node.get("maxDigits", INTEGER_MAX_DIGITS), INTEGER_MAX_DIGITS)
    if "number" in kinds:
        node.update(maxDigitsInteger=INTEGER_MAX_DIGITS, minDigitsFraction=1,
                    maxDigitsFraction=FRACTION_MAX_DIGITS, minDigitsExponent=1,
                    maxDigitsExponent=1)
    if "object" in kinds:
        # Outlines cannot bound the keys of a free-form object, so such an object stays empty.
        node.setdefault("properties", {})
        node["additionalProperties"] = False
    for key in ("properties", "$defs", "definitions"):
        for child in (node.get(key) or {}).values():
            _bound_in_place(child, bounds)
    _bound_in_place(node.get("items"), bounds)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for child in node.get(key) or []:
            _bound_in_place(child, bounds)


def max_json_bytes(schema: Any) -> int:
    """An upper bound on the UTF-8 length of any JSON text the bounded ``schema`` admits.

    Counts four bytes per string character (the widest UTF-8 character; escapes take two) and a
    space around every separator, which is what the constraint's whitespace pattern allows.
    """
    if not isinstance(schema, dict):
        return 16
    if "const" in schema:
        return len(json.dumps(schema["const"]).encode()) + 2
    if "enum" in schema:
        return max(len(json.dumps(v).encode()) for v in schema["enum"]) + 2
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return max(max_json_bytes(option) for option in schema[key])
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    return max(_type_bytes(schema, k) for k in kinds)


def _type_bytes(schema: dict[str, Any], kind: Any) -> int:
    if kind == "string":
        return 2 + 4 * int(schema.get("maxLength", 10_000))
    if kind == "integer":
        return 1 + int(schema.get("maxDigits", 20))
    if kind == "number":
        return 1 + int(schema.get("maxDigitsInteger", 20)) + 1 + \
            int(schema.get("maxDigitsFraction", 20)) + 2 + int(schema.get("maxDigitsExponent", 3))
    if kind == "boolean":
        return 5
    if kind == "null":
        return 4
    if kind == "array":
        return 4 + int(schema.get("maxItems", 100)) * (max_json_bytes(schema.get("items", {})) + 2)
    if kind == "object":
        members = sum(len(json.dumps(name).encode()) + 4 + max_json_bytes(child) + 2
                      for name, child in (schema.get("properties") or {}).items())
        return 4 + members
    return 10_000
