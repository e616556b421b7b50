"""A library with functions that cannot all be described as tools (used by tests/test_tools.py)."""

from __future__ import annotations

from math import sqrt  # imported, so never collected as a tool


class Point:
    """A custom class, which has no JSON Schema equivalent."""

    x: float
    y: float


def add(a: int, b: int) -> int:
    """Adds two integers.

    Args:
        a: The first integer.
        b: The second integer.
    """
    return a + b


def no_docstring(a: int) -> int:
    return a


def no_type_hints(a, b):
    """Multiplies two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a * b


def custom_class(point: Point) -> float:
    """Measures a point's distance from the origin.

    Args:
        point: The point.
    """
    return sqrt(point.x**2 + point.y**2)


def many(*values: int) -> int:
    """Adds any number of integers.

    Args:
        values: The integers.
    """
    return sum(values)


def _helper(a: int) -> int:
    return a
