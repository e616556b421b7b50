"""How well each stage and each semantic design separates correct rows from wrong ones (issue 13).

Usage: python benchmarks/verification_quality.py [--model GGUF] [--limit N] [--sets dev,holdout] [--no-model]

The labelled sets are the hand-written correct rows in benchmarks/labelled/ (two libraries: the
example maths/units library and the planner library of strings, dates, lists and objects), and
their perturbed copies (query swapped, one value changed, another function called, a call
dropped, a call added) that still pass format and execution. Every stage runs on every row; the
semantic stage is measured in five designs on the same rows and the same model:

- ``verdict``: the previous semantic stage, the model's yes/no verdict alone;
- ``agreement``: the model answers the query itself (temperature 0, same tools) and must call
  the same functions the same number of times;
- ``coverage``: the deterministic check that every number and quoted text of the query is used;
- ``coverage+verdict`` and ``coverage+agreement``: both must pass.

Prints, per design, positives kept and negatives rejected for the semantic stage alone and for
all stages together, per perturbation kind, and the correct rows that grounding rejects (false
rejects), labelled with the model and the machine. The ``holdout`` set was written after the
grounding rules, blind to them.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from apigen_local.checks.coverage import check_coverage
from apigen_local.checks.perturb import KINDS
from apigen_local.checks.semantic import SemanticChecker
from apigen_local.model.files import find_model
from apigen_local.model.local import LocalModel
from apigen_local.run.calibrate import RowOutcome, checked_rows, judge_rows, tally
from apigen_local.sandbox.executor import SandboxExecutor
from apigen_local.tools import load_library
from apigen_local.types import CheckResult

REPO = Path(__file__).resolve().parent.parent
LABELLED = REPO / "benchmarks" / "labelled"
SETS = {
    "dev": [("examples/library.py", "example_library.jsonl"), ("examples/planner_library.py", "planner_library.jsonl")],
    "holdout": [("examples/library.py", "holdout_example_library.jsonl"),
                ("examples/planner_library.py", "holdout_planner_library.jsonl")],
}
DESIGNS = ("verdict", "agreement", "coverage", "coverage+verdict", "coverage+agreement")


def _combine(outcome: RowOutcome, parts: list[str]) -> CheckResult | None:
    checks = [outcome.checks.get(part) for part in parts]
    if any(check is None for check in checks):
        return None
    failed = [check for check in checks if check is not None and not check.passed]
    return failed[0] if failed else CheckResult.ok()


def _pct(hit: int, total: int) -> str:
    return f"{hit / total:6.1%} ({hit}/{total})" if total else "     - (0/0)"


def measure(model: LocalModel | None, limit: int | None, set_names: list[str], dump: Path | None) -> None:
    designs = DESIGNS if model is not None else ("coverage",)
    for set_name in set_names:
        outcomes: list[RowOutcome] = []
        started = time.perf_counter()
        for library_path, rows_name in SETS[set_name]:
            library = load_library(REPO / library_path)
            with SandboxExecutor(library.path) as sandbox:
                part = checked_rows(library, LABELLED / rows_name, sandbox, limit=limit)
            for outcome in part:
                outcome.checks["coverage"] = check_coverage(outcome.row.query, outcome.row.answers)
            if model is not None:
                judge_rows(part, SemanticChecker(model, design="verdict", coverage=False), key="verdict")
                judge_rows(part, SemanticChecker(model, design="agreement", coverage=False), key="agreement")
            outcomes += part
        for outcome in outcomes:
            for design in designs:
                if "+" in design:
                    combined = _combine(outcome, design.split("+"))
                    if combined is not None:
                        outcome.checks[design] = combined
        seconds = time.perf_counter() - started
        if dump is not None:
            with open(dump, "a", encoding="utf-8") as handle:
                handle.writelines(o.model_dump_json() + "\n" for o in outcomes)
        positives = sum(o.row.positive for o in outcomes)
        print(f"\n## set '{set_name}': {positives} correct rows, {len(outcomes) - positives} perturbed "
              f"({seconds:.0f} s)")
        header = f"{'design':<20} {'stage':<9} {'kept (+)':>15} {'rejected (-)':>16} " + " ".join(
            f"{kind:>13}" for kind in KINDS)
        print(header)
        for design in designs:
            figures, dropped = tally(outcomes, design)
            for stage in ("semantic", "all"):
                f = figures[stage]
                print(f"{design:<20} {stage:<9} {_pct(f.positives_kept.passed, f.positives_kept.total):>15} "
                      f"{_pct(f.negatives_rejected.passed, f.negatives_rejected.total):>16} "
                      + " ".join(f"{f.by_kind[k].rate:>13.0%}" for k in KINDS))
        figures, dropped = tally(outcomes, "coverage")
        g = figures["grounding"]
        print(f"grounding alone: kept {_pct(g.positives_kept.passed, g.positives_kept.total)}, rejected "
              f"{_pct(g.negatives_rejected.passed, g.negatives_rejected.total)}; "
              f"{dropped} perturbed rows failed format or execution and are not counted")
        for outcome in outcomes:
            if outcome.row.positive and not outcome.checks["grounding"].passed:
                print(f"  false reject (grounding): {outcome.row.query!r}: {outcome.checks['grounding'].detail}")
            elif outcome.row.positive and not outcome.checks["coverage"].passed:
                print(f"  false reject (coverage): {outcome.row.query!r}: {outcome.checks['coverage'].detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="GGUF (default: the project's default model)")
    parser.add_argument("--limit", type=int, help="correct rows per file (default: all)")
    parser.add_argument("--sets", default="dev,holdout")
    parser.add_argument("--no-model", action="store_true", help="only the deterministic stages")
    parser.add_argument("--dump", type=Path, help="append every row's outcomes to this JSONL file")
    args = parser.parse_args()
    path = find_model(args.model)
    print(f"model: {'none' if args.no_model else path.name}; machine: {platform.machine()}, "
          f"{os.cpu_count()} cores ({platform.node()}); limit: {args.limit or 'all'}")
    if args.no_model:
        measure(None, args.limit, args.sets.split(","), args.dump)
        return
    with LocalModel(path, n_ctx=8192, seed=0) as model:
        measure(model, args.limit, args.sets.split(","), args.dump)


if __name__ == "__main__":
    main()
