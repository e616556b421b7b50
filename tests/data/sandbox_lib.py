"""A small, partly hostile library for the sandbox tests: each function exercises one failure mode."""

from __future__ import annotations

import ctypes
import os
import socket
import sys


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def fail_value(x: int) -> int:
    """Always raise ValueError."""
    raise ValueError(f"bad value {x}")


def spin() -> None:
    """Never return."""
    while True:
        pass


def segfault() -> bytes:
    """Read address 0, which kills the process with SIGSEGV."""
    return ctypes.string_at(0)


def shout(text: str) -> int:
    """Print the text to stdout and stderr, return its length."""
    print(text)
    print("err:" + text, file=sys.stderr)
    return len(text)


def make_set() -> set[int]:
    """Return a set, which JSON cannot hold."""
    return {1, 2, 3}


def make_object() -> object:
    """Return an opaque object with nothing to show."""
    return object()


def error_dict(code: int) -> dict[str, object]:
    """Return an error-shaped result instead of raising."""
    return {"error": f"code {code}"}


def hog_memory(megabytes: int) -> int:
    """Allocate this many megabytes."""
    return len(bytearray(megabytes * 2**20))


def spawn() -> int:
    """Try to start a process."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    return pid


def whoami() -> dict[str, object]:
    """Where the call runs: uid, environment variable names, network interfaces, root mount options."""
    with open("/proc/self/mounts") as handle:
        root_options = [line.split()[3] for line in handle if line.split()[1] == "/"]
    return {
        "uid": os.getuid(),
        "environment": sorted(os.environ),
        "interfaces": [name for _, name in socket.if_nameindex()],
        "root_options": root_options[-1].split(",") if root_options else [],
    }

