"""Argument grounding: is every argument value the model wrote supported by the query text?

A deterministic check, no model. Rules (reason code ``ungrounded_argument``):

- Strings: grounded when their normalised words (case folded, accents, quotes and punctuation
  dropped, a plural ``s``/``es`` dropped) occur in order in the normalised query; an ISO date
  ``YYYY-MM-DD`` when the query states that date in a common format (``2024-03-05``,
  ``05/03/2024``, ``March 5, 2024``, ``5 March 2024``, or ``March 2024`` for its first and last
  day); a numeric string when the number is grounded.
- Numbers: grounded when the query states the same number, or the same number without its sign
  (direction words such as "back", "before", "minus" or "brakes" carry the sign), as:
  digits (separators allowed, glued to letters or units allowed: ``1,200``, ``5km``, ``ROT13``);
  scientific notation (``1.6 x 10^-19``, ``6.02e23``); words (``twenty five``, ``a dozen``,
  ``half``, ``a fortnight``; periods per year: ``quarterly`` = 4, ``monthly`` = 12, ``weekly``
  = 52, ``daily`` = 365); a percentage (``60%`` grounds 60 and 0.6); a fraction (``3/4`` grounds
  0.75); with a scale (``10k``, ``2.5 million``, ``half a
  million``); or converted from the unit written next to it, between seconds, minutes, hours,
  days and weeks, millimetres, centimetres, metres and kilometres, grams and kilograms (``185
  cm`` grounds 1.85, ``an hour and a half`` grounds 90, ``a week`` grounds 7).
- Clock times ``HH:MM`` (or ``HH:MM:00``): grounded when the query states the time (``14:30``,
  ``2:30 pm``, ``noon``, ``2 in the afternoon``).
- Lists: every element is grounded. Objects: every value is grounded (keys are schema, not text).
- Allowed values (``enum``): grounded when the query names them, by the value's words
  (``single_line``: "single line", "one line") or, for a unit code, by a name of the unit
  ("kilometres" for ``km``, "°F" for ``fahrenheit``) or its symbol after a number ("30 in",
  "293.15 K"). A parameter with one allowed value passes on. Drawn calls
  (calls-first) hold allowed values the request may never mention (issue 38).
- Passed on to the semantic stage, since the text alone cannot judge them: booleans and nulls,
  values equal to the parameter's ``default``, the numbers 0 and 1 (usually implied: "starts at
  rest", "a file"), and the empty string.
- Strings of symbols only (a separator, a marker): grounded when the query writes them apart from
  other text (``'_'``, "joined with -") or names each symbol ("underscores", "a dash"). A drawn
  ``ellipsis="-"`` for "Shorten '...' to 33 characters" is invented, and ``caesar_cipher(text="}}]},
  {")`` is not a separator (issue 38).

Two more rules catch values in the wrong place (measured on the labelled real rows of issue 29):

- ``reused_value``: one call uses the same value more times, across its arguments and their
  lists, than the query states it (``permutation_count(n=28, k=28)`` for "permutations of 28";
  ``a=[212, 212], b=[212, 212]`` for "the point 212"). Zero may repeat (the origin is ``[0, 0]``).
- ``regrouped_value``: when the query writes bracketed groups of numbers (``(2, 2, 1) and (1, 2,
  1)``), a list made of their numbers is one of those groups, or all of them joined in order.

- ``fragment_value``: a string that starts or ends with a space, a comma, a semicolon or a colon
  (``check_stock(plant=", 1000")``) is a piece of the query cut at its punctuation, not a value,
  though the query holds it.

A string exactly as long as the generation bound (``max_string_chars``, see
:mod:`apigen_local.model.bounds`) was most likely cut there by the constraint: it is grounded
only when the query states it whole, followed by no further letter, digit or word (reason
``cut_value``).

Everything else a query implies without stating it (``k`` = 3 for "gold, silver and bronze", a
country's calling code) is rejected: grounding prefers a false reject to an invented value.
"""

from __future__ import annotations

import bisect
import calendar
import math
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Final, Literal, NamedTuple

from ..types import CheckResult, FunctionCall, Tool
from . import implied

GroundingMode = Literal["strict", "implied"]

