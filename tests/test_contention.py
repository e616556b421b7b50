"""Issue 44: the model under other programs' load: libgomp's barrier wait, the measured wait for a
core, and how a run reports it (benchmarks/contention.py has the figures)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap

import pytest
from rich.console import Console

from apigen_local.model.cpu import BARRIER_SPINS
from apigen_local.model.local import Completion
from apigen_local.run.progress import WAIT_ROWS, CoreWaitWatch, LineProgress, RichProgress
from apigen_local.run.worker import _generation_timings
from apigen_local.types import CheckResult, Record


def _spin_count(preamble: str, env: dict[str, str]) -> str:
    """GOMP_SPINCOUNT as a fresh interpreter has it after ``preamble`` and loading llama.cpp."""
    code = preamble + "\nimport apigen_local.model.engine, llama_cpp, os\nprint(os.environ.get('GOMP_SPINCOUNT'))"
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_libgomp_spins_briefly_unless_the_user_chose_or_llama_cpp_loaded_first() -> None:
    assert _spin_count("", {}) == BARRIER_SPINS
    assert _spin_count("", {"GOMP_SPINCOUNT": "5"}) == "5"  # the user's own choice stands
    assert _spin_count("", {"OMP_WAIT_POLICY": "ACTIVE"}) == "None"
    # libgomp read its settings when llama.cpp loaded: setting them afterwards would change nothing
    assert _spin_count("import llama_cpp", {}) == "None"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or not os.path.exists("/proc/self/task"),
                    reason="needs Linux: CPU affinity and schedstat")
def test_the_clock_measures_the_share_of_time_spent_waiting_for_a_core() -> None:
    # one spinning thread and two spinning competitors, all held to the same core: the thread
    # waits about two thirds of the time it wants to run (swapping waiting and running gives a third)
    code = textwrap.dedent("""
        import os, subprocess, sys, time
        from apigen_local.model.cpu import CoreWaitClock
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        spin = ("import os, time\\nos.sched_setaffinity(0, {%d})\\nend = time.time() + 30\\n"
                "while time.time() < end: pass" % core)
        others = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(2)]
        time.sleep(0.5)
        clock = CoreWaitClock().start()
        end = time.perf_counter() + 1.5
        while time.perf_counter() < end:
            pass
        print(clock.share())
        for p in others:
            p.kill()
    """)
    share = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert 0.5 <= share <= 0.9, share


def test_a_rows_generation_timings_carry_the_seconds_it_waited_for_a_core() -> None:
    waited = Completion(text="{}", prompt_tokens=1, completion_tokens=1, seconds=9.0, core_wait=0.25)
    assert _generation_timings(2.0, waited) == {"generation": 2.0, "generation_waiting": 0.5}
    unknown = waited.model_copy(update={"core_wait": None})
    assert _generation_timings(2.0, unknown) == {"generation": 2.0}


def _row(i: int, waiting: float | None) -> Record:
    timings = {"generation": 4.0} | ({} if waiting is None else {"generation_waiting": waiting})
    return Record(id=i, seed=i, style="simple", tools=[], format_check=CheckResult.ok(), timings=timings)


def test_the_watch_warns_once_when_the_recent_rows_waited_for_a_core_most_of_the_time() -> None:
    watch = CoreWaitWatch()
    assert all(watch.add(_row(i, 0.2)) is None for i in range(WAIT_ROWS))  # quiet: 5 %, not shown
    assert watch.note() == ""
    warnings = [watch.add(_row(i, 2.4)) for i in range(WAIT_ROWS)]  # 60 % of the time
    said = [w for w in warnings if w is not None]
    assert len(said) == 1
    # said as soon as the last WAIT_ROWS rows waited 40 % or more (the window still held quiet rows)
    assert re.search(r"waited for a core (\d+)% of its time over the last 8 rows, so it writes at about "
                     r"(\d+)% of its rate on a quiet machine", said[0])
    share, rate = map(int, re.findall(r"(\d+)%", said[0]))
    assert 40 <= share < 60 and share + rate == 100
    assert watch.note() == " · waiting for a core 60%"
    unknown = CoreWaitWatch()  # a system that does not say: nothing is claimed
    assert unknown.add(_row(0, None)) is None and unknown.note() == ""


def test_both_progress_forms_show_the_wait_and_print_the_warning_once() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False)
    with LineProgress(console, every_rows=WAIT_ROWS) as lines:
        lines.start(2 * WAIT_ROWS, [])
        for i in range(2 * WAIT_ROWS):
            lines.advance(_row(i, 3.0))
    text = out.getvalue()
    assert text.count("warning: other programs are using the CPU") == 1
    assert "waiting for a core 75%" in text.splitlines()[-1]

    bar_out = io.StringIO()
    bar_console = Console(file=bar_out, width=200, force_terminal=False)
    bar = RichProgress(bar_console)
    bar.start(2 * WAIT_ROWS, [])
    for i in range(2 * WAIT_ROWS):
        bar.advance(_row(i, 3.0))
    with bar_console.capture() as capture:
        for renderable in bar._progress.get_renderables():
            bar_console.print(renderable)
    assert "waiting for a core 75%" in capture.get()
    assert bar_out.getvalue().count("warning: other programs are using the CPU") == 1

