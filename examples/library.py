"""An example function library for apigen-local: offline, standard library only.

Every public function has full type hints and a Google-style docstring with an ``Args:``
section, which is what ``transformers.utils.get_json_schema`` needs to describe it as a tool.
All return values are JSON-serialisable. Look-ups in the small built-in tables raise
``ValueError`` for unknown keys.
"""

from __future__ import annotations

import math
import re
import statistics
from datetime import date, timedelta
from typing import Literal

LengthUnit = Literal["mm", "cm", "m", "km", "in", "ft", "yd", "mi"]
TemperatureScale = Literal["celsius", "fahrenheit", "kelvin"]

_METRES_PER_UNIT: dict[str, float] = {
    "mm": 0.001,
    "cm": 0.01,
    "m": 1.0,
    "km": 1000.0,
    "in": 0.0254,
    "ft": 0.3048,
    "yd": 0.9144,
    "mi": 1609.344,
}

_PLANETS: dict[int, dict[str, object]] = {
    1: {
        "name": "Tatooine",
        "climate": "arid",
        "terrain": "desert",
        "diameter": 10465,
        "rotation_period": 23,
        "orbital_period": 304,
        "population": 200000,
    },
    2: {
        "name": "Alderaan",
        "climate": "temperate",
        "terrain": "grasslands, mountains",
        "diameter": 12500,
        "rotation_period": 24,
        "orbital_period": 364,
        "population": 2000000000,
    },
    3: {
        "name": "Yavin IV",
        "climate": "temperate, tropical",
        "terrain": "jungle, rainforests",
        "diameter": 10200,
        "rotation_period": 24,
        "orbital_period": 4818,
        "population": 1000,
    },
    4: {
        "name": "Hoth",
        "climate": "frozen",
        "terrain": "tundra, ice caves, mountain ranges",
        "diameter": 7200,
        "rotation_period": 23,
        "orbital_period": 549,
        "population": None,
    },
    5: {
        "name": "Dagobah",
        "climate": "murky",
        "terrain": "swamp, jungles",
        "diameter": 8900,
        "rotation_period": 23,
        "orbital_period": 341,
        "population": None,
    },
    6: {
        "name": "Bespin",
        "climate": "temperate",
        "terrain": "gas giant",
        "diameter": 118000,
        "rotation_period": 12,
        "orbital_period": 5110,
        "population": 6000000,
    },
    7: {
        "name": "Endor",
        "climate": "temperate",
        "terrain": "forests, mountains, lakes",
        "diameter": 4900,
        "rotation_period": 18,
        "orbital_period": 402,
        "population": 30000000,
    },
    8: {
        "name": "Naboo",
        "climate": "temperate",
        "terrain": "grassy hills, swamps, forests, mountains",
        "diameter": 12120,
        "rotation_period": 26,
        "orbital_period": 312,
        "population": 4500000000,
    },
    9: {
        "name": "Coruscant",
        "climate": "temperate",
        "terrain": "cityscape, mountains",
        "diameter": 12240,
        "rotation_period": 24,
        "orbital_period": 368,
        "population": 1000000000000,
    },
    10: {
        "name": "Kamino",
        "climate": "temperate",
        "terrain": "ocean",
        "diameter": 19720,
        "rotation_period": 27,
        "orbital_period": 463,
        "population": 1000000000,
    },
}

_CHARACTERS: dict[str, dict[str, object]] = {
    "mickey mouse": {
        "name": "Mickey Mouse",
        "first_appearance": "Steamboat Willie",
        "year": 1928,
        "species": "mouse",
    },
    "minnie mouse": {
        "name": "Minnie Mouse",
        "first_appearance": "Steamboat Willie",
        "year": 1928,
        "species": "mouse",
    },
    "donald duck": {
        "name": "Donald Duck",
        "first_appearance": "The Wise Little Hen",
        "year": 1934,
        "species": "duck",
    },
    "goofy": {
        "name": "Goofy",
        "first_appearance": "Mickey's Revue",
        "year": 1932,
        "species": "dog",
    },
    "belle": {
        "name": "Belle",
        "first_appearance": "Beauty and the Beast",
        "year": 1991,
        "species": "human",
    },
    "ariel": {
        "name": "Ariel",
        "first_appearance": "The Little Mermaid",
        "year": 1989,
        "species": "mermaid",
    },
    "simba": {
        "name": "Simba",
        "first_appearance": "The Lion King",
        "year": 1994,
        "species": "lion",
    },
    "stitch": {
        "name": "Stitch",
        "first_appearance": "Lilo & Stitch",
        "year": 2002,
        "species": "alien",
    },
    "elsa": {"name": "Elsa", "first_appearance": "Frozen", "year": 2013, "species": "human"},
    "moana": {"name": "Moana", "first_appearance": "Moana", "year": 2016, "species": "human"},
}


