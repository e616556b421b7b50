"""Query coverage: does every number the query states reach some call? (part of the semantic stage)

Grounding asks whether each argument comes from the query; coverage asks the reverse, for the
values a deterministic reader can find: numbers written with digits. A call dropped from a
multi-part request, a list cut short, or a query that belongs to other calls leaves a stated
number unused. Rules (reason code ``unused_query_value``):

- A mention is a number written with digits (separators, decimals, ``%``, fractions, a unit or
  ``k``/``thousand``/``million``/``billion`` after it allowed; not an exponent such as ``m/s^2``).
  Number words are not mentions: "two cities" is usually a count, not an argument.
- It is used when some argument equals one of its readings, with or without its sign (``7%``
  reads as 7 and 0.07, ``3/4`` as 0.75, ``1.5 million`` as 1,500,000, ``185 cm`` as 1.85 m; the
  unit conversions are grounding's), or when it occurs as a number inside a string argument
  (dates, addresses, free text).
- Not required: 0 and 1, and a count equal to the number of calls or to the length of a list
  argument ("these 3 numbers: 7, 11, 13").
- A date written with digits (``2023.10.1``, ``05/15/2023``) is one mention: it is used when its
  year, month and day are all among the calls' numbers (``"2023-10-01"`` uses ``2023.10.1``).
  The day a query states as today ("today is 2023.10.1", "today is Monday April 25th 2023") is
  the reference of its relative dates, not a mention.
- Quoted text (``'...'``, ``"..."``, curly quotes) is a mention too: it is used when its
  normalised words occur in some string argument. So is a clock time (``2pm``, ``14:30``): it is
  used when a string argument holds it as ``HH:MM`` or as the query wrote it.
- A list of strings is the whole enumeration the query writes around it (when the query states
  its items within one sentence): after the last of its
  items the query states, "and X" or "or X" (X a few words: at most a word longer than the
  list's items, with digits only if they have some) is an item the list leaves out ("Merge the
  tags travel, Food and budget" for ``["travel", "Food"]``), and ", X" with X one of the list's
  own items is an item stated twice that the list holds once ("Sort Amy, Bob, Amy" for
  ``["Amy", "Bob"]``); ", X" with another X may be another argument (", descending"). Two lists
  of one call are two enumerations: "and X" or ", X" with X an item of the other list runs them
  together ("Merge the tags travel, Food and photos" for ``first=["travel", "Food"],
  second=["photos"]``), unless X starts with the other list's name ("first budget, Food, and
  second food, photos").
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from typing import Any, Final

from ..types import CheckResult, FunctionCall
from .grounding import UNITS_OF_MEASURE, clock_times, close_count, converted, singular

UNUSED_QUERY_VALUE: Final = "unused_query_value"

_MENTION_RE = re.compile(
    r"(?<![\w.^])(?P<num>[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)"
    r"(?:\s*/\s*(?P<den>\d+))?"
    r"\s*(?:(?P<suffix>%|percent\b|k\b|thousand\b|million\b|billion\b)|(?P<unit>[a-z]+)\b)?",
    re.IGNORECASE,
)
_SCALE = {"k": 1e3, "thousand": 1e3, "million": 1e6, "billion": 1e9}
_STRING_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
_QUOTED_RE = re.compile(
    r"(?<!\w)(?:'([^'\n]{2,}?)'|\"([^\"\n]{2,}?)\"|\u2018([^\u2019\n]{2,}?)\u2019|\u201c([^\u201d\n]{2,}?)\u201d)(?!\w)"
)


def mentions(query: str) -> list[tuple[str, set[float]]]:
    """Each digit-written number in ``query`` as ``(text, readings)``."""
    found: list[tuple[str, set[float]]] = []
    for match in _MENTION_RE.finditer(query):
        value = float(match["num"].replace(",", ""))
        readings = {value}
        suffix = (match["suffix"] or "").casefold()
        if match["den"] is not None and float(match["den"]) != 0:
            readings.add(value / float(match["den"]))
        if suffix in ("%", "percent"):
            readings.add(value / 100)
        elif suffix in _SCALE:
            readings.add(value * _SCALE[suffix])
        unit = (match["unit"] or "").casefold()
        if unit in UNITS_OF_MEASURE:
            readings |= converted(value, unit)
        end = match.start("unit") if match["unit"] else match.end()
        found.append((query[match.start():end].strip(), readings))
    return found


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for inner in value.values():
            yield from _leaves(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _leaves(inner)
    else:
        yield value


def _used_numbers(calls: Sequence[FunctionCall]) -> tuple[list[float], set[float]]:
    """The sizes of the numbers the calls use (numeric leaves and numbers inside strings), sorted,
    and the allowed counts."""
    used: list[float] = []
    counts = {float(len(calls))}
    for call in calls:
        for value in call.arguments.values():
            if isinstance(value, list):
                counts.add(float(len(value)))
            for leaf in _leaves(value):
                if isinstance(leaf, bool) or leaf is None:
                    continue
                if isinstance(leaf, int | float) and math.isfinite(leaf):
                    used.append(float(leaf))
                elif isinstance(leaf, str):
                    used += [float(n) for n in _STRING_NUMBER_RE.findall(leaf)]
    return sorted(map(abs, used)), counts


def quoted(query: str) -> list[str]:
    """The quoted spans of ``query``."""
    return [next(group for group in match.groups() if group) for match in _QUOTED_RE.finditer(query)]


_NUMERIC_DATE_RE = re.compile(r"(?<![\w.])(?:(\d{4})([-/.])(\d{1,2})\2(\d{1,2})"
                              r"|(\d{1,2})([-/.])(\d{1,2})\6(\d{4}))(?![\w])")
_TODAY_RE = re.compile(r"\btoday(?:'s date)?\s*(?:is|=|:)\s*[^.?!\n]{0,40}", re.IGNORECASE)


def _blanked(query: str, spans: Sequence[tuple[int, int]]) -> str:
    """``query`` with each of the ordered, non-overlapping ``spans`` turned to spaces, in one pass."""
    parts, done = [], 0
    for start, end in spans:
        parts += [query[done:start], " " * (end - start)]
        done = end
    return "".join(parts) + query[done:]


def _dates_checked(query: str, used: Sequence[float]) -> tuple[str, str | None]:
    """``query`` without the day it states as today ("today is 2023.10.1": the reference of a
    relative date, not an argument) and without the numeric dates some call uses (its year, month
    and day all among the calls' numbers, in any format); with the first date no call uses, if any.
    ``used`` holds the sizes of the calls' numbers, sorted."""
    query = _blanked(query, [match.span() for match in _TODAY_RE.finditer(query)])
    dates = []
    for match in _NUMERIC_DATE_RE.finditer(query):
        parts = [float(n) for n in match.groups() if n and n.isdigit()]
        if not all(close_count(part, used, most=1) for part in parts):
            return query, match[0]
        dates.append(match.span())
    return _blanked(query, dates), None


#: what may follow the last stated item of a list: a joining word or a comma, then the next item
_NEXT_ITEM_RE = re.compile(
    r"(?P<joint>\s*,\s*(?:and|or)\s+|\s+(?:and|or)\s+|\s*,\s*)['\"\u2018\u201c]?"
    r"(?P<item>[^,.;:?!()'\"\u2019\u201d]+?)['\"\u2019\u201d]?"
    r"(?=\s*(?:[,.;:?!()]|$)|\s+(?:and|or|with|by|to|into|in|from|for|using|as|on|at|then|alphabetically|"
    r"descending|ascending|but|so|that|which|please)\b)", re.IGNORECASE)
#: the most words an enumerated item has
_ITEM_WORDS = 4
_SENTENCE_END_RE = re.compile(r"[.?!]\s")


def _item_shaped(text: str, items: Sequence[str]) -> bool:
    """Whether ``text`` could be one more of ``items``: at most one word longer than the longest
    (and :data:`_ITEM_WORDS`), with digits only if some item has them ("and 6 nights somewhere
    mild" after ``["hiking"]`` is another argument)."""
    longest = max(len(item.split()) for item in items)
    digits = any(char.isdigit() for item in items for char in item)
    return len(text.split()) <= min(_ITEM_WORDS, longest + 1) and (digits or not any(c.isdigit() for c in text))


def _stated_end(query: str, item: str) -> int | None:
    """Where ``item`` ends in ``query``: its first occurrence as written, else ignoring case."""
    found = query.find(item)
    if found < 0:
        found = query.casefold().find(item.casefold())
    return None if found < 0 else found + len(item)


def unstated_list_item(query: str, items: Sequence[str], others: Sequence[str] = (),
                       labels: Sequence[str] = ()) -> str | None:
    """The item ``query`` enumerates after the list ``items`` but the list leaves out, or that
    belongs to another list of the call (``others``), see the module; or ``None``. What follows
    the name of another list (``labels``: "..., and second food") starts that list. A list whose
    items are not all stated is grounding's to judge."""
    if not items or any(len(item.strip()) < 2 for item in items):
        return None
    ends = [_stated_end(query, item) for item in items]
    if any(end is None for end in ends):
        return None
    starts = [end - len(item) for end, item in zip(ends, items, strict=True)]  # type: ignore[operator]
    if _SENTENCE_END_RE.search(query, min(starts), max(ends)):  # type: ignore[type-var]
        return None  # the items are found in different sentences: not one enumeration
    following = _NEXT_ITEM_RE.match(query, max(ends))  # type: ignore[type-var]
    if following is None or not _item_shaped(following["item"].strip(), items):
        return None
    item, folded = following["item"].strip(), [existing.casefold() for existing in items]
    if item.split()[0].casefold() in {label.casefold() for label in labels}:
        return None
    if following["joint"].strip() != "," or item.casefold() in {other.casefold() for other in others}:
        return item
    once = len(set(folded)) == len(folded)
    return item if once and item.casefold() in folded else None


def check_coverage(query: str, calls: Sequence[FunctionCall]) -> CheckResult:
    """Fail on the first digit-written number, quoted text or enumerated list item of ``query``
    that no call uses."""
    for call in calls:
        lists = {name: value for name, value in call.arguments.items()
                 if isinstance(value, list) and value and all(isinstance(item, str) for item in value)}
        for name, value in lists.items():
            others = [item for other, items in lists.items() if other != name for item in items]
            left_out = unstated_list_item(query, value, others, [other for other in lists if other != name])
            if left_out is not None:
                return CheckResult.fail(UNUSED_QUERY_VALUE, f"the query lists {left_out!r} with {name}, "
                                        "but no call uses it.")
    strings = [leaf for call in calls for leaf in _leaves(call.arguments) if isinstance(leaf, str)]
    # every string argument in one text, each apart from the next (a separator no quoted span and
    # no clock time holds), so that each mention is one search, not one search per argument
    texts = "\n".join(f" {singular(text)} " for text in strings)
    for span in quoted(query):
        words = singular(span)
        if words and f" {words} " not in texts:
            return CheckResult.fail(UNUSED_QUERY_VALUE, f"the query quotes {span!r}, but no call uses it.")
    folded = "\0".join(text.casefold() for text in strings)
    times = clock_times(query)
    for match, (hour, minute) in times:
        written = (f"{hour:02d}:{minute:02d}", f"{hour}:{minute:02d}", match[0].casefold())
        if not any(form in folded for form in written):
            return CheckResult.fail(UNUSED_QUERY_VALUE, f"the query states {match[0]!r}, but no call uses it.")
    query = _blanked(query, [match.span() for match, _ in times])
    used, counts = _used_numbers(calls)
    query, unused_date = _dates_checked(query, used)
    if unused_date is not None:
        return CheckResult.fail(UNUSED_QUERY_VALUE, f"the query states {unused_date!r}, but no call uses it.")
    for text, readings in mentions(query):
        if readings & {0.0, 1.0} or readings & counts:
            continue
        if not any(close_count(reading, used, abs_tol=1e-9, most=1) for reading in readings):
            return CheckResult.fail(UNUSED_QUERY_VALUE,
                                    f"the query states {text!r}, but no call uses it.")
    return CheckResult.ok()
