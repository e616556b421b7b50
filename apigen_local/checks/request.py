"""Is the row a request, and do its calls ask for each thing once? (part of the semantic stage)

Two deterministic checks aimed at mistakes a small generator really makes (issue 29), measured
on the labelled real rows in ``benchmarks/labelled/real_*.jsonl``:

- ``not_a_request``: the query is a statement, an answer, a title or a fragment rather than
  something a user would send. A query is a request when one of its sentences ends with a
  question mark, or starts (after "please", "also", "now" and the like) with a question word, an
  auxiliary verb ("can you", "is", "does"), a wish ("I need", "I'd like"), or an imperative verb
  in its base form: a common one, or the verb an offered function's description opens with
  ("Converts ..." -> "convert"); or it says "please" after its first word. A sentence that opens
  like a description ("Finds the ...") is not a request, nor is code: a query written as a
  function call, or a sentence opening with a snake_case name. Fewer than three words or
  numbers, or a query ending in a word no sentence ends with ("of", "the", "and"), is a
  fragment. A query that says a word, or a run of up to eight words, four times in a row outside
  quotes ("180.0, 180.0, 180.0, 180.0") was written by a model looping, and is not a request
  either, nor is one that answers its own question ("Is 340 prime? Yes, 340 is prime."). The
  rules read English: a query in another language (mostly another script, or more of another
  language's function words than of English's) passes unjudged, with "not judged"
  in its detail.
- ``repeated_call``: two calls with the same function and the same arguments, when the query
  does not ask for a repeat ("twice", "again", "two times").
"""

from __future__ import annotations

import json
import re
import unicodedata
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
    # imperative verbs of assistant and app requests (BFCL's live dev rows)
    "adjust", "analyse", "analyze", "apply", "assign", "attend", "buy", "cancel", "close", "configure",
    "connect", "copy", "decrease", "delete", "deploy", "describe", "detect", "disable", "disconnect",
    "display", "download", "enable", "execute", "explain", "extract", "forward", "increase", "install",
    "launch", "load", "locate", "lower", "mark", "move", "mute", "navigate", "open", "pause", "pay",
    "pick", "play", "predict", "produce", "provide", "pull", "purchase", "raise", "read", "recommend",
    "register", "reload", "remind", "remove", "rename", "rent", "reply", "request", "reschedule",
    "reserve", "reset", "restart", "resume", "retrieve", "run", "save", "see", "select", "send",
    "share", "start", "stop", "submit", "subscribe", "suggest", "switch", "track", "transfer",
    "unmute", "unsubscribe", "update", "upload", "view",
    "ive",  # "I've submitted a complaint and would like ..."
    # imperative verbs of shop, money, message and text requests (issue 43: "Use code GREEN20 ...")
    "use", "quote", "price", "charge", "bill", "invoice", "refund", "redeem", "claim", "renew",
    "ship", "deliver", "post", "mail", "email", "text", "call", "message", "notify", "confirm",
    "draft", "rewrite", "rephrase", "spell", "define", "name", "identify", "classify", "label", "tag",
    "filter", "group", "reverse", "shuffle", "rotate", "resize", "scale", "parse", "hash", "sign",
    "compress", "choose", "draw", "roll", "flip", "guess", "keep", "hold", "lock", "unlock",
    "block", "unblock", "invite", "visit", "water", "feed", "cook", "bake", "brew", "fix", "repair",
    "replace", "swap", "trade", "sell", "lend", "borrow", "donate", "take", "bring", "insert",
    "append", "capitalize", "capitalise", "strip", "trim", "pad", "inform", "ask", "answer",
    "contact", "alert", "warn", "double", "halve", "square", "average", "tally", "grade", "score",
    "rate", "review", "simulate", "validate", "approve", "reject", "stock", "restock",
}
#: function words of English, and of languages people often write requests in with Latin letters
_ENGLISH = frozenset({"the", "a", "an", "to", "of", "and", "in", "for", "with", "is", "are", "you", "me", "my",
                      "i", "it", "on", "from", "what", "how", "please", "can", "this", "that", "at", "by"})
