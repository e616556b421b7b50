"""BFCL's AST rules for Python calls, written for this project from the rules BFCL documents and
applies (``bfcl_eval/eval_checker/ast_eval/ast_checker.py`` in the gorilla repository): a call
list is checked against a possible answer, where every parameter has a list of allowed values and
``""`` among them means the parameter may be left out.

- **Counts.** ``simple`` needs exactly one call; ``multiple`` as many calls as the answer has
  (one), and checks the first; ``parallel`` and ``parallel_multiple`` match calls to the answer's
  entries in any order, each call used once.
- **Names and parameters.** The call's function must be the answer's; every required parameter is
  given; every given one is both described and in the answer; every answer parameter without
  ``""`` is given.
- **Types** (BFCL's Python mapping: string, integer, float, boolean, array, tuple, dict; ``any``
  as string): the value's type must be the declared one exactly (a bool is no integer), except an
  int for a float. Array items are checked one level deep. A value of the answer's own type
  where the declared one differs is a *variable* and is compared as it is.
- **Values.** Strings compare after lower-casing and removing spaces and ``,./-_*^`` (and ``'``
  read as ``"``); lists element by element, their strings normalised alike; objects key by key
  (each key's allowed values, ``""`` for a key that may be left out); lists of objects position by
  position; anything else by equality with one allowed value.

Pure functions that never raise on odd input: a verdict is data (:class:`BfclVerdict`), its
``error_type`` one of the codes below, named as BFCL names them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from pydantic import BaseModel

WRONG_COUNT: Final = "wrong_count"
WRONG_FUNC_NAME: Final = "wrong_func_name"
MISSING_REQUIRED: Final = "missing_required"
UNEXPECTED_PARAM: Final = "unexpected_param"
MISSING_OPTIONAL: Final = "missing_optional"
TYPE_ERROR: Final = "type_error:simple"
NESTED_TYPE_ERROR: Final = "type_error:nested"
STRING_VALUE: Final = "value_error:string"
LIST_VALUE: Final = "value_error:list/tuple"
DICT_KEY: Final = "value_error:dict_key"
DICT_VALUE: Final = "value_error:dict_value"
LIST_DICT_COUNT: Final = "value_error:list_dict_count"
OTHER_VALUE: Final = "value_error:others"
NO_MATCH: Final = "cannot_find_match"
UNCLEAR_DICT: Final = "dict_checker:unclear"
UNCLEAR_LIST_DICT: Final = "list_dict_checker:unclear"

_PYTHON_TYPES: dict[str, type] = {"string": str, "integer": int, "float": float, "boolean": bool,
                                  "array": list, "tuple": list, "dict": dict, "any": str}
_NESTED = ("array", "tuple")
_IGNORED = re.compile(r"[ ,./\-_*^]")

Call = dict[str, dict[str, Any]]  # {function name: {parameter: value}}, as BFCL decodes a model's call
Answer = dict[str, dict[str, list[Any]]]  # {function name: {parameter: [allowed values]}}


class BfclVerdict(BaseModel):
    """Whether calls match a possible answer, and if not, BFCL's error type and why."""

    valid: bool
    error_type: str = ""
    error: str = ""

    @classmethod
    def ok(cls) -> BfclVerdict:
        return cls(valid=True)

    @classmethod
    def fail(cls, error_type: str, error: str) -> BfclVerdict:
        return cls(valid=False, error_type=error_type, error=error)


def check(functions: Sequence[dict[str, Any]], calls: Sequence[Call], answer: Sequence[Answer],
          category: str) -> BfclVerdict:
    """``calls`` against ``answer`` by the rules of BFCL ``category`` (its name decides: one with
    "parallel" in it is order-free, one with "multiple" checks one call among several tools)."""
    try:
        if "parallel" in category:
            return _order_free(functions, calls, answer)
        if len(calls) != len(answer):
            return BfclVerdict.fail(WRONG_COUNT, f"{len(calls)} calls for {len(answer)} expected")
        if not answer:
            return BfclVerdict.ok()
        return check_call(_described(functions, next(iter(answer[0]))), calls[0], answer[0])
    except (TypeError, AttributeError, KeyError, ValueError) as exc:  # a malformed spec or answer
        return BfclVerdict.fail(OTHER_VALUE, f"unreadable input: {type(exc).__name__}: {exc}")


def _order_free(functions: Sequence[dict[str, Any]], calls: Sequence[Call], answer: Sequence[Answer]) -> BfclVerdict:
    if len(calls) != len(answer):
        return BfclVerdict.fail(WRONG_COUNT, f"{len(calls)} calls for {len(answer)} expected")
    used: set[int] = set()
    for position, expected in enumerate(answer):
        description = _described(functions, next(iter(expected)))
        match = next((i for i, call in enumerate(calls)
                      if i not in used and check_call(description, call, expected).valid), None)
        if match is None:
            return BfclVerdict.fail(NO_MATCH, f"no call matches entry {position} of the answer")
        used.add(match)
    return BfclVerdict.ok()


