"""Tool specs written for other datasets, normalised to JSON Schema, and back to xlam-60k style.

Accepted dialects: OpenAI tools (``{"type": "function", "function": {...}}`` or the bare
function), xlam-60k (``parameters`` as ``name -> {type: "List[int]", ...}``) and BFCL
(``"type": "dict"``, ``"float"``, ``"tuple"``, ...). Every tool ends up as a
:class:`~apigen_local.types.Tool` whose ``parameters`` is a JSON Schema object using the type
names string, integer, number, boolean, array, object and null.

A spec comes from untrusted rows, so its schema may refer only to itself: every ``$ref`` is a
JSON pointer inside the same parameters schema (``#/$defs/...``), and must point to a schema. A
reference anywhere else (``http:``, ``file:``, ``urn:``, ``other.json#/x``, ``//host/x``), a
``$id`` (which would move the base of the references) and a loop of references that never reaches
a value are refused as unreadable specs, so checking a row never opens a connection; the format
check's validators refuse to fetch all the same (:mod:`apigen_local.checks.format`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from .errors import LibraryError
from .jsonl import BadLine, parse_line, split_lines
from .types import Tool

# Type names used by OpenAI, BFCL (Python, Java, JavaScript) and xlam-60k specs -> JSON Schema type.
# ``None`` means "any value": the schema gets no "type" keyword.
_TYPE_NAMES: dict[str, str | None] = {
    "string": "string", "str": "string", "char": "string", "character": "string",
    "integer": "integer", "int": "integer", "long": "integer", "short": "integer",
    "byte": "integer",
    "number": "number", "float": "number", "double": "number", "decimal": "number",
    "boolean": "boolean", "bool": "boolean",
    "array": "array", "list": "array", "tuple": "array", "set": "array", "frozenset": "array",
    "sequence": "array", "arraylist": "array",
    "object": "object", "dict": "object", "dictionary": "object", "mapping": "object",
    "map": "object", "hashmap": "object",
    "null": "null", "none": "null", "nonetype": "null",
    "any": None,
}  # fmt: skip

_XLAM_TYPE_NAMES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool",
                    "null": "None"}  # fmt: skip
_OPTIONAL_SUFFIX = re.compile(r"(.*?)\s*,\s*optional\s*", re.IGNORECASE | re.DOTALL)
_XLAM_TOKEN = re.compile(r"\s*(\.\.\.|[A-Za-z_][\w.]*|[\[\],|])")



def normalize_tool(spec: Any) -> Tool:
    """Turn an OpenAI, bare-function, xlam-60k or BFCL tool spec into a :class:`Tool`."""
    return _normalize(spec, None)


def load_tool_specs(source: str | Path) -> list[Tool]:
    """Read tool specs from a ``.json`` file (a list or one spec), a ``.jsonl`` file (one spec or
    a list of specs per line), or a JSON string such as an xlam-60k ``tools`` field."""
    text = source.strip() if isinstance(source, str) else ""
    if text[:1] in ("[", "{"):
        origin = "the tools JSON"
        items = _as_list(_parse_json(text, origin))
    else:
        path = Path(source).expanduser()
        origin = str(path)
        items = _read_spec_file(path)
    tools = [_normalize(spec, f"entry {index} of {origin}") for index, spec in enumerate(items)]
    if not tools:
        raise LibraryError(f"{origin} contains no tool spec.")
    seen: set[str] = set()
    for tool in tools:
        if tool.name in seen:
            raise LibraryError(f"{origin} describes the tool {tool.name!r} more than once.")
        seen.add(tool.name)
    return tools


def xlam_tools(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    """The tools in the xlam-function-calling-60k style: parameters as ``name -> {description,
    type, default}`` with Python-like type strings; optional ones end in ``", optional"``.

    An ``enum`` is kept as an extra key of the parameter so that nothing the generator relied on
    is lost; nested object properties are summarised as ``dict``.
    """
    described: list[dict[str, Any]] = []
    for tool in tools:
        properties: dict[str, Any] = tool.parameters.get("properties", {})
        required = set(tool.parameters.get("required", []))
        params: dict[str, dict[str, Any]] = {}
        for name, schema in properties.items():
            entry: dict[str, Any] = {}
            if isinstance(schema, dict) and "description" in schema:
                entry["description"] = schema["description"]
            entry["type"] = _xlam_type(schema) + ("" if name in required else ", optional")
            if isinstance(schema, dict):
                entry.update({key: schema[key] for key in ("default", "enum") if key in schema})
            params[name] = entry
        described.append({"name": tool.name, "description": tool.description, "parameters": params})
    return described


def _normalize(spec: Any, position: str | None) -> Tool:
    name = spec.get("name") if isinstance(spec, dict) else None
    if (
        isinstance(spec, dict)
        and spec.get("type") == "function"
        and isinstance(spec.get("function"), dict)
    ):
        spec = spec["function"]
        name = spec.get("name")
    label = f"tool spec {name!r}" if isinstance(name, str) else "tool spec"
    if position:
        label = f"{label} ({position})"
    if not isinstance(spec, dict):
        raise LibraryError(f"The {label} must be a JSON object, not {type(spec).__name__}.")
    if not isinstance(name, str) or not name.strip():
        raise LibraryError(f'The {label} has no "name" string.')
    description = spec.get("description") or ""
    if not isinstance(description, str):
        raise LibraryError(f'The {label} has a "description" that is not a string.')
    parameters = spec.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise LibraryError(f'The {label} has "parameters" that are not a JSON object.')
    try:
        schema = object_schema(parameters, label) if _is_json_schema(parameters) else _from_xlam(parameters, label)
        check_schema(schema, label)
    except RecursionError as exc:
        raise LibraryError(f"The {label} has parameters nested too deeply to check.") from exc
    return Tool(name=name, description=description, parameters=schema)


def _is_json_schema(parameters: dict[str, Any]) -> bool:
    """JSON Schema (OpenAI, BFCL) rather than xlam's ``param -> {type, description}`` mapping.

    xlam parameter entries are objects, so a top-level string ``type`` (or a ``properties`` that
    is not itself an xlam parameter entry) can only be JSON Schema.
    """
    if isinstance(parameters.get("type"), str):
        return True
    properties = parameters.get("properties")
    return isinstance(properties, dict) and not isinstance(properties.get("type"), str)


def object_schema(node: Any, label: str) -> dict[str, Any]:
    """A JSON-Schema-like ``parameters`` as ``{"type": "object", "properties", "required"}``."""
    schema = _json_schema(node, label)
    if schema.setdefault("type", "object") != "object":
        raise LibraryError(f"The {label} has parameters of type {schema['type']!r}, not an object.")
    properties = schema.setdefault("properties", {})
    required = schema.setdefault("required", [])
    if not isinstance(properties, dict):
        raise LibraryError(f'The {label} has "properties" that are not a JSON object.')
    if not isinstance(required, list) or not all(isinstance(item, str) for item in required):
        raise LibraryError(f'The {label} has a "required" that is not a list of names.')
    missing = [item for item in required if item not in properties]
    if missing:
        raise LibraryError(f"The {label} requires {', '.join(missing)} but does not define it.")
    rest = {
        key: value for key, value in schema.items() if key not in ("type", "properties", "required")
    }
    return {"type": "object", "properties": properties, "required": required, **rest}


def _json_schema(node: Any, label: str) -> dict[str, Any]:
    """One schema node with dialect type names (``dict``, ``float``, ``tuple``, ``any``...) and
    OpenAPI's ``nullable`` rewritten into JSON Schema, recursively."""
    if not isinstance(node, dict):
        raise LibraryError(f"The {label} has a schema that is not a JSON object: {node!r}.")
    out = dict(node)
    if "type" in out:
        types = _json_types(out.pop("type"), label)
        if types is not None:
            out["type"] = types[0] if len(types) == 1 else types
    if out.pop("nullable", False) is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        elif isinstance(out.get("type"), list) and "null" not in out["type"]:
            out["type"] = [*out["type"], "null"]
        elif "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    for key in ("properties", "patternProperties", "$defs", "definitions"):
        if isinstance(out.get(key), dict):
            out[key] = {name: _json_schema(value, label) for name, value in out[key].items()}
    for key in ("additionalProperties", "items", "not"):
        if isinstance(out.get(key), dict):
            out[key] = _json_schema(out[key], label)
    if isinstance(out.get("items"), list):  # draft-4 tuple form
        out["prefixItems"] = out.pop("items")
    for key in ("prefixItems", "anyOf", "oneOf", "allOf"):
        if isinstance(out.get(key), list):
            out[key] = [_json_schema(item, label) for item in out[key]]
    return out


