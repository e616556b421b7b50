"""Tools from a Python function library: import it safely and describe each public function.

Schemas come from ``transformers.utils.get_json_schema`` (OpenAI tool format), normalised by
:mod:`apigen_local.tool_specs` to plain JSON Schema objects.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import json
import logging
import os
import re
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any

from pydantic import BaseModel, Field

from .errors import LibraryError
from .tool_specs import check_schema, object_schema
from .types import Tool

logger = logging.getLogger(__name__)

_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
IMPORT_TIMEOUT = 30.0  # seconds a library may take to import

class Library(BaseModel):
    """A function library imported from a Python file or module and described as tools."""

    path: str
    module: str
    tools: list[Tool]
    skipped: dict[str, str] = Field(default_factory=dict)

    @property
    def by_name(self) -> dict[str, Tool]:
        """The tools keyed by function name."""
        return {tool.name: tool for tool in self.tools}

    def tool(self, name: str) -> Tool:
        """The tool called ``name``; :class:`LibraryError` if the library has none."""
        for tool in self.tools:
            if tool.name == name:
                return tool
        known = ", ".join(tool.name for tool in self.tools)
        raise LibraryError(f"The library {self.path} has no tool named {name!r}; it has: {known}.")


class _Undescribable(Exception):
    """A public function that cannot be turned into a tool schema; the message says why."""


# --------------------------------------------------------------------------- library loading


def load_library(path: str | Path, *, strict: bool = True) -> Library:
    """Import a function library (a ``.py`` path or a module name) and describe its functions.

    Public functions defined in the module itself are described with
    ``transformers.utils.get_json_schema``. Functions it cannot describe make a strict load fail
    with a :class:`LibraryError` listing them; a lenient load skips them with a warning.
    """
    module, origin = _import_library(path)
    tools: list[Tool] = []
    skipped: dict[str, str] = {}
    for name, func in _public_functions(module):
        try:
            tools.append(_describe(func))
        except _Undescribable as exc:
            skipped[name] = str(exc).replace(f"{module.__name__}.", "")  # no generated module name
        except (Exception, SystemExit) as exc:  # a type hint, default or docstring that explodes when read
            first = (str(exc).splitlines() or [""])[0][:200]
            skipped[name] = f"describing it raised {type(exc).__name__}" + (f": {first}" if first else "")
    if skipped and strict:
        listed = "; ".join(f"{name}: {reason}" for name, reason in skipped.items())
        raise LibraryError(
            f"{len(skipped)} function(s) in {origin} cannot be described as tools "
            f"(fix them, make them private with a leading underscore, or load leniently) - {listed}"
        )
    for name, reason in skipped.items():
        logger.warning("Skipped %s from %s: %s", name, origin, reason)
    if not tools:
        extra = f" ({len(skipped)} skipped)" if skipped else ""
        raise LibraryError(f"{origin} defines no public function usable as a tool{extra}.")
    return Library(path=origin, module=module.__name__, tools=tools, skipped=skipped)


def _import_library(source: str | Path) -> tuple[ModuleType, str]:
    text = str(source)
    candidate = Path(text).expanduser()
    looks_like_path = (
        isinstance(source, Path) or text.endswith(".py") or os.sep in text or "/" in text
    )
    name = candidate.stem if looks_like_path or candidate.is_file() else text.split(".")[0]
    if name in sys.stdlib_module_names:
        raise LibraryError(f"The library is named {name!r}, like a module of Python's standard library, "
                           "which it would replace where the calls run; rename it.")
    if looks_like_path or candidate.is_file():
        return _import_file(candidate)
    if _MODULE_NAME.fullmatch(text):
        return _import_module(text)
    raise LibraryError(f"{text!r} is neither an existing Python file nor a module name.")


class _CountingSink:
    """A text stream that only counts what is written to it."""

    def __init__(self) -> None:
        self.count = 0

    def write(self, text: str) -> int:
        self.count += len(text)
        return len(text)

    def flush(self) -> None:
        pass


def _guarded_import(load: Callable[[], Any], origin: str) -> Any:
    """Run ``load`` with the library's prints discarded (and warned about once), giving up after
    :data:`IMPORT_TIMEOUT` seconds; exceptions of ``load`` are re-raised as they are."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = load()
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    sink = _CountingSink()
    worker = threading.Thread(target=run, name="apigen-library-import", daemon=True)
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):  # type: ignore[type-var]
        worker.start()
        worker.join(IMPORT_TIMEOUT)
    if worker.is_alive():
        raise LibraryError(
            f"The library {origin} did not finish importing within {IMPORT_TIMEOUT:g} s; "
            "make its import quick (nothing that waits, loops or needs the network)."
        )
    if sink.count:
        logger.warning("The library %s printed %d characters while being imported; "
                       "the output was discarded.", origin, sink.count)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _import_file(path: Path) -> tuple[ModuleType, str]:
    """Run a ``.py`` file as a fresh module that is removed from ``sys.modules`` afterwards."""
    path = path.resolve()
    if not path.is_file():
        raise LibraryError(f"The library file {path} does not exist.")
    stem = re.sub(r"\W", "_", path.stem)
    name = f"_apigen_library_{stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LibraryError(
            f"The library {path} cannot be imported; give a Python file ending in .py."
        )
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    # While the file runs it must be importable by name (dataclasses and typing look it up) and
    # its own folder must be on the path (for sibling imports); neither outlives the import.
    sys.modules[name] = module
    sys.path.insert(0, folder)
    try:
        _guarded_import(lambda: spec.loader.exec_module(module), str(path))  # type: ignore[union-attr]
    except LibraryError:
        raise
    except SyntaxError as exc:
        where = exc.filename or str(path)
        raise LibraryError(
            f"The library {path} cannot be imported: syntax error in {where} "
            f"line {exc.lineno}: {exc.msg}."
        ) from exc
    except (Exception, SystemExit) as exc:
        raise LibraryError(
            f"The library {path} cannot be imported: {type(exc).__name__}: {exc}."
        ) from exc
    finally:
        sys.modules.pop(name, None)
        if folder in sys.path:
            sys.path.remove(folder)
    return module, str(path)


