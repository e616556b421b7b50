"""Implied values: what a request means without writing it out, for ``--grounding implied``.

People write "Boston" and the call holds "Boston, MA"; they write "California" and the call holds
"CA". Strict grounding rejects both; a verifier of rows people wrote must keep them and still
reject what nothing explains. Each rule below names exactly one such step, is applied only to a
value that strict grounding did not ground (``described_*`` and ``month_number`` also to
numbers), and is recorded with the value it accepted (see
:func:`~apigen_local.checks.grounding.check_grounding`), so a user can audit every one.

- ``place_qualifier``: a stated place followed by known region qualifiers ("San Francisco, CA",
  "Tel Aviv, Israel", "Kuala Lumpur, MY"): the first comma-separated part is stated, every other
  part is a country, a US, Canadian or Australian state or province, or one of their codes. The
  place may be misspelt as ``near_spelling`` allows ("Orlando, FL" for "Orlanda"). The rule does
  not check that the qualifier is the right one for the place (no gazetteer).
- ``place_nickname``: a city that a common nickname in the request stands for ("New York, NY"
  for "NYC" or "the big apple", "San Francisco" for "SF"), with known qualifiers.
- ``near_spelling``: a stated text that the request misspells by one letter per long word
  ("Chicago" for "Chcicago"); words under five letters must match.
- ``region_code``: the standard code of a country or state the request names ("CA" for
  "California", "GB" for "United Kingdom"), or the name of one whose code the request writes in
  capitals ("Florida" for "FL").
- ``currency_code``: the ISO 4217 code of a currency the request names by symbol or word ("USD"
  for "$45" or "dollars", "EUR" for "€", "JPY" for "yen").
- ``date_format``: a stated date (and time of day) written in another common form
  ("16/03/2024" for "the 16th of March 2024", "2021-04-15T13:45:00Z" for "the 15th of April 2021
  at 1:45 pm, UTC"), or a range of two ("2023-10-01 to 2023-10-07"). Day and month may be either
  way round where both could be either; midnight counts as no time.
- ``month_day``: a date whose month and day the request names ("March 9th") and whose year it
  writes elsewhere ("... to March 10th 2023").
- ``relative_date``: a date counted from a day the request states as today ("tomorrow", "this
  Sunday", "the upcoming Monday", "Friday next week", "in 3 days", "the 12th", "March 3rd next
  year", or a month and day in this year or the next). Where a weekday could be this week's or
  next week's, both pass, counted from the date's own weekday and from the weekday the request
  names for today where the two differ ("today is Monday 2022-10-20", a Thursday); with no stated
  today, none does.
- ``month_number``: the number of a month the request names ("2" for "February 2022"), for a
  parameter whose description speaks of a month.
- ``unspaced_text``: text in a script written without spaces (Chinese, Japanese, Thai) or with
  suffixed words (Korean) that the request holds inside a longer run ("北京" in "北京后天的天气如何"),
  two characters at least and not next to a digit it starts or ends with.
- ``word_order``: the words of a run of the request in another order ("Ji Sung Park" for "park
  ji sung").
- ``joined_list``: several stated values joined into one string by commas, semicolons, slashes
  or bars ("a/b,c/d" for "a/b and c/d").
- ``json_text``: a list or object written as JSON text whose every value is stated.
- ``described_code``: a code the parameter's description gives for something the request names
  ("2" where it says "2 for ironing service" and the request asks for ironing; "en" for "'en' for
  English"). Such values come from the spec, so two of them may be equal (``reused_value`` leaves
  them out).
- ``described_default``: the value the description says to use when none is given ("If user
  doesn't specify, please use 100").
- ``described_format``: a value laid out by the description's template whose fields the request
  fills ("track:Friends artist:Marshmello" for 'track:SongName artist:ArtistName').

Not implied: a year nobody states ("March 9th" alone), values translated from a request in
another language (text in the request's own script is grounded as written; in BFCL's live rows
one row in 969 needs a translated value), codes that need a gazetteer (airports, a city's
country), and arithmetic on stated values ("a week later", a stay's length).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Final

PLACE_QUALIFIER: Final = "implied:place_qualifier"
REGION_CODE: Final = "implied:region_code"
CURRENCY_CODE: Final = "implied:currency_code"
JOINED_LIST: Final = "implied:joined_list"
JSON_TEXT: Final = "implied:json_text"
MONTH_DAY: Final = "implied:month_day"
DATE_FORMAT: Final = "implied:date_format"
RELATIVE_DATE: Final = "implied:relative_date"
PLACE_NICKNAME: Final = "implied:place_nickname"
NEAR_SPELLING: Final = "implied:near_spelling"
WORD_ORDER: Final = "implied:word_order"
DESCRIBED_CODE: Final = "implied:described_code"
DESCRIBED_DEFAULT: Final = "implied:described_default"
DESCRIBED_FORMAT: Final = "implied:described_format"
MONTH_NUMBER: Final = "implied:month_number"
UNSPACED_TEXT: Final = "implied:unspaced_text"

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
_NICKNAMES = {"nyc": "new york", "ny": "new york", "big apple": "new york", "la": "los angeles", "sf": "san francisco",
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


def word_order(value: str, query: str) -> bool:
    """The words of a run of the request in another order ("Ji Sung Park" for "park ji sung"):
    two to four words, each at least two letters, with no digit and no function word."""
    wanted = _words(value).split()
    if not 2 <= len(wanted) <= 4 or any(len(w) < 2 or not w.isalpha() or w in _STOP_WORDS for w in wanted):
        return False  # "low to high" is not "high to low"
    said = _words(query).split()
    return any(sorted(said[i:i + len(wanted)]) == sorted(wanted) for i in range(len(said) - len(wanted) + 1))


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


Date = tuple[int, int, int]  # (year, month, day)
Clock = tuple[int, int]  # (hour, minute)

_YEAR_FIRST = re.compile(r"(?P<y>\d{4})[-/.](?P<a>\d{1,2})[-/.](?P<b>\d{1,2})")
_YEAR_LAST = re.compile(r"(?P<a>\d{1,2})[-/.](?P<b>\d{1,2})[-/.](?P<y>\d{4})")
_CLOCK_PART = re.compile(r"(?:[ T]|\s+at\s+)(?P<h>\d{1,2}):(?P<mi>\d{2})(?::00(?:\.0+)?)?"
                         r"\s*(?:Z|[+-]00:?00|UTC)?")  # invented seconds or a zone offset: not read
_RANGE = re.compile(r"\s+(?:to|until|through|-|\u2013)\s+")
_WEEKDAYS = {name: i for i, names in enumerate([("monday", "mon"), ("tuesday", "tue", "tues"), ("wednesday", "wed"),
                                                 ("thursday", "thu", "thur", "thurs"), ("friday", "fri"),
                                                 ("saturday", "sat"), ("sunday", "sun")]) for name in names}
_TODAY = re.compile(r"\btoday(?:'s date)?\s*(?:is|=|:)\s*(.{0,40})", re.IGNORECASE)


def date_value(value: str, query: str, stated_dates: frozenset[Date], stated_times: frozenset[Clock]) -> str | None:
    """The rule that explains a date value written in any common form (``2023-03-09``,
    ``16/03/2024``, ``20-09-2023``, ``2023.10.01``, with a time of day or as a range ``A to B``),
    or ``None``. ``stated_dates`` and ``stated_times`` are the dates and clock times the query
    writes (strict grounding's reading). Each date must be stated (``date_format``), have its month
    and day named with the year written elsewhere (``month_day``), or follow from a day the request
    states as today (``relative_date``); each time of day must be stated."""
    rules = [_one_date(part, query, stated_dates, stated_times) for part in _RANGE.split(value.strip())]
    if len(rules) > 2 or None in rules:
        return None
    order = (MONTH_DAY, RELATIVE_DATE, DATE_FORMAT)
    return next(rule for rule in order if rule in rules)


def _one_date(text: str, query: str, stated_dates: frozenset[Date], stated_times: frozenset[Clock]) -> str | None:
    readings, clock = _readings(text)
    midnight = clock == (0, 0) and not stated_times  # the day's start, where the request states no time
    if not readings or (clock is not None and clock not in stated_times and not midnight):
        return None
    if readings & stated_dates:
        return DATE_FORMAT
    if readings & _month_day_dates(query):
        return MONTH_DAY
    if readings & relative_dates(query):
        return RELATIVE_DATE
    return None


def _readings(text: str) -> tuple[set[Date], Clock | None]:
    """The dates ``text`` can mean (day and month either way round when both could be either) and
    its time of day, if it writes one; no dates when it is not a date."""
    for pattern in (_YEAR_FIRST, _YEAR_LAST):
        found = pattern.match(text)
        if found is None:
            continue
        rest = text[found.end():]
        clock_match = _CLOCK_PART.fullmatch(rest) if rest else None
        if rest and clock_match is None:
            return set(), None
        year, a, b = int(found["y"]), int(found["a"]), int(found["b"])
        orders = [(a, b)] if pattern is _YEAR_FIRST else [(a, b), (b, a)]
        readings = {(year, m, d) for m, d in orders if _valid(year, m, d)}
        clock = (int(clock_match["h"]), int(clock_match["mi"])) if clock_match else None
        return readings, clock
    return set(), None


def _valid(year: int, month: int, day: int) -> bool:
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def _named_days(text: str) -> set[tuple[int, int]]:
    """``(month, day)`` of every date the text names without its year ("March 9th", "the 4th of March")."""
    named: set[tuple[int, int]] = set()
    for name, d in re.findall(rf"\b([a-z]{{3,9}})\.?\s+(?:the\s+)?{_ORDINAL}\b", text):
        if name in MONTHS:
            named.add((MONTHS[name], int(d)))
    for d, name in re.findall(rf"\b{_ORDINAL}\s+(?:of\s+)?(?:this\s+)?([a-z]{{3,9}})\b", text):
        if name in MONTHS:
            named.add((MONTHS[name], int(d)))
    return named


def _month_day_dates(query: str) -> set[Date]:
    """Dates whose month and day the query names and whose year it writes elsewhere as four digits."""
    text = query.casefold()
    years = {int(y) for y in re.findall(r"(?<!\d)((?:19|20)\d{2})(?!\d)", text)}
    named = _named_days(text)
    for year in years:
        for a, b in re.findall(rf"\b(\d{{1,2}})[-/.](\d{{1,2}})[-/.]{year}\b", text):  # either order
            named |= {(int(a), int(b)), (int(b), int(a))}
    return {(year, m, d) for year in years for m, d in named if _valid(year, m, d)}


def _today(query: str) -> list[tuple[datetime.date, int | None]]:
    """The days the query states as today ("today is Monday April 25th 2023", "today is
    2023.10.1", "assuming today is 20230929"), each with the weekday it names for today, if any."""
    found = _TODAY.search(query)
    if found is None:
        return []
    snippet = found[1].casefold()
    days: set[Date] = set()
    for y, a, b in re.findall(r"\b(\d{4})[-/.]?(\d{1,2})[-/.]?(\d{1,2})\b", snippet):
        days.add((int(y), int(a), int(b)))
    for a, b, y in re.findall(r"\b(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})\b", snippet):
        days |= {(int(y), int(a), int(b)), (int(y), int(b), int(a))}
    for year in re.findall(r"(?<!\d)((?:19|20)\d{2})(?!\d)", snippet):
        days |= {(int(year), m, d) for m, d in _named_days(snippet)}
    weekday = next((_WEEKDAYS[w] for w in re.findall(r"[a-z]+", snippet) if w in _WEEKDAYS and len(w) > 3), None)
    return [(datetime.date(*day), weekday) for day in days if _valid(*day)]


@lru_cache(maxsize=16)
def relative_dates(query: str) -> frozenset[Date]:
    """Dates the query names relative to a day it states as today: ``tomorrow``, ``the day after
    tomorrow``, ``yesterday``, ``in 3 days``, ``this / next / upcoming Friday``, ``Friday next
    week``, ``the 12th``, ``March 3rd next year``, and a month and day without a year (this
    year's or the next one)."""
    text = query.casefold()
    found: set[datetime.date] = set()
    for today, named_weekday in _today(query):
        if not datetime.date(2, 1, 1) <= today <= datetime.date(9998, 1, 1):
            continue  # counting from the first or last days of the calendar would overflow
        if "day after tomorrow" in text:
            found.add(today + datetime.timedelta(days=2))
        elif re.search(r"\btomorrow\b", text):
            found.add(today + datetime.timedelta(days=1))
        if re.search(r"\byesterday\b", text):
            found.add(today - datetime.timedelta(days=1))
        for n in re.findall(r"\bin\s+(\d{1,3})\s+days?\b", text):
            found.add(today + datetime.timedelta(days=int(n)))
        weekdays = [today.weekday()] + ([named_weekday] if named_weekday is not None else [])
        for phrase in re.finditer(r"\b(?:(this|next|coming|upcoming)\s+([a-z]+)|([a-z]+)\s+(this|next)\s+week)\b",
                                  text):
            name = phrase[2] or phrase[3]
            if name not in _WEEKDAYS:
                continue
            for current in weekdays:
                ahead = (_WEEKDAYS[name] - current) % 7 or 7
                found |= {today + datetime.timedelta(days=ahead), today + datetime.timedelta(days=ahead + 7)}
        for d, after in re.findall(r"\bthe\s+(\d{1,2})(?:st|nd|rd|th)\b(?:\s+(?:of\s+)?([a-z]+))?", text):
            if after in MONTHS:
                continue  # "the 4th of March" is a named day
            month_start = today.replace(day=1)
            next_month = (month_start + datetime.timedelta(days=32)).replace(day=1)
            found |= {start.replace(day=int(d)) for start in (month_start, next_month)
                      if _valid(start.year, start.month, int(d))}
        next_year = bool(re.search(r"\bnext\s+year\b", text))
        for m, d in _named_days(text):
            for year in (today.year, today.year + 1) if not next_year else (today.year + 1,):
                if _valid(year, m, d):
                    found.add(datetime.date(year, m, d))
    return frozenset((day.year, day.month, day.day) for day in found)


_STOP_WORDS = frozenset({"a", "an", "the", "of", "for", "to", "in", "on", "at", "by", "with", "and", "or", "is",
                        "are", "be", "as", "its", "it", "this", "that", "service", "services", "type", "types",
                        "id", "ids", "code", "codes", "number", "value", "level"})
_DESCRIPTION_CHARS = 10_000  # of a parameter's description searched for the codes it describes
_MEANS = r"(?:for|represents?|means?|stands?\s+for|is|=|:|->)"
_DEFAULT_CUE = re.compile(r"default|if\b[^.;]{0,40}(?:\bnot|n't|\bno)\b[^.;]{0,20}\b(?:specif|provid|given|set|mention)"
                          r"|unless|otherwise|when\s+(?:not|unspecified)", re.IGNORECASE)


_NO_DEFAULT = re.compile(r"\s*(?:value\s+)?(?:is\s+)?(?:none|no\b)", re.IGNORECASE)  # "default is none"
_MEANING = re.compile(rf"['\"]?\s+{_MEANS}\s+([^,;.()]+)", re.IGNORECASE)  # what follows a described code
_FIRST_TOKEN = re.compile(r"""[^.;'"\d]{0,40}?(?:['"]([^'"]+)['"]|(?<![\w.])(-?\d+(?:\.\d+)?)(?![\w]|\.\d))""")


def described_code(value: str | float, query: str, description: str,
                   stated: Callable[[str, str], bool]) -> bool:
    """A code the parameter's description gives for something the request names: ``2`` where the
    description says "2 for ironing service" (or "'2' represents an ironing service") and the
    request asks for ironing; ``"en"`` for English. Every word of the description's meaning, but
    for filler words ("the", "service", "type"), must be stated."""
    return any(meaning and all(stated(word, query) for word in meaning)
               for meaning in _code_meanings(_plain(value), description))


@lru_cache(maxsize=1024)
def _code_meanings(code: str, description: str) -> tuple[tuple[str, ...], ...]:
    """The words (filler words left out) of each meaning ``description`` (its first
    :data:`_DESCRIPTION_CHARS` characters) gives ``code``: found by text search and one fixed
    pattern, not a pattern made of the code (compiling one per value made a row of many values
    cost seconds each)."""
    description = description[:_DESCRIPTION_CHARS]
    text, code = _lowered_description(description), _lowered(code)
    meanings: list[tuple[str, ...]] = []
    start = text.find(code) if code else -1
    while start >= 0:
        before = description[start - 1] if start else " "
        found = None if before.isalnum() or before in "_." else _MEANING.match(description, start + len(code))
        if found:
            meanings.append(tuple(w for w in _words(found[1]).split() if w not in _STOP_WORDS))
        start = text.find(code, start + 1)
    return tuple(meanings)


@lru_cache(maxsize=16)
def _lowered_description(description: str) -> str:
    return _lowered(description)


def _lowered(text: str) -> str:
    """``text`` in lower case, character for character (a character whose lower case is longer is
    kept), so that positions in it are positions in ``text``."""
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else "".join(c if len(c.lower()) > 1 else c.lower() for c in text)


def described_default(value: str | float, description: str) -> bool:
    """The value the parameter's description says to use when the request does not give one: the
    first number or quoted text after a default cue ("If user doesn't specify, please use 100",
    "Defaults to 'celsius'"), in the same sentence."""
    return _plain(value) in _defaults(description)


@lru_cache(maxsize=256)
def _defaults(description: str) -> frozenset[str]:
    """Every value a default cue of ``description`` names, read once per description."""
    found: set[str] = set()
    for cue in _DEFAULT_CUE.finditer(description):
        if _NO_DEFAULT.match(description, cue.end()):
            continue
        first = _FIRST_TOKEN.match(description, cue.end())
        if first:
            found.add(first[1] if first[1] is not None else first[2])
    return frozenset(found)


def described_format(value: str, query: str, description: str, stated: Callable[[str, str], bool]) -> bool:
    """A value laid out by a template of the parameter's description whose fields the request
    fills: ``"track:Friends artist:Marshmello"`` for the format 'track:SongName artist:ArtistName'
    and "Friends by Marshmello". Every label must be the description's, every field stated."""
    labels = re.findall(r"([A-Za-z_]\w*):", value)
    if not labels or not _labels(description).issuperset(labels):
        return False
    fields = [f.strip() for f in re.split(r"[A-Za-z_]\w*:", value) if f.strip()]
    return bool(fields) and all(stated(field, query) for field in fields)


@lru_cache(maxsize=256)
def _labels(description: str) -> frozenset[str]:
    """The labels of ``description``: each whole word written just before a colon."""
    return frozenset(re.findall(r"(?<!\w)(\w+):", description))


def month_number(value: float, query: str) -> bool:
    """``2`` for "February": the number of a month the request names in full (or, for May and the
    short names, followed by a day or a year: "May 5", "Feb 2022")."""
    if not float(value).is_integer() or not 1 <= value <= 12:
        return False
    text = query.casefold()
    for name, number in MONTHS.items():
        if number != value:
            continue
        pattern = rf"\b{name}\b" if len(name) > 3 and name != "may" else rf"\b{name}\.?\s+\d"
        if re.search(pattern, text):
            return True
    return False


def _plain(value: str | float) -> str:
    """A number as people write it (``2`` for ``2.0``), text as it is."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


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
