"""A small library that no test and no seed file uses: the new user's own library in
benchmarks/seed_drafts.py (issue 24). Standard library only, as the sandbox requires."""

from __future__ import annotations


def scale_recipe(grams: float, servings_from: int, servings_to: int) -> float:
    """Scales an ingredient amount from one number of servings to another.

    Args:
        grams: The amount of the ingredient in the recipe, in grams.
        servings_from: The number of servings the recipe makes.
        servings_to: The number of servings wanted.
    """
    return round(grams * servings_to / servings_from, 1)


def roasting_minutes(weight_kg: float, minutes_per_kg: int) -> int:
    """Computes how long to roast a joint of meat.

    Args:
        weight_kg: The weight of the meat in kilograms.
        minutes_per_kg: The roasting time per kilogram, in minutes.
    """
    return round(weight_kg * minutes_per_kg)


def split_bill(total: float, people: int, tip_percent: float = 0.0) -> float:
    """Splits a restaurant bill evenly, with an optional tip.

    Args:
        total: The bill before the tip.
        people: How many people share it.
        tip_percent: The tip as a percentage of the bill.
    """
    return round(total * (1 + tip_percent / 100) / people, 2)


def count_vowels(text: str) -> int:
    """Counts the vowels in a piece of text.

    Args:
        text: The text to read.
    """
    return sum(1 for letter in text.casefold() if letter in "aeiou")


def cups_to_millilitres(cups: float) -> float:
    """Converts US cups to millilitres.

    Args:
        cups: The volume in US cups.
    """
    return round(cups * 236.588, 1)
