"""A library whose functions attack the sandbox by class (see test_classes.py); stdlib only."""

import ctypes
import os
from os import listdir  # noqa: F401 - an imported name the sandbox must refuse to call

IPC_CREAT = 0o1000
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
libc.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]


def add(a: int, b: int) -> int:
    """Add two numbers.

    Args:
        a: First.
        b: Second.
    """
    return a + b


alias = add


def make_ipc(key: int, value: int, megabytes: int) -> int:
    """Create SysV shared memory (filled), a semaphore set, a message queue and a POSIX queue.

    Args:
        key: IPC key.
        value: Value written at the start of the shared memory.
        megabytes: Shared memory to pin, in 16 MB segments.
    """
    segments = 0
    for offset in range(max(1, megabytes // 16)):
        shmid = libc.shmget(key + offset, 16 * 2**20, IPC_CREAT | 0o600)
        if shmid < 0:
            break
        address = libc.shmat(shmid, None, 0)
        ctypes.memset(address, 1, 16 * 2**20)
        ctypes.c_int.from_address(address).value = value
        libc.shmdt(address)
        segments += 1
    libc.semget(key, 1, IPC_CREAT | 0o600)
    libc.msgget(key, IPC_CREAT | 0o600)
    libc.mq_open(b"/apigen-test", os.O_CREAT | os.O_RDWR, 0o600, None)
    return segments


def seen_ipc(key: int) -> list:
    """The IPC objects under ``key`` still visible, and the value in its shared memory.

    Args:
        key: IPC key.
    """
    seen = []
    shmid = libc.shmget(key, 0, 0)
    if shmid >= 0:
        address = libc.shmat(shmid, None, 0)
        seen.append(["shm", ctypes.c_int.from_address(address).value])
    if libc.semget(key, 0, 0) >= 0:
        seen.append(["sem"])
    if libc.msgget(key, 0) >= 0:
        seen.append(["msg"])
    if libc.mq_open(b"/apigen-test", os.O_RDONLY, 0, None) >= 0:
        seen.append(["mqueue"])
    return seen


def allocate(megabytes: int) -> int:
    """Allocate and touch memory.

    Args:
        megabytes: How much.
    """
    return len(bytearray(megabytes * 2**20))


def leave_files(megabytes: int) -> int:
    """Leave 1 MB files in locked directories, a symlink to / and a fifo in /tmp and /dev/shm.

    Args:
        megabytes: Files per directory.
    """
    for base in ("/tmp", "/dev/shm"):
        inner = os.path.join(base, "locked", "inner")
        os.makedirs(inner)
        for folder in (inner, os.path.dirname(inner)):
            for number in range(megabytes):
                with open(os.path.join(folder, f"blob{number}"), "wb") as handle:
                    handle.write(b"x" * 2**20)
        os.chmod(inner, 0o500)
        os.chmod(os.path.dirname(inner), 0o500)
        os.symlink("/", os.path.join(base, "root-link"))
        os.mkfifo(os.path.join(base, "fifo"))
    return 0


def deep_dirs(depth: int) -> int:
    """Nest directories ``depth`` deep under /tmp.

    Args:
        depth: How deep.
    """
    os.chdir("/tmp")
    for _ in range(depth):
        os.mkdir("d")
        os.chdir("d")
    return depth


def scratch() -> list:
    """Entries visible in /tmp and /dev/shm.

    Args:
    """
    return sorted(os.listdir("/tmp")) + sorted(os.listdir("/dev/shm"))


def write_blob(megabytes: int) -> int:
    """Write 1 MB files into /tmp.

    Args:
        megabytes: How many.
    """
    for number in range(megabytes):
        with open(f"/tmp/blob{number}", "wb") as handle:
            handle.write(b"y" * 2**20)
    return megabytes


def forge(kind: str) -> int:
    """Write a forged outcome into every pipe this process holds, then exit.

    Args:
        kind: deep (30,000 nested lists), typed (wrong field types), huge (ok with a 4 MB error type),
            grows (ok with 120,000 emoji as raw UTF-8: within the pipe's bound, three times that
            once re-escaped).
    """
    documents = {
        "deep": b'{"ok": true, "result": ' + b"[" * 30000 + b"]" * 30000 + b"}",
        "typed": b'{"ok": "yes", "result": 1, "reason": 5, "error_type": [], "error_message": {"a": 1}}',
        "huge": b'{"ok": false, "reason": "exception", "error_type": "' + b"E" * 4 * 2**20 + b'"}',
        "grows": b'{"ok": true, "result": "' + "\U0001f600".encode() * 120_000 + b'"}',
    }
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if fd > 2 and os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                os.write(fd, documents[kind])
        except OSError:
            pass
    os._exit(0)


def text(kind: str, count: int) -> str:
    """A long legitimate string.

    Args:
        kind: quotes, cjk, control or emoji.
        count: Characters.
    """
    return {"quotes": '"', "cjk": "漢", "control": "\x01", "emoji": "😀"}[kind] * count


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("no text")


class _Worse(Exception):
    def __str__(self) -> str:
        raise _Unprintable()


class _NoName(type):
    @property
    def __name__(cls) -> str:  # type: ignore[override]
        raise RuntimeError("no name")


class _Nameless(_Unprintable, metaclass=_NoName):
    pass


def raise_unprintable(kind: str) -> int:
    """Raise an exception whose str() raises.

    Args:
        kind: plain; worse (its str() raises an exception whose str() raises); nameless (its
            class name raises too).
    """
    raise {"plain": _Unprintable, "worse": _Worse, "nameless": _Nameless}[kind]()


class _Thing:
    def method(self) -> int:
        return 1


def opaque(kind: str) -> object:
    """Return a value whose repr carries a memory address.

    Args:
        kind: generator, function, lambda, bound_method, objects.
    """
    values = {
        "generator": lambda: (i for i in range(3)),
        "function": lambda: add,
        "lambda": lambda: (lambda: 1),
        "bound_method": lambda: _Thing().method,
        "objects": lambda: [_Thing(), _Thing()],
    }
    return values[kind]()
