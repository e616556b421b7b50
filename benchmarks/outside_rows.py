"""Verify without a library, on rows other people wrote (issue 30): BFCL's public data.

Usage: python benchmarks/outside_rows.py GORILLA [--out out/bench-outside]

GORILLA is a clone of github.com/ShishirPatil/gorilla (a work tree, or a bare git directory).
From its ``berkeley-function-call-leaderboard/bfcl_eval/data`` the script builds rows in BFCL's
own form (question, function and the possible answer's ground_truth in one object):

- **human-written**: the live categories (simple, multiple, parallel, parallel_multiple): requests
  users sent, with checked answers. Split by a hash of the id into dev (70 %, used while the
  implied rules were written) and holdout (30 %, never looked at row by row; report only);
- **expert-written**: the non-live categories (simple_python, multiple, parallel, parallel_multiple);
- **wrong rows**: BFCL's executable categories with one argument value changed to one the request
  does not state, or with the request of another row of the same function; and the human-written
  holdout with one value changed (a date moved by days, a clock time by hours, other text
  replaced), the invented value the date and time rules could let through.

The holdout rows that implied grounding rejects (46 at 2f12849) carry a label in
``benchmarks/labelled/bfcl_live_holdout_rejects.jsonl``, given after that run by a reader who saw
the request, the tools, BFCL's answer and the value grounding named, and not the rules: the value
is ``stated`` in the request, given by the tool's ``spec``, follows with standard ``knowledge``
(a code, a translation, arithmetic on stated values), is ``assumed`` (a year nobody wrote, a
default or threshold the answer's author chose, a composed command), or the answer breaks its
own spec (``answer_breaks_spec``). The script prints the rejects by class; rows it rejects that
the file does not name count as ``unlabelled``.

It runs ``verify`` with no library (format, grounding and the semantic stage's model-free coverage
design; nothing executes) in both grounding
modes and prints the share of correct rows kept and of wrong rows rejected (counted over the wrong
rows whose correct row is kept in that mode), with rows/min.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from apigen_local.run.verify import verify_dataset

DATA = "berkeley-function-call-leaderboard/bfcl_eval/data"
HUMAN = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")
EXPERT = ("simple_python", "multiple", "parallel", "parallel_multiple")
STAGE_SETS = {"format+grounding": "format,grounding",
              "+coverage": "format,grounding,semantic"}  # the semantic stage's coverage design: no model
MODES = ("strict", "implied")
LABELS = Path(__file__).resolve().parent / "labelled" / "bfcl_live_holdout_rejects.jsonl"
EXEC = ("exec_simple", "exec_multiple", "exec_parallel", "exec_parallel_multiple")


def read_jsonl(gorilla: Path, relative: str) -> list[dict[str, Any]]:
    """A JSONL file of the clone, from its work tree or, for a bare clone, from HEAD."""
    path = gorilla / relative
    if path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        text = subprocess.run(["git", "--git-dir", str(_git_dir(gorilla)), "show", f"HEAD:{relative}"],
                              check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _git_dir(gorilla: Path) -> Path:
    return gorilla / ".git" if (gorilla / ".git").exists() else gorilla


def category_rows(gorilla: Path, name: str) -> list[dict[str, Any]]:
    """One category's questions with their ground truth, in BFCL's form."""
    folder = f"{DATA}/unused_datasets/" if name.startswith("exec_") else f"{DATA}/"
    questions = read_jsonl(gorilla, f"{folder}{'question/' if name.startswith('exec_') else ''}BFCL_v4_{name}.json")
    answers = {a["id"]: a["ground_truth"] for a in
               read_jsonl(gorilla, f"{folder}possible_answer/BFCL_v4_{name}.json")}
    rows = []
    for question in questions:
        truth = answers.get(question["id"])
        if truth is None:
            continue
        if name.startswith("exec_"):  # written as Python calls: each value is the one allowed value
            try:
                truth = [{c["name"]: {k: [v] for k, v in c["arguments"].items()}} for c in map(_call, truth)]
            except ValueError:  # a value written as an expression (``1/3``): no literal to compare
                continue
        rows.append({**question, "ground_truth": truth})
    return rows


def _call(text: str) -> dict[str, Any]:
    node = ast.parse(text, mode="eval").body
    assert isinstance(node, ast.Call)
    return {"name": ast.unparse(node.func), "arguments": {k.arg: ast.literal_eval(k.value) for k in node.keywords}}


def is_holdout(row: dict[str, Any]) -> bool:
    return int(hashlib.blake2b(row["id"].encode(), digest_size=4).hexdigest(), 16) % 10 < 3


def query_of(row: dict[str, Any]) -> str:
    return next(m["content"] for turn in row["question"] for m in turn if m.get("role") == "user")


def wrong_rows(rows: list[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """For each row: one copy with one value changed to an unstated one, one with a swapped request."""
    rng = random.Random(seed)
    by_function: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_function.setdefault(next(iter(row["ground_truth"][0])), []).append(row)
    wrong = []
    for row in rows:
        query = query_of(row)
        changed = json.loads(json.dumps(row))
        call = next(iter(changed["ground_truth"][0].values()))
        for name in sorted(call, key=lambda _: rng.random()):
            values = [v for v in call[name] if v != ""]
            new = _changed(values[0], query, rng) if values else None
            if new is not None:
                call[name] = [new]
                wrong.append({**changed, "id": f"{row['id']}:changed", "origin": row["id"]})
                break
        others = [r for r in by_function[next(iter(row["ground_truth"][0]))] if query_of(r) != query]
        if not others:
            others = [r for r in rows if query_of(r) != query]
        other = rng.choice(others)
        wrong.append({**row, "id": f"{row['id']}:swapped", "origin": row["id"], "question": other["question"]})
    return wrong


def _changed(value: Any, query: str, rng: random.Random) -> Any:
    """Another value of the same kind that ``query`` does not write, or ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        for _ in range(20):
            new = type(value)(value + rng.choice([-1, 1]) * rng.randint(2, 97))
            if str(new) not in query:
                return new
    if isinstance(value, str) and value.strip():
        new = _shifted(value, rng)
        if new is None:
            new = value + " Extra" if rng.random() < 0.5 else "Springfield"
        return new if new.casefold() not in query.casefold() else None
    return None