def final_velocity(initial_velocity: float, acceleration: float, time: float) -> float:
    """Calculates the final velocity of an object from its initial velocity, acceleration and time.

    Args:
        initial_velocity: The initial velocity of the object, in metres per second.
        acceleration: The constant acceleration of the object, in metres per second squared.
        time: The time elapsed, in seconds.

    Returns:
        The final velocity in metres per second.
    """
    return initial_velocity + acceleration * time


def permutation_count(n: int, k: int) -> int:
    """Calculates the number of permutations of k elements from a set of n elements.

    Args:
        n: The number of elements in the set.
        k: The number of elements to arrange.

    Returns:
        The number of ordered arrangements.
    """
    if n < 0 or k < 0:
        raise ValueError("n and k must not be negative")
    if k > n:
        raise ValueError(f"k ({k}) cannot be larger than n ({n})")
    return math.perm(n, k)


def getdivision(dividend: int, divisor: int) -> float:
    """Divides two numbers and returns the quotient.

    Args:
        dividend: The number to be divided.
        divisor: The number to divide by; must not be zero.

    Returns:
        The quotient as a float.
    """
    if divisor == 0:
        raise ZeroDivisionError("the divisor must not be zero")
    return dividend / divisor


def binary_addition(a: str, b: str) -> str:
    """Adds two binary numbers and returns the result as a binary string.

    Args:
        a: The first binary number, made of the digits 0 and 1.
        b: The second binary number, made of the digits 0 and 1.

    Returns:
        The sum written in binary.
    """
    for label, value in (("a", a), ("b", b)):
        if not re.fullmatch(r"[01]+", value):
            raise ValueError(f"{label} must be a binary number, got {value!r}")
    return format(int(a, 2) + int(b, 2), "b")


def swapi_planet_resource(planet_id: int) -> dict:
    """Gets the resource of a Star Wars planet by its SWAPI identifier (1 to 10).

    Args:
        planet_id: The SWAPI identifier of the planet, from 1 (Tatooine) to 10 (Kamino).

    Returns:
        The planet's name, climate, terrain, diameter, periods and population.
    """
    if planet_id not in _PLANETS:
        raise ValueError(f"unknown planet id {planet_id}; known ids are 1 to {len(_PLANETS)}")
    return {"id": planet_id, **_PLANETS[planet_id]}


def disney_character(name: str) -> dict:
    """Finds a Disney character by name and returns its first appearance.

    Args:
        name: The character's name, for example "Mickey Mouse" or "Elsa" (case-insensitive).

    Returns:
        The character's name, first film or short, its year and the character's species.
    """
    key = " ".join(name.lower().split())
    if key not in _CHARACTERS:
        known = ", ".join(sorted(str(c["name"]) for c in _CHARACTERS.values()))
        raise ValueError(f"unknown character {name!r}; known characters: {known}")
    return dict(_CHARACTERS[key])


def convert_length(value: float, from_unit: LengthUnit, to_unit: LengthUnit) -> float:
    """Converts a length from one unit to another.

    Args:
        value: The length to convert.
        from_unit: The unit the length is given in.
        to_unit: The unit to convert the length to.

    Returns:
        The converted length, rounded to 6 decimal places.
    """
    for unit in (from_unit, to_unit):
        if unit not in _METRES_PER_UNIT:
            raise ValueError(f"unknown unit {unit!r}; use one of {', '.join(_METRES_PER_UNIT)}")
    return round(value * _METRES_PER_UNIT[from_unit] / _METRES_PER_UNIT[to_unit], 6)


def convert_temperature(
    value: float, from_scale: TemperatureScale, to_scale: TemperatureScale
) -> float:
    """Converts a temperature between the Celsius, Fahrenheit and Kelvin scales.

    Args:
        value: The temperature to convert.
        from_scale: The scale the temperature is given in.
        to_scale: The scale to convert the temperature to.

    Returns:
        The converted temperature, rounded to 2 decimal places.
    """
    to_celsius = {
        "celsius": lambda v: v,
        "fahrenheit": lambda v: (v - 32) * 5 / 9,
        "kelvin": lambda v: v - 273.15,
    }
    from_celsius = {
        "celsius": lambda c: c,
        "fahrenheit": lambda c: c * 9 / 5 + 32,
        "kelvin": lambda c: c + 273.15,
    }
    for scale in (from_scale, to_scale):
        if scale not in to_celsius:
            raise ValueError(f"unknown scale {scale!r}; use celsius, fahrenheit or kelvin")
    return round(from_celsius[to_scale](to_celsius[from_scale](value)), 2)


