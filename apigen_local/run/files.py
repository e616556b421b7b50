"""Output files of a run and the row formats written into them.

``records.jsonl`` is the source of truth: a record is appended, flushed and fsynced before the
row is copied to ``dataset.jsonl`` (accepted) or ``rejected.jsonl``. On resume both copies are
rebuilt from the records, so a crash between the two writes can neither lose nor duplicate a row.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

from ..errors import ConfigError
from ..tool_specs import xlam_tools
from ..types import Record

ExportFormat = Literal["xlam", "openai", "sharegpt"]


def xlam_row(record: Record) -> dict[str, Any]:
    """The xlam-function-calling-60k form: ``answers`` and ``tools`` as JSON strings."""
    return {
        "id": record.id,
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
        "id": record.id,
        "messages": [{"role": "user", "content": record.query},
                     {"role": "assistant", "content": None, "tool_calls": calls}],
        "tools": [tool.openai() for tool in record.tools],
    }


def sharegpt_row(record: Record) -> dict[str, Any]:
    """ShareGPT form: ``conversations`` with a human turn and a ``function_call`` turn."""
    return {
        "id": record.id,
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
    check = {"format": record.format_check, "dedup": record.dedup_check,
             "execution": record.execution_check, "semantic": record.semantic_check}.get(stage)
    return {
        "id": record.id,
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
        self._handles: dict[Path, IO[str]] = {}

    def open(self, identity: dict[str, Any]) -> list[Record]:
        """Create or reopen the directory for a run with ``identity``; return records already done."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            probe = self.dir / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"output directory {self.dir} is not writable: {exc.strerror}") from exc
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
            _write_atomic(self.run, json.dumps(identity, indent=2))
        records = list(read_records(self.records, repair=True))
        _write_atomic(self.dataset, "".join(_line(xlam_row(r)) for r in records if r.accepted))
        _write_atomic(self.rejected, "".join(_line(rejected_row(r)) for r in records if not r.accepted))
        return records

    def append(self, record: Record) -> None:
        """Write one finished row: first to records.jsonl, then to its dataset or rejected copy."""
        self._append(self.records, record.model_dump_json())
        if record.accepted:
            self._append(self.dataset, json.dumps(xlam_row(record), ensure_ascii=False))
        else:
            self._append(self.rejected, json.dumps(rejected_row(record), ensure_ascii=False))

    def _append(self, path: Path, line: str) -> None:
        handle = self._handles.get(path)
        if handle is None:
            handle = self._handles[path] = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())

    def close(self) -> None:
        """Close the open files."""
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()


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


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_suffix(path.suffix + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)
