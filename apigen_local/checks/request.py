"""Is the row a request, and do its calls ask for each thing once? (part of the semantic stage)

Two deterministic checks aimed at mistakes a small generator really makes (issue 29), measured
on the labelled real rows in ``benchmarks/labelled/real_*.jsonl``:

- ``not_a_request``: the query is a statement, an answer, a title or a fragment rather than
  something a user would send. A query is a request when one of its sentences ends with a
  question mark, or starts (after "please", "also", "now" and the like) with a question word, an
  auxiliary verb ("can you", "is", "does"), a wish ("I need", "I'd like"), or an imperative verb
  in its base form: a common one, or the verb an offered function's description opens with
  ("Converts ..." -> "convert"). A sentence that opens like a description ("Finds the ...") is
  not a request. Fewer than three words or numbers is a fragment.
- ``repeated_call``: two calls with the same function and the same arguments, when the query
  does not ask for a repeat ("twice", "again", "two times").
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Final

from ..types import CheckResult, FunctionCall, Tool

NOT_A_REQUEST: Final = "not_a_request"
REPEATED_CALL: Final = "repeated_call"

_FILLERS = {"please", "also", "now", "and", "then", "so", "hey", "hi", "hello", "ok", "okay", "next",
            "first", "finally", "lastly", "additionally", "quickly", "kindly"}
_OPENERS = {
    # question words and auxiliaries that open a question written without its question mark
    "what", "whats", "how", "which", "who", "whom", "whose", "when", "where", "why", "is", "are",
    "am", "was", "were", "does", "do", "did", "can", "could", "would", "will", "should", "shall",
    "may", "might", "has", "have", "had",
    # wishes
    "i", "we", "id", "im", "my", "our", "lets", "let",
    # imperative verbs common in requests
    "add", "arrange", "book", "calculate", "change", "check", "clean", "combine", "compare",
    "compute", "convert", "count", "create", "decode", "determine", "divide", "encode",
    "encrypt", "estimate", "evaluate", "fetch", "figure", "find", "format", "generate", "get",
    "give", "help", "join", "list", "look", "make", "measure", "merge", "multiply", "normalise",
    "normalize", "order", "organise", "organize", "pack", "plan", "prepare", "print", "put",
    "rank", "return", "round", "schedule", "search", "set", "show", "shorten", "solve", "sort",
    "split", "subtract", "sum", "summarise", "summarize", "tell", "test", "total", "translate",
    "truncate", "turn", "verify", "work", "write",
}
_SENTENCE_RE = re.compile(r"[^.?!;\n]+[.?!;\n]*")
_REPEAT_WORDS_RE = re.compile(r"\b(twice|again|two times|three times|both times|repeat)\b", re.IGNORECASE)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.casefold().replace("'", ""))


def tool_verbs(tools: Sequence[Tool]) -> set[str]:
    """The base form of the verb each offered function's description opens with ("Splits" -> "split")."""
    verbs: set[str] = set()
    for tool in tools:
        first = (_words(tool.description) or [""])[0]
        if first.endswith("ies"):
            verbs.add(first[:-3] + "y")
        elif first.endswith(("ches", "shes", "sses", "xes")):
            verbs.add(first[:-2])
        elif first.endswith("s") and len(first) > 3:
            verbs.add(first[:-1])
    return verbs


def is_request(query: str, tools: Sequence[Tool] = ()) -> bool:
    """Whether ``query`` reads as a question or an instruction (see the module docstring)."""
    if len(_words(query)) < 3:
        return False
    verbs = tool_verbs(tools)
    for sentence in _SENTENCE_RE.findall(query):
        if sentence.rstrip().endswith("?"):
            return True
        words = _words(sentence)
        while words and words[0] in _FILLERS:
            words = words[1:]
        if not words:
            continue
        if words[0] in _OPENERS or words[0] in verbs:
            return True
    return False


def check_request(query: str, tools: Sequence[Tool] = ()) -> CheckResult:
    """Fail with ``not_a_request`` when ``query`` is not a question or an instruction."""
    if is_request(query, tools):
        return CheckResult.ok()
    return CheckResult.fail(NOT_A_REQUEST, "the query is a statement or a fragment, not a request.")


def check_repeats(query: str, calls: Sequence[FunctionCall]) -> CheckResult:
    """Fail with ``repeated_call`` on a call made twice when the query asks for no repeat."""
    if _REPEAT_WORDS_RE.search(query):
        return CheckResult.ok()
    seen: set[str] = set()
    for call in calls:
        key = json.dumps([call.name, call.arguments], sort_keys=True, default=str)
        if key in seen:
            return CheckResult.fail(REPEATED_CALL, f"{call.name} is called twice with the same arguments.")
        seen.add(key)
    return CheckResult.ok()
