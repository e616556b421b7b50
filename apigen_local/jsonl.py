"""The one way JSON Lines files are read: lines end at ``\\n`` and nowhere else.

``str.splitlines()`` also breaks at U+2028, U+2029, U+0085, ``\\v``, ``\\f`` and ``\\x1c``-``\\x1e``,
which JSON writes unescaped inside strings (and scraped text is full of them), so a reader built on
it cuts one good row into two bad ones. Here a file is split on the byte ``\\n`` only, each line is
decoded on its own, and a line that cannot be read is named by its number and byte offset.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple


class JsonLine(NamedTuple):
    """One non-blank line of a JSONL file: 1-based ``number``, byte ``offset`` of its start, ``raw`` bytes."""

    number: int
    offset: int
    raw: bytes

    def where(self) -> str:
        """``line N (byte B)``, for error messages."""
        return f"line {self.number} (byte {self.offset})"


class BadLine(ValueError):
    """A line that is not UTF-8 JSON; the message is one sentence without the file's name."""


def split_lines(data: bytes) -> Iterator[JsonLine]:
    """The non-blank lines of ``data``, split on ``\\n`` only (a trailing ``\\r`` is kept: JSON ignores it)."""
    offset = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if raw.strip():
            yield JsonLine(number, offset, raw)
        offset += len(raw) + 1


def complete_part(data: bytes) -> bytes:
    """``data`` up to and including its last ``\\n``: what a writer has finished (a crash or a write
    in progress leaves the rest)."""
    return data[: data.rfind(b"\n") + 1]


def parse_line(line: JsonLine) -> Any:
    """The JSON value of ``line``; raises :class:`BadLine` naming the line when it is not UTF-8 JSON
    (nesting too deep for the parser counts as not JSON)."""
    try:
        text = line.raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = line.offset + exc.start
        raise BadLine(f"{line.where()} is not UTF-8 text (byte {byte} is 0x{line.raw[exc.start]:02x})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise BadLine(f"{line.where()} is nested too deeply to read") from None
    except ValueError as exc:
        raise BadLine(f"{line.where()} is not JSON ({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
