"""The project's BFCL checker beside BFCL's own, on BFCL's own rows (issue 26).

Usage: python benchmarks/bfcl_agreement.py GORILLA [--export RUN_DIR ...]

GORILLA is a clone of github.com/ShishirPatil/gorilla (a work tree, or a bare git directory). The
script loads BFCL's ``ast_checker.py`` from it as it is (only the modules it imports for Java,
JavaScript and model names are replaced by stand-ins: these rows are Python), then for every row
of the simple, multiple, parallel and parallel_multiple categories, live and non-live, checks the
answer taken from BFCL's ground truth and each mutation of ``tests/test_bfcl.py`` with both
checkers, and prints how often valid and error type agree. With ``--export RUN_DIR`` it also
exports each run with ``export --format bfcl`` and checks every entry with BFCL's own checker.
"""

from __future__ import annotations

import argparse
import enum
import json
import subprocess
import sys
import tempfile
import types
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests/test_bfcl.py: the answers and mutations the tests use

from apigen_local.bfcl.checker import check  # noqa: E402
from apigen_local.bfcl.export import category, export_bfcl  # noqa: E402
from apigen_local.run.files import read_records  # noqa: E402
from tests.test_bfcl import answer_calls, mutations  # noqa: E402

CHECKER = "berkeley-function-call-leaderboard/bfcl_eval/eval_checker/ast_eval/ast_checker.py"
DATA = "berkeley-function-call-leaderboard/bfcl_eval/data"
CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple",
              "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")
PREFIXES = ("simple_function_checker:", "multiple_function_checker:", "parallel_function_checker_no_order:")


def read_text(gorilla: Path, relative: str) -> str:
    path = gorilla / relative
    if path.is_file():
        return path.read_text(encoding="utf-8")
    git_dir = gorilla / ".git" if (gorilla / ".git").exists() else gorilla
    return subprocess.run(["git", "--git-dir", str(git_dir), "show", f"HEAD:{relative}"],
                          check=True, capture_output=True, text=True).stdout


def bfcl_checker(gorilla: Path) -> types.ModuleType:
    """BFCL's ast_checker module, its Java/JavaScript/model-name imports stood in for."""
    language = enum.Enum("Language", {"PYTHON": "python", "JAVA": "java", "JAVASCRIPT": "javascript"})
    stand_ins = {
        "bfcl_eval.constants.enums": {"Language": language},
        "bfcl_eval.constants.model_config": {  # names keep their dots: no model renames them
            "MODEL_CONFIG_MAPPING": defaultdict(lambda: SimpleNamespace(underscore_to_dot=False))},
        "bfcl_eval.constants.type_mappings": {"JAVA_TYPE_CONVERSION": {}, "JS_TYPE_CONVERSION": {}},
        "bfcl_eval.eval_checker.ast_eval.type_convertor.java_type_converter": {"java_type_converter": None},
        "bfcl_eval.eval_checker.ast_eval.type_convertor.js_type_converter": {"js_type_converter": None},
    }
    for name, attributes in stand_ins.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        sys.modules[name] = module
    checker = types.ModuleType("bfcl_ast_checker")
    exec(compile(read_text(gorilla, CHECKER), CHECKER, "exec"), checker.__dict__)  # BFCL's own file, as it is
    return checker


def bfcl_rows(gorilla: Path) -> list[dict[str, Any]]:
    rows = []
    for name in CATEGORIES:
        answers = {json.loads(line)["id"]: json.loads(line)["ground_truth"]
                   for line in read_text(gorilla, f"{DATA}/possible_answer/BFCL_v4_{name}.json").splitlines()
                   if line.strip()}
        for line in read_text(gorilla, f"{DATA}/BFCL_v4_{name}.json").splitlines():
            question = json.loads(line) if line.strip() else None
            if question is not None and question["id"] in answers:
                rows.append({**question, "ground_truth": answers[question["id"]], "category": name})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gorilla", type=Path)
    parser.add_argument("--export", nargs="*", type=Path, default=[], metavar="RUN_DIR")
    args = parser.parse_args()
    bfcl = bfcl_checker(args.gorilla)
    python = bfcl.Language.PYTHON
    rows = bfcl_rows(args.gorilla)
    agree = total = 0
    disagreements = []
    for row in rows:
        kind = row["category"].removeprefix("live_").removesuffix("_python")
        for what, calls, _ in [("ground truth", answer_calls(row), ""), *mutations(row)]:
            theirs = bfcl.ast_checker(row["function"], calls, row["ground_truth"], python, kind, "")
            ours = check(row["function"], calls, row["ground_truth"], row["category"])
            their_type = next((theirs["error_type"][len(p):] for p in PREFIXES
                               if theirs.get("error_type", "").startswith(p)), theirs.get("error_type", ""))
            same = theirs["valid"] == ours.valid and (ours.valid or their_type == ours.error_type)
            agree += same
            total += 1
            if not same:
                disagreements.append((row["id"], what, theirs.get("error_type"), ours.error_type))
    print(f"BFCL v4, {len(rows)} rows of {', '.join(CATEGORIES)}")
    print(f"verdicts (valid, and error type when invalid) the two checkers agree on: {agree}/{total}")
    for disagreement in disagreements[:20]:
        print("  differs:", disagreement)
    for run in args.export:
        records = [r for r in read_records(run / "records.jsonl") if r.accepted]
        with tempfile.TemporaryDirectory() as out:
            export_bfcl(records, out)
            passed = written = 0
            by_id = {f"apigen_{category(r)}_{r.source_id if r.source_id is not None else r.id}": r for r in records}
            for questions in Path(out).glob("apigen_*.json"):
                kind = questions.stem.removeprefix("apigen_")
                answers_file = Path(out) / "possible_answer" / questions.name
                answers = ({json.loads(line)["id"]: json.loads(line)["ground_truth"]
                            for line in answers_file.read_text().splitlines()} if answers_file.exists() else {})
                for line in questions.read_text().splitlines():
                    entry = json.loads(line)
                    calls = [{c.name: c.arguments} for c in by_id[entry["id"]].answers]
                    written += 1
                    if kind == "irrelevance":  # BFCL scores these without its AST checker: no call is right
                        passed += calls == []
                        continue
                    verdict = bfcl.ast_checker(entry["function"], calls, answers.get(entry["id"], []), python, kind, "")
                    passed += verdict["valid"]
        print(f"export of {run}: BFCL's own checker accepts {passed}/{written} entries with the rows' own calls")
    return 0 if agree == total else 1


if __name__ == "__main__":
    sys.exit(main())
