"""Output files of a run and the row formats written into them.

``records.jsonl`` is the source of truth: a batch's records are appended, flushed and fsynced
(one fsync a batch) before the rows are copied to ``dataset.jsonl`` (accepted) or
``rejected.jsonl``. On resume both copies are rebuilt from the records, so a crash between the
two writes can neither lose nor duplicate a row.

Every row can be written: text JSON cannot hold (lone surrogates) is escaped and values nested more
than :data:`MAX_RECORD_DEPTH` deep are cut, each noted in ``Record.write_repairs``; a row that still
cannot be written is recorded as rejected with reason ``unwritable``, and the run goes on.

While a run writes, it holds an exclusive ``flock`` on ``DIR/.lock``: a second run on the same
directory is refused, and readers (``review``) can tell a run that is still being written.

A folder may come from someone else, so its own files are opened as themselves (:func:`open_own`):
never through a symbolic link, only regular files, and never a file with other names (a hard link)
for writing. Reviewing, resuming or exporting a shared folder cannot read or write outside it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel

from ..errors import ConfigError, os_error_line
from ..jsonl import complete_part, split_lines
from ..tool_specs import xlam_tools
from ..types import CheckResult, Record
from .messages import messages_row

ExportFormat = Literal["xlam", "openai", "sharegpt", "messages"]
MAX_RECORD_DEPTH = 64  # nesting of lists and objects kept inside one field of a record
UNWRITABLE = "unwritable"


def xlam_row(record: Record) -> dict[str, Any]:
    """The xlam-function-calling-60k form: ``answers`` and ``tools`` as JSON strings."""
    return {
        "id": record.written_id,
        "query": record.query,
        "answers": json.dumps([call.model_dump() for call in record.answers], ensure_ascii=False),
        "tools": json.dumps(xlam_tools(record.tools), ensure_ascii=False),
    }


def openai_row(record: Record) -> dict[str, Any]:
    """OpenAI chat form: a user message, an assistant message with ``tool_calls``, the tools."""
    calls = [
        {"id": f"call_{record.id}_{i}", "type": "function",
         "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}}
        for i, c in enumerate(record.answers)
    ]
    return {
        "id": record.written_id,
        "messages": [{"role": "user", "content": record.query},
                     {"role": "assistant", "content": None, "tool_calls": calls}],
        "tools": [tool.openai() for tool in record.tools],
    }


def sharegpt_row(record: Record) -> dict[str, Any]:
    """ShareGPT form: ``conversations`` with a human turn and a ``function_call`` turn."""
    return {
        "id": record.written_id,
        "conversations": [
            {"from": "human", "value": record.query},
            {"from": "function_call",
             "value": json.dumps([c.model_dump() for c in record.answers], ensure_ascii=False)},
        ],
        "tools": json.dumps([tool.openai()["function"] for tool in record.tools], ensure_ascii=False),
    }


EXPORTERS: dict[str, Callable[[Record], dict[str, Any]]] = {
    "xlam": xlam_row, "openai": openai_row, "sharegpt": sharegpt_row, "messages": messages_row}


def check_export_options(fmt: str, *, json_strings: bool, results: bool) -> None:
    """:class:`ConfigError` when the messages export's options come with another format."""
    if fmt != "messages" and (json_strings or results):
        raise ConfigError("--json-strings and --results apply to --format messages only")


def exporter(fmt: ExportFormat, *, json_strings: bool = False,
             results: bool = False) -> Callable[[Record], dict[str, Any]]:
    """The row converter of ``fmt``; ``json_strings`` and ``results`` are the messages export's
    options (run/messages.py) and an error with any other format."""
    check_export_options(fmt, json_strings=json_strings, results=results)
    if fmt == "messages":
        return partial(messages_row, json_strings=json_strings, results=results)
    return EXPORTERS[fmt]


