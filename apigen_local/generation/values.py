"""Argument values that make sense, for the calls calls-first draws (issue 38).

A person asks for a call only when its values mean something: a planet id from 1 to 10, a tip of
15 percent, two dates a few months apart. A value for parameter ``p`` of function ``f`` comes,
first match wins, from:

1. the values the parameter allows: its schema's ``enum``, or a list its description spells out
   ("any of beach, hiking or skiing");
2. the values the seed rows pass to ``f.p``: as they are, or varied within their kind
   (:func:`vary`): a number of the same magnitude and precision, a date moved by days, a string
   of the same shape (binary digits, a phone number). Free text and names are reused, never
   made up, since only a seed row knows which are valid;
3. an example the description gives ("for example 44", "such as "Ada Lovelace""), varied alike;
4. a value of the parameter's type shaped by its name, format and unit ("YYYY-MM-DD", "HH:MM",
   "percent", "minutes").

A range from the schema (``minimum``, ``maximum``) or the description ("1 to 720", "at least 1")
bounds every number drawn. The dates of one call move by the same days, so their order holds.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ..types import FunctionCall, Tool

#: how often a seed row's value is used as it is rather than varied
KEEP_SEED_VALUE = 0.4

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"\d{2}:\d{2}")
_BINARY = re.compile(r"1[01]*")
_DIGIT_SHAPE = re.compile(r"[+(]?\d[\d\s\-().]{5,}")  # phone-like: digits with separators
_NUMBER = r"-?\d+(?:\.\d+)?"
_RANGE = re.compile(rf"(?:from |between )?({_NUMBER})(?: \([^)]*\))? (?:to|and) ({_NUMBER})\b")
_AT_LEAST = re.compile(rf"at least ({_NUMBER}|one|two)\b")
_AT_MOST = re.compile(rf"at most ({_NUMBER})\b")
_EXAMPLE = re.compile(rf"(?:for example|e\.g\.|such as)\s+(\"[^\"]+\"|'[^']+'|{_NUMBER})")
_CHOICES = re.compile(r"\bany of ([\w ,\-]+?)(?:[;.)]|$)")
_KEYS = (re.compile(r"(?:with|has) (?:the )?keys ([\w ,]+?)(?:[;.)]|$)"),
         re.compile(r"object with ([^;.]+?)(?:[;.]|$)"))
_WORD_NUMBERS = {"one": 1, "two": 2}

_PEOPLE = ["Alice Johnson", "Bob Smith", "Priya Patel", "Chen Wei", "Maria Garcia", "Tom Baker",
           "Amara Okafor", "Lukas Novak", "Sofia Rossi", "Yuki Tanaka", "Omar Haddad", "Ada Lovelace"]
_TITLES = ["Quarterly Budget Review", "Team Sync", "Project Kickoff", "Design Review", "Weekly Planning",
           "Product Launch", "Client Check-in", "Sprint Retrospective"]
_TEXTS = ["the quick brown fox jumps over the lazy dog", "to be or not to be that is the question",
          "Meet me at the station at noon", "Offline tools keep your data private",
          "rain rain go away come again another day", "Keep calm and carry on",
          "The meeting moved to Thursday because the room was booked",
          "Fresh bread and coffee make a good morning"]
_WORDS = ["travel", "budget", "summer", "design", "garden", "music", "coffee", "hiking", "finance",
          "python", "urgent", "weekly", "family", "work"]
_CITIES = ["Lisbon", "Berlin", "Toronto", "Osaka", "Nairobi", "Austin", "Melbourne", "Dublin"]
_COUNTRIES = ["Portugal", "Germany", "Canada", "Japan", "Kenya", "United States", "Australia", "Ireland"]
_STREETS = ["12 Baker Street", "221 Oak Avenue", "5 Rue de Rivoli", "48 Harbour Road", "7 Elm Close"]
_ADDRESSES = [
    {"street": "12 Baker Street", "city": "London", "postcode": "NW1 6XE", "country": "United Kingdom"},
    {"street": "Unter den Linden 5", "city": "Berlin", "postcode": "10117", "country": "Germany"},
    {"street": "221 King Street West", "city": "Toronto", "postcode": "M5H 1K5", "country": "Canada"},
    {"street": "Rua Augusta 40", "city": "Lisbon", "postcode": "1100-053", "country": "Portugal"},
    {"street": "48 Harbour Road", "city": "Dublin", "postcode": "D02 X285", "country": "Ireland"},
    {"street": "1600 Congress Avenue", "city": "Austin", "postcode": "78701", "country": "United States"},
]
_PRODUCTS = ["apples", "bread", "coffee beans", "notebook", "batteries", "olive oil", "tea", "rice"]


@dataclass
class Hints:
    """What a parameter's schema and description say about its values."""

    choices: list[Any] = field(default_factory=list)
    low: float | None = None
    high: float | None = None
    examples: list[Any] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # an object's keys, when only its description names them