_DATE = re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})|(\d{1,2})([-/.])(\d{1,2})\6(\d{4})")
_CLOCK = re.compile(r"(?<!\d)(\d{1,2}):(\d{2})")


def _shifted(value: str, rng: random.Random) -> str | None:
    """A date or clock time inside ``value`` moved by days or hours, written the same way; the
    wrong value a date rule could let through. ``None`` when ``value`` holds neither."""
    found = _DATE.search(value)
    if found:
        days = rng.choice([-1, 1]) * rng.randint(2, 40)
        if found[1]:
            year, month, day = int(found[1]), int(found[3]), int(found[4])
        else:
            year, month, day = int(found[8]), int(found[5]), int(found[7])
            if month > 12:
                month, day = day, month
        try:
            moved = datetime.date(year, month, day) + datetime.timedelta(days=days)
        except ValueError:
            return None
        sep = found[2] or found[6]
        text = (f"{moved.year}{sep}{moved.month:02d}{sep}{moved.day:02d}" if found[1]
                else f"{moved.month:02d}{sep}{moved.day:02d}{sep}{moved.year}")
        return value[:found.start()] + text + value[found.end():]
    clock = _CLOCK.search(value)
    if clock:
        hour = (int(clock[1]) + rng.randint(1, 11)) % 24
        return value[:clock.start()] + f"{hour:02d}:{clock[2]}" + value[clock.end():]
    return None


def verify(rows: list[dict[str, Any]], mode: str, stages: str, out: Path) -> tuple[set[str], float]:
    """The ids ``verify`` keeps (no library; the deterministic stages) and its rows/min."""
    source = out.with_suffix(".jsonl")
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    result = verify_dataset(source, None, out_dir=out, stages=stages, grounding_mode=mode)
    minutes = (time.perf_counter() - started) / 60
    kept = {json.loads(line)["id"] for line in result.dataset_path.read_text().splitlines()}
    return kept, len(rows) / minutes