def rejected_row(record: Record) -> dict[str, Any]:
    """A rejected row: where it failed and why, with what the model produced."""
    stage, reason = record.rejection or ("", "")
    check = dict(record.checks()).get(stage)  # type: ignore[arg-type]
    return {
        "id": record.written_id,
        "stage": stage,
        "reason": reason,
        "detail": check.detail if check is not None else "",
        "query": record.query,
        "answers": [call.model_dump() for call in record.answers],
        "raw_output": record.raw_output,
    }


class RunFiles:
    """The files of one output directory and their crash-safe writing."""

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(out_dir)
        self.records = self.dir / "records.jsonl"
        self.dataset = self.dir / "dataset.jsonl"
        self.rejected = self.dir / "rejected.jsonl"
        self.stats = self.dir / "stats.json"
        self.run = self.dir / "run.json"
        self.lock = self.dir / ".lock"
        self._handles: dict[Path, IO[str]] = {}
        self._lock_fd: int | None = None

    def open(self, identity: dict[str, Any]) -> list[Record]:
        """Create or reopen the directory for a run with ``identity``; return records already done."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            probe = partial_path(self.dir / ".write-test")
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"output directory {self.dir} is not writable: {exc.strerror}") from exc
        self._take_lock()
        try:
            if os.path.lexists(self.run):
                previous = read_settings(self.run)
                if "library_source" not in previous and "library_source" in identity:  # a run from before
                    previous["library_source"] = identity["library_source"]  # the digest existed resumes
                if previous != json.loads(json.dumps(identity)):
                    changed = sorted(k for k in set(previous) | set(identity)
                                     if previous.get(k) != identity.get(k))
                    source = identity.get("library_source")
                    if changed == ["library_source"] and isinstance(source, dict):
                        raise ConfigError(
                            f"the library {source.get('path')} changed since the run in {self.dir} began (its "
                            "source differs): restore it to resume, or use a new --out directory"
                        )
                    raise ConfigError(
                        f"{self.dir} holds a run with other settings ({', '.join(changed)}): "
                        "use a new --out directory, or the same settings to resume"
                    )
            else:
                write_atomic(self.run, json.dumps(identity, indent=2))
            records = list(read_records(self.records, repair=True))
            write_atomic(self.dataset, "".join(_line(xlam_row(r)) for r in records if r.accepted))
            write_atomic(self.rejected, "".join(_line(rejected_row(r)) for r in records if not r.accepted))
            return records
        except BaseException:
            self.close()
            raise

    def append(self, records: Sequence[Record]) -> None:
        """Write finished rows: their records.jsonl lines, fsynced once, then their dataset or
        rejected copies, fsynced once (a crash between the two is repaired on resume)."""
        written = [_writable_lines(record) for record in records]
        self._append(self.records, [line for line, _, _ in written])
        self._append(self.dataset, [copy for _, copy, accepted in written if accepted])
        self._append(self.rejected, [copy for _, copy, accepted in written if not accepted])

    def _append(self, path: Path, lines: list[str]) -> None:
        if not lines:
            return
        try:
            handle = self._handles.get(path)
            if handle is None:
                fd = open_own(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, writing=True)
                handle = self._handles[path] = os.fdopen(fd, "a", encoding="utf-8")
            handle.write("".join(line + "\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())
        except OSError as exc:
            self._drop(path)  # what it still buffers could not be written: resume repairs the file
            raise ConfigError(write_failure(path, exc)) from exc

    def _drop(self, path: Path) -> None:
        handle = self._handles.pop(path, None)
        if handle is not None:
            try:
                handle.close()
            except OSError:
                pass  # the buffer could not be flushed; closing still lets go of the descriptor

    def close_files(self) -> None:
        """Close the open files; the directory stays held (the run still writes its stats and
        report) until :meth:`close`."""
        for path in list(self._handles):
            self._drop(path)

    def close(self) -> None:
        """Close the open files and let go of the directory."""
        self.close_files()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the lock
            self._lock_fd = None

    def _take_lock(self) -> None:
        try:
            fd = open_own(self.lock, os.O_RDWR | os.O_CREAT, writing=True)
        except OSError as exc:
            raise ConfigError(f"cannot lock {self.lock}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(f"another run is writing to {self.dir}: wait for it to end, or use another "
                              "--out directory") from None
        except OSError as exc:  # a file system without locks (some network mounts)
            os.close(fd)
            raise ConfigError(f"cannot lock {self.lock} ({exc.strerror or exc}): use an --out directory on a "
                              "local disk") from None
        self._lock_fd = fd

    def being_written(self) -> bool:
        """True while a run (in any process) holds the directory; False when that cannot be told."""
        try:
            fd = open_own(self.lock, os.O_RDONLY)
        except (OSError, ConfigError):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            os.close(fd)


def _writable_lines(record: Record) -> tuple[str, str, bool]:
    """:func:`_lines` of ``record``, repaired when a value cannot be written, else of its
    ``unwritable`` stand-in."""
    try:
        return _lines(record)
    except Exception:  # any value the row holds that cannot be written
        try:
            return _lines(repaired(record))
        except Exception as exc:
            return _lines(_unwritable(record, exc))


def _lines(record: Record) -> tuple[str, str, bool]:
    """The records.jsonl line of ``record``, its dataset or rejected line, and whether it is accepted;
    raises when either cannot be written as UTF-8 JSON."""
    accepted = record.accepted
    copy = json.dumps(xlam_row(record) if accepted else rejected_row(record), ensure_ascii=False)
    line = record.model_dump_json()
    line.encode("utf-8")
    copy.encode("utf-8")
    return line, copy, accepted


def repaired(record: Record) -> Record:
    """A copy of ``record`` that JSON can hold: lone surrogates escaped as ``\\udXXX`` and values
    nested deeper than :data:`MAX_RECORD_DEPTH` replaced by a note; the changes are listed in
    ``write_repairs``."""
    notes: set[str] = set()
    copy = _repair(record, 0, notes)
    copy.write_repairs = [*record.write_repairs, *sorted(notes)]
    return copy


def _repair(value: Any, depth: int, notes: set[str]) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            notes.add("lone surrogates escaped")
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, BaseModel):
        fields = {name: _repair(getattr(value, name), depth, notes) for name in type(value).model_fields}
        return type(value).model_construct(**fields)
    if isinstance(value, (list, tuple, dict)):
        if depth >= MAX_RECORD_DEPTH:
            notes.add(f"values nested deeper than {MAX_RECORD_DEPTH} levels cut")
            return f"[cut: nested deeper than {MAX_RECORD_DEPTH} levels]"
        if isinstance(value, dict):
            return {_repair(key, depth, notes): _repair(item, depth + 1, notes) for key, item in value.items()}
        return [_repair(item, depth + 1, notes) for item in value]
    return value


def _unwritable(record: Record, exc: Exception) -> Record:
    """The bare rejected record of a row that could not be written even after repair."""
    detail = f"the row could not be written ({type(exc).__name__}) and was dropped"
    return Record(id=record.id, source_id=_repair(record.source_id, 0, set()), seed=record.seed,
                  style="unknown", tools=[], stages=record.stages,
                  format_check=CheckResult.fail(UNWRITABLE, detail), write_repairs=[detail])


def read_records(path: Path, *, repair: bool = False) -> Iterator[Record]:
    """Records of a ``records.jsonl``; a torn last line (a crash mid-write) is dropped.

    With ``repair`` the torn line is also cut from the file so appends start on a clean line.
    Later copies of an id (none are written, but files can be concatenated) are skipped. A line
    that is not a record is a :class:`ConfigError` naming its number and byte offset.
    """
    if not os.path.lexists(path):
        return
    data = read_own(path)
    complete = complete_part(data)
    if repair and len(complete) != len(data):
        fd = open_own(path, os.O_WRONLY, writing=True)
        try:
            os.ftruncate(fd, len(complete))
        finally:
            os.close(fd)
    seen: set[int] = set()
    for line in split_lines(complete):
        try:
            line.raw.decode("utf-8")
            record = Record.model_validate_json(line.raw)
        except (ValueError, RecursionError) as exc:
            reason = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else _first_error(exc)
            raise ConfigError(f"{path} {line.where()} is not a record ({reason}): restore the file, or cut it "
                              f"before byte {line.offset} to keep the {line.number - 1} lines above") from None
        if record.id not in seen:
            seen.add(record.id)
            yield record


def _first_error(exc: Exception) -> str:
    """The first line of a validation error, short: what is wrong, not the whole report."""
    lines = [line.strip() for line in str(exc).splitlines()
             if line.strip() and not line.strip().startswith("For further information")]
    return " - ".join(lines[1:3] if len(lines) > 1 else lines)[:200]


def open_own(path: Path, flags: int, *, writing: bool = False) -> int:
    """A descriptor of the run folder's file ``path`` opened as itself: a symbolic link, a file that is
    not regular (a FIFO would block) or, with ``writing``, one with other names is a ConfigError."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{path} is a symbolic link: a run folder's files must be its own (replace the "
                              "link by a copy of the file)") from None
        raise
    info = os.fstat(fd)
    problem = ("is not a regular file" if not stat.S_ISREG(info.st_mode)
               else "has other names (hard links)" if writing and info.st_nlink > 1 else None)
    if problem:
        os.close(fd)
        raise ConfigError(f"{path} {problem}: a run folder's files must be its own (replace it by a copy)")
    return fd