def hints(schema: dict[str, Any]) -> Hints:
    """Read the allowed values, range, examples and keys of a parameter from ``schema``."""
    text = str(schema.get("description") or "")
    found = Hints(choices=list(schema.get("enum") or []))
    if not found.choices and (match := _CHOICES.search(text)):
        found.choices = [c.strip() for c in re.split(r",|\bor\b|\band\b", match.group(1)) if c.strip()]
    found.low = schema.get("minimum", schema.get("minItems"))
    found.high = schema.get("maximum", schema.get("maxItems"))
    if (match := _RANGE.search(text)) and float(match.group(1)) < float(match.group(2)):
        found.low = float(match.group(1)) if found.low is None else found.low
        found.high = float(match.group(2)) if found.high is None else found.high
    if found.low is None and (match := _AT_LEAST.search(text)):
        found.low = float(_WORD_NUMBERS.get(match.group(1), match.group(1)))
    if found.high is None and (match := _AT_MOST.search(text)):
        found.high = float(match.group(1))
    for example in _EXAMPLE.findall(text):
        value = example[1:-1] if example[0] in "\"'" else json.loads(example)
        found.examples.append(str(value) if _kind(schema) == "string" else value)
    if match := _KEYS[0].search(text) or _KEYS[1].search(text):
        found.keys = [re.sub(r"\s*\(.*", "", k).strip() for k in re.split(r",|\band\b", match.group(1))]
        found.keys = [k for k in found.keys if re.fullmatch(r"\w+", k)]
    return found


