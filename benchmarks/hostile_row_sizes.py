"""Verify's cost on hostile input sizes (issue: round three of the outside hostile suite).

Usage: python benchmarks/hostile_row_sizes.py [--rows 100000] [--calls 10000] [--timeout 300]
       [--only NAME ...] [--no-fsync]

Two measurements, each ``verify`` with no library (format, grounding, the semantic stage's
coverage design) in a fresh process, in a temporary folder:

- **unreadable rows**: ``--rows`` one-byte lines (``x``) around three good rows; prints rows/s.
  ``--no-fsync`` replaces ``os.fsync`` by nothing, the bound a run that syncs once per batch
  (group commit) approaches; a figure measured so is marked as such.
- **one big row** per shape: ``--calls`` calls with distinct text values, numbers, quoted text,
  bracketed groups, or codes that the parameter's description lists; one call with ``--calls``
  arguments; a 1 MB query; a query of 150,000 filler words; 1,000 tools. Prints the seconds
  ``verify`` took (imports and the report included), the record's verdict, or that none was
  written within ``--timeout`` seconds.

Every check should be near-linear in the size of a row: each shape holds about 1 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _tool(name: str = "f", params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "description": "Finds things.",
            "parameters": params or {"x": {"type": "str", "description": "what to find"}}}


def _row(query: str, calls: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": 1, "query": query, "answers": json.dumps(calls), "tools": json.dumps(tools)}


def shapes(n: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, row) of each big-row shape, ``n`` calls or arguments."""
    text = [f"item{i}" for i in range(n)]
    yield "calls_text", _row(f"Find {', '.join(text)}?", [{"name": "f", "arguments": {"x": t}} for t in text],
                             [_tool()])
    number = _tool(params={"x": {"type": "float", "description": "a number"}})
    yield "calls_numbers", _row(f"Compute {', '.join(str(i + 2) for i in range(n))}?",
                                [{"name": "f", "arguments": {"x": i + 2}} for i in range(n)], [number])
    yield "calls_quoted", _row("Find " + ", ".join(f"'item {i}'" for i in range(n)) + "?",
                               [{"name": "f", "arguments": {"x": f"item {i}"}} for i in range(n)], [_tool()])
    pairs = _tool(params={"x": {"type": "List[float]", "description": "two numbers"}})
    yield "calls_groups", _row("Add " + ", ".join(f"({i + 2}, {i + 3})" for i in range(n)) + "?",
                               [{"name": "f", "arguments": {"x": [i + 2, i + 3]}} for i in range(n)], [pairs])
    codes = _tool(params={"x": {"type": "int", "description": "Codes: " + ", ".join(f"{i} for thing{i}"
                                                                                  for i in range(n))}})
    yield "calls_described_codes", _row("Get " + " ".join(f"thing{i}" for i in range(n)) + "?",
                                        [{"name": "f", "arguments": {"x": i + 2}} for i in range(n)], [codes])
    many = _tool(params={f"a{i}": {"type": "str", "description": "x"} for i in range(n)})
    yield "arguments", _row("Find " + " ".join(f"v{i}" for i in range(n)) + "?",
                            [{"name": "f", "arguments": {f"a{i}": f"v{i}" for i in range(n)}}], [many])
    yield "query_1mb", _row("Find " + "the weather in Boston and " * 40_000 + "?",
                            [{"name": "f", "arguments": {"x": "Boston"}}], [_tool()])
    yield "query_fillers", _row("please " * 150_000 + "find Boston", [{"name": "f", "arguments": {"x": "Boston"}}],
                                [_tool()])
    yield "tools_1000", _row("Find Boston?", [{"name": f"f{i}", "arguments": {f"x{i}": "Boston"}} for i in range(1000)],
                             [_tool(f"f{i}", {f"x{i}": {"type": "str", "description": "x"}}) for i in range(1000)])


def _good(row_id: int) -> str:
    call = {"name": "get_weather", "arguments": {"city": "Boston"}}
    tool = {"name": "get_weather", "description": "Weather.", "parameters": {"city": {"type": "str",
                                                                                     "description": "City"}}}
    return json.dumps({"id": row_id, "query": "What's the weather in Boston?", "answers": json.dumps([call]),
                       "tools": json.dumps([tool])})


def _verify(rows: Path, out: Path, no_fsync: bool) -> None:
    """Run in the child: verify ``rows`` and print seconds, records and the first verdict as JSON."""
    if no_fsync:
        import os
        os.fsync = lambda fd: None
    from apigen_local.run.files import read_records
    from apigen_local.run.verify import verify_dataset

    started = time.perf_counter()
    verify_dataset(rows, out_dir=out)
    seconds = time.perf_counter() - started
    records = list(read_records(out / "records.jsonl"))
    print(json.dumps({"seconds": seconds, "records": len(records),
                      "verdict": "/".join(records[0].rejection or ("accepted",)) if len(records) == 1 else ""}))


def _run(rows: Path, timeout: float, no_fsync: bool) -> dict[str, Any] | None:
    out = rows.with_suffix(".out")
    command = [sys.executable, __file__, "--child", str(rows), str(out)] + (["--no-fsync"] if no_fsync else [])
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--only", nargs="*", default=None, help="'unreadable' and/or shape names")
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _verify(Path(args.child[0]), Path(args.child[1]), args.no_fsync)
        return
    wanted = set(args.only) if args.only else None
    with tempfile.TemporaryDirectory() as folder:
        if wanted is None or "unreadable" in wanted:
            rows = Path(folder, "unreadable.jsonl")
            half = ["x"] * (args.rows // 2)
            rows.write_text("\n".join([_good(1), *half, _good(2), *half, _good(3)]) + "\n")
            result = _run(rows, args.timeout, args.no_fsync)
            note = " (no fsync)" if args.no_fsync else ""
            if result is None:
                print(f"unreadable rows: {args.rows + 3} rows not done in {args.timeout:.0f} s{note}")
            else:
                print(f"unreadable rows: {result['records']} records in {result['seconds']:.1f} s, "
                      f"{result['records'] / result['seconds']:.0f} rows/s{note}")
        for name, row in shapes(args.calls):
            if wanted is not None and name not in wanted:
                continue
            rows = Path(folder, f"{name}.jsonl")
            rows.write_text(json.dumps(row) + "\n")
            result = _run(rows, args.timeout, args.no_fsync)
            size = rows.stat().st_size / 1e6
            shown = (f"no record within {args.timeout:.0f} s" if result is None
                     else f"{result['seconds']:6.1f} s  {result['verdict']}")
            print(f"{name:22s} {size:4.1f} MB  {shown}", flush=True)


if __name__ == "__main__":
    main()
