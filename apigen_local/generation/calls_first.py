"""Calls-first generation: sample the calls, then let the model write only the request.

In the query-first mode the model invents a request and the calls together, and a small model
gets the calls wrong (another function, repeated calls, values in the wrong place). Here the
calls are drawn without the model, as data: the function from the style's plan, each argument
value, three times in ten, from the values the seed rows pass to that parameter (when they pass
any), else from the schema's ``enum`` or a typed pool chosen by the parameter's type and name
(dates, clock times, person names, words, small counts, amounts). Optional parameters are left out half of the time.
The model then writes the request those calls answer (:func:`~.prompts.request_messages`),
shown seed rows that call the same functions first, and every check still runs on the finished
row. A row whose calls cannot be drawn all different gets no calls and is written query-first.

Every draw for row ``index`` comes from a generator seeded with ``(seed, index)``, so resume
stays exact.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from ..types import FunctionCall, QueryStyle, Tool

#: draws before a row gives up on making its calls differ from each other
_DRAWS = 12
_PEOPLE = ["Alice", "Bob", "Priya Patel", "Chen Wei", "Maria Garcia", "Tom Baker", "Amara Okafor",
           "Lukas Novak", "Sofia Rossi", "James Smith", "Yuki Tanaka", "Omar Haddad"]
_WORDS = ["python", "travel", "budget", "summer", "design", "garden", "music", "coffee", "hiking",
          "finance", "Berlin", "Lisbon", "Toronto", "red", "blue", "urgent", "weekly"]
_TITLES = ["Quarterly Budget Review", "Hello World", "My First Marathon", "Team Sync",
           "Best Pasta Recipes", "Trip to Lisbon", "Project Kickoff", "Learning Rust in 30 Days"]
_TEXTS = ["the quick brown fox jumps over the lazy dog", "to be or not to be that is the question",
          "Meet me at the station at noon", "Offline tools keep your data private",
          "rain rain go away come again another day", "Keep calm and carry on"]


class ValuePools:
    """Where calls-first draws argument values: the seed rows' values, else the schema or typed pools."""

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

    def value(self, rng: random.Random, function: str, name: str, schema: dict[str, Any]) -> Any:
        """One value for argument ``name`` of ``function`` (a seed row's value 30 % of the time, when
        there is one), or ``None`` when none can be drawn."""
        seen = self.seen.get((function, name))
        if seen and rng.random() < 0.3:
            return rng.choice(seen)
        return typed_value(rng, name, schema)


def typed_value(rng: random.Random, name: str, schema: dict[str, Any]) -> Any:
    """A value of the schema's type, shaped by the parameter's name; ``None`` when none fits."""
    if schema.get("enum"):
        return rng.choice(schema["enum"])
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        typed = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
        return typed_value(rng, name, typed[0]) if typed else None
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    lowered = name.casefold()
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "integer":
        return _integer(rng, lowered, schema)
    if kind == "number":
        return rng.choice([2.5, 4, 7.5, 9.8, 12, 15, 20, 36.6, 42.5, 60, 98.6, 120, 250, 1500])
    if kind == "string":
        return _string(rng, lowered)
    if kind == "array" and isinstance(schema.get("prefixItems"), list):  # a tuple: one value per position
        drawn = [typed_value(rng, lowered, item if isinstance(item, dict) else {}) for item in schema["prefixItems"]]
        return None if any(value is None for value in drawn) else drawn
    if kind == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {"type": "string"}
        count = rng.randint(2, 4)
        bounds = (schema.get("minItems"), schema.get("maxItems"))
        if bounds[0] is not None and bounds[0] == bounds[1]:
            count = int(bounds[0])
        values: list[Any] = []
        for _ in range(count * 3):
            value = typed_value(rng, lowered.rstrip("s"), items)
            if value is None:
                return None
            if value not in values:
                values.append(value)
            if len(values) == count:
                break
        return values
    if kind == "object" and schema.get("properties"):
        required = set(schema.get("required") or [])
        drawn = {key: typed_value(rng, key, child) for key, child in schema["properties"].items()
                 if key in required or rng.random() < 0.5}
        return None if any(v is None for v in drawn.values()) else drawn
    return None


def _integer(rng: random.Random, name: str, schema: dict[str, Any]) -> int:
    low = schema.get("minimum", schema.get("exclusiveMinimum", 1) + 1 if "exclusiveMinimum" in schema else None)
    high = schema.get("maximum")
    if low is not None or high is not None:
        low = int(low if low is not None else 1)
        return rng.randint(low, int(high) if high is not None else low + 50)
    words = set(name.split("_"))
    if "year" in words:
        return rng.randint(1990, 2030)
    if words & {"id", "count", "top", "n", "k", "nights", "people", "shift"}:
        return rng.randint(2, 12)
    return rng.choice([3, 5, 7, 12, 15, 24, 30, 45, 60, 90, 100, 144, 365])


def _string(rng: random.Random, name: str) -> str:
    if "date" in name:
        return f"{rng.randint(2024, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if "time" in name:
        return f"{rng.randint(7, 18):02d}:{rng.choice(['00', '15', '30', '45'])}"
    if "phone" in name or name == "number":
        return f"{rng.randint(200, 999)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}"
    if "name" in name or "attendee" in name or "person" in name:
        return rng.choice(_PEOPLE)
    if "title" in name:
        return rng.choice(_TITLES)
    if "text" in name or "sentence" in name or "message" in name:
        return rng.choice(_TEXTS)
    return rng.choice(_WORDS)


def _call(rng: random.Random, tool: Tool, pools: ValuePools) -> FunctionCall | None:
    properties = tool.parameters.get("properties") or {}
    required = set(tool.parameters.get("required") or [])
    arguments: dict[str, Any] = {}
    for name, schema in properties.items():
        if name not in required and rng.random() < 0.5:
            continue
        value = pools.value(rng, tool.name, name, schema if isinstance(schema, dict) else {})
        if value is None:
            if name in required:
                return None
            continue
        arguments[name] = value
    return FunctionCall(name=tool.name, arguments=arguments)


def sample_calls(rng: random.Random, style: QueryStyle, tools: Sequence[Tool], pools: ValuePools,
                 min_calls: int, max_calls: int) -> list[FunctionCall]:
    """The calls of one row: as many as the style asks for, all different; ``[]`` if none can be drawn.

    ``parallel`` calls its one function several times; ``parallel_multiple`` uses at least two
    different functions when more than one is offered; the others make one call.
    """
    count = rng.randint(min_calls, max_calls)
    for _ in range(_DRAWS):
        if style == "parallel_multiple" and len(tools) > 1:
            first = rng.sample(list(tools), 2)
            chosen = first + [rng.choice(list(tools)) for _ in range(count - 2)]
            rng.shuffle(chosen)
        elif style in ("simple", "parallel"):
            chosen = [tools[0]] * count
        else:
            chosen = [rng.choice(list(tools)) for _ in range(count)]
        calls = [call for call in (_call(rng, tool, pools) for tool in chosen) if call is not None]
        if len(calls) < len(chosen):
            continue
        if len({json.dumps(call.model_dump(), sort_keys=True) for call in calls}) == len(calls):
            return calls
    return []
