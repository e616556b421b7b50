"""Implied values: what a request means without writing it out, for ``--grounding implied``.

People write "Boston" and the call holds "Boston, MA"; they write "California" and the call holds
"CA". Strict grounding rejects both; a verifier of rows people wrote must keep them and still
reject what nothing explains. Each rule below names exactly one such step, is applied only to a
string that strict grounding did not ground, and is recorded with the value it accepted (see
:func:`~apigen_local.checks.grounding.check_grounding`), so a user can audit every one.

- ``place_qualifier``: a stated place followed by known region qualifiers ("San Francisco, CA",
  "Tel Aviv, Israel", "Kuala Lumpur, MY"): the first comma-separated part is stated, every other
  part is a country, a US, Canadian or Australian state or province, or one of their codes. The
  rule does not check that the qualifier is the right one for the place (no gazetteer).
- ``place_nickname``: a city that a common nickname in the request stands for ("New York, NY"
  for "NYC" or "the big apple", "San Francisco" for "SF"), with known qualifiers.
- ``near_spelling``: a stated text that the request misspells by one letter per long word
  ("Chicago" for "Chcicago"); words under five letters must match.
- ``region_code``: the standard code of a country or state the request names ("CA" for
  "California", "GB" for "United Kingdom"), or the name of one whose code the request writes in
  capitals ("Florida" for "FL").
- ``currency_code``: the ISO 4217 code of a currency the request names by symbol or word ("USD"
  for "$45" or "dollars", "EUR" for "€", "JPY" for "yen").
- ``month_day``: a date whose month and day the request names ("March 9th") and whose year it
  writes elsewhere ("... to March 10th 2023").
- ``joined_list``: several stated values joined into one string by commas, semicolons, slashes
  or bars ("a/b,c/d" for "a/b and c/d").
- ``json_text``: a list or object written as JSON text whose every value is stated.

Values translated from a request in another language are not among them: telling a translation
from an invention needs a model that reads both languages, which the default model does not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from typing import Final

PLACE_QUALIFIER: Final = "implied:place_qualifier"
REGION_CODE: Final = "implied:region_code"
CURRENCY_CODE: Final = "implied:currency_code"
JOINED_LIST: Final = "implied:joined_list"
JSON_TEXT: Final = "implied:json_text"
MONTH_DAY: Final = "implied:month_day"
PLACE_NICKNAME: Final = "implied:place_nickname"
NEAR_SPELLING: Final = "implied:near_spelling"

_STATE_COUNTRIES = ("US", "CA", "AU")  # whose states or provinces are written as qualifiers and codes
_ALIASES = {"uk": "GB", "u.k.": "GB", "britain": "GB", "great britain": "GB", "england": "GB", "scotland": "GB",
            "wales": "GB", "usa": "US", "u.s.": "US", "u.s.a.": "US", "america": "US", "united states": "US",
            "south korea": "KR", "korea": "KR", "north korea": "KP", "russia": "RU", "vietnam": "VN",
            "iran": "IR", "syria": "SY", "taiwan": "TW", "bolivia": "BO", "venezuela": "VE", "tanzania": "TZ",
            "laos": "LA", "moldova": "MD", "czech republic": "CZ", "holland": "NL"}
_CURRENCY_WORDS = {"$": "USD", "dollar": "USD", "dollars": "USD", "usd": "USD", "€": "EUR", "euro": "EUR",
                   "euros": "EUR", "£": "GBP", "pound": "GBP", "pounds": "GBP", "sterling": "GBP", "¥": "JPY",
                   "yen": "JPY", "yuan": "CNY", "rmb": "CNY", "renminbi": "CNY", "rupee": "INR", "rupees": "INR",
                   "₹": "INR", "won": "KRW", "₩": "KRW", "franc": "CHF", "francs": "CHF", "peso": "MXN",
                   "pesos": "MXN", "real": "BRL", "reais": "BRL", "rouble": "RUB", "ruble": "RUB", "roubles": "RUB",
                   "rubles": "RUB", "baht": "THB", "krona": "SEK", "kronor": "SEK"}
_NICKNAMES = {"nyc": "new york", "big apple": "new york", "la": "los angeles", "sf": "san francisco",
              "san fran": "san francisco", "frisco": "san francisco", "chi town": "chicago", "chitown": "chicago",
              "sd": "san diego", "dc": "washington", "philly": "philadelphia", "vegas": "las vegas",
              "nola": "new orleans", "atl": "atlanta", "bay area": "san francisco"}
_LIST_SEPARATORS = re.compile(r"\s*[,;/|]\s*")
MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
         ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
         ("october", "oct"), ("november", "nov"), ("december", "dec")]
    )
    for m in names
}
_DATE_VALUE = (re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?:[ T][\d:.]+)?"),
               re.compile(r"(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})"))
_ORDINAL = r"(\d{1,2})(?:st|nd|rd|th)?"


@cache
def _regions() -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """Region names (case-folded) -> their codes, and codes -> their case-folded names."""
    import pycountry  # data only; loaded once, on the first implied value

    names: dict[str, set[str]] = {}
    codes: dict[str, set[str]] = {}

    def add(name: str, code: str) -> None:
        names.setdefault(name.casefold(), set()).add(code)
        codes.setdefault(code, set()).add(name.casefold())

    for country in pycountry.countries:
        for name in {country.name, getattr(country, "common_name", country.name),
                     getattr(country, "official_name", country.name)}:
            for code in (country.alpha_2, country.alpha_3):
                add(name, code)
    for alias, code in _ALIASES.items():
        add(alias, code)
        alpha3 = pycountry.countries.get(alpha_2=code)
        if alpha3 is not None:
            add(alias, alpha3.alpha_3)
    for country_code in _STATE_COUNTRIES:
        for state in pycountry.subdivisions.get(country_code=country_code) or []:
            add(state.name, state.code.split("-", 1)[1])
    return ({k: frozenset(v) for k, v in names.items()}, {k: frozenset(v) for k, v in codes.items()})


_NON_WORD = re.compile(r"[\W_]+")


def _words(text: str) -> str:
    """``text`` case-folded, with every run of non-word characters as one space, padded by spaces."""
    return " " + _NON_WORD.sub(" ", text.casefold()).strip() + " "


def _stated(text: str, query: str) -> bool:
    core = _words(text).strip()
    return bool(core) and f" {core} " in _words(query)


def _is_region(part: str) -> bool:
    names, codes = _regions()
    return part.casefold() in names or part.upper() in codes


def place_qualifier(value: str, query: str, stated: Callable[[str, str], bool]) -> bool:
    """``"Boston, MA"`` for a request that states Boston."""
    parts = [p.strip() for p in value.split(",")]
    return len(parts) >= 2 and all(parts) and stated(parts[0], query) and all(map(_is_region, parts[1:]))


def place_nickname(value: str, query: str) -> bool:
    """``"New York, NY"`` (or ``"New York"``) for "NYC" or "the big apple": a city a common
    nickname in the request stands for, with known region qualifiers."""
    parts = [p.strip() for p in value.split(",")]
    city = parts[0].casefold()
    words = _words(query)
    return (bool(parts[0]) and all(map(_is_region, parts[1:]))
            and any(full == city and f" {_words(nick).strip()} " in words for nick, full in _NICKNAMES.items()))


def near_spelling(value: str, query: str) -> bool:
    """A stated text the request misspells by one letter in each word of five or more letters
    ("Chicago" for "Chcicago"); shorter words must match exactly."""
    wanted = _words(value).split()
    if not wanted or not any(len(w) >= 5 for w in wanted):
        return False
    said = _words(query).split()
    return any(all(_close(w, s) for w, s in zip(wanted, said[i:i + len(wanted)], strict=True))
               for i in range(len(said) - len(wanted) + 1))


def _close(wanted: str, said: str) -> bool:
    if wanted == said:
        return True
    if len(wanted) < 5 or abs(len(wanted) - len(said)) > 1:
        return False
    previous = list(range(len(said) + 1))  # Levenshtein distance, stopped once it passes 1
    for i, a in enumerate(wanted, start=1):
        current = [i]
        for j, b in enumerate(said, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        if min(current) > 1:
            return False
        previous = current
    return previous[-1] <= 1


def region_code(value: str, query: str) -> bool:
    """``"CA"`` for "California"; ``"Florida"`` for "FL"."""
    names, codes = _regions()
    text = value.strip()
    if text.upper() == text and text in codes:
        return any(_stated(name, query) for name in codes[text])
    return any(re.search(rf"(?<![A-Za-z]){re.escape(code)}(?![A-Za-z])", query)
               for code in names.get(text.casefold(), ()) if len(code) == 2)


def currency_code(value: str, query: str) -> bool:
    """``"USD"`` for "$45" or "dollars"."""
    code = value.strip()
    if not re.fullmatch(r"[A-Z]{3}", code):
        return False
    words = _words(query)
    return any(named == code and (f" {word} " in words if word.isalpha() else word in query)
               for word, named in _CURRENCY_WORDS.items())


def month_day(value: str, query: str) -> bool:
    """``"2023-03-09"`` (or ``03/09/2023``) for "March 9th ... 2023": the request names the month and
    day, and writes the year elsewhere as four digits."""
    found = next((m for pattern in _DATE_VALUE if (m := pattern.fullmatch(value.strip()))), None)
    if found is None:
        return False
    year, month, day = int(found["y"]), int(found["m"]), int(found["d"])
    text = query.casefold()
    if not re.search(rf"(?<!\d){year}(?!\d)", text):
        return False
    stated: set[tuple[int, int]] = set()
    for name, d in re.findall(rf"\b([a-z]{{3,9}})\.?\s+(?:the\s+)?{_ORDINAL}\b", text):
        if name in MONTHS:
            stated.add((MONTHS[name], int(d)))
    for d, name in re.findall(rf"\b{_ORDINAL}\s+(?:of\s+)?(?:this\s+)?([a-z]{{3,9}})\b", text):
        if name in MONTHS:
            stated.add((MONTHS[name], int(d)))
    for a, b in re.findall(rf"\b(\d{{1,2}})[-/.](\d{{1,2}})[-/.]{year}\b", text):  # either order
        stated |= {(int(a), int(b)), (int(b), int(a))}
    return (month, day) in stated


def joined_list(value: str, query: str, stated: Callable[[str, str], bool]) -> bool:
    """``"a/b,c/d"`` for "a/b and c/d": every part, split at , ; / or |, is stated (or the
    parts split only at , ; or | are, so stated values that hold a slash stay whole)."""
    for separators in (re.compile(r"\s*[,;|]\s*"), _LIST_SEPARATORS):
        parts = [p for p in separators.split(value.strip()) if p]
        if len(parts) >= 2 and all(stated(p, query) for p in parts):
            return True
    return False


def json_text(value: str, query: str, grounded: Callable[[object], bool]) -> bool:
    """A list or object written as JSON whose every value is grounded."""
    text = value.strip()
    if text[:1] not in ("[", "{"):
        return False
    try:
        parsed = json.loads(text)
    except ValueError:
        return False
    return isinstance(parsed, (list, dict)) and bool(parsed) and grounded(parsed)
