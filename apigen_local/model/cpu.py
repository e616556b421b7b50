"""How the model's threads share the CPU with other programs.

Two concerns, both about a machine that is not idle:

- **Waiting at barriers.** llama.cpp's CPU threads meet at an OpenMP barrier after every
  operation of a decode (hundreds per token). libgomp's threads spin 300,000 times there before
  they sleep; when another program holds a core, the spinning thread burns its time slice while
  the thread it waits for cannot run. :func:`wait_briefly_at_barriers` sets a short spin before
  llama.cpp loads libgomp (benchmarks/contention.py has the figures).
- **Waiting for a core.** :class:`CoreWaitClock` measures the share of the time the process's
  threads wanted to run that they spent waiting on a run queue (Linux schedstat): about 0 on a
  quiet machine, about 0.5 when the cores are shared with as many busy programs as threads. The
  model then writes at about ``1 - share`` of its quiet rate.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Final

# Spins at a barrier before a thread sleeps: 100 kept the quiet decode rate and held about half
# of it beside two busy programs on 2 cores, where libgomp's 300,000 held about a fifth.
BARRIER_SPINS: Final = "100"
_TASKS = Path("/proc/self/task")


def wait_briefly_at_barriers() -> bool:
    """Make libgomp spin :data:`BARRIER_SPINS` times at a barrier, unless the environment already
    chooses (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``) or llama.cpp is already loaded, since
    libgomp reads its settings once, when it loads. Returns whether the setting was made."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ or "llama_cpp" in sys.modules:
        return False
    os.environ["GOMP_SPINCOUNT"] = BARRIER_SPINS
    return True


def _thread_times() -> dict[str, tuple[int, int]] | None:
    """Per thread of this process: (nanoseconds on a core, nanoseconds waiting for one); None
    where the system does not say (not Linux, or no schedstat)."""
    try:
        tids = os.listdir(_TASKS)
    except OSError:
        return None
    times: dict[str, tuple[int, int]] = {}
    for tid in tids:
        try:
            running, waiting = (_TASKS / tid / "schedstat").read_text().split()[:2]
            times[tid] = (int(running), int(waiting))
        except (OSError, ValueError):
            continue  # a thread that ended meanwhile
    return times or None


class CoreWaitClock:
    """The share of the time this process's threads wanted a core that they waited for one, from
    :meth:`start` to :meth:`share` (``None`` where the system does not say)."""

    def __init__(self) -> None:
        self._start: dict[str, tuple[int, int]] | None = None

    def start(self) -> CoreWaitClock:
        self._start = _thread_times()
        return self

    def share(self) -> float | None:
        now = _thread_times()
        if self._start is None or now is None:
            return None
        running = waiting = 0
        for tid, (run_ns, wait_ns) in now.items():
            before = self._start.get(tid, (0, 0))
            running += max(0, run_ns - before[0])
            waiting += max(0, wait_ns - before[1])
        return None if running + waiting == 0 else round(waiting / (running + waiting), 4)