UNGROUNDED_ARGUMENT: Final = "ungrounded_argument"
CUT_VALUE: Final = "cut_value"
FRAGMENT_VALUE: Final = "fragment_value"
REUSED_VALUE: Final = "reused_value"
REGROUPED_VALUE: Final = "regrouped_value"
_FLAG_WORDS = frozenset({"true", "false", "yes", "no", "none", "null"})  # flags written as text repeat freely
_MAX_SHOWN = 80
_QUERY_CACHE = 16  # queries whose parsed facts are kept (one row is checked at a time)

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_STANDALONE = {
    "dozen": 12, "half": 0.5, "quarter": 0.25, "third": 1 / 3, "double": 2, "twice": 2, "triple": 3,
    "fortnight": 14,
    "daily": 365, "weekly": 52, "monthly": 12, "quarterly": 4, "semiannually": 2, "biannually": 2,
}
_MONTHS = implied.MONTHS
_NUMBER_RE = re.compile(
    r"(?<![\d.^])[-+]?(?:\d{1,3}(?:[, ]\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?\s*(%|percent)?"
)
#: scientific notation: ``1.6 x 10^-19``, ``1.6 times 10^(-19)`` (also with the multiplication
#: sign), ``6.02 * 10^23``, ``1.6e-19``
_SCIENTIFIC_RE = re.compile(
    r"(?<![\d.])(\d+(?:\.\d+)?)\s*(?:(?:[x\u00d7*]|times)\s*10\s*(?:\^|\*\*)\s*\(?\s*|[eE])([-+\u2212]?\d{1,3})\b")
_SCALE_WORDS = {"k": 1e3, "thousand": 1e3, "million": 1e6, "billion": 1e9, "bn": 1e9}
#: unit word -> (dimension, size in the dimension's base unit)
UNITS_OF_MEASURE: dict[str, tuple[str, float]] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), ("time", 1.0)),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), ("time", 60.0)),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), ("time", 3600.0)),
    **dict.fromkeys(("day", "days"), ("time", 86400.0)),
    **dict.fromkeys(("week", "weeks"), ("time", 604800.0)),
    **dict.fromkeys(("fortnight", "fortnights"), ("time", 1209600.0)),
    **dict.fromkeys(("mm", "millimetre", "millimetres", "millimeter", "millimeters"), ("length", 0.001)),
    **dict.fromkeys(("cm", "centimetre", "centimetres", "centimeter", "centimeters"), ("length", 0.01)),
    **dict.fromkeys(("metre", "metres", "meter", "meters"), ("length", 1.0)),
    **dict.fromkeys(("km", "kilometre", "kilometres", "kilometer", "kilometers"), ("length", 1000.0)),
    **dict.fromkeys(("g", "gram", "grams"), ("mass", 0.001)),
    **dict.fromkeys(("kg", "kilo", "kilos", "kilogram", "kilograms"), ("mass", 1.0)),
}
_WORD_TOKEN_RE = re.compile(r"\d+(?:\.\d+)?|[a-z]+")


def converted(quantity: float, unit: str) -> set[float]:
    """``quantity`` of ``unit`` expressed in every other unit of the same dimension."""
    dimension, size = UNITS_OF_MEASURE[unit]
    return {quantity * size / other for dim, other in set(UNITS_OF_MEASURE.values()) if dim == dimension}


def _quantities(query: str) -> set[float]:
    """Numbers a scale word or a unit of measure turns into others: ``10k``, ``half a million``,
    ``185 cm``, ``an hour and a half``, ``a week``."""
    words = _WORD_TOKEN_RE.findall(query.casefold().replace(",", "").replace("-", " "))
    found: set[float] = set()
    for i, word in enumerate(words):
        if word not in _SCALE_WORDS and word not in UNITS_OF_MEASURE:
            continue
        before = words[max(0, i - 3):i]
        quantity: float | None = None
        if before and re.fullmatch(r"\d+(?:\.\d+)?", before[-1]):
            quantity = float(before[-1])
        elif before and before[-1] in _UNITS:
            quantity = float(_UNITS[before[-1]])
        elif before[-2:] == ["half", "a"] or before[-2:] == ["half", "an"]:
            quantity = 0.5
        elif before and before[-1] in ("a", "an", "one"):
            quantity = 1.0
        if quantity is None:
            continue
        if words[i + 1:i + 4] == ["and", "a", "half"]:
            quantity += 0.5
        if word in _SCALE_WORDS:
            found.add(quantity * _SCALE_WORDS[word])
        elif word in UNITS_OF_MEASURE:
            found |= converted(quantity, word)
    return found


_ISO_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::00)?$")


