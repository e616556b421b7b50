"""Turn generate runs into rows to label by docs/labelling.md (issue 29).

Usage: python benchmarks/collect_real_rows.py OUT.jsonl RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a ``generate`` run made with ``--no-grounding`` so that every row that passed
the format check and dedup also ran in the sandbox; grounding and the other deterministic checks
are re-run on the labelled rows by ``precision_real_rows.py``. Writes one line per row that
passed the format check, with the fields the rubric names plus the row's execution outcome and
no verdict of any later check (labellers must not see them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from apigen_local.run.files import read_records


def rows_of(run_dir: Path) -> list[dict]:
    """The format-passing rows of one run, in id order."""
    settings = json.loads((run_dir / "run.json").read_text())
    library, seed = Path(settings["library"]).stem, settings["seed"]
    rows = []
    for record in sorted(read_records(run_dir / "records.jsonl"), key=lambda r: r.id):
        if record.query is None or not record.format_check.passed:
            continue
        executed = record.execution_check
        rows.append({
            "row_id": f"{library}:s{seed}:{record.id}",
            "library": library,
            "mode": settings.get("mode", "query_first"),
            "style": record.style,
            "tools": [tool.model_dump() for tool in record.tools],
            "query": record.query,
            "answers": [call.model_dump() for call in record.answers],
            "duplicate": not (record.dedup_check is None or record.dedup_check.passed),
            "execution": None if executed is None else {"passed": executed.passed, "reason": executed.reason},
        })
    return rows


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    out = Path(argv[0])
    with out.open("w", encoding="utf-8") as handle:
        total = 0
        for run_dir in argv[1:]:
            for row in rows_of(Path(run_dir)):
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                total += 1
    print(f"{total} rows written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