def _import_module(name: str) -> tuple[ModuleType, str]:
    try:
        module = _guarded_import(lambda: importlib.import_module(name), name)
    except LibraryError:
        raise
    except ModuleNotFoundError as exc:
        raise LibraryError(
            f"No library file or module named {name!r} was found; give a path to a .py file "
            "or the name of an importable module."
        ) from exc
    except (Exception, SystemExit) as exc:
        raise LibraryError(
            f"The library module {name} cannot be imported: {type(exc).__name__}: {exc}."
        ) from exc
    return module, getattr(module, "__file__", None) or name


def _public_functions(module: ModuleType) -> Iterator[tuple[str, FunctionType]]:
    """Functions defined in ``module`` itself under their own public name, in source order."""
    for name, obj in list(vars(module).items()):
        if not isinstance(name, str) or name.startswith("_") or type(obj) is not FunctionType:
            continue  # type(), unlike isinstance(), asks the object nothing it could answer by raising
        if type(obj.__module__) is str and obj.__module__ == module.__name__ and obj.__name__ == name:
            yield name, obj


def _describe(func: Callable[..., Any]) -> Tool:
    """The tool schema of one function, or :class:`_Undescribable` saying why there is none."""
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")  # no "PyTorch not found" notice
    from transformers.utils import get_json_schema
    from transformers.utils.chat_template_utils import (
        DocstringParsingException,
        TypeHintParsingException,
    )

    signature = inspect.signature(func)
    for param in signature.parameters.values():
        if param.kind is param.POSITIONAL_ONLY:
            raise _Undescribable(
                f"parameter '{param.name}' is positional-only but tool calls pass arguments by name"
            )
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise _Undescribable(
                f"parameter '{param.name}' takes a variable number of arguments, "
                "which a tool schema cannot describe"
            )
    try:
        spec = get_json_schema(func)["function"]
    except (DocstringParsingException, TypeHintParsingException) as exc:
        message = " ".join(str(arg) for arg in exc.args).strip()
        raise _Undescribable(re.split(r"(?<=[.!])\s", message, maxsplit=1)[0]) from exc
    except NameError as exc:
        raise _Undescribable(f"a type hint cannot be resolved: {exc}") from exc

    parameters = object_schema(spec["parameters"], f"function {func.__name__}")
    for param in signature.parameters.values():
        if param.default is not param.empty:
            try:
                default = json.loads(json.dumps(param.default, allow_nan=False))
            except (TypeError, ValueError):
                continue  # a default JSON cannot express is simply not advertised
            parameters["properties"][param.name]["default"] = default
    check_schema(parameters, f"function {func.__name__}")
    return Tool(name=spec["name"], description=spec.get("description") or "", parameters=parameters)