def _json_types(value: Any, label: str) -> list[str] | None:
    """Dialect type name(s) as JSON Schema type names; ``None`` when any value is allowed."""
    names = value if isinstance(value, list) else [value]
    mapped: list[str] = []
    for name in names:
        if not isinstance(name, str) or name.strip().lower() not in _TYPE_NAMES:
            raise LibraryError(f"The {label} uses the unknown type {name!r}.")
        json_type = _TYPE_NAMES[name.strip().lower()]
        if json_type is None:
            return None
        if json_type not in mapped:
            mapped.append(json_type)
    return mapped or None


def _from_xlam(parameters: dict[str, Any], label: str) -> dict[str, Any]:
    """xlam-60k parameters (``name -> {type: "List[int], optional", description, default}``)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, entry in parameters.items():
        where = f"{label}, parameter {name!r},"
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise LibraryError(f'The {where} needs an object with a "type" string.')
        type_text = entry["type"]
        optional = _OPTIONAL_SUFFIX.fullmatch(type_text)
        schema = _parse_xlam_type(optional.group(1) if optional else type_text, where)
        if isinstance(entry.get("description"), str):
            schema["description"] = entry["description"]
        for key in ("default", "enum"):
            if key in entry:
                schema[key] = entry[key]
        properties[name] = schema
        if not optional and "default" not in entry:
            required.append(name)
    return {"type": "object", "properties": properties, "required": required}


def _parse_xlam_type(text: str, where: str) -> dict[str, Any]:
    """A Python-like type string (``List[int]``, ``Tuple[int, int]``, ``Optional[str]``,
    ``Dict[str, Any]``, ``int | str``, ``str or int``) as a JSON Schema."""
    tokens: list[str] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _XLAM_TOKEN.match(text, position)
        if match is None:
            raise LibraryError(f"The {where} has the type {text!r}, which cannot be read.")
        tokens.append(match.group(1))
        position = match.end()
    parser = _XlamTypeParser(tokens, text, where)
    schema = parser.union()
    if parser.index != len(tokens):
        raise LibraryError(f"The {where} has the type {text!r}, which cannot be read.")
    return schema


class _XlamTypeParser:
    """Recursive descent over the tokens of an xlam type string."""

    def __init__(self, tokens: list[str], text: str, where: str) -> None:
        self.tokens, self.text, self.where, self.index = tokens, text, where, 0

    def _fail(self, why: str = "which cannot be read") -> LibraryError:
        return LibraryError(f"The {self.where} has the type {self.text!r}, {why}.")

    def _peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise self._fail()
        self.index += 1
        return token

    def union(self) -> dict[str, Any]:
        members = [self.primary()]
        while self._peek() in ("|", "or"):
            self.index += 1
            members.append(self.primary())
        return _union(members)

    def primary(self) -> dict[str, Any]:
        name = self._take()
        if not re.fullmatch(r"[A-Za-z_][\w.]*", name):
            raise self._fail()
        args: list[dict[str, Any]] = []
        variadic = False
        if self._peek() == "[":
            self.index += 1
            while True:
                if self._peek() == "...":
                    self.index += 1
                    variadic = True
                else:
                    args.append(self.union())
                token = self._take()
                if token == "]":
                    break
                if token != ",":
                    raise self._fail()
        return self._build(name.rsplit(".", 1)[-1].lower(), args, variadic)

    def _build(self, name: str, args: list[dict[str, Any]], variadic: bool) -> dict[str, Any]:
        if name == "optional" and len(args) == 1:
            return _union([args[0], {"type": "null"}])
        if name == "union" and args:
            return _union(args)
        if name not in _TYPE_NAMES:
            raise self._fail(f"and {name!r} is not a known type")
        json_type = _TYPE_NAMES[name]
        if json_type == "array":
            schema: dict[str, Any] = {"type": "array"}
            if name == "tuple" and len(args) > 1 and not variadic:
                schema["prefixItems"] = args
            elif len(args) == 1:
                schema["items"] = args[0]
            elif args:
                raise self._fail(f"and {name} takes one item type")
            if name in ("set", "frozenset"):
                schema["uniqueItems"] = True
            return schema
        if json_type == "object" and len(args) in (0, 2):
            return {"type": "object", **({"additionalProperties": args[1]} if args else {})}
        if args or variadic:
            raise self._fail(f"and {name} takes no type arguments")
        return {} if json_type is None else {"type": json_type}


def _union(members: list[dict[str, Any]]) -> dict[str, Any]:
    """A union of schemas: a type list when all are plain types, else ``anyOf``."""
    members = [
        part
        for member in members
        for part in (member["anyOf"] if member.keys() == {"anyOf"} else [member])
    ]
    if any(not member for member in members):
        return {}
    if len(members) == 1:
        return members[0]
    if all(member.keys() == {"type"} for member in members):
        names: list[str] = []
        for member in members:
            for name in member["type"] if isinstance(member["type"], list) else [member["type"]]:
                if name not in names:
                    names.append(name)
        return {"type": names[0] if len(names) == 1 else names}
    return {"anyOf": members}


def _xlam_type(schema: Any) -> str:
    """A JSON Schema as an xlam/Python-like type string, the inverse of :func:`_parse_xlam_type`."""
    if not isinstance(schema, dict):
        return "Any"
    if "anyOf" in schema:
        return _xlam_union([_xlam_type(member) for member in schema["anyOf"]])
    json_type = schema.get("type")
    if isinstance(json_type, list):
        return _xlam_union([_xlam_type({**schema, "type": name}) for name in json_type])
    if json_type == "array":
        if isinstance(schema.get("prefixItems"), list):
            return f"Tuple[{', '.join(_xlam_type(item) for item in schema['prefixItems'])}]"
        base = "Set" if schema.get("uniqueItems") is True else "List"
        return (
            f"{base}[{_xlam_type(schema['items'])}]"
            if isinstance(schema.get("items"), dict)
            else base
        )
    if json_type == "object":
        extra = schema.get("additionalProperties")
        return f"Dict[str, {_xlam_type(extra)}]" if isinstance(extra, dict) else "dict"
    if isinstance(json_type, str):
        return _XLAM_TYPE_NAMES.get(json_type, json_type)
    return "Any"


def _xlam_union(parts: list[str]) -> str:
    if len(parts) == 2 and "None" in parts:
        return f"Optional[{parts[0] if parts[1] == 'None' else parts[1]}]"
    return f"Union[{', '.join(parts)}]"


def check_schema(schema: dict[str, Any], label: str) -> None:
    """Raise :class:`LibraryError` naming ``label`` if ``schema`` is not valid JSON Schema or refers
    to anything outside itself (see the module docstring). A row's tools repeat across a dataset,
    so each distinct schema is checked once."""
    key = hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).digest()
    if key not in _checked:
        if len(_checked) >= _CHECKED_SCHEMAS:
            _checked.clear()
        _checked[key] = _schema_problem(schema)
    if _checked[key] is not None:
        raise LibraryError(f"The {label} has {_checked[key]}.")


_CHECKED_SCHEMAS = 4096
_checked: dict[bytes, str | None] = {}  # the problem of each schema checked, by its JSON's sha256


def _schema_problem(schema: dict[str, Any]) -> str | None:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return f"an invalid parameters schema: {exc.message}"
    except (OverflowError, ValueError) as exc:  # raised, not reported, by re for "a{99999999999}"
        return f"an invalid parameters schema: a pattern cannot be compiled ({_cut(exc)})"
    return _reference_problem(schema)


# Keywords whose value is a schema applied to the same value (in place) or to a part of it.
_IN_PLACE = ("not", "if", "then", "else")
_IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
_IN_PLACE_MAPS = ("dependentSchemas",)
_INNER = ("additionalProperties", "items", "contains", "propertyNames", "unevaluatedItems",
          "unevaluatedProperties")
_INNER_LISTS = ("prefixItems",)
_INNER_MAPS = ("properties", "patternProperties", "$defs", "definitions")


def _reference_problem(root: dict[str, Any]) -> str | None:
    """Why ``root``'s references cannot be followed without leaving it, or ``None``.

    Walks every subschema a validator can reach (the targets of references included), without
    recursion, and looks for a loop of in-place steps (references, ``allOf``, ``not``...) that
    would apply a schema to the same value for ever.
    """
    in_place: dict[int, list[int]] = {}  # schema -> the schemas it applies to the same value
    nodes = {id(root): root}
    pending = [root]
    pattern_properties = unevaluated_properties = False
    while pending:
        node = pending.pop()
        if "$id" in node:
            return 'a "$id": a tool spec\'s references must stay inside its own schema'
        pattern_properties |= "patternProperties" in node
        unevaluated_properties |= "unevaluatedProperties" in node
        steps: list[Any] = []
        for keyword in ("$ref", "$dynamicRef"):
            if keyword in node:
                target = _pointer_target(root, node[keyword])
                if isinstance(target, str):
                    return f"the {keyword} {_cut(node[keyword])!r}, which {target}"
                steps.append(target)
        steps += _subschemas(node, _IN_PLACE, _IN_PLACE_LISTS, _IN_PLACE_MAPS)
        in_place[id(node)] = [id(step) for step in steps if isinstance(step, dict)]
        for child in [*steps, *_subschemas(node, _INNER, _INNER_LISTS, _INNER_MAPS)]:
            if isinstance(child, dict) and id(child) not in nodes:
                nodes[id(child)] = child
                pending.append(child)
    if pattern_properties and unevaluated_properties:
        return '"unevaluatedProperties" beside "patternProperties", whose patterns it cannot check in time'
    return "references that loop back to the same schema" if _has_loop(in_place) else None


def _subschemas(node: dict[str, Any], single: Sequence[str], lists: Sequence[str],
                maps: Sequence[str]) -> Iterator[Any]:
    for keyword in single:
        yield node.get(keyword)
    for keyword in lists:
        if isinstance(node.get(keyword), list):
            yield from node[keyword]
    for keyword in maps:
        if isinstance(node.get(keyword), dict):
            yield from node[keyword].values()


def _pointer_target(root: dict[str, Any], ref: Any) -> Any:
    """The schema that the reference ``ref`` names inside ``root``, or why it names none (a str)."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        return "points outside the tool spec (only references inside it, such as #/$defs/name, are read)"
    pointer = unquote(ref[1:])
    if pointer and not pointer.startswith("/"):
        return "names an anchor (only JSON pointers, such as #/$defs/name, are read)"
    target: Any = root
    for part in pointer.split("/")[1:] if pointer else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            return "points to nothing in the tool spec"
    return target if isinstance(target, (dict, bool)) else "points to a value that is not a schema"


def _has_loop(edges: dict[int, list[int]]) -> bool:
    """Whether the graph ``edges`` has a cycle (an iterative depth-first search)."""
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    for start in edges:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(edges[start]))]
        while stack:
            node, successors = stack[-1]
            step = next(successors, None)
            if step is None:
                state[node] = 2
                stack.pop()
            elif state.get(step) == 1:
                return True
            elif step not in state:
                state[step] = 1
                stack.append((step, iter(edges.get(step, []))))
    return False


def _cut(text: Any, limit: int = 80) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_json(text: str, origin: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise LibraryError(f"{origin} is not valid JSON: {exc}.") from exc


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _read_spec_file(path: Path) -> list[Any]:
    suffix = path.suffix.lower()
    if suffix not in (".json", ".jsonl"):
        raise LibraryError(f"The tool spec file {path} must end in .json or .jsonl.")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise LibraryError(f"The tool spec file {path} does not exist.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise LibraryError(f"The tool spec file {path} cannot be read: {exc}.") from exc
    if suffix == ".json":
        return _as_list(_parse_json(text, str(path)))
    items: list[Any] = []
    for line in split_lines(text.encode("utf-8")):  # at \n only: U+2028 inside a description is text
        try:
            items.extend(_as_list(parse_line(line)))
        except BadLine as exc:
            raise LibraryError(f"The tool spec file {path}: {exc}.") from None
    return items
