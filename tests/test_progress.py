"""The CLI's progress bar: it moves per row and shows the summary's figures, resumed rows included."""

from __future__ import annotations

import io

from rich.console import Console

from apigen_local.run.progress import RichProgress
from apigen_local.run.stats import compute_stats
from apigen_local.types import CheckResult, FunctionCall, Record


def _record(i: int, *, grounded: bool) -> Record:
    return Record(id=i, seed=i, style="simple", tools=[], query=f"q{i}", format_check=CheckResult.ok(),
                  answers=[FunctionCall(name="f", arguments={})], dedup_check=CheckResult.ok(),
                  grounding_check=CheckResult.ok() if grounded else CheckResult.fail("ungrounded_argument", "x"),
                  execution_check=CheckResult.ok() if grounded else None,
                  semantic_check=CheckResult.ok() if grounded else None)


def _screen(progress: RichProgress, console: Console) -> str:
    with console.capture() as capture:
        for renderable in progress._progress.get_renderables():
            console.print(renderable)
    return capture.get()


def test_the_bar_moves_per_generated_row_and_shows_the_summarys_rates() -> None:
    console = Console(file=io.StringIO(), width=80, force_terminal=False)
    progress = RichProgress(console)
    resumed = [_record(0, grounded=True), _record(1, grounded=False)]
    progress.start(10, resumed)
    progress.generated(1)
    progress.generated(1)
    screen = _screen(progress, console)
    assert "4/10" in screen and "rows/min" in screen  # two rows generated, none written yet
    written = [_record(2, grounded=False), _record(3, grounded=True)]
    for record in written:
        progress.advance(record)
    screen = _screen(progress, console)
    stats = compute_stats(resumed + written)
    assert f"written 4 · accepted {stats.accepted} ({stats.acceptance:.0%})" in screen
    for stage in ("format", "dedup", "grounding", "execution", "semantic"):
        assert f"{stage} {stats.stages[stage].percent()}" in screen, stage
    assert "grounding 50%" in screen and "execution 100%" in screen
    assert all(len(line) <= 80 for line in screen.splitlines())
    line = screen.splitlines()[0]
    assert "4/10" in line and ("-:--:--" in line or ":" in line.split("rows/min")[-1])  # the time left is whole
