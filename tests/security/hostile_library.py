"""A hostile function library: each public function attacks the sandbox in one way.

Standard library only, with docstrings and type hints so that it loads as tools. Used by
``tests/security`` against the real sandbox; never import it on the host outside those tests.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import sys
import time


def add(a: int, b: int) -> int:
    """Add two integers, the well-behaved call run between the attacks.

    Args:
        a: The first integer.
        b: The second integer.
    """
    return a + b


def infinite_loop() -> None:
    """Spin forever."""
    while True:
        pass


def fork_bomb() -> int:
    """Fork without end; every child forks again.

    Returns:
        Never returns normally.
    """
    while True:
        os.fork()


def memory_bomb(gigabytes: int = 8) -> int:
    """Allocate this many gigabytes at once.

    Args:
        gigabytes: How much memory to allocate.
    """
    return len(bytearray(gigabytes * 2**30))


def memory_creep(gigabytes: int = 8) -> int:
    """Allocate this many gigabytes in 64 MB steps, keeping every step.

    Args:
        gigabytes: How much memory to allocate in total.
    """
    kept = []
    for _ in range(gigabytes * 16):
        kept.append(bytearray(64 * 2**20))
    return len(kept)


def flood_stdout(megabytes: int = 500) -> int:
    """Write this many megabytes to standard output.

    Args:
        megabytes: How much to write.
    """
    chunk = "x" * 2**20
    for _ in range(megabytes):
        sys.stdout.write(chunk)
    return megabytes


def huge_result(megabytes: int = 100) -> str:
    """Return a string of this many megabytes.

    Args:
        megabytes: The size of the returned string.
    """
    return "x" * (megabytes * 2**20)


def hard_exit() -> None:
    """Leave the process at once with exit code 0, bypassing every handler."""
    os._exit(0)


def soft_exit() -> None:
    """Call sys.exit() inside the function."""
    sys.exit()


def segfault() -> bytes:
    """Read address 0 through ctypes, which kills the process with SIGSEGV."""
    return ctypes.string_at(0)


def kill_init() -> str:
    """Send SIGINT, SIGTERM, SIGHUP and SIGKILL to PID 1 of the container."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL):
        os.kill(1, number)
    time.sleep(0.2)
    return "sent"


def forge_results() -> int:
    """Write a fake protocol line, claiming call 0 returned 999, into every descriptor of PID 1."""
    forged = (json.dumps({"index": 0, "name": "add", "ok": True, "result": 999}) + "\n").encode()
    written = 0
    for name in os.listdir("/proc/1/fd"):
        fd = os.open(f"/proc/1/fd/{name}", os.O_WRONLY)
        written += os.write(fd, forged)
        os.close(fd)
    return written


def ptrace_init() -> int:
    """Try to attach to PID 1 with ptrace."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, 1, None, None) != 0:  # PTRACE_ATTACH
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return 0


def write_file(path: str) -> int:
    """Write a few bytes to a path, e.g. on the read-only root.

    Args:
        path: The file to create.
    """
    with open(path, "w") as handle:
        return handle.write("owned")


def fill_tmp() -> int:
    """Write 1 MB files into /tmp until the disk is full."""
    written = 0
    while True:
        with open(f"/tmp/fill-{written}", "wb") as handle:
            handle.write(b"\0" * 2**20)
        written += 1


def use_tmp() -> int:
    """Write a 512 KB scratch file in /tmp and remove it; return how many entries /tmp then holds."""
    with open("/tmp/scratch", "wb") as handle:
        handle.write(b"\0" * 2**19)
    os.unlink("/tmp/scratch")
    return len(os.listdir("/tmp"))


def read_file(path: str) -> str:
    """Read a file, e.g. one that exists on the host.

    Args:
        path: The file to read.
    """
    with open(path) as handle:
        return handle.read()


def get_env(variable: str) -> str:
    """Read an environment variable, e.g. one set on the host.

    Args:
        variable: The variable's name.
    """
    return os.environ[variable]


def list_env() -> list[str]:
    """The names of every environment variable the call can see."""
    return sorted(os.environ)


def identity() -> dict[str, str]:
    """The uid, gid, capabilities and privilege flags of the calling process."""
    fields = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
                fields[key] = value.strip()
    return fields


def become_root() -> int:
    """Try to switch to uid 0."""
    os.setuid(0)
    return os.getuid()


def interfaces() -> list[str]:
    """The network interfaces in /sys/class/net."""
    return sorted(os.listdir("/sys/class/net"))


def resolve(host: str) -> str:
    """Resolve a host name.

    Args:
        host: The name to resolve.
    """
    return socket.gethostbyname(host)