def word_count(text: str, unique: bool = False) -> int:
    """Counts the words in a text.

    Args:
        text: The text whose words are counted.
        unique: Count each distinct word once, ignoring case.

    Returns:
        The number of words.
    """
    words = re.findall(r"[\w']+", text.lower() if unique else text)
    return len(set(words)) if unique else len(words)


def is_prime(n: int) -> bool:
    """Checks whether a whole number is a prime number.

    Args:
        n: The number to check.

    Returns:
        True when n is prime.
    """
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


def greatest_common_divisor(numbers: list[int]) -> int:
    """Finds the greatest common divisor of a list of whole numbers.

    Args:
        numbers: The numbers, at least one.

    Returns:
        The largest number that divides all of them.
    """
    if not numbers:
        raise ValueError("numbers must not be empty")
    return math.gcd(*numbers)


def compound_interest(
    principal: float, annual_rate: float, years: int, compounds_per_year: int = 12
) -> float:
    """Calculates the balance of an investment with compound interest.

    Args:
        principal: The amount invested at the start.
        annual_rate: The yearly interest rate as a decimal, for example 0.05 for 5%.
        years: The number of years the money is invested.
        compounds_per_year: How many times per year interest is added.

    Returns:
        The final balance, rounded to cents.
    """
    if compounds_per_year < 1:
        raise ValueError("compounds_per_year must be at least 1")
    balance = principal * (1 + annual_rate / compounds_per_year) ** (compounds_per_year * years)
    return round(balance, 2)


def days_between(start_date: str, end_date: str) -> int:
    """Counts the days from one date to another.

    Args:
        start_date: The first date in ISO format, YYYY-MM-DD.
        end_date: The second date in ISO format, YYYY-MM-DD.

    Returns:
        The number of days; negative when end_date comes before start_date.
    """
    return (date.fromisoformat(end_date) - date.fromisoformat(start_date)).days


def add_days(start_date: str, days: int) -> str:
    """Adds a number of days to a date.

    Args:
        start_date: The date in ISO format, YYYY-MM-DD.
        days: The number of days to add; negative to go back in time.

    Returns:
        The resulting date in ISO format.
    """
    return (date.fromisoformat(start_date) + timedelta(days=days)).isoformat()


def list_statistics(values: list[float], precision: int | None = None) -> dict:
    """Computes the count, mean, median, minimum, maximum and standard deviation of numbers.

    Args:
        values: The numbers to summarise, at least one.
        precision: Round the results to this many decimal places; leave out for no rounding.

    Returns:
        A dictionary with count, mean, median, min, max and stdev (population).
    """
    if not values:
        raise ValueError("values must not be empty")
    result: dict[str, float] = {
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "stdev": statistics.pstdev(values),
    }
    if precision is not None:
        result = {key: round(value, precision) for key, value in result.items()}
    return {"count": len(values), **result}


def distance_between_points(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Computes the straight-line distance between two points on a plane.

    Args:
        a: The first point as (x, y).
        b: The second point as (x, y).

    Returns:
        The Euclidean distance.
    """
    return math.dist(a, b)


def body_mass_index(weight_kg: float, height_m: float) -> dict:
    """Calculates the body mass index (BMI) and its WHO category.

    Args:
        weight_kg: The body weight in kilograms.
        height_m: The height in metres.

    Returns:
        The BMI rounded to one decimal and its category.
    """
    if weight_kg <= 0 or height_m <= 0:
        raise ValueError("weight and height must be positive")
    bmi = weight_kg / height_m**2
    if bmi < 18.5:
        category = "underweight"
    elif bmi < 25:
        category = "normal"
    elif bmi < 30:
        category = "overweight"
    else:
        category = "obese"
    return {"bmi": round(bmi, 1), "category": category}


def caesar_cipher(text: str, shift: int = 3) -> str:
    """Encrypts text with a Caesar cipher, shifting each letter through the alphabet.

    Args:
        text: The text to encrypt; characters other than letters are kept as they are.
        shift: How many places each letter moves; negative values decrypt.

    Returns:
        The encrypted text.
    """

    def rotate(char: str) -> str:
        if not char.isascii() or not char.isalpha():
            return char
        base = ord("a") if char.islower() else ord("A")
        return chr((ord(char) - base + shift) % 26 + base)

    return "".join(rotate(char) for char in text)


def slugify(title: str, separator: str = "-") -> str:
    """Turns a title into a URL slug of lowercase words joined by a separator.

    Args:
        title: The title to turn into a slug.
        separator: The string placed between words.

    Returns:
        The slug.
    """
    return separator.join(re.findall(r"[a-z0-9]+", title.lower()))
