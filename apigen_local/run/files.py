"""Output files of a run and the row formats written into them.

``records.jsonl`` is the source of truth: a record is appended, flushed and fsynced before the
row is copied to ``dataset.jsonl`` (accepted) or ``rejected.jsonl``. On resume both copies are
rebuilt from the records, so a crash between the two writes can neither lose nor duplicate a row.

Every row can be written: text JSON cannot hold (lone surrogates) is escaped and values nested more
than :data:`MAX_RECORD_DEPTH` deep are cut, each noted in ``Record.write_repairs``; a row that still
cannot be written is recorded as rejected with reason ``unwritable``, and the run goes on.

While a run writes, it holds an exclusive ``flock`` on ``DIR/.lock``: a second run on the same
directory is refused, and readers (``review``) can tell a run that is still being written.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel

from ..errors import ConfigError
from ..tool_specs import xlam_tools
from ..types import CheckResult, Record

ExportFormat = Literal["xlam", "openai", "sharegpt"]
MAX_RECORD_DEPTH = 64  # nesting of lists and objects kept inside one field of a record
UNWRITABLE = "unwritable"


def row_id(record: Record) -> Any:
    """The id a written row carries: the input row's own id (verify), else the record's."""
    return record.source_id if record.source_id is not None else record.id


def xlam_row(record: Record) -> dict[str, Any]:
    """The xlam-function-calling-60k form: ``answers`` and ``tools`` as JSON strings."""
    return {
        "id": row_id(record),
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
        "id": row_id(record),
        "messages": [{"role": "user", "content": record.query},
                     {"role": "assistant", "content": None, "tool_calls": calls}],
        "tools": [tool.openai() for tool in record.tools],
    }


def sharegpt_row(record: Record) -> dict[str, Any]:
    """ShareGPT form: ``conversations`` with a human turn and a ``function_call`` turn."""
    return {
        "id": row_id(record),
        "conversations": [
            {"from": "human", "value": record.query},
            {"from": "function_call",
             "value": json.dumps([c.model_dump() for c in record.answers], ensure_ascii=False)},
        ],
        "tools": json.dumps([tool.openai()["function"] for tool in record.tools], ensure_ascii=False),
    }


EXPORTERS = {"xlam": xlam_row, "openai": openai_row, "sharegpt": sharegpt_row}


def rejected_row(record: Record) -> dict[str, Any]:
    """A rejected row: where it failed and why, with what the model produced."""
    stage, reason = record.rejection or ("", "")
    check = dict(record.checks()).get(stage)  # type: ignore[arg-type]
    return {
        "id": row_id(record),
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
            probe = self.dir / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"output directory {self.dir} is not writable: {exc.strerror}") from exc
        self._take_lock()
        try:
            if self.run.exists():
                previous = json.loads(self.run.read_text())
                if previous != json.loads(json.dumps(identity)):
                    changed = sorted(k for k in set(previous) | set(identity)
                                     if previous.get(k) != identity.get(k))
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

    def append(self, record: Record) -> None:
        """Write one finished row: first to records.jsonl, then to its dataset or rejected copy."""
        try:
            lines = _lines(record)
        except Exception:  # any value the row holds that cannot be written
            try:
                lines = _lines(repaired(record))
            except Exception as exc:
                lines = _lines(_unwritable(record, exc))
        for path, line in zip((self.records, self.dataset if lines[2] else self.rejected), lines[:2], strict=True):
            self._append(path, line)

    def _append(self, path: Path, line: str) -> None:
        handle = self._handles.get(path)
        if handle is None:
            handle = self._handles[path] = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())

    def close_files(self) -> None:
        """Close the open files; the directory stays held (the run still writes its stats and
        report) until :meth:`close`."""
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def close(self) -> None:
        """Close the open files and let go of the directory."""
        self.close_files()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the lock
            self._lock_fd = None

    def _take_lock(self) -> None:
        try:
            fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o644)
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
            fd = os.open(self.lock, os.O_RDONLY)
        except OSError:
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
    Later copies of an id (none are written, but files can be concatenated) are skipped.
    """
    if not path.exists():
        return
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if repair and len(complete) != len(data):
        with open(path, "r+b") as handle:
            handle.truncate(len(complete))
    seen: set[int] = set()
    for number, line in enumerate(complete.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = Record.model_validate_json(line)
        except ValueError as exc:
            raise ConfigError(f"{path} line {number} is not a record: {exc}") from exc
        if record.id not in seen:
            seen.add(record.id)
            yield record


def write_export(records: Iterable[Record], fmt: ExportFormat, out: IO[str]) -> int:
    """Write the accepted rows in ``fmt`` as JSONL to ``out``; return how many."""
    convert = EXPORTERS[fmt]
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
    partial = partial_path(path)
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)