def normalise_text(text: str) -> str:
    """Case folded, accents and quotes dropped, punctuation turned to spaces, spacing collapsed."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = re.sub(r"[^\w]+", " ", text)
    return " ".join(text.split())


#: scripts written without spaces between words (Han, kana, Thai, Lao, Khmer, Myanmar) and Hangul,
#: whose words take suffixes (see :func:`_unspaced_text`, an implied rule)
_UNSPACED_SCRIPT = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf"
                              "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


@lru_cache(maxsize=_QUERY_CACHE)
def _compact(text: str) -> str:
    """``text`` in NFKC, case folded, with every non-word character dropped."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).casefold())


def _unspaced_text(value: str, query: str) -> bool:
    """Text of two or more characters in a script written without spaces (or with suffixed words)
    that the query holds, not next to a digit where the value starts or ends with one ("1月3日"
    is not in "11月3日")."""
    text = _compact(value)
    if len(text) < 2 or not _UNSPACED_SCRIPT.search(value):
        return False
    said = _compact(query)
    start = said.find(text)
    while start >= 0:
        end = start + len(text)
        if not ((text[0].isdigit() and start > 0 and said[start - 1].isdigit())
                or (text[-1].isdigit() and end < len(said) and said[end].isdigit())):
            return True
        start = said.find(text, start + 1)
    return False


def singular(text: str) -> str:
    """``text`` normalised, each word without a plural ``s`` or ``es``."""
    words = []
    for word in normalise_text(text).split():
        if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
            word = word[:-2]
        elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
            word = word[:-1]
        words.append(word)
    return " ".join(words)


def _word_numbers(words: list[str]) -> set[float]:
    """Numbers written as words: every maximal run of number words, plus 'a dozen'-style words."""
    found: set[float] = set()
    total = current = 0.0
    in_run = False
    for i, word in enumerate(words + [""]):
        if word in _UNITS:
            current += _UNITS[word]
            in_run = True
        elif word in _SCALES and in_run:
            current = max(current, 1) * _SCALES[word]
            if _SCALES[word] >= 1000:
                total, current = total + current, 0.0
        elif word in ("and",) and in_run:
            continue
        else:
            if in_run:
                found.add(total + current)
                multiplier = total + current
                if word in ("dozen", "hundred"):
                    found.add(multiplier * (12 if word == "dozen" else 100))
                if word in ("percent",):
                    found.add(multiplier / 100)
            total = current = 0.0
            in_run = False
            if word in _STANDALONE:
                found.add(float(_STANDALONE[word]))
                if word == "dozen" and i > 0 and words[i - 1] == "half":
                    found.add(6.0)
    return found


@lru_cache(maxsize=_QUERY_CACHE)
def query_numbers(query: str) -> frozenset[float]:
    """Every number the query states, in any of the forms the module docstring lists."""
    found: set[float] = set()
    for match in _NUMBER_RE.finditer(query):
        text = match.group(0)
        percent = match.group(1) is not None
        body = re.sub(r"(%|percent)$", "", text).strip().replace(",", "")
        if "/" in body:
            num, den = (part.strip() for part in body.split("/", 1))
            if float(den) != 0:
                found.add(float(num.replace(" ", "")) / float(den))
            found.add(float(num.replace(" ", "")))
            continue
        plain = body.replace(" ", "")
        value = float(plain)
        found.add(value)
        if " " in body:  # "1 000" could also be two numbers
            found.update(float(part) for part in body.split())
        if percent:
            found.add(value / 100)
    words = normalise_text(query.replace("semi-", "semi").replace("-", " ")).split()
    found |= _word_numbers(words)
    found |= _quantities(query)
    found |= {float(m[1]) * 10.0 ** int(m[2].replace("\u2212", "-")) for m in _SCIENTIFIC_RE.finditer(query)}
    return frozenset(found)