def _kind(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None and (options := schema.get("anyOf") or schema.get("oneOf")):
        typed = [o for o in options if isinstance(o, dict) and o.get("type") not in (None, "null")]
        return _kind(typed[0]) if typed else None
    return kind


def _element_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an ``anyOf`` (``list[str] | None``), else ``schema``."""
    options = schema.get("anyOf") or schema.get("oneOf")
    if options and "type" not in schema:
        typed = [o for o in options if isinstance(o, dict) and o.get("type") not in (None, "null")]
        if typed:
            return {**typed[0], "description": schema.get("description", typed[0].get("description", ""))}
    return schema


def _bounded(value: float, found: Hints) -> float:
    if found.low is not None:
        value = max(value, found.low)
    if found.high is not None:
        value = min(value, found.high)
    return value


def _decimals(value: float) -> int:
    text = repr(float(value))
    return 0 if text.endswith(".0") else len(text.split(".")[1])


def _nice(value: float) -> float:
    """``value`` rounded to two significant digits, as people write amounts (12000, 4.5)."""
    if value == 0:
        return 0
    digits = 1 - math.floor(math.log10(abs(value)))
    return round(value, digits)


def vary_number(rng: random.Random, value: float, found: Hints, *, integer: bool) -> float:
    """A number of the same magnitude and precision as ``value``, inside the parameter's range."""
    if found.low is not None and found.high is not None and found.high - found.low <= 60:
        low, high = found.low, found.high
    else:
        low, high = (value / 2, value * 2) if value > 0 else (value * 2, value / 2) if value < 0 else (0, 3)
    drawn = rng.uniform(low, high)
    if integer:
        drawn = round(drawn) if abs(value) < 20 else _nice(drawn)
        return int(_bounded(drawn, found))
    places = min(_decimals(value), 3)
    drawn = _nice(drawn) if abs(drawn) >= 10 else drawn
    return round(_bounded(round(drawn, places), found), places) if places else int(_bounded(round(drawn), found))


def vary_string(rng: random.Random, value: str, days: int) -> str | None:
    """A string of the same shape as ``value`` (a date moved by ``days``, another clock time, other
    binary or phone digits); ``None`` when its kind is free text, which is not made up."""
    if _DATE.fullmatch(value):
        try:
            return (date.fromisoformat(value) + timedelta(days=days)).isoformat()
        except ValueError:
            return None
    if _TIME.fullmatch(value):
        return f"{rng.randint(7, 19):02d}:{rng.choice(['00', '15', '30', '45'])}"
    if _BINARY.fullmatch(value) and len(value) > 1:
        size = max(2, len(value) + rng.randint(-1, 1))
        return "1" + "".join(rng.choice("01") for _ in range(size - 1))
    if _DIGIT_SHAPE.fullmatch(value):
        digits = iter([str(rng.randint(1, 9))] + [str(rng.randint(0, 9)) for _ in value])
        return "".join(next(digits) if c.isdigit() else c for c in value)
    return None


def vary(rng: random.Random, value: Any, schema: dict[str, Any], days: int, known: list[Any]) -> Any:
    """``value`` varied within its kind (see the module docstring); ``known`` are the other values
    seen for the parameter, reused for kinds that cannot be varied."""
    schema = _element_schema(schema)
    found = hints(schema)
    if isinstance(value, bool) or found.choices:
        return value
    if isinstance(value, (int, float)):
        return vary_number(rng, value, found, integer=isinstance(value, int) and _kind(schema) != "number")
    if isinstance(value, str):
        varied = vary_string(rng, value, days)
        return varied if varied is not None else rng.choice(known or [value])
    if isinstance(value, list):
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        positions = schema.get("prefixItems")
        if isinstance(positions, list):  # a tuple: each position keeps its kind
            return [vary(rng, v, p if isinstance(p, dict) else {}, days, [])
                    for v, p in zip(value, positions, strict=False)]
        pool = [v for seen in known if isinstance(seen, list) for v in seen]
        unique: list[Any] = []
        for varied in (vary(rng, v, items, days, pool) for v in value):
            if varied not in unique:
                unique.append(varied)
        return unique
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        return {k: vary(rng, v, properties.get(k, {}), days, []) for k, v in value.items()}
    return value


class ValueDrawer:
    """Draws the arguments of a call: from the seed rows' values, the schema and the description."""

    def __init__(self, answers: Iterable[str]) -> None:
        """``answers``: the seed rows' answer calls, each as JSON text."""
        self.seen: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for text in answers:
            try:
                calls = json.loads(text)
            except json.JSONDecodeError:
                continue
            for call in calls if isinstance(calls, list) else []:
                if isinstance(call, dict) and isinstance(call.get("arguments"), dict):
                    for name, value in call["arguments"].items():
                        if value not in self.seen[(call.get("name"), name)]:
                            self.seen[(call.get("name"), name)].append(value)

    def call(self, rng: random.Random, tool: Tool) -> FunctionCall | None:
        """One call of ``tool``: every required argument, and each optional one 40 % of the time when
        its value is not the default; ``None`` when a required value cannot be drawn."""
        properties = tool.parameters.get("properties") or {}
        required = set(tool.parameters.get("required") or [])
        days = rng.choice([-1, 1]) * rng.randint(3, 150)  # the same for every date of the call
        arguments: dict[str, Any] = {}
        for name, schema in properties.items():
            schema = schema if isinstance(schema, dict) else {}
            if name not in required and rng.random() < 0.6:
                continue
            value = self.value(rng, tool.name, name, schema, days)
            for _ in range(4):  # a value another argument holds reads as one value used twice
                if value is None or isinstance(value, (list, dict)) or value not in arguments.values():
                    break
                value = self.value(rng, tool.name, name, schema, days)
            if name not in required and "default" in schema and value == schema["default"]:
                continue  # an optional argument is passed only to say something other than its default
            if value is None:
                if name in required:
                    return None
                continue
            arguments[name] = value
        return FunctionCall(name=tool.name, arguments=_dates_in_order(arguments))

    def value(self, rng: random.Random, function: str, name: str, schema: dict[str, Any], days: int) -> Any:
        """One value for argument ``name`` of ``function`` (see the module docstring); ``None`` when
        none can be drawn."""
        found = hints(_element_schema(schema))
        if found.choices and _kind(schema) != "array":
            return rng.choice(found.choices)
        seen = self.seen.get((function, name))
        if seen:
            value = rng.choice(seen)
            if rng.random() < KEEP_SEED_VALUE:
                return value
            pool = unit_pool(f"{name.casefold()} {str(schema.get('description') or '').casefold()}")
            if pool and isinstance(value, (int, float)) and not isinstance(value, bool):
                return rng.choice(pool)  # a physical quantity stays plausible (a height of 1.7 m, not 2.9)
            return vary(rng, value, schema, days, seen)
        if found.examples and _kind(schema) != "array":
            return vary(rng, rng.choice(found.examples), schema, days, found.examples)
        return typed_value(rng, name, schema, days)


def _dates_in_order(arguments: dict[str, Any]) -> dict[str, Any]:
    """The call's ISO dates in ascending order of its parameters (a start comes before its end)."""
    names = [name for name, value in arguments.items() if isinstance(value, str) and _DATE.fullmatch(value)]
    ordered = sorted(arguments[name] for name in names)
    return {**arguments, **dict(zip(names, ordered, strict=True))}


def typed_value(rng: random.Random, name: str, schema: dict[str, Any], days: int = 0) -> Any:
    """A value of the schema's type, shaped by the parameter's name, format and range; ``None``
    when none fits."""
    schema = _element_schema(schema)
    found = hints(schema)
    kind = _kind(schema)
    if found.choices and kind != "array":
        return rng.choice(found.choices)
    lowered = name.casefold()
    text = f"{lowered} {str(schema.get('description') or '').casefold()}"
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "integer":
        return _integer(rng, lowered, text, found)
    if kind == "number":
        return _number(rng, lowered, text, found)
    if kind == "string":
        return _string(rng, lowered, text, days)
    if kind == "array":
        return _array(rng, lowered, schema, found, days)
    if kind == "object":
        return _object(rng, lowered, schema, found, days)
    return None


def _integer(rng: random.Random, name: str, text: str, found: Hints) -> int:
    if found.low is not None and found.high is not None and found.high - found.low <= 60:
        return rng.randint(int(found.low), int(found.high))
    words = set(re.split(r"\W|_", name))
    if "year" in words and "per" not in words:
        return rng.randint(2018, 2026)
    if "minute" in text:
        value = rng.choice([15, 20, 30, 45, 60, 90, 120])
    elif words & {"n", "k", "count", "top", "nights", "people", "days", "shift", "number", "quantity"}:
        value = rng.randint(2, 12)
    elif "length" in text or "characters" in text:
        value = rng.choice([10, 20, 25, 30, 40, 50, 80])
    else:
        value = rng.choice([3, 5, 7, 12, 15, 24, 30, 45, 60, 100])
    return int(_bounded(value, found))


#: plausible magnitudes of quantities, by a word of the parameter's name or description
_UNIT_POOLS: tuple[tuple[str, list[float]], ...] = (
    (r"percent", [5, 8.5, 10, 12, 15, 18, 20, 25]), (r"\bkg\b|kilogram|weight", [55, 62, 70, 78, 85, 94]),
    (r"height", [1.58, 1.65, 1.72, 1.8, 1.88]), (r"acceleration", [1.5, 2, 3, 4.5, 9.8]),
    (r"velocity|speed", [3, 5, 10, 12.5, 20, 25]), (r"second", [3, 5, 8, 10, 12, 30]))


def unit_pool(text: str) -> list[float] | None:
    """Plausible values of the quantity ``text`` (a parameter's name and description) names, if known."""
    return next((pool for pattern, pool in _UNIT_POOLS if re.search(pattern, text)), None)


def _number(rng: random.Random, name: str, text: str, found: Hints) -> float:
    pool = unit_pool(text)
    if pool:
        value = rng.choice(pool)
    elif "rate" in name and "fraction" in text:
        value = rng.choice([0.02, 0.035, 0.04, 0.05, 0.065])
    elif re.search(r"total|price|amount|cost|principal|bill", name):
        value = rng.choice([12.5, 18, 36.4, 48, 64.9, 85, 120, 250, 480])
    elif found.low is not None and found.high is not None:
        value = round(rng.uniform(found.low, found.high), 1)
    else:
        value = rng.choice([1.5, 2.5, 4, 7.5, 12, 20, 36, 60, 120])
    return _bounded(value, found)


def _string(rng: random.Random, name: str, text: str, days: int) -> str:
    if "date" in name or "yyyy-mm-dd" in text:
        return (date(2025, 6, 15) + timedelta(days=days + rng.randint(-60, 60))).isoformat()
    if "time" in name or "hh:mm" in text:
        return f"{rng.randint(7, 19):02d}:{rng.choice(['00', '15', '30', '45'])}"
    if "country_code" in name or "calling code" in text:
        return rng.choice(["1", "44", "33", "49", "81", "61"])
    if "phone" in name or "phone" in text:
        return f"{rng.randint(200, 999)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}"
    if "binary" in text:
        return "1" + "".join(rng.choice("01") for _ in range(rng.randint(2, 6)))
    for words, pool in ((("street",), _STREETS), (("city", "town"), _CITIES), (("country",), _COUNTRIES),
                        (("postcode", "zip"), ["10115", "1000-001", "M5V 2T6", "D02 X285", "73301"]),
                        (("title",), _TITLES), (("tag",), _WORDS),
                        (("name", "attendee", "person", "people"), _PEOPLE),
                        (("text", "sentence", "message", "content"), _TEXTS)):
        if any(word in name for word in words):
            return rng.choice(pool)
    if "separator" in name or "ellipsis" in name or "marker" in text:
        return rng.choice(["-", "_", "..."] if "ellipsis" in name else ["-", "_", "."])
    return rng.choice(_WORDS)


def _array(rng: random.Random, name: str, schema: dict[str, Any], found: Hints, days: int) -> list[Any] | None:
    positions = schema.get("prefixItems")
    if isinstance(positions, list):  # a tuple: one value per position
        drawn = [typed_value(rng, name, p if isinstance(p, dict) else {}, days) for p in positions]
        return None if any(v is None for v in drawn) else drawn
    items = schema.get("items") if isinstance(schema.get("items"), dict) else {"type": "string"}
    if found.choices:
        return rng.sample(found.choices, min(len(found.choices), rng.randint(1, 3)))
    low = int(found.low) if found.low is not None else 2
    high = int(found.high) if found.high is not None else max(low, 4)
    count = rng.randint(max(1, low), max(low, min(high, low + 3)))
    element = name[:-1] if name.endswith("s") else name
    element_schema = {**items, "description": items.get("description") or schema.get("description", "")}
    values: list[Any] = []
    for _ in range(count * 4):
        value = typed_value(rng, element, element_schema, days)
        if value is None:
            return None
        named = isinstance(value, dict) and "name" in value  # one entry per item: no two olive oils
        if value not in values and not (named and any(isinstance(v, dict) and v.get("name") == value["name"]
                                                      for v in values)):
            values.append(value)
        if len(values) == count:
            break
    return values


def _object(rng: random.Random, name: str, schema: dict[str, Any], found: Hints, days: int) -> dict[str, Any] | None:
    properties = schema.get("properties") or {}
    if properties:
        required = set(schema.get("required") or [])
        drawn = {key: typed_value(rng, key, child, days) for key, child in properties.items()
                 if key in required or rng.random() < 0.5}
        return None if any(v is None for v in drawn.values()) else drawn
    if not found.keys:
        return None
    if set(found.keys) <= set(_ADDRESSES[0]):  # the parts of one real-looking address
        address = rng.choice(_ADDRESSES)
        return {key: address[key] for key in found.keys}
    shopping = re.search(r"item|product|basket", name)
    drawn = {}
    for key in found.keys:
        if key == "name" and shopping:
            drawn[key] = rng.choice(_PRODUCTS)
        elif key in ("price", "cost"):
            drawn[key] = rng.choice([0.99, 1.5, 2.49, 3.2, 4.75, 12.0])
        elif key in ("quantity", "count"):
            drawn[key] = rng.randint(1, 6)
        else:
            drawn[key] = _string(rng, key, key, days)
    return drawn
