"""A library that changes, at import, what a runner sharing its process would rely on (see
test_round_three_runner.py); standard library only.

Its import ignores SIGCHLD and installs its own SIGALRM handler, patches ``json`` and replaces it
(and the other modules a runner uses) in ``sys.modules``, breaks ``selectors``, freezes
``time.monotonic``, replaces ``open``, ``sys.stdout`` and the recursion limit, turns warnings into
errors, moves to ``/`` and sets a trace function that refuses to run the runner's code. None of it
may reach the runner: every call must still run, be timed and be encoded as usual, and see the
library's own settings.

Never import it on the host: it would do the same to the test process.
"""

import builtins
import json
import json.encoder
import os
import selectors
import signal
import sys
import time
import types
import warnings

_real_sleep = time.sleep


def _on_alarm(signum, frame):
    raise TimeoutError("the library's own alarm handler ran")


def _refuse_open(*args, **kwargs):
    raise RuntimeError("this library replaced open()")


class _Unwritable:
    def write(self, text):
        raise RuntimeError("this library replaced sys.stdout")

    def flush(self):
        raise RuntimeError("this library replaced sys.stdout")


class _BrokenSelector:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("this library broke selectors")


def _trace(frame, event, arg):
    if frame.f_code.co_filename.endswith("/apigen/runner.py"):
        raise RuntimeError("this library's tracer refuses to run the runner")
    return None


signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps children: waitpid finds none
signal.signal(signal.SIGALRM, _on_alarm)
json.dumps = lambda *args, **kwargs: '"patched"'
json.loads = lambda *args, **kwargs: "patched"
json.encoder.c_make_encoder = None
json.encoder.encode_basestring_ascii = lambda text: '"patched"'
selectors.DefaultSelector = _BrokenSelector
time.monotonic = lambda: 0.0  # a frozen clock
builtins.open = _refuse_open
for _name in ("json", "inspect", "ctypes", "platform", "select", "selectors", "signal", "stat",
              "traceback", "resource", "fcntl", "time", "types", "warnings"):
    sys.modules[_name] = types.ModuleType(_name)
sys.stdout = _Unwritable()
sys.setrecursionlimit(150)
warnings.simplefilter("error")
os.chdir("/")
os.environ["LIBRARY_MARK"] = "set at import"
sys.settrace(_trace)


def add(a: int, b: int) -> int:
    """Add two numbers.

    Args:
        a: First.
        b: Second.
    """
    return a + b


def settings() -> dict:
    """What the library set at import, as a call sees it."""
    return {
        "recursion_limit": sys.getrecursionlimit(),
        "cwd": os.getcwd(),
        "mark": os.environ.get("LIBRARY_MARK"),
        "warnings": warnings.filters[0][0],
        "sigchld_ignored": signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN,
        "traced": sys.gettrace() is _trace,
        "dumps": json.dumps([1]),
    }


def nested(depth: int) -> list:
    """A list nested deeper than the library's recursion limit.

    Args:
        depth: How deep.
    """
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def wait_for_alarm() -> str:
    """Arm an alarm and wait for the library's handler to raise."""
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        _real_sleep(3)
    except TimeoutError as exc:
        return str(exc)
    return "no alarm"


def spin() -> int:
    """Never return (the library froze time.monotonic)."""
    while True:
        pass
