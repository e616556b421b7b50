"""Precision and recall of the checks on labelled real rows (issue 29).

Usage: python benchmarks/precision_real_rows.py [--base REV] [--splits dev,holdout]

The rows in benchmarks/labelled/real_dev.jsonl and real_holdout.jsonl were written by the default
model (SmolLM2-135M-Instruct Q4_1) over the two example libraries, and labelled by
docs/labelling.md. Format, grounding and the semantic stage run again on every row, at default
settings and with the function-fit check on the default model (``apigen_local/run/labels.py``);
dedup and execution outcomes come from the runs. For each split and generation mode the script
prints precision of accepted rows and recall of correct rows with Wilson 95 % intervals, and per
error class how many wrong rows the checks reject.

``--base REV`` also measures the checks of an earlier commit on the same rows ("before"): it
checks REV out into a temporary git worktree, adds this tree's ``labels.py`` to it and runs
the same measurement there.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LABELLED = REPO / "benchmarks" / "labelled"


def measure_here(splits: list[str], with_model: bool = False) -> dict:
    """Figures of the checks of the package on ``sys.path``, per split and mode, at default
    settings; ``with_model`` also runs the function-fit check (``--fit-margin 0.3``) on the
    default model, against each row's library."""
    from apigen_local.run.labels import measure, read_labelled

    judge = lambda row: None  # noqa: E731  # the model-free semantic stage
    if with_model:
        from apigen_local.checks.semantic import SemanticChecker
        from apigen_local.model.files import find_model
        from apigen_local.model.local import LocalModel
        from apigen_local.tools import load_library

        model = LocalModel(find_model(None), n_ctx=2048)
        from apigen_local.checks.fit import DEFAULT_MARGIN

        judges = {name: SemanticChecker(model, library=load_library(REPO / "examples" / f"{name}.py").tools,
                                        fit_margin=DEFAULT_MARGIN)
                  for name in ("library", "planner_library")}
        judge = lambda row: judges[row.library]  # noqa: E731
    figures: dict = {}
    for split in splits:
        rows = read_labelled(LABELLED / f"real_{split}.jsonl")
        for mode in sorted({row.mode for row in rows}):
            figures[f"{split}/{mode}"] = measure((r for r in rows if r.mode == mode), judge=judge).model_dump()
    return figures


def measure_at(rev: str, splits: list[str]) -> dict:
    """Figures of the checks at commit ``rev`` (see the module docstring)."""
    work = Path(tempfile.mkdtemp(prefix="apigen-base-"))
    try:
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(work / "tree"), rev],
                       check=True, capture_output=True)
        shutil.copy(REPO / "apigen_local" / "run" / "labels.py", work / "tree" / "apigen_local" / "run")
        # grounding before the cut_value rule takes no string bound: drop it there, before
        # labels.py imports the check (a commit that has the rule keeps it)
        code = (f"import inspect, json, sys; sys.path.insert(0, {str(work / 'tree')!r}); "
                f"sys.path.insert(1, {str(REPO / 'benchmarks')!r}); "
                "import apigen_local.checks.grounding as g; old = g.check_grounding; "
                "bounded = 'string_bound' in inspect.signature(old).parameters; "
                "g.check_grounding = old if bounded else (lambda q, c, t, string_bound=None: old(q, c, t)); "
                f"import precision_real_rows as p; print(json.dumps(p.measure_here({splits!r})))")
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        return json.loads(out.stdout)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(work / "tree")],
                       capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="also measure the checks of this commit on the same rows")
    parser.add_argument("--splits", default="dev,holdout")
    args = parser.parse_args()
    splits = args.splits.split(",")
    from apigen_local.run.labels import LabelFigures, figures_table

    now = measure_here(splits)
    with_fit = measure_here(splits, with_model=True)
    before = measure_at(args.base, splits) if args.base else {}
    print(f"labelled real rows, default model SmolLM2-135M-Instruct Q4_1, machine {platform.machine()} "
          f"{platform.node()}; checks re-run, execution from the runs")
    for key, data in now.items():
        print(f"\n== {key}")
        for line in figures_table(LabelFigures.model_validate(data)):
            print(line)
        if key in before:
            old = LabelFigures.model_validate(before[key])
            print(f"  before ({args.base}): precision {old.precision.text()}; recall {old.recall.text()}")
            for name, share in old.wrong_by_class.items():
                print(f"  before: wrong rows of class {name:<16} rejected {share.text()}")
        fitted = LabelFigures.model_validate(with_fit[key])
        print(f"  with the function-fit check (--fit-margin 0.3): precision {fitted.precision.text()}; "
              f"recall {fitted.recall.text()}")
    for split in splits:
        print(f"\n{split}: wrong rows caught, per class (Markdown)\n")
        print(markdown_by_class({k: v for k, v in now.items() if k.startswith(split)},
                                {k: v for k, v in before.items() if k.startswith(split)}))
    return 0


def markdown_by_class(now: dict, before: dict) -> str:
    """Per error class and mode, wrong rows rejected before and after, as a Markdown table."""
    from apigen_local.run.labels import LabelFigures

    keys = sorted(now)
    figures = {k: LabelFigures.model_validate(v) for k, v in now.items()}
    old = {k: LabelFigures.model_validate(v) for k, v in before.items()}
    classes = sorted({c for f in figures.values() for c in f.wrong_by_class})
    head = ["class"] + [f"{k.split('/')[1]} {when}" for k in keys for when in ("before", "after")]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]

    def cell(f: LabelFigures | None, name: str) -> str:
        share = f.wrong_by_class.get(name) if f else None
        return f"{share.hit}/{share.total}" if share else "-"

    for name in classes:
        lines.append("| " + " | ".join([name] + [cell(d.get(k), name) for k in keys for d in (old, figures)]) + " |")
    for label, pick in (("precision", lambda f: f.precision), ("recall", lambda f: f.recall)):
        cells = []
        for k in keys:
            for d in (old, figures):
                f = d.get(k)
                cells.append(f"{pick(f).hit}/{pick(f).total}" if f else "-")
        lines.append("| **" + label + "** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