def read_own(path: Path) -> bytes:
    """The bytes of the run folder's file ``path`` (see :func:`open_own`)."""
    fd = open_own(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def read_settings(path: Path) -> dict[str, Any]:
    """The settings of the run in ``run.json`` at ``path``; a damaged file is one line saying what to do."""
    try:
        settings = json.loads(read_own(path).decode("utf-8"))
        if not isinstance(settings, dict):
            raise ValueError("it is not a JSON object")
        return settings
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{path} is damaged ({_first_error(exc) or 'nested too deeply'}): it holds the run's "
                          "settings; restore it, or use a new --out directory") from None


def write_failure(path: Path, exc: OSError) -> str:
    """One line for a failed write of ``path``: a full disk said as such, a missing folder named."""
    if exc.errno == errno.ENOENT and not path.parent.is_dir():
        return f"cannot write {path}: the folder {path.parent} does not exist (create it, or choose another path)"
    exc.filename = str(path)
    return os_error_line(exc, "write")


def write_export(records: Iterable[Record], convert: Callable[[Record], dict[str, Any]], out: IO[str]) -> int:
    """Write the accepted rows, each through ``convert`` (:func:`exporter`), as JSONL to ``out``; return how many."""
    count = 0
    for record in records:
        if record.accepted:
            out.write(_line(convert(record)))
            count += 1
    return count


def _line(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


def partial_path(path: Path) -> Path:
    """A temporary name beside ``path`` of this process and thread alone, so two writers of one
    file (a run and a review rewriting the report) never write into each other's temporary file."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a fsync'd temporary file, so a crash never leaves half a file."""
    with atomic_file(path) as handle:
        handle.write(text)


@contextmanager
def atomic_file(path: Path) -> Iterator[IO[str]]:
    """A text handle whose contents replace ``path`` whole when the block ends, and only then: an
    error (a full disk) leaves ``path`` as it was. The temporary file is made anew, never followed
    through a link. An ``OSError`` of the block's own that names another file passes through."""
    partial = partial_path(path)
    try:
        partial.unlink(missing_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ConfigError(write_failure(path, exc)) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)
    except OSError as exc:
        if exc.filename is not None and exc.filename != str(partial):
            raise  # the block's own error, about its own file (an unreadable records.jsonl)
        raise ConfigError(write_failure(path, exc)) from exc
    finally:
        partial.unlink(missing_ok=True)