def _described(functions: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    return next((f for f in functions if f.get("name") == name), {"name": name, "parameters": {}})


def check_call(function: dict[str, Any], call: Call, answer: Answer) -> BfclVerdict:
    """One call against one answer entry, ``function`` being the answer's function description."""
    name = function["name"]
    allowed_by_param = next(iter(answer.values()))
    if name not in call:
        return BfclVerdict.fail(WRONG_FUNC_NAME, f"{name!r} is not called")
    given = call[name]
    parameters = function.get("parameters") or {}
    described = parameters.get("properties") or {}
    for param in parameters.get("required") or []:
        if param not in given:
            return BfclVerdict.fail(MISSING_REQUIRED, f"required parameter {param!r} is missing")
    for param, value in given.items():
        if param not in described or param not in allowed_by_param:
            return BfclVerdict.fail(UNEXPECTED_PARAM, f"parameter {param!r} is not expected")
        verdict = _check_value(param, value, described[param], allowed_by_param[param])
        if not verdict.valid:
            return verdict
    for param, allowed in allowed_by_param.items():
        if param not in given and "" not in allowed:
            return BfclVerdict.fail(MISSING_OPTIONAL, f"parameter {param!r} is left out but not optional")
    return BfclVerdict.ok()


def _check_value(param: str, value: Any, description: dict[str, Any], allowed: list[Any]) -> BfclVerdict:
    declared = description.get("type", "any")
    expected = _PYTHON_TYPES.get(declared, str)
    item_type = None
    if declared in _NESTED:
        item_type = _PYTHON_TYPES.get((description.get("items") or {}).get("type", "any"), str)
    if declared == "float" and type(value) is int:
        value = float(value)
    answer_type = next((type(a) for a in allowed if a != ""), None)
    variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        if item_type is not None and not _items_typed(value, item_type, allowed):
            return BfclVerdict.fail(NESTED_TYPE_ERROR, f"an item of {param!r} is not of type {item_type.__name__}")
    elif answer_type is not None and type(value) is answer_type:
        variable = True
    else:
        return BfclVerdict.fail(TYPE_ERROR, f"{param!r} should be {declared}, not {type(value).__name__}")
    if not variable:
        if expected is dict:
            return _dict_value(param, value, allowed)
        if expected is list and item_type is dict:
            return _list_of_dicts(param, value, allowed)
        if expected is str:
            texts = [_normalised(a) for a in allowed if isinstance(a, str)]
            return BfclVerdict.ok() if _normalised(value) in texts else BfclVerdict.fail(
                STRING_VALUE, f"{param!r} = {value!r} is none of {allowed}")
        if expected is list:  # "" (may be left out) reads as the empty list
            lists = [_normalised_list(a) if isinstance(a, list) else []
                     for a in allowed if isinstance(a, list) or a == ""]
            return BfclVerdict.ok() if _normalised_list(value) in lists else BfclVerdict.fail(
                LIST_VALUE, f"{param!r} = {value!r} is none of {allowed}")
    if value in allowed:
        return BfclVerdict.ok()
    return BfclVerdict.fail(OTHER_VALUE, f"{param!r} = {value!r} is none of {allowed}")


def _items_typed(value: list[Any], item_type: type, allowed: list[Any]) -> bool:
    """Every item is of ``item_type``, or of the type an allowed list's items have (a variable),
    for some allowed value; an allowed value that is no list (``""``) lets any items through."""
    def typed(item: Any, answer_items: list[Any]) -> bool:
        answer_type = next((type(a) for a in answer_items if a != ""), None)
        return type(item) is item_type or (answer_type is not None and type(item) is answer_type)

    return any(not isinstance(candidate, list) or all(typed(item, candidate) for item in value)
               for candidate in allowed)


def _dict_value(param: str, value: dict[str, Any], allowed: list[Any]) -> BfclVerdict:
    verdict = BfclVerdict.fail(UNCLEAR_DICT, f"{param!r} has no allowed object to match")
    for candidate in (a for a in allowed if isinstance(a, dict)):
        verdict = _dict_against(value, candidate)
        if verdict.valid:
            return verdict
    return verdict


def _dict_against(value: dict[str, Any], candidate: dict[str, list[Any]]) -> BfclVerdict:
    for key, item in value.items():
        if key not in candidate:
            return BfclVerdict.fail(DICT_KEY, f"unexpected key {key!r}")
        allowed = [_normalised(a) if isinstance(a, str) else a for a in candidate[key]]
        if (_normalised(item) if isinstance(item, str) else item) not in allowed:
            return BfclVerdict.fail(DICT_VALUE, f"key {key!r} = {item!r} is none of {candidate[key]}")
    for key, allowed_values in candidate.items():
        if key not in value and "" not in allowed_values:
            return BfclVerdict.fail(DICT_KEY, f"key {key!r} is missing")
    return BfclVerdict.ok()


def _list_of_dicts(param: str, value: list[Any], allowed: list[Any]) -> BfclVerdict:
    verdict = BfclVerdict.fail(UNCLEAR_LIST_DICT, f"{param!r} has no allowed list to match")
    for candidate in ([] if a == "" else a for a in allowed if isinstance(a, list) or a == ""):
        if len(candidate) != len(value):
            verdict = BfclVerdict.fail(LIST_DICT_COUNT, f"{param!r} has {len(value)} objects, not {len(candidate)}")
            continue
        verdict = next((v for v in (_dict_against(item, expected) for item, expected in zip(value, candidate,
                                                                                              strict=True))
                        if not v.valid), BfclVerdict.ok())
        if verdict.valid:
            return verdict
    return verdict


def _normalised(text: str) -> str:
    return _IGNORED.sub("", text).lower().replace("'", '"')


def _normalised_list(value: list[Any]) -> list[Any]:
    return [_normalised(x) if isinstance(x, str) else x for x in value]
