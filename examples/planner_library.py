"""A second example function library for apigen-local: a small travel, meeting and shopping planner.

Offline, standard library only, and in a different domain from ``examples/library.py``: strings,
dates, lists and nested objects rather than maths and unit conversions. Every public function has
full type hints and a Google-style docstring with an ``Args:`` section, which is what
``transformers.utils.get_json_schema`` needs to describe it as a tool. All return values are
JSON-serialisable, and bad input raises ``ValueError``.

Percentages (tips, discounts, tax) are always given as percents, e.g. ``15`` for 15%, not as
fractions.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Literal

Climate = Literal["hot", "mild", "cold"]
AddressStyle = Literal["multi_line", "single_line"]
NameOrder = Literal["first", "last"]

_PACKING_BASICS = ["passport or ID", "phone charger", "toothbrush", "toothpaste"]
_PACKING_BY_CLIMATE: dict[str, list[str]] = {
    "hot": ["sunscreen", "sunglasses", "sun hat", "shorts", "sandals"],
    "mild": ["light jacket", "umbrella", "jeans", "sneakers"],
    "cold": ["winter coat", "gloves", "scarf", "warm hat", "thermal underwear", "boots"],
}
_PACKING_BY_ACTIVITY: dict[str, list[str]] = {
    "beach": ["swimsuit", "beach towel", "flip-flops"],
    "hiking": ["hiking boots", "water bottle", "daypack", "first aid kit"],
    "business": ["suit", "dress shoes", "laptop", "business cards"],
    "skiing": ["ski goggles", "ski socks", "helmet"],
    "swimming": ["swimsuit", "goggles", "towel"],
    "camping": ["tent", "sleeping bag", "headlamp", "water bottle"],
    "formal dinner": ["formal outfit", "dress shoes"],
    "running": ["running shoes", "sports clothes"],
}

_ADDRESS_FIELDS = ("street", "city", "postcode", "country")


def _parse_iso_date(value: str, label: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{label} must be a date in ISO format YYYY-MM-DD, got {value!r}") from exc


def schedule_meeting(
    title: str,
    date: str,
    attendees: list[str],
    duration_minutes: int = 30,
    start_time: str = "09:00",
) -> dict:
    """Schedules a meeting and works out when it ends.

    Args:
        title: The title of the meeting.
        date: The day of the meeting in ISO format, YYYY-MM-DD.
        attendees: The names of the people invited, at least one.
        duration_minutes: How long the meeting lasts, in minutes (1 to 720).
        start_time: The start time on a 24-hour clock, HH:MM.

    Returns:
        The meeting's title, date, weekday, start and end times, attendees and attendee count.
    """
    if not title.strip():
        raise ValueError("title must not be empty")
    day = _parse_iso_date(date, "date")
    names = [name.strip() for name in attendees if name.strip()]
    if not names:
        raise ValueError("attendees must name at least one person")
    if not 1 <= duration_minutes <= 720:
        raise ValueError("duration_minutes must be between 1 and 720")
    if not re.fullmatch(r"\d{2}:\d{2}", start_time):
        raise ValueError(f"start_time must be HH:MM on a 24-hour clock, got {start_time!r}")
    try:
        start = datetime.combine(day, datetime.strptime(start_time, "%H:%M").time())
    except ValueError as exc:
        raise ValueError(f"start_time is not a valid time: {start_time!r}") from exc
    end = start + timedelta(minutes=duration_minutes)
    return {
        "title": title.strip(),
        "date": day.isoformat(),
        "weekday": day.strftime("%A"),
        "start": start.strftime("%H:%M"),
        "end": end.strftime("%H:%M"),
        "ends_next_day": end.date() != day,
        "attendees": names,
        "attendee_count": len(names),
    }


def split_bill(total: float, people: int, tip_percent: float = 0.0) -> dict:
    """Splits a bill evenly between people, optionally adding a tip first.

    Args:
        total: The amount of the bill before the tip.
        people: The number of people sharing the bill, at least 1.
        tip_percent: The tip as a percent of the bill, for example 15 for a 15% tip (not 0.15).

    Returns:
        The tip, the total including the tip and the share of each person, rounded to cents.
    """
    if total < 0:
        raise ValueError("total must not be negative")
    if people < 1:
        raise ValueError("people must be at least 1")
    if not 0 <= tip_percent <= 100:
        raise ValueError("tip_percent must be between 0 and 100 (a percent, e.g. 15 for 15%)")
    tip = total * tip_percent / 100
    grand_total = total + tip
    return {
        "tip": round(tip, 2),
        "total_with_tip": round(grand_total, 2),
        "per_person": round(grand_total / people, 2),
    }


def packing_list(climate: Climate, nights: int, activities: list[str] | None = None) -> list[str]:
    """Builds a packing list for a trip from the climate, its length and the planned activities.

    Args:
        climate: The expected weather at the destination.
        nights: The number of nights away, at least 1.
        activities: Planned activities, any of beach, hiking, business, skiing, swimming,
            camping, formal dinner or running; leave out for none.

    Returns:
        The items to pack, without duplicates, with clothing counts scaled to the trip length.
    """
    if nights < 1:
        raise ValueError("nights must be at least 1")
    if climate not in _PACKING_BY_CLIMATE:
        raise ValueError(f"unknown climate {climate!r}; use hot, mild or cold")
    days = nights + 1
    items = [f"{days} x underwear", f"{days} x socks", f"{min(days, 7)} x shirts"]
    items += _PACKING_BASICS + _PACKING_BY_CLIMATE[climate]
    for activity in activities or []:
        key = " ".join(activity.lower().split())
        if key not in _PACKING_BY_ACTIVITY:
            known = ", ".join(_PACKING_BY_ACTIVITY)
            raise ValueError(f"unknown activity {activity!r}; known activities: {known}")
        items += _PACKING_BY_ACTIVITY[key]
    if nights >= 5:
        items.append("laundry bag")
    return list(dict.fromkeys(items))


def format_address(address: dict[str, str], style: AddressStyle = "multi_line") -> str:
    """Formats a postal address for an envelope or a single line of text.

    Args:
        address: The address as an object with the keys street, city, postcode and country;
            street, city and country are required, postcode may be left out.
        style: multi_line puts each part on its own line; single_line joins them with commas.

    Returns:
        The formatted address, with the country in capital letters.
    """
    unknown = set(address) - set(_ADDRESS_FIELDS)
    if unknown:
        raise ValueError(f"unknown address keys {sorted(unknown)}; use {', '.join(_ADDRESS_FIELDS)}")
    for key in ("street", "city", "country"):
        if not str(address.get(key, "")).strip():
            raise ValueError(f"the address needs a non-empty {key!r}")
    if style not in ("multi_line", "single_line"):
        raise ValueError("style must be multi_line or single_line")
    street = str(address["street"]).strip()
    city = str(address["city"]).strip()
    postcode = str(address.get("postcode", "")).strip()
    country = str(address["country"]).strip().upper()
    locality = f"{postcode} {city}" if postcode else city
    parts = [street, locality, country]
    return "\n".join(parts) if style == "multi_line" else ", ".join(parts)


def count_weekdays(start_date: str, end_date: str) -> int:
    """Counts the weekdays (Monday to Friday) from one date to another, both dates included.

    Args:
        start_date: The first day in ISO format, YYYY-MM-DD.
        end_date: The last day in ISO format, YYYY-MM-DD; not before start_date.

    Returns:
        The number of days from Monday to Friday in the range.
    """
    start = _parse_iso_date(start_date, "start_date")
    end = _parse_iso_date(end_date, "end_date")
    if end < start:
        raise ValueError("end_date must not come before start_date")
    total_days = (end - start).days + 1
    full_weeks, rest = divmod(total_days, 7)
    count = full_weeks * 5
    for offset in range(rest):
        if (start.weekday() + offset) % 7 < 5:
            count += 1
    return count


def normalize_phone_number(number: str, country_code: str = "1") -> str:
    """Normalises a phone number to the international E.164 form, such as +14155550123.

    Args:
        number: The phone number as written, with any spaces, dashes, dots or brackets; a number
            starting with + or 00 already carries its country code.
        country_code: The country calling code to use when the number has none, digits only,
            for example 44 for the United Kingdom.

    Returns:
        The number as + followed by the country code and the subscriber digits.
    """
    if not re.fullmatch(r"[1-9]\d{0,2}", country_code):
        raise ValueError(f"country_code must be 1 to 3 digits, got {country_code!r}")
    text = number.strip()
    if not re.fullmatch(r"\+?[\d\s\-().]+", text):
        raise ValueError(f"{number!r} is not a phone number")
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        full = digits
    elif digits.startswith("00"):
        full = digits[2:]
    else:
        national = digits[1:] if digits.startswith("0") else digits  # drop a trunk prefix
        full = country_code + national
    if not 8 <= len(full) <= 15:
        raise ValueError(f"{number!r} does not have a valid number of digits")
    return "+" + full


def merge_tags(first: list[str], second: list[str], lowercase: bool = True) -> list[str]:
    """Merges two lists of tags, keeping the first spelling of each and dropping duplicates.

    Args:
        first: The first list of tags.
        second: The tags to add after those of the first list.
        lowercase: Lowercase every tag, so that tags differing only in case count as the same.

    Returns:
        The merged tags, trimmed, in order of first appearance.
    """
    merged: dict[str, str] = {}
    for tag in [*first, *second]:
        cleaned = tag.strip().lower() if lowercase else tag.strip()
        if cleaned and cleaned not in merged:
            merged[cleaned] = cleaned
    return list(merged.values())


def word_frequency(text: str, top_n: int = 5, ignore_case: bool = True) -> list[dict]:
    """Finds the most frequent words of a text.

    Args:
        text: The text to analyse.
        top_n: How many of the most frequent words to return, at least 1.
        ignore_case: Treat upper- and lowercase spellings of a word as the same word.

    Returns:
        Up to top_n entries of word and count, most frequent first; ties in order of first use.
    """
    if top_n < 1:
        raise ValueError("top_n must be at least 1")
    words = re.findall(r"[\w']+", text.lower() if ignore_case else text)
    return [{"word": word, "count": count} for word, count in Counter(words).most_common(top_n)]


def truncate_text(text: str, max_length: int, ellipsis: str = "...") -> str:
    """Shortens a text to at most max_length characters, ending it with an ellipsis when cut.

    Args:
        text: The text to shorten.
        max_length: The largest number of characters allowed, ellipsis included.
        ellipsis: The marker appended when the text is cut.

    Returns:
        The text unchanged when it fits, otherwise its start followed by the ellipsis.
    """
    if max_length <= len(ellipsis):
        raise ValueError("max_length must be longer than the ellipsis")
    if len(text) <= max_length:
        return text
    return text[: max_length - len(ellipsis)].rstrip() + ellipsis


def sort_names(names: list[str], by: NameOrder = "last", descending: bool = False) -> list[str]:
    """Sorts people's full names alphabetically by first or last name, ignoring case.

    Args:
        names: The full names, such as "Ada Lovelace".
        by: Sort by the first word (first) or the last word (last) of each name.
        descending: Sort from Z to A instead of from A to Z.

    Returns:
        The names in sorted order; ties are broken by the whole name.
    """
    if by not in ("first", "last"):
        raise ValueError("by must be first or last")
    cleaned = [" ".join(name.split()) for name in names]
    if any(not name for name in cleaned):
        raise ValueError("names must not contain empty names")

    def key(name: str) -> tuple[str, str]:
        parts = name.lower().split()
        return (parts[0] if by == "first" else parts[-1], name.lower())

    return sorted(cleaned, key=key, reverse=descending)


def shopping_total(
    items: list[dict], discount_percent: float = 0.0, tax_percent: float = 0.0
) -> dict:
    """Totals a shopping basket, applying a discount and then sales tax.

    Args:
        items: The items bought, each an object with name (string), price (unit price) and
            quantity (whole number, 1 when left out).
        discount_percent: A discount on the whole basket as a percent, for example 10 for 10% off.
        tax_percent: Sales tax added after the discount as a percent, for example 8.5 for 8.5%.

    Returns:
        The subtotal, discount, tax and total, rounded to cents, and the number of units.
    """
    if not items:
        raise ValueError("items must not be empty")
    for label, percent in (("discount_percent", discount_percent), ("tax_percent", tax_percent)):
        if not 0 <= percent <= 100:
            raise ValueError(f"{label} must be between 0 and 100 (a percent)")
    subtotal = 0.0
    units = 0
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "price" not in item:
            raise ValueError(f"item {index} must be an object with at least a price")
        price = item["price"]
        quantity = item.get("quantity", 1)
        if not isinstance(price, (int, float)) or price < 0:
            raise ValueError(f"item {index} has an invalid price {price!r}")
        if not isinstance(quantity, int) or quantity < 1:
            raise ValueError(f"item {index} has an invalid quantity {quantity!r}")
        subtotal += price * quantity
        units += quantity
    discount = subtotal * discount_percent / 100
    tax = (subtotal - discount) * tax_percent / 100
    return {
        "subtotal": round(subtotal, 2),
        "discount": round(discount, 2),
        "tax": round(tax, 2),
        "total": round(subtotal - discount + tax, 2),
        "units": units,
    }