@lru_cache(maxsize=_QUERY_CACHE)
def query_dates(query: str) -> frozenset[tuple[int, int, int]]:
    """``(year, month, day)`` of every date written in a common format in the query."""
    dates: set[tuple[int, int, int]] = set()
    text = query.casefold()
    for y, m, d in re.findall(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b", text):
        dates.add((int(y), int(m), int(d)))
    for a, b, y in re.findall(r"\b(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})\b", text):
        dates.update({(int(y), int(a), int(b)), (int(y), int(b), int(a))})  # US and European order
    month = r"([a-z]{3,9})\.?"
    for name, d, y in re.findall(rf"\b{month}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", text):
        if name in _MONTHS:
            dates.add((int(y), _MONTHS[name], int(d)))
    for d, name, y in re.findall(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{month},?\s+(\d{{4}})\b", text):
        if name in _MONTHS:
            dates.add((int(y), _MONTHS[name], int(d)))
    for name, y in re.findall(rf"\b{month}\s+(\d{{4}})\b", text):  # a whole month: its first and last day
        if name in _MONTHS:
            year, number = int(y), _MONTHS[name]
            dates |= {(year, number, 1), (year, number, calendar.monthrange(year, number)[1])}
    return frozenset(dates)


CLOCK_RE = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*([ap]\.?m\.?)?(?!\w)", re.IGNORECASE)


def clock_times(query: str) -> list[tuple[re.Match[str], tuple[int, int]]]:
    """Each clock time written with digits (``14:30``, ``2:30 pm``, ``2pm``) and its 24-hour ``(hour, minute)``."""
    found = []
    for match in CLOCK_RE.finditer(query):
        hour, minute, half = match[1], match[2], (match[3] or "").casefold()
        if not minute and not half:
            continue
        h, m = int(hour), int(minute or 0)
        if half.startswith("p") and h < 12:
            h += 12
        elif half.startswith("a") and h == 12:
            h = 0
        found.append((match, (h, m)))
    return found


_PART_OF_DAY_RE = re.compile(r"\b(?:at|by|around|from|until|till|to)\s+(\d{1,2})(?::(\d{2}))?\s+(?:o'?clock\s+)?"
                             r"(?:in\s+the\s+(morning|afternoon|evening)|at\s+(night))\b", re.IGNORECASE)


@lru_cache(maxsize=_QUERY_CACHE)
def query_times(query: str) -> frozenset[tuple[int, int]]:
    """``(hour, minute)`` of every clock time in the query, ``noon`` and ``midday`` included, and
    hours given a part of the day after "at", "by", "from", ... ("at 2 in the afternoon", "by 11
    at night"; "a table for 4 in the evening" is a party, not a time)."""
    times = {(12, 0)} if re.search(r"\bnoon\b|\bmidday\b", query, re.IGNORECASE) else set()
    for hour, minute, part, night in _PART_OF_DAY_RE.findall(query):
        h = int(hour)
        if h <= 12:
            later = part.casefold() in ("afternoon", "evening") or (night and 6 <= h < 12)
            times.add((h % 12 + 12 if later else h % 12, int(minute or 0)))  # "12 at night" is 0:00
    return frozenset(times | {time for _, time in clock_times(query)})


# A row's check reads its query once per argument value: these are worked out once per query, so a
# check's cost grows with the row's size, not with its size times its number of values.
@lru_cache(maxsize=_QUERY_CACHE)
def _spaced_singular(query: str) -> str:
    return f" {singular(query)} "


@lru_cache(maxsize=_QUERY_CACHE)
def _spaced_normalised(query: str) -> str:
    return f" {normalise_text(query)} "


def _same_number(value: float, candidates: frozenset[float]) -> bool:
    """Whether ``value``, or its size without the sign, is one of ``candidates``."""
    if value in candidates or -value in candidates:
        return True
    return close_count(value, _sizes(candidates), most=1) > 0


@lru_cache(maxsize=_QUERY_CACHE)
def _sizes(numbers: frozenset[float]) -> tuple[float, ...]:
    return tuple(sorted(abs(number) for number in numbers))


def close_count(value: float, sizes: Sequence[float], abs_tol: float = 0.0, most: float = math.inf) -> int:
    """How many of the sorted ``sizes`` (``most`` at most) are close to ``value``'s size
    (``math.isclose`` with ``rel_tol=1e-9``), found by bisection: each of a row's many values
    costs the log of the query's numbers, not their count."""
    size = abs(value)
    window = 3e-9 * size + 2 * abs_tol
    count = 0
    for index in range(bisect.bisect_left(sizes, size - window), bisect.bisect_right(sizes, size + window)):
        if count >= most:
            break
        count += math.isclose(size, sizes[index], rel_tol=1e-9, abs_tol=abs_tol)
    return count


def _number_of(text: str) -> float | None:
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# How a value is grounded (:func:`value_evidence`); the review page shows these per value.
STATED: Final = "stated"  # the query writes the text
STATED_NUMBER: Final = "stated_number"  # the query states the number (digits, words, units, ...)
STATED_TIME: Final = "stated_time"
STATED_DATE: Final = "stated_date"
FROM_ENUM: Final = "enum"  # one of the parameter's allowed values
FROM_DEFAULT: Final = "default"  # the parameter's default
PASSED_ON: Final = "passed_on"  # booleans, nulls, 0 and 1, "": left to the semantic stage


class Evidence(NamedTuple):
    """How one scalar of an argument value is grounded: its path inside the value (``""`` for the
    value itself, ``"[1]"``, ``".city"``), the scalar, and the rule that grounds it (``None``: none)."""

    path: str
    value: Any
    rule: str | None


def value_evidence(value: Any, query: str, schema: dict[str, Any] | None = None, path: str = "",
                   mode: GroundingMode = "strict") -> list[Evidence]:
    """The evidence for every scalar of ``value`` (one item for a value the schema grounds whole).
    In ``implied`` mode a string or number nothing states may be grounded by a rule of :mod:`.implied`."""
    schema = schema if isinstance(schema, dict) else {}
    enum = schema.get("enum")
    if "default" in schema and value == schema["default"] and value is not None and not isinstance(value, bool):
        return [Evidence(path, value, FROM_DEFAULT)]
    if isinstance(enum, list) and value in enum and value is not None and not isinstance(value, bool):
        if len(enum) == 1 or enum_named(value, query):
            return [Evidence(path, value, FROM_ENUM)]
        implied_ok = mode == "implied" and isinstance(value, str) and value.casefold() not in _ENUM_NAMES
        return [Evidence(path, value, _implied_rule(value, query, schema) if implied_ok else None)]
    if isinstance(value, list):
        items = schema.get("items")
        items = items if isinstance(items, dict) else {}
        if "description" not in items and isinstance(schema.get("description"), str):
            items = {**items, "description": schema["description"]}  # what the list's items stand for
        return [e for i, v in enumerate(value) for e in value_evidence(v, query, items, f"{path}[{i}]", mode)]
    if isinstance(value, dict):
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        return [e for k, v in value.items() for e in value_evidence(v, query, props.get(k), f"{path}.{k}", mode)]
    rule = _scalar_rule(value, query)
    if mode == "implied" and rule is None and isinstance(value, str | int | float) and not isinstance(value, bool):
        rule = _implied_rule(value, query, schema)
    elif mode == "implied" and rule == PASSED_ON and _described(value, query, schema):
        rule = _implied_rule(value, query, schema)  # a 0 or 1 the description gives: say so
    return [Evidence(path, value, rule)]


#: allowed values that are codes, and the words a request names them by
_ENUM_NAMES: dict[str, tuple[str, ...]] = {
    **{unit: tuple(word for word, size in UNITS_OF_MEASURE.items() if size == UNITS_OF_MEASURE[unit])
       for unit in ("mm", "cm", "km", "g", "kg", "s", "min", "h")},
    "m": ("metre", "metres", "meter", "meters"), "in": ("inch", "inches"), "ft": ("ft", "foot", "feet"),
    "yd": ("yd", "yard", "yards"), "mi": ("mi", "mile", "miles"),
    "celsius": ("celsius", "centigrade", "°c"), "fahrenheit": ("fahrenheit", "°f"), "kelvin": ("kelvin", "kelvins"),
    "single_line": ("single line", "single-line", "one line", "one-line"),
    "multi_line": ("multi line", "multi-line", "multiple lines", "separate lines", "several lines"),
}
#: a unit written as its symbol right after a number: "30 in", "293.15 K", "212 F"
_UNIT_SYMBOLS: dict[str, str] = {"m": "m", "in": "in", "ft": "ft", "yd": "yd", "mi": "mi", "km": "km", "cm": "cm",
                                 "mm": "mm", "g": "g", "kg": "kg", "s": "s", "min": "min", "h": "h",
                                 "celsius": "c", "fahrenheit": "f", "kelvin": "k"}


def enum_named(value: Any, query: str) -> bool:
    """Whether ``query`` names the allowed value ``value``: its words (``single_line`` as "single
    line"), or, for a unit code, a name of the unit ("kilometres" for ``km``). A number must be stated."""
    if not isinstance(value, str):
        return _scalar_rule(value, query) is not None
    names = _ENUM_NAMES.get(value.casefold())
    if names is not None:
        text = query.casefold()
        symbol = _UNIT_SYMBOLS.get(value.casefold())
        return any(re.search(rf"(?<![a-z]){re.escape(name)}(?![a-z])", text) for name in names) or \
            (len(value) > 2 and f" {value.casefold()} " in _spaced_singular(query)) or \
            (symbol is not None and re.search(rf"\d\s*°?{symbol}(?![a-z])", text) is not None) or \
            re.search(rf"\bunits? {re.escape(value.casefold())}(?![a-z])", text) is not None  # "from unit m"
    words = singular(re.sub(r"[_\-]+", " ", value)).split()
    spaced = _spaced_singular(query)
    return bool(words) and all(f" {word} " in spaced for word in words)


def value_grounded(value: Any, query: str, schema: dict[str, Any] | None = None,
                   mode: GroundingMode = "strict") -> bool:
    """Whether ``value`` is supported by ``query`` (or passed on as not judgeable from text)."""
    return all(evidence.rule is not None for evidence in value_evidence(value, query, schema, mode=mode))


def _implied_rule(value: str | float, query: str, schema: dict[str, Any]) -> str | None:
    """The rule of :mod:`.implied` that explains ``value`` (its parameter's ``schema`` may
    describe it), or ``None``."""
    stated = _stated_scalar
    description = schema.get("description")
    description = description if isinstance(description, str) else ""
    if not isinstance(value, str):
        if "month" in description.casefold() and implied.month_number(value, query):
            return implied.MONTH_NUMBER
        return _described_rule(value, query, description)
    if implied.json_text(value, query, lambda parsed: value_grounded(parsed, query)):
        return implied.JSON_TEXT
    if implied.joined_list(value, query, stated):
        return implied.JOINED_LIST
    if _unspaced_text(value, query):
        return implied.UNSPACED_TEXT
    if implied.place_nickname(value, query):
        return implied.PLACE_NICKNAME
    if implied.place_qualifier(value, query, lambda place, query: stated(place, query)
                               or implied.near_spelling(place, query)):
        return implied.PLACE_QUALIFIER
    date_rule = implied.date_value(value, query, query_dates(query), query_times(query))
    if date_rule:
        return date_rule
    if implied.near_spelling(value, query):
        return implied.NEAR_SPELLING
    if implied.word_order(value, query):
        return implied.WORD_ORDER
    if implied.region_code(value, query):
        return implied.REGION_CODE
    if implied.currency_code(value, query):
        return implied.CURRENCY_CODE
    if implied.described_format(value, query, description, stated):
        return implied.DESCRIBED_FORMAT
    return _described_rule(value, query, description)


def _described(value: Any, query: str, schema: Any) -> bool:
    """Whether the parameter's description gives ``value`` (a scalar) for what the query names, or
    as its default: such a value is the description's, so it may repeat another argument's."""
    description = schema.get("description") if isinstance(schema, dict) else None
    if not isinstance(description, str) or isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    return _described_rule(value, query, description) is not None


def _stated_scalar(text: str, query: str) -> bool:
    """Whether a strict rule grounds ``text`` in ``query``."""
    return _scalar_rule(text, query) is not None


def _described_rule(value: str | float, query: str, description: str) -> str | None:
    """The rule by which the parameter's ``description`` gives ``value``, or ``None``."""
    if implied.described_code(value, query, description, _stated_scalar):
        return implied.DESCRIBED_CODE
    if implied.described_default(value, description):
        return implied.DESCRIBED_DEFAULT
    return None


#: the words a request names a symbol by (a plural "s" or "es" may follow)
_SYMBOL_NAMES: dict[str, tuple[str, ...]] = {
    "_": ("underscore",), "-": ("hyphen", "dash", "minus"), "\u2013": ("dash",), "\u2014": ("dash",),
    " ": ("space", "blank"), "\n": ("newline", "new line", "line break"), "\t": ("tab",),
    ",": ("comma",), ".": ("dot", "period", "full stop"), "/": ("slash",), "\\": ("backslash",),
    "|": ("pipe", "vertical bar"), ":": ("colon",), ";": ("semicolon",), "+": ("plus",), "*": ("asterisk", "star"),
    "#": ("hash", "pound sign"), "~": ("tilde",), "&": ("ampersand",), "=": ("equals sign", "equal sign"),
    "…": ("ellipsis",), "'": ("apostrophe", "single quote"), '"': ("double quote",),
}
_SYMBOL_EDGE = r"\s'\"`()\[\]"


def symbols_stated(value: str, query: str) -> bool:
    """Whether ``query`` states ``value``, a string of symbols only: written apart from other text
    (``'_'``, "joined with -", "use ' | '"), or each of its symbols named ("underscores", "a dash";
    "..." as "an ellipsis")."""
    symbols = value.strip() or value
    if re.search(rf"(^|[{_SYMBOL_EDGE}]){re.escape(symbols)}($|[{_SYMBOL_EDGE},.;:?!])", query):
        return True
    text = query.casefold()
    names = ("ellipsis", "three dots") if symbols in ("...", "…") else None
    if names is not None:
        return any(name in text for name in names)
    return all(any(re.search(rf"\b{re.escape(name)}(e?s)?\b", text) for name in _SYMBOL_NAMES.get(symbol, ()))
               for symbol in set(symbols))


def _scalar_rule(value: Any, query: str) -> str | None:
    """The rule that grounds one scalar in ``query``, or ``None``."""
    if value is None or isinstance(value, bool):
        return PASSED_ON
    if isinstance(value, int | float):
        if value in (0, 1):
            return PASSED_ON
        return STATED_NUMBER if _same_number(float(value), query_numbers(query)) else None
    if not isinstance(value, str):
        return None
    if not value:
        return PASSED_ON
    if not any(ch.isalnum() for ch in value):
        return STATED if symbols_stated(value, query) else None
    if f" {singular(value)} " in _spaced_singular(query):
        return STATED
    clock = _TIME_RE.match(value.strip())
    if clock:
        return STATED_TIME if (int(clock[1]), int(clock[2])) in query_times(query) else None
    iso = _ISO_DATE_RE.match(value.strip())
    if iso:
        return STATED_DATE if tuple(int(p) for p in iso.groups()) in query_dates(query) else None
    number = _number_of(value.strip())
    if number is None:
        return None
    if number in (0, 1):
        return PASSED_ON
    return STATED_NUMBER if _same_number(number, query_numbers(query)) else None


def _leaves(value: Any) -> list[Any]:
    """A value's scalars: itself, or every element of its lists and every value of its objects."""
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    return [value]


def stated_whole(value: str, query: str) -> bool:
    """Whether ``query`` states ``value`` and does not go on with more of the same text after it."""
    text, part = query.casefold(), value.casefold()
    start = text.find(part)
    while start >= 0:
        rest = text[start + len(part):]
        if not re.match(r"\s*[^\W_]", rest):
            return True
        start = text.find(part, start + 1)
    return False


def _value_key(value: Any) -> tuple[str, Any] | None:
    """What two argument values compare equal by: the number they state, or their normalised text."""
    if isinstance(value, bool) or value is None or isinstance(value, list | dict):
        return None
    number = float(value) if isinstance(value, int | float) else _number_of(str(value).strip())
    if number == 0:  # zeros repeat by nature: the origin is [0, 0]
        return None
    if number is not None:
        return ("number", number)
    text = normalise_text(str(value))
    return ("text", text) if text and text not in _FLAG_WORDS else None


def _times_stated(key: tuple[str, Any], query: str) -> int:
    """How many times ``query`` states the value of ``key`` (see :func:`_value_key`)."""
    kind, value = key
    if kind == "text":
        return _spaced_normalised(query).count(f" {value} ")
    return close_count(value, _digit_numbers(query))


@lru_cache(maxsize=_QUERY_CACHE)
def _digit_numbers(query: str) -> tuple[float, ...]:
    """Every number the query writes in digits, once per time it writes it, sorted."""
    stated = (_number_of(text) for text in re.findall(r"\d+(?:,\d{3})*(?:\.\d+)?", query))
    return tuple(sorted(number for number in stated if number is not None))


def reused_value(query: str, call: FunctionCall, described: frozenset[str] = frozenset()) -> str | None:
    """The arguments of ``call`` that use one value (alone or inside lists) more times than
    ``query`` states it, or ``None``. The ``described`` arguments are left out: their values come
    from their parameters' descriptions, not from the query's words."""
    uses: dict[tuple[str, Any], list[str]] = {}
    for name, value in call.arguments.items():
        if name in described:
            continue
        for leaf in _leaves(value):
            key = _value_key(leaf)
            if key is not None:
                uses.setdefault(key, []).append(name)
    for key, names in uses.items():
        if len(names) > 1 and _times_stated(key, query) < len(names):
            return ", ".join(dict.fromkeys(names))
    return None


_GROUP_RE = re.compile(r"[(\[]\s*(-?\d+(?:\.\d+)?(?:\s*,\s*-?\d+(?:\.\d+)?)+)\s*[)\]]")


@lru_cache(maxsize=_QUERY_CACHE)
def _groups(query: str) -> tuple[frozenset[tuple[float, ...]], tuple[float, ...], frozenset[float]]:
    """The bracketed groups of numbers the query writes (``(2, 2, 1)``, ``[3, 4]``), all of them
    joined in order, and their numbers."""
    groups = [tuple(float(part) for part in match[1].split(",")) for match in _GROUP_RE.finditer(query)]
    joined = tuple(number for group in groups for number in group)
    return frozenset(groups), joined, frozenset(joined)


def regrouped_value(query: str, call: FunctionCall) -> str | None:
    """The first list of numbers in ``call`` made of numbers from the query's bracketed groups that
    is none of those groups (nor all of them joined); or ``None``. A list with a number from
    outside the groups (the origin's ``[0, 0]``) is grounding's to judge."""
    groups, joined, numbers_of_groups = _groups(query)
    for name, value in call.arguments.items():
        if (isinstance(value, list) and len(value) >= 2
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
            numbers = tuple(float(v) for v in value)
            if set(numbers) <= numbers_of_groups and numbers not in groups and numbers != joined:
                return name
    return None


def check_grounding(query: str, calls: Sequence[FunctionCall], tools: Sequence[Tool], *,
                    string_bound: int | None = None, mode: GroundingMode = "strict") -> CheckResult:
    """Fail on the first argument value of ``calls`` that ``query`` does not support, that sits
    in the wrong place, or that was cut at ``string_bound`` characters (the bound the rows were
    generated under; ``None`` for rows written without one). In ``implied`` mode a passing
    result's detail lists every value an implied rule accepted, with its rule."""
    params = {t.name: t.parameters.get("properties", {}) for t in tools}
    implied_values: list[str] = []
    for call in calls:
        props = params.get(call.name)
        props = props if isinstance(props, dict) else {}
        described = frozenset(name for name, value in call.arguments.items()
                              if mode == "implied" and _described(value, query, props.get(name)))
        reused = reused_value(query, call, described)
        if reused:
            return CheckResult.fail(REUSED_VALUE, f"{call.name}: {reused} use one value more times than the "
                                                  f"query states it.")
        regrouped = regrouped_value(query, call)
        if regrouped:
            return CheckResult.fail(REGROUPED_VALUE, f"{call.name}: {regrouped!r} is not one of the groups of "
                                                     f"numbers the query writes.")
        for name, value in call.arguments.items():
            for text in (leaf for leaf in _leaves(value) if isinstance(leaf, str)):
                if string_bound and len(text) >= string_bound and not stated_whole(text, query):
                    return CheckResult.fail(CUT_VALUE, f"{call.name}: argument {name!r} stops at the "
                                                       f"{string_bound}-character bound mid-text.")
                if fragment(text):
                    return CheckResult.fail(FRAGMENT_VALUE, f"{call.name}: argument {name!r} = {_shown(text)} is a "
                                                            "piece of the query cut at its punctuation, not a value.")
            evidence = value_evidence(value, query, props.get(name), mode=mode)
            if any(e.rule is None for e in evidence):
                return CheckResult.fail(
                    UNGROUNDED_ARGUMENT, f"{call.name}: argument {name!r} = {_shown(value)} is not stated in the query."
                )
            implied_values += [f"{call.name}.{name}{e.path} = {_shown(e.value)} ({e.rule})"
                               for e in evidence if e.rule and e.rule.startswith("implied:")]
    return CheckResult(passed=True, detail="; ".join(implied_values))


_FRAGMENT_EDGE = re.compile(r"^(\s|[,;:])|(\s|[,;:(])$")


def fragment(text: str) -> bool:
    """Whether the string ``text`` is a cut piece of text rather than a value: it holds a letter or
    digit and starts or ends with a space or a clause's punctuation (``", 1000"``, ``"rose,"``)."""
    return any(c.isalnum() for c in text) and _FRAGMENT_EDGE.search(text) is not None


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= _MAX_SHOWN else shown[: _MAX_SHOWN - 3] + "..."