_FOREIGN = frozenset({
    "el", "la", "de", "en", "un", "los", "las", "del", "para", "que", "una", "por", "con", "quiero", "necesito",
    "como",  # Spanish
    "le", "les", "des", "je", "pour", "avec", "une", "est", "dans", "du", "sur", "vous",  # French
    "der", "die", "das", "und", "zu", "ist", "mit", "ich", "bitte", "den", "dem", "ein", "eine",  # German
    "saya", "yang", "dan", "dengan", "untuk", "ini", "itu", "bahwa", "masih", "ingin",  # Indonesian
    "toi", "cua", "va", "khong", "mot", "cho", "nhung",  # Vietnamese, accents dropped
    "il", "di", "per", "che", "sono", "vorrei",  # Italian
    "eu", "os", "uma", "voce", "quero", "preciso",  # Portuguese
})
_SENTENCE_RE = re.compile(r"[^.?!;\n]+[.?!;\n]*")
_CALL_START_RE = re.compile(r"\W*[A-Za-z_][\w.]*\(")  # "add_to_basket(" opening a query written as a call
#: words a request cannot end with: a query ending in one was cut short ("Use a separator of");
#: not prepositions a request may end with ("Switch the heater on.", "... leaves from.")
_DANGLING = frozenset({"a", "an", "the", "of", "and", "or", "my", "your", "its", "their"})
_QUOTED_RE = re.compile(r"(?<!\w)'[^']*'(?!\w)|\"[^\"]*\"|“[^”]*”")  # not the apostrophe of "what's"
_TOKEN_RE = re.compile(r"[\w.]+")
LOOP_TIMES = 4  # a word or a run of up to LOOP_WORDS words said this many times in a row is a model looping
LOOP_WORDS = 8
#: a question the query answers itself: "Is 340 prime? Yes, 340 is a prime number."
_ANSWERED_RE = re.compile(r"\?\s*(yes|no)\s*[,.!]", re.IGNORECASE)
_IDENTIFIER_RE = re.compile(r"^\W*[A-Za-z]\w*_\w*")  # a sentence opening with a snake_case name
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


def not_english(query: str) -> bool:
    """Whether ``query`` is written in another language: mostly letters outside the Latin script,
    or at least two function words of another language and more of them than of English. The
    request rules read English only."""
    letters = [c for c in query if c.isalpha()]
    if letters and sum(not ("a" <= c.casefold() <= "z") and not _latin(c) for c in letters) > len(letters) / 2:
        return True
    written = re.findall(r"[^\W\d_]+", query.casefold().replace("'", ""))  # accents kept: "cần" is not "can"
    foreign = sum(word in _FOREIGN for word in _plain_words(query))
    return foreign >= 2 and foreign > sum(word in _ENGLISH for word in written)


def _latin(char: str) -> bool:
    return unicodedata.name(char, "").startswith("LATIN")


def _plain_words(text: str) -> list[str]:
    """The words of ``text``, case folded, with accents dropped ("Tôi" -> "toi")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return re.findall(r"[a-z0-9]+", "".join(c for c in decomposed if not unicodedata.combining(c)).replace("'", ""))


def is_request(query: str, tools: Sequence[Tool] = ()) -> bool:
    """Whether ``query`` reads as a question or an instruction (see the module docstring)."""
    words = _words(query)
    if len(words) < 3 or written_as_call(query) or (words[-1] in _DANGLING and not query.rstrip().endswith("?")):
        return False
    verbs = tool_verbs(tools)
    for sentence in _SENTENCE_RE.findall(query):
        if sentence.rstrip().endswith("?"):
            return True
        if _IDENTIFIER_RE.match(sentence):
            continue  # code, or a function's name written out: not words a person asks with
        words = _words(sentence)
        first = next((word for word in words if word not in _FILLERS), None)
        if first in _OPENERS or first in verbs or "please" in words[1:]:  # "..., please."
            return True
    return False


def written_as_call(query: str) -> bool:
    """Whether ``query`` is a function call written out (``add_to_basket(budget, card)``): a name and
    "(" open it, and its last word comes before its last ")" (linear, whatever the brackets)."""
    if not _CALL_START_RE.match(query):
        return False
    last_word = max((i for i, c in enumerate(query) if c.isalnum() or c == "_"), default=-1)
    return query.rfind(")") > last_word


def looping(query: str) -> str | None:
    """The words ``query`` repeats :data:`LOOP_TIMES` times in a row outside quotes ("180.0, 180.0,
    180.0, 180.0", "by first name by first name ..."): text a model wrote while looping."""
    tokens = _TOKEN_RE.findall(_QUOTED_RE.sub(" ", query).casefold())
    for size in range(1, LOOP_WORDS + 1):
        for start in range(len(tokens) - size * LOOP_TIMES + 1):
            words = tokens[start:start + size]
            if all(tokens[start + k * size:start + (k + 1) * size] == words for k in range(1, LOOP_TIMES)):
                return " ".join(words)
    return None


def check_request(query: str, tools: Sequence[Tool] = ()) -> CheckResult:
    """Fail with ``not_a_request`` when ``query`` is not a question or an instruction, or repeats
    itself as a looping model does. A query in another language passes unjudged, and says so in its
    detail."""
    repeated = looping(query)
    if repeated is not None:
        return CheckResult.fail(NOT_A_REQUEST, f"the query says {repeated!r} {LOOP_TIMES} times in a row, as a "
                                               "model repeating itself does.")
    if _ANSWERED_RE.search(query):
        return CheckResult.fail(NOT_A_REQUEST, "the query answers its own question, as a statement of an answer does.")
    if is_request(query, tools):
        return CheckResult.ok()
    if not_english(query):
        return CheckResult(passed=True, detail="not judged: the query is not in English")
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