def print_reject_classes(rows: list[dict[str, Any]], kept: set[str]) -> None:
    """The holdout rows implied grounding rejects, by the class ``LABELS`` gives them, and the
    share kept of the rows whose values the request determines and whose answer keeps its spec."""
    labels = {row["id"]: row["class"] for row in map(json.loads, LABELS.read_text().splitlines())}
    rejected = [row["id"] for row in rows if row["id"] not in kept]
    classes: dict[str, int] = {}
    for row_id in rejected:
        classes[labels.get(row_id, "unlabelled")] = classes.get(labels.get(row_id, "unlabelled"), 0) + 1
    undetermined = classes.get("assumed", 0) + classes.get("answer_breaks_spec", 0)
    determined = len(rows) - undetermined
    print(f"holdout rows rejected by format+grounding, implied: {len(rejected)}; by label ({LABELS.name}): "
          + ", ".join(f"{name} {count}" for name, count in sorted(classes.items(), key=lambda kv: -kv[1])))
    print(f"kept of the {determined} holdout rows whose values the request determines and whose answer keeps its "
          f"spec: {len(kept)}/{determined} ({100 * len(kept) / determined:.1f}%)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gorilla", type=Path)
    parser.add_argument("--out", type=Path, default=Path("out/bench-outside"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    human = [row for name in HUMAN for row in category_rows(args.gorilla, name)]
    sets = {
        "human-written, dev": [r for r in human if not is_holdout(r)],
        "human-written, holdout": [r for r in human if is_holdout(r)],
        "expert-written": [row for name in EXPERT for row in category_rows(args.gorilla, name)],
    }
    executable = [row for name in EXEC for row in category_rows(args.gorilla, name)]
    wrong = wrong_rows(executable)
    print("verify with no library (nothing executes), BFCL v4 data, 2-core machine; '+coverage' adds the "
          "semantic stage's model-free coverage design")
    configs = [(label, stages, mode) for label, stages in STAGE_SETS.items() for mode in MODES]
    print(f"{'rows kept':<24} {'n':>5} " + " ".join(f"{label + ', ' + mode:>26}" for label, _, mode in configs))
    holdout_kept: set[str] = set()
    for name, rows in sets.items():
        cells = []
        folder = name.replace(", ", "-").replace(" ", "-")
        for _label, stages, mode in configs:
            kept, speed = verify(rows, mode, stages, args.out / f"{len(cells)}-{folder}")
            cells.append(f"{100 * len(kept) / len(rows):.1f}% ({speed:,.0f} rows/min)")
            if name == "human-written, holdout" and stages == "format,grounding" and mode == "implied":
                holdout_kept = kept
        print(f"{name:<24} {len(rows):>5} " + " ".join(f"{cell:>26}" for cell in cells))
    print_reject_classes(sets["human-written, holdout"], holdout_kept)
    print(f"\nwrong rows from BFCL's executable categories ({len(executable)} correct rows; a wrong row counts when "
          "its correct row is kept)")
    print(f"{'configuration':<28} {'correct kept':>13} {'changed value rejected':>24} {'swapped request rejected':>26}")
    for index, (label, stages, mode) in enumerate(configs):
        kept, _ = verify(executable, mode, stages, args.out / f"exec-{index}")
        kept_wrong, _ = verify(wrong, mode, stages, args.out / f"wrong-{index}")
        cells = []
        for kind in ("changed", "swapped"):
            counted = [r for r in wrong if r["id"].endswith(kind) and r["origin"] in kept]
            rejected = sum(r["id"] not in kept_wrong for r in counted)
            cells.append(f"{rejected}/{len(counted)} ({100 * rejected / max(1, len(counted)):.1f}%)")
        print(f"{label + ', ' + mode:<28} {len(kept):>6}/{len(executable):<6} {cells[0]:>24} {cells[1]:>26}")
    holdout = sets["human-written, holdout"]
    changed = [row for row in wrong_rows(holdout) if row["id"].endswith(":changed")]
    print(f"\nhuman-written holdout rows with one value changed ({len(changed)} rows; dates moved by days, times by "
          "hours, other text replaced; counted when the correct row is kept)")
    for index, (label, stages, mode) in enumerate(configs):
        kept, _ = verify(holdout, mode, stages, args.out / f"holdout-{index}")
        kept_wrong, _ = verify(changed, mode, stages, args.out / f"holdout-changed-{index}")
        counted = [r for r in changed if r["origin"] in kept]
        rejected = sum(r["id"] not in kept_wrong for r in counted)
        print(f"{label + ', ' + mode:<28} {rejected}/{len(counted)} ({100 * rejected / max(1, len(counted)):.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
