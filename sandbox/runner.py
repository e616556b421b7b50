"""Run a batch of untrusted function calls against the library baked into this image.

Standard library only; runs on Python 3.9 to 3.12 inside the sandbox container.

Protocol
--------
stdin: one JSON document::

    {"module": "library", "timeout": 5.0, "import_timeout": 10.0, "output_limit": 4096,
     "result_limit": 65536,
     "limits": {"address_space": 201326592, "nproc": 0, "fsize": 1048576, "cpu": 6},
     "calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}, ...]}

stdout: JSON Lines, flushed as each call finishes so a killed container still yields the calls
that completed::

    {"index": 0, "name": "add", "ok": true, "result": 3, "reason": null, ...}
    ...
    {"done": true, "python": "3.11.2"}

If the library cannot be imported, or its import takes longer than ``import_timeout`` seconds, the
only lines are ``{"import_error": {"type": ..., "message": ...}}`` and the ``done`` line: the failure
is reported once for the whole batch. Whatever the library prints while it is imported is discarded.

Processes
---------
The runner shares no mutable state with the library. Three kinds of process take part:

* **The runner** (PID 1) never imports the library. It reads the request, forks the library
  process, hands it one call at a time through a pipe, reads back one outcome line per call,
  writes the protocol stream and resets the container after each call. Nothing the library does
  at import (threads, timers, ``atexit`` handlers, signal dispositions, patched or replaced
  modules, a replaced ``sys.stdout``, environment, working directory) runs or changes anything in
  it. After the ``done`` line it kills every other process and leaves with ``os._exit``, so no
  timer or exit handler can hold the batch.
* **The library process** imports the library once, with its output discarded. Before the import
  it closes every descriptor but its two pipes to the runner and takes what it uses afterwards:
  its own copy of ``json`` (loaded apart, in no ``sys.modules`` entry), the ``os``, ``signal``,
  ``select``, ``time``, ``resource`` and ``fcntl`` functions it calls, the seccomp filter ready to
  install, and its settings (signal dispositions, recursion limit, integer digit limit, trace and
  profile functions, warnings filters). After the import it records the library's values of those
  settings and puts its own back (``SIGCHLD`` at its default included), so a library handler never
  runs in it and nothing the library replaced or poisoned is used. Its stdout and stderr stay on
  ``/dev/null``.
* **A call process** is forked from the library process for each call. It applies the library's
  settings for the call and the runner's again to encode the result.

The library process is used for the next call only when its import left nothing that a call
could change for the calls after it: one thread, no writable shared memory, no file lock, and no
open descriptor but regular files and directories, which each call process reopens as its own
(so a call's offsets, status flags and ``flock`` locks die with it). Otherwise (a thread or timer,
a ``multiprocessing`` lock, an ``mmap``, a pipe or socket, a lock taken at import, ...) it runs one
call and is replaced: the library is imported again for the next call, in a container reset to
how it was before the first import. Either way the locks a call takes and the files it opens are
released when the call ends.

If the library process does not report a call within ``timeout`` + 2 seconds, or ends during it,
the call is that call's ``timeout`` or ``crash``, every process but the runner is killed, and the
library is imported again for the next call; if that import fails, every call left fails with its
error (``crash``). What the library process sends is untrusted: each line is bounded in size,
parsed with a nesting bound and type-checked, and anything else is its call's ``crash``.

Calls
-----
Each call runs in its own forked child, so one call can neither crash nor change the state seen by
the next. The child gets ``RLIMIT_AS``, ``RLIMIT_NPROC``, ``RLIMIT_FSIZE`` and ``RLIMIT_CPU``; its
stdout and stderr go to pipes that the parent drains (keeping at most ``output_limit`` bytes each);
it is killed with ``SIGKILL`` when ``timeout`` seconds of wall time pass, or once it has written more
than ``FLOOD_LIMIT`` bytes to them. After each call the runner resets what a call can leave
behind in the container: every process but itself and the library process is killed, every SysV
shared-memory segment, semaphore set and message queue is removed, every entry a call left in
``/tmp``, ``/dev/shm`` and ``/dev/mqueue`` is deleted at any depth, inside folders the library made
at import too (iteratively, after restoring write permission, so locked or very deep directories
go too). Each call runs under a seccomp filter that keeps ``prlimit``, ``setpriority``,
``ioprio_set`` and ``sched_set*`` to its own process, and every wait for a call is bounded by its
deadline. Timers, signal dispositions, environment, working directory, memory, locks and open
files die with the call's child process. The runner is PID 1 of its container, so the kernel drops
any signal a call sends it unless the runner handles that signal; it handles none (``SIGINT`` and
``SIGPIPE`` are ignored). The runner also makes itself non-dumpable before it forks, so a call,
which runs as the same user, can neither ptrace it or the library process nor open their file
descriptors under ``/proc/<pid>/fd`` to forge lines of the protocol stream.

Reasons for a failed call: ``exception`` (the call raised, or names no public function defined in the library),
``timeout`` (wall-clock bound or CPU limit), ``crash`` (killed by a signal, exited without a
result, or flooded its output; ``signal`` names the signal), ``oom`` (``MemoryError`` or killed by
the kernel's OOM killer), ``not_serializable`` (the result has no meaningful representation, see below).

Results that are not JSON (sets, custom objects, NaN, dicts with keys JSON would write the same,
such as ``1`` and ``"1"``, ...) are returned as their ``repr`` cut to ``result_limit`` characters;
a JSON result longer than ``result_limit`` is returned the same way. An exception object returned
instead of raised is the call's ``exception``.
A result counts as ``not_serializable`` when ``repr`` raises or shows a memory address
(``<... at 0x...>``: default reprs, generators, functions, methods), which no one could check.

Whatever a call writes into its result pipe is untrusted: the library process parses it with a
nesting bound, checks every field's type, and turns anything else into that call's ``crash``.
"""

from __future__ import annotations

import _signal
import ctypes
import fcntl
import gc
import importlib
import os
import platform
import re
import resource
import select
import signal
import stat
import sys
import time
import traceback
import types
import warnings
from typing import Any, Dict, List, NoReturn, Optional, Tuple


def _private_json() -> Any:
    """A copy of the ``json`` package of its own: loaded apart and kept out of ``sys.modules``, so
    that a library that patches ``json`` (``json.dumps``, ``json.encoder.c_make_encoder``, ...) or
    replaces it in ``sys.modules`` changes the library's ``json``, never this one."""
    def ours(name: str) -> bool:
        return name == "json" or name.startswith("json.")

    shared = {name: module for name, module in sys.modules.items() if ours(name)}
    for name in shared:
        del sys.modules[name]
    try:
        return importlib.import_module("json")
    finally:
        for name in [name for name in sys.modules if ours(name)]:
            del sys.modules[name]
        sys.modules.update(shared)


json = _private_json()


def _snapshot(module: Any, names: str) -> Any:
    """The named attributes of ``module`` as they are now, so that code running in the library's
    process after the import never looks them up in a module the library could have changed."""
    return types.SimpleNamespace(**{name: getattr(module, name) for name in names.split()})


# Code that runs in the library process or a call process after the import uses only these
# snapshots, the private ``json``, this module's own functions and Python's builtins.
_os = _snapshot(os, "close dup2 fork fstat kill listdir lseek major minor open pipe read readlink waitpid write _exit "
                    "WEXITSTATUS WIFEXITED WIFSIGNALED WTERMSIG WNOHANG O_RDONLY O_ACCMODE O_APPEND "
                    "O_NONBLOCK O_SYNC O_DSYNC SEEK_CUR SEEK_SET")
_os.O_EXTRA = getattr(os, "O_PATH", 0) | getattr(os, "O_NOATIME", 0) | getattr(os, "O_DIRECT", 0)
_time = _snapshot(time, "monotonic sleep")
_select = _snapshot(select, "poll POLLIN POLLHUP POLLERR")
_resource = _snapshot(resource, "getrlimit setrlimit RLIM_INFINITY RLIMIT_AS RLIMIT_NPROC RLIMIT_FSIZE RLIMIT_CPU")
_fcntl = _snapshot(fcntl, "fcntl F_GETFL F_GETFD F_SETFD FD_CLOEXEC")
_sys = _snapshot(sys, "getrecursionlimit setrecursionlimit gettrace settrace getprofile setprofile")
_sys.get_digits = getattr(sys, "get_int_max_str_digits", None)
_sys.set_digits = getattr(sys, "set_int_max_str_digits", None)
_signals = _snapshot(_signal, "getsignal signal setitimer ITIMER_REAL SIG_DFL SIG_IGN SIGALRM SIGCHLD SIGXCPU")
_filters_mutated = getattr(warnings, "_filters_mutated", lambda: None)
_stat = _snapshot(stat, "S_ISREG S_ISDIR")
_FunctionType = types.FunctionType
_CATCHABLE = tuple(sorted(int(number) for number in signal.valid_signals()
                          if number not in (signal.SIGKILL, signal.SIGSTOP)))
_SIGKILL, _SIGXCPU = int(signal.SIGKILL), int(signal.SIGXCPU)
_SIGNAL_NAMES = {int(number): number.name for number in signal.Signals}
_WARNINGS_MODULE = warnings

DEFAULT_TIMEOUT = 5.0
DEFAULT_IMPORT_TIMEOUT = 10.0
LIBRARY_GRACE = 2.0  # seconds past a call's timeout (or the import's) before the library process is given up
FLOOD_LIMIT = 2**20  # bytes of stdout plus stderr a call may write before it is killed
SCRATCH_DIRS = ("/tmp", "/dev/shm", "/dev/mqueue")
SYSV_IPC = (("/proc/sysvipc/shm", "shmctl"), ("/proc/sysvipc/sem", "semctl"), ("/proc/sysvipc/msg", "msgctl"))
IPC_RMID = 0
MAX_DEPTH = 500  # nesting a result may have (well below the recursion limit of JSON encoding)
REASONS = ("exception", "timeout", "crash", "oom", "not_serializable")
ESCAPE_FACTOR = 12  # most bytes one character takes in ASCII JSON (a surrogate pair, ``\uXXXX\uXXXX``)
PR_SET_DUMPABLE = 4
LIBRARY_ROOT = "/opt/library"  # where the image holds the library (see apigen_local/sandbox/executor.py)
DEFAULT_OUTPUT_LIMIT = 4096
DEFAULT_RESULT_LIMIT = 65536
DEFAULT_LIMITS = {"address_space": 192 * 2**20, "nproc": 0, "fsize": 2**20, "cpu": None}
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]{4,}")
OOM_COUNTER_FILES = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")
EXIT_RESULT_WRITTEN = 0
EXIT_PIPES_TAKEN = 71  # the library process found its pipes to the runner closed or replaced


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text) - limit} more characters]"


def _text(value: Any, limit: int) -> str:
    """``str(value)`` cut to ``limit`` characters; never raises, whatever ``__str__`` does."""
    try:
        shown = str(value)
        return _truncate(shown if type(shown) is str else str.__str__(shown), limit)
    except BaseException as exc:  # noqa: BLE001 - a hostile __str__ may raise anything
        return f"<str() of this {_type_name(value)} raised {_type_name(exc)}>"


def _json_key(key: Any) -> Any:
    """The object key ``json.dumps`` writes for a dict key (``1`` and ``"1"`` both become ``"1"``)."""
    if key is True or key is False or key is None:
        return json.dumps(key)
    return key if isinstance(key, str) else repr(float(key)) if isinstance(key, float) else str(key)


def _keys_collide(value: Any) -> bool:
    """Whether some dict in ``value`` has two keys that JSON would write the same, so that one
    value would be lost (each container visited once; nesting is bounded before this runs)."""
    pending, visited = [value], set()
    while pending:
        item = pending.pop()
        if id(item) in visited:
            continue
        visited.add(id(item))
        if isinstance(item, dict):
            try:
                keys = {_json_key(key) for key in item}
            except (TypeError, ValueError):
                return True  # a key JSON cannot write: the value is shown as its repr
            if len(keys) < len(item):
                return True
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    return False


def _encode_result(value: Any, limit: int) -> Dict[str, Any]:
    """The JSON fields describing a returned value (see the module docstring)."""
    if isinstance(value, BaseException):  # a failure returned instead of raised is still a failure
        return {"ok": False, "reason": "exception", "error_type": _type_name(value),
                "error_message": "returned, not raised: " + _text(value, limit)}
    try:
        if _depth(value) > MAX_DEPTH:
            raise ValueError("too deep")
        if _keys_collide(value):
            raise ValueError("keys that JSON writes the same")
        text = json.dumps(value, allow_nan=False)
        if len(text) <= limit:
            return {"ok": True, "result": json.loads(text)}
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - not JSON (hostile __str__ or __iter__ included): use repr
        pass
    try:
        shown = repr(value)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a hostile __repr__ may raise anything
        return {
            "ok": False, "reason": "not_serializable", "error_type": _type_name(exc),
            "error_message": f"the result of type {_type_name(value)} has no usable repr",
        }
    if ADDRESS.search(shown):
        return {
            "ok": False, "reason": "not_serializable", "error_type": _type_name(value),
            "error_message": f"the result of type {_type_name(value)} shows only a memory address: "
                             + _truncate(shown, 200),
        }
    return {"ok": True, "result": _truncate(shown, limit)}


def _resolve(module: Any, name: str, offered: Optional[List[str]] = None) -> Any:
    """The public function ``name`` of the library, exactly as ``load_library`` offers them: a plain
    function defined in the module itself under that name (no imported names, aliases, classes or
    other callables), and one of ``offered`` when the host names the offered functions."""
    if not name.isidentifier() or name.startswith("_"):
        raise NameError(f"{name!r} is not a public function of the library")
    if offered is not None and name not in offered:
        raise NameError(f"{name!r} is not one of the functions offered")
    target = vars(module).get(name)
    if target is None:
        raise NameError(f"the library has no function named {name!r}")
    if not isinstance(target, _FunctionType) or target.__module__ != module.__name__ or target.__name__ != name:
        raise NameError(f"{name!r} is not a function defined in the library")
    return target


def _type_name(value: Any) -> str:
    """The name of ``value``'s class, read past any metaclass override; never raises."""
    try:
        return str.__str__(type.__dict__["__name__"].__get__(type(value), type))[:200]
    except BaseException:  # noqa: BLE001
        return "object"


# --------------------------------------------------------------------------- process settings


def _settings() -> Dict[str, Any]:
    """This process's settings that both the runner and a library may change (see the docstring)."""
    return {
        "signals": {number: _signals.getsignal(number) for number in _CATCHABLE},
        "recursion": _sys.getrecursionlimit(),
        "digits": _sys.get_digits() if _sys.get_digits else None,
        "trace": _sys.gettrace(),
        "profile": _sys.getprofile(),
        "warnings": list(getattr(_WARNINGS_MODULE, "filters", [])),
    }


def _apply(settings: Dict[str, Any]) -> None:
    """Make ``settings`` (from :func:`_settings`) this process's own; each one that cannot be set
    is left as it is."""
    for number, handler in settings["signals"].items():
        try:
            if handler is not None and _signals.getsignal(number) is not handler:
                _signals.signal(number, handler)
        except (OSError, ValueError, TypeError, RuntimeError):
            continue
    for setter, value in ((_sys.setrecursionlimit, settings["recursion"]), (_sys.set_digits, settings["digits"])):
        try:
            if setter is not None and value is not None:
                setter(value)
        except (ValueError, RecursionError):
            continue
    try:
        _WARNINGS_MODULE.filters = list(settings["warnings"])
        _filters_mutated()
    except Exception:  # noqa: BLE001 - a library that broke its warnings module keeps them broken
        pass
    _sys.settrace(settings["trace"])  # last: no frame of this function runs under a library's tracer
    _sys.setprofile(settings["profile"])


def _set_limits(limits: Dict[str, Optional[int]], timeout: float) -> None:
    """Apply the child's resource limits; ``None`` leaves one unchanged."""
    cpu = limits.get("cpu")
    if cpu is None:
        cpu = int(timeout) + 1
    pairs = (
        (_resource.RLIMIT_AS, limits.get("address_space")),
        (_resource.RLIMIT_NPROC, limits.get("nproc")),
        (_resource.RLIMIT_FSIZE, limits.get("fsize")),
        (_resource.RLIMIT_CPU, cpu),
    )
    for which, value in pairs:
        if value is None:
            continue
        _, hard = _resource.getrlimit(which)
        soft = value if hard == _resource.RLIM_INFINITY else min(value, hard)
        new_hard = hard if which == _resource.RLIMIT_CPU else soft
        if which == _resource.RLIMIT_CPU and hard == _resource.RLIM_INFINITY:
            new_hard = soft + 1
        _resource.setrlimit(which, (soft, new_hard))


# Syscalls that can act on other processes of the same user: the child may use them on itself
# only, so that no call can lower the runner's limits, priority or CPU share. Per architecture,
# each rule is (syscall number, ((argument, required value), ...)):
# prlimit64 and sched_set{param,scheduler,affinity,attr} must name pid 0 (the caller);
# setpriority must be (PRIO_PROCESS, 0) and ioprio_set (IOPRIO_WHO_PROCESS, 0): a group or user
# target would reach the runner too.
_SECCOMP_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_SELF_ONLY = {
    "x86_64": [(302, ((0, 0),)), (142, ((0, 0),)), (144, ((0, 0),)), (203, ((0, 0),)), (314, ((0, 0),)),
               (141, ((0, 0), (1, 0))), (251, ((0, 1), (1, 0)))],
    "aarch64": [(261, ((0, 0),)), (118, ((0, 0),)), (119, ((0, 0),)), (122, ((0, 0),)), (274, ((0, 0),)),
                (140, ((0, 0), (1, 0))), (30, ((0, 1), (1, 0)))],
}


def _seccomp_program(machine: str) -> List[Tuple[int, int, int, int]]:
    """A classic-BPF seccomp filter: the syscalls of :data:`_SELF_ONLY` fail with EPERM unless
    their arguments name the caller itself; every other syscall is allowed. Instructions are
    ``(code, jt, jf, k)``; ``seccomp_data`` holds the number at offset 0, the architecture at 4 and
    argument *i* at ``16 + 8 * i`` (low 32 bits first)."""
    load, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K
    allow, deny = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    body: List[Tuple[int, Any, Any, int]] = [(load, 0, 0, 4), (jeq, 0, "ALLOW", _SECCOMP_ARCH[machine]),
                                              (load, 0, 0, 0)]
    if machine == "x86_64":  # x32 numbers (bit 30 set) reach the same calls: none is allowed
        body.append((0x35, "DENY", 0, 0x40000000))  # BPF_JMP|BPF_JGE|BPF_K
    for nr, required in _SELF_ONLY[machine]:
        block: List[Tuple[int, Any, Any, int]] = []
        for argument, value in required:
            offset = 16 + 8 * argument
            block += [(load, 0, 0, offset), (jeq, 0, "DENY", value), (load, 0, 0, offset + 4), (jeq, 0, "DENY", 0)]
        block.append((ret, 0, 0, allow))
        body.append((jeq, 0, len(block), nr))  # another syscall: skip the block, A still holds the number
        body.extend(block)
    body += [(ret, 0, 0, allow), (ret, 0, 0, deny)]
    labels = {"ALLOW": len(body) - 2, "DENY": len(body) - 1}
    return [(code, labels[jt] - index - 1 if isinstance(jt, str) else jt,
             labels[jf] - index - 1 if isinstance(jf, str) else jf, k)
            for index, (code, jt, jf, k) in enumerate(body)]


class _Guard:
    """The seccomp filter of :func:`_seccomp_program`, built by the runner before any import of the
    library, so that installing it in a call process uses nothing the library could have changed."""

    def __init__(self) -> None:
        self.problem: Optional[str] = None
        machine = platform.machine()
        if machine not in _SECCOMP_ARCH:
            self.problem = f"no seccomp filter for the {machine} architecture"
            return

        class SockFilter(ctypes.Structure):
            _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                        ("k", ctypes.c_uint32)]

        class SockFprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

        instructions = _seccomp_program(machine)
        self.array = (SockFilter * len(instructions))(*[SockFilter(*i) for i in instructions])
        self.program = SockFprog(len(instructions), self.array)
        self.pointer = ctypes.byref(self.program)
        self.prctl = ctypes.CDLL(None, use_errno=True).prctl
        self.get_errno = ctypes.get_errno
        self.strerror = os.strerror

    def install(self) -> None:
        """Install the filter in this (call) process; raises ``OSError`` if the kernel refuses, so
        that no call runs unguarded."""
        if self.problem:
            raise OSError(self.problem)
        pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
        if self.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0 or \
                self.prctl(pr_set_seccomp, seccomp_mode_filter, self.pointer, 0, 0) != 0:
            number = self.get_errno()
            raise OSError(number, f"could not guard the runner from the call: {self.strerror(number)}")


class _Context:
    """What a call process needs from the library process: the settings to run the call under and
    to encode its result under, the seccomp filter, the descriptors it reopens as its own and the
    ones it closes."""

    def __init__(self, guard: _Guard, own: Dict[str, Any], library: Dict[str, Any], private_fds: List[int],
                 closed_fds: List[int]) -> None:
        self.guard, self.own, self.library = guard, own, library
        self.private_fds, self.closed_fds = private_fds, closed_fds


_REOPEN_FLAGS = _os.O_ACCMODE | _os.O_APPEND | _os.O_NONBLOCK | _os.O_SYNC | _os.O_DSYNC | _os.O_EXTRA


def _privatize(fds: List[int]) -> None:
    """Reopen each of ``fds`` (the library's files and folders) as this process's own: the same file
    at the same offset with the same flags, in a new open file description, so that the call's
    offset, status flags and ``flock`` locks die with it instead of staying in the library process."""
    for fd in fds:
        flags = _fcntl.fcntl(fd, _fcntl.F_GETFL)
        inheritable = not _fcntl.fcntl(fd, _fcntl.F_GETFD) & _fcntl.FD_CLOEXEC
        try:
            offset: Optional[int] = _os.lseek(fd, 0, _os.SEEK_CUR)
        except OSError:
            offset = None
        fresh = _os.open(f"/proc/self/fd/{fd}", flags & _REOPEN_FLAGS)
        try:
            if offset is not None:
                _os.lseek(fresh, offset, _os.SEEK_SET)
            _os.dup2(fresh, fd, inheritable)
        finally:
            _os.close(fresh)


def _child(module: Any, call: Dict[str, Any], request: Dict[str, Any], result_fd: int, context: _Context) -> None:
    """Body of the forked call process: run one call and write its JSON outcome to ``result_fd``."""
    outcome: Dict[str, Any]
    try:
        _privatize(context.private_fds)
        _set_limits(request["limits"], request["timeout"])
        context.guard.install()
        function = _resolve(module, str(call.get("name", "")), request.get("functions"))
        arguments = call.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise TypeError("arguments must be a JSON object")
        _apply(context.library)  # the call runs with what the library set at import
        try:
            value = function(**arguments)
        finally:
            _sys.settrace(None)  # builtins: no frame of the runner starts under the library's tracer
            _sys.setprofile(None)
            _apply(context.own)  # and its result is encoded with the runner's settings
        outcome = _encode_result(value, request["result_limit"])
    except MemoryError as exc:
        outcome = {"ok": False, "reason": "oom", "error_type": "MemoryError",
                   "error_message": _text(exc, request["output_limit"]) or "out of memory"}
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are call errors too
        outcome = {"ok": False, "reason": "exception", "error_type": _type_name(exc),
                   "error_message": _text(exc, request["output_limit"])}
    for stream in (sys.stdout, sys.stderr):  # the library's streams, whatever it made them
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - a closed or replaced stream must not lose the result
            pass
    try:
        data = json.dumps(outcome).encode()
    except BaseException:  # noqa: BLE001 - whatever the outcome holds, a result line is written
        data = json.dumps({"ok": False, "reason": "not_serializable",
                           "error_message": "the outcome could not be encoded"}).encode()
    _write_all(result_fd, data)


# --------------------------------------------------------------------------- the library process: one call


def _read_small(path: str, limit: int = 2**20) -> str:
    """The start of a small text file (``/proc`` or cgroup), read with the snapshot functions;
    "" when it cannot be read."""
    try:
        fd = _os.open(path, _os.O_RDONLY)
    except OSError:
        return ""
    try:
        chunks, size = [], 0
        while size < limit:
            chunk = _os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")
    except OSError:
        return ""
    finally:
        _os.close(fd)


def _oom_kills() -> int:
    """How many processes the kernel's OOM killer has killed in this container's cgroup."""
    for path in OOM_COUNTER_FILES:
        for line in _read_small(path).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                try:
                    return int(value)
                except ValueError:
                    break
    return 0


def _drain(
    pid: int, fds: Dict[str, int], deadline: float, limits: Dict[str, int]
) -> Tuple[Dict[str, bytes], Dict[str, int], Optional[str]]:
    """Read the child's pipes until all close, ``deadline`` (a ``time.monotonic()``) passes or the
    output floods.

    Returns the bytes kept per pipe (at most ``limits[pipe]``), the total bytes seen per pipe, and
    why the child was killed: ``"timeout"``, ``"flood"`` (more than ``FLOOD_LIMIT`` bytes on stdout
    and stderr) or ``None``.
    """
    data = {name: bytearray() for name in fds}
    seen = {name: 0 for name in fds}
    names = {fd: name for name, fd in fds.items()}
    poller = _select.poll()
    for fd in names:
        poller.register(fd, _select.POLLIN | _select.POLLHUP | _select.POLLERR)
    killed: Optional[str] = None
    while names:
        remaining = deadline - _time.monotonic()
        if seen.get("stdout", 0) + seen.get("stderr", 0) > FLOOD_LIMIT:
            killed = "flood"
        elif remaining <= 0:
            killed = "timeout"
        if killed:
            _os.kill(pid, _SIGKILL)
            break
        for fd, _ in poller.poll(max(1, int(remaining * 1000))):
            chunk = _os.read(fd, 65536)
            name = names[fd]
            if not chunk:
                poller.unregister(fd)
                del names[fd]
                continue
            bound = limits[name]
            buffer = data[name]
            seen[name] += len(chunk)
            if len(buffer) < bound:
                buffer.extend(chunk[: bound - len(buffer)])
    return {name: bytes(buffer) for name, buffer in data.items()}, seen, killed


def _reap(pid: int, deadline: float) -> Tuple[int, bool]:
    """Wait for the child until ``deadline``, then kill it: a child that closed its pipes may still
    run. Returns its wait status, and whether it had to be killed."""
    while True:
        done, status = _os.waitpid(pid, _os.WNOHANG)
        if done:
            return status, False
        if _time.monotonic() >= deadline:
            _os.kill(pid, _SIGKILL)
            return _os.waitpid(pid, 0)[1], True
        _time.sleep(0.005)


def _decode_stream(raw: bytes, total: int) -> str:
    text = raw.decode("utf-8", errors="replace")
    if total > len(raw):
        text += f"... [{total - len(raw)} more bytes]"
    return text


def run_call(module: Any, call: Dict[str, Any], request: Dict[str, Any], context: _Context) -> Dict[str, Any]:
    """Fork a call process for one call and describe what happened (runs in the library process)."""
    pipes = {name: _os.pipe() for name in ("result", "stdout", "stderr")}
    oom_before = _oom_kills()
    started = _time.monotonic()
    pid = _os.fork()
    if pid == 0:
        code = EXIT_RESULT_WRITTEN
        try:
            for fd in context.closed_fds:
                _os.close(fd)
            for read_end, _ in pipes.values():
                _os.close(read_end)
            _os.dup2(pipes["stdout"][1], 1)
            _os.dup2(pipes["stderr"][1], 2)
            _child(module, call, request, pipes["result"][1], context)
        except BaseException:  # noqa: BLE001 - the child must never return into the parent's loop
            code = 70
        finally:
            _os._exit(code)
    for _, write_end in pipes.values():
        _os.close(write_end)
    keep = request["output_limit"]
    # every character of the result and error text may take ESCAPE_FACTOR bytes in the pipe's JSON
    bounds = {"result": ESCAPE_FACTOR * (request["result_limit"] + keep + 512) + 4096, "stdout": keep, "stderr": keep}
    deadline = started + request["timeout"]
    try:
        data, seen, killed = _drain(pid, {name: pair[0] for name, pair in pipes.items()}, deadline, bounds)
    finally:
        for read_end, _ in pipes.values():
            _os.close(read_end)
    if killed:
        _, status = _os.waitpid(pid, 0)
    else:
        status, late = _reap(pid, deadline)
        killed = "timeout" if late else None
    wall = _time.monotonic() - started
    base: Dict[str, Any] = {
        "name": call.get("name"), "ok": False, "result": None, "reason": None,
        "error_type": None, "error_message": None, "signal": None,
        "stdout": _decode_stream(data["stdout"], seen["stdout"]),
        "stderr": _decode_stream(data["stderr"], seen["stderr"]),
        "wall_time": round(wall, 6),
    }
    if killed == "timeout":
        base.update(reason="timeout", signal="SIGKILL",
                    error_message=f"the call did not finish within {request['timeout']:g} s")
        return base
    if killed == "flood":
        base.update(reason="crash", signal="SIGKILL",
                    error_message=f"the call wrote more than {FLOOD_LIMIT} bytes to stdout and "
                                  "stderr and was killed")
        return base
    if _os.WIFSIGNALED(status):
        number = _os.WTERMSIG(status)
        name = _SIGNAL_NAMES.get(number, f"signal {number}")
        base["signal"] = name
        if number == _SIGXCPU:
            base.update(reason="timeout", error_message="the call used up its CPU time limit")
        elif number == _SIGKILL and _oom_kills() > oom_before:
            base.update(reason="oom", error_message="the kernel's OOM killer stopped the call")
        else:
            base.update(reason="crash", error_message=f"the call's process was killed by {name}")
        return base
    code = _os.WEXITSTATUS(status) if _os.WIFEXITED(status) else -1
    outcome, problem = _parse_outcome(data["result"], seen["result"], bounds["result"])
    if outcome is None:
        base.update(reason="crash", error_message=f"the call's process exited with code {code}: {problem}")
        return base
    base.update(outcome)
    return base


def _depth(value: Any) -> int:
    """Nesting depth of lists and dicts in ``value`` (each visited once), without recursion; the
    search stops past ``MAX_DEPTH``."""
    deepest, pending, visited = 0, [(value, 1)], set()
    while pending:
        item, level = pending.pop()
        if isinstance(item, (list, dict)) and id(item) not in visited:
            visited.add(id(item))
            deepest = max(deepest, level)
            if deepest > MAX_DEPTH:
                break
            pending.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _parse_outcome(raw: bytes, total: int, bound: int) -> Tuple[Optional[Dict[str, Any]], str]:
    """The checked fields of what a call wrote to its result pipe, or ``None`` and why not.

    The pipe is written by the call's own process, so it is untrusted: size, nesting and every
    field's type are checked, and nothing in it can make the runner raise."""
    if not raw:
        return None, "it wrote no result"
    if total > bound:
        return None, f"its result took more than {bound} bytes"
    try:
        document = json.loads(raw.decode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - RecursionError and MemoryError included
        return None, f"its result is not valid JSON ({type(exc).__name__})"
    if not isinstance(document, dict):
        return None, "its result is not a JSON object"
    ok, reason = document.get("ok"), document.get("reason")
    fields = {key: document.get(key) for key in ("error_type", "error_message")}
    if not isinstance(ok, bool) or not all(value is None or isinstance(value, str) for value in fields.values()):
        return None, "its result has fields of the wrong type"
    if ok != (reason is None) or (reason is not None and reason not in REASONS):
        return None, "its result has an unknown or inconsistent reason"
    if _depth(document.get("result")) > MAX_DEPTH:
        return None, f"its result is nested more than {MAX_DEPTH} deep"
    fields.update(ok=ok, reason=reason, result=document.get("result") if ok else None)
    return fields, ""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = _os.write(fd, view)
        view = view[written:]


def _line_allowance(request: Dict[str, Any]) -> int:
    """Most bytes one call's protocol line may take: its share of what the host reads."""
    return ESCAPE_FACTOR * (request["result_limit"] + 3 * request["output_limit"] + 1024)


def _outcome_line(index: int, call: Dict[str, Any], outcome: Dict[str, Any], request: Dict[str, Any]) -> bytes:
    """One call's line; a line that grew past its allowance when re-escaped is that call's crash."""
    line = (json.dumps(dict(outcome, index=index)) + "\n").encode()
    allowance = _line_allowance(request)
    if len(line) > allowance:
        line = (json.dumps({"index": index, "name": call.get("name"), "ok": False, "reason": "crash",
                            "error_message": f"its result took more than {allowance} bytes once "
                                             "encoded"}) + "\n").encode()
    return line


# --------------------------------------------------------------------------- the library process


def _import_library(name: str, timeout: float) -> Tuple[Any, Dict[str, Any]]:
    """Import the library; ``TimeoutError`` after ``timeout`` seconds (raised again every second,
    should the library swallow it). Returns the module and the settings it left (its own
    ``SIGALRM`` handler, not the import's timer)."""
    own_alarm = _signals.getsignal(_signals.SIGALRM)

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"importing the library took longer than {timeout:g} s")

    # the library is found after the standard library and never in the runner's own folder, so a
    # library file named like a standard module or like this runner cannot stand in for them
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) not in (here, LIBRARY_ROOT)]
    sys.path.append(LIBRARY_ROOT)
    _signals.signal(_signals.SIGALRM, expire)
    _signals.setitimer(_signals.ITIMER_REAL, timeout, 1.0)
    try:
        module = importlib.import_module(name)
        gc.collect()  # the import's garbage goes (and its finalizers run) while the timer still runs
    finally:
        _signals.setitimer(_signals.ITIMER_REAL, 0)
        trace, profile = _sys.gettrace(), _sys.getprofile()
        _sys.settrace(None)  # builtins, before any frame of the runner starts under them
        _sys.setprofile(None)
    settings = _settings()
    settings.update(trace=trace, profile=profile)
    if settings["signals"].get(_signals.SIGALRM) is expire:
        settings["signals"][_signals.SIGALRM] = own_alarm
    return module, settings


def _identity(fd: int) -> Tuple[int, int]:
    """The file ``fd`` refers to, or ``(-1, -1)`` when it is not open."""
    try:
        info = _os.fstat(fd)
    except OSError:
        return -1, -1
    return info.st_dev, info.st_ino


def _fixed_file(path: str) -> bool:
    """Whether a mapped ``path`` names a file no call can write: one outside the writable folders."""
    return path.startswith("/") and not path.startswith(("/dev/", "/SYSV", "/proc/")) \
        and not path.endswith("(deleted)") \
        and not any(path == folder or path.startswith(folder + "/") for folder in SCRATCH_DIRS)


def _shared_state(own_fds: Tuple[int, ...]) -> Tuple[Optional[str], List[int]]:
    """Why a call could change, through this library process, what the calls after it see (``None``
    when nothing can), and the descriptors the library keeps open, which each call process reopens
    as its own (see the module docstring)."""
    tasks = _os.listdir("/proc/self/task")
    if len(tasks) > 1:
        return f"the library left {len(tasks) - 1} more thread(s) running", []
    for line in _read_small("/proc/self/maps", 2**26).splitlines():
        fields = line.split(None, 5)
        if len(fields) < 2 or fields[1][3:4] != "s":
            continue
        path = fields[5] if len(fields) > 5 else ""
        if "w" in fields[1] or not _fixed_file(path):
            return f"the library maps shared memory ({path or 'anonymous'})", []
    private: List[int] = []
    files = set()
    for name in _os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd in own_fds:
            continue
        try:
            info = _os.fstat(fd)
            target = _os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the descriptor that listed the folder, closed by now
        if not (_stat.S_ISREG(info.st_mode) or _stat.S_ISDIR(info.st_mode)) \
                or target.startswith("/memfd:") or target.endswith("(deleted)"):
            return f"the library keeps descriptor {fd} open ({target})", []
        try:
            _os.close(_os.open(f"/proc/self/fd/{fd}", _fcntl.fcntl(fd, _fcntl.F_GETFL) & _REOPEN_FLAGS))
        except OSError:
            return f"the library's descriptor {fd} ({target}) cannot be reopened", []
        private.append(fd)
        files.add(f"{_os.major(info.st_dev):02x}:{_os.minor(info.st_dev):02x}:{info.st_ino}")
    for line in _read_small("/proc/locks").splitlines():
        fields = [field for field in line.split() if field != "->"]
        if len(fields) > 5 and fields[5] in files:
            return "the library holds a lock on a file it keeps open", []
    return None, private


def _send(fd: int, document: Dict[str, Any]) -> None:
    _write_all(fd, (json.dumps(document) + "\n").encode())


def _library_process(request: Dict[str, Any], guard: _Guard, cmd_fd: int, report_fd: int) -> NoReturn:
    """Body of the library process (see the module docstring): import the library, say whether it
    is ready, then run each call whose index the runner sends and send back its outcome line.
    Never returns."""
    try:
        own_fds = (0, 1, 2, cmd_fd, report_fd)
        for name in os.listdir("/proc/self/fd"):
            if int(name) not in own_fds:
                try:
                    os.close(int(name))
                except OSError:
                    continue
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # what the library prints, at import or from its threads, is discarded
        os.dup2(devnull, 2)
        os.close(devnull)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        own = _settings()
        pipes = {fd: _identity(fd) for fd in (cmd_fd, report_fd)}
        try:
            module, library = _import_library(request["module"], request["import_timeout"])
        except BaseException as exc:  # noqa: BLE001 - any import failure is reported, not raised
            _send(report_fd, {"import_error": {"type": _type_name(exc),
                                               "message": _text(exc, request["output_limit"])}})
            _os._exit(0)
        if any(_identity(fd) != before for fd, before in pipes.items()):
            _os._exit(EXIT_PIPES_TAKEN)  # nothing can be reported on them
        try:
            _apply(own)
            shared, private = _shared_state(own_fds)
            gc.freeze()  # nothing of the import is collected (and no finalizer of the library runs) here
        except BaseException as exc:  # noqa: BLE001 - reported as the import's failure
            _send(report_fd, {"import_error": {"type": _type_name(exc), "message": "the library process could "
                              f"not be prepared after the import: {_text(exc, request['output_limit'])}"}})
            _os._exit(0)
        context = _Context(guard, own, library, private if shared is None else [], [cmd_fd, report_fd])
        _send(report_fd, {"ready": True, "shared": shared})
        calls: List[Dict[str, Any]] = request["calls"]
        pending = b""
        while True:
            while b"\n" not in pending:
                chunk = _os.read(cmd_fd, 64)
                if not chunk:
                    _os._exit(0)  # the runner is done with this process
                pending += chunk
            line, _, pending = pending.partition(b"\n")
            index = int(line)
            call = calls[index]
            try:
                data = _outcome_line(index, call, run_call(module, call, request, context), request)
            except BaseException as exc:  # noqa: BLE001 - the process outlives whatever a call does
                data = (json.dumps({"index": index, "name": call.get("name"), "ok": False, "reason": "crash",
                                    "error_type": _type_name(exc),
                                    "error_message": "the runner could not report this call"}) + "\n").encode()
            _write_all(report_fd, data)
    finally:
        _os._exit(70)


# --------------------------------------------------------------------------- the runner (PID 1)


class _LibraryProcess:
    """The runner's handle on one library process: its pid, the pipe that sends it call indexes
    and the pipe its lines come back on (each line untrusted)."""

    def __init__(self, request: Dict[str, Any], guard: _Guard) -> None:
        cmd_read, self.cmd = os.pipe()
        self.report, report_write = os.pipe()
        self.pending = b""
        self.shared: Optional[str] = None
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.close(request["protocol_fd"])
                os.close(self.cmd)
                os.close(self.report)
                _library_process(request, guard, cmd_read, report_write)
            finally:
                os._exit(70)
        os.close(cmd_read)
        os.close(report_write)

    def read_line(self, deadline: float, limit: int) -> Tuple[Optional[bytes], str]:
        """The next line the library process sends, or ``None`` and why not: ``"deadline"``,
        ``"ended"`` (it closed its pipe) or ``"too long"`` (more than ``limit`` bytes)."""
        while b"\n" not in self.pending:
            if len(self.pending) > limit:
                return None, "too long"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, "deadline"
            ready, _, _ = select.select([self.report], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.report, 2**20)
            if not chunk:
                return None, "ended"
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        if len(line) > limit:
            return None, "too long"
        return line, ""

    def alive(self) -> bool:
        """Whether the library process still runs (a reset may have reaped it)."""
        try:
            return os.waitpid(self.pid, os.WNOHANG)[0] == 0
        except ChildProcessError:
            return False

    def stop(self) -> None:
        """Kill the library process (and so the call it may run) and close its pipes."""
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except OSError:
            pass  # already gone, or reaped with the strays
        for fd in (self.cmd, self.report):
            try:
                os.close(fd)
            except OSError:
                continue


def _ended(pid: int) -> str:
    """How a library process that closed its pipe ended (waiting a second at most for it to end;
    it is reaped here)."""
    deadline = time.monotonic() + 1.0
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return "it ended"
        if done:
            break
        if time.monotonic() > deadline:
            return "it closed its pipe to the runner"
        time.sleep(0.01)
    if os.WIFSIGNALED(status):
        return f"it was killed by {_SIGNAL_NAMES.get(os.WTERMSIG(status), 'a signal')}"
    if os.WEXITSTATUS(status) == EXIT_PIPES_TAKEN:
        return "the library closed or replaced its pipes to the runner"
    return f"it exited with code {os.WEXITSTATUS(status)}"


def _start_library(request: Dict[str, Any], guard: _Guard) -> Tuple[Optional[_LibraryProcess], Dict[str, str]]:
    """Fork a library process and wait until it has imported the library: the process, or ``None``
    and the import's error (type and message)."""
    library = _LibraryProcess(request, guard)
    timeout = request["import_timeout"]
    deadline = time.monotonic() + timeout + LIBRARY_GRACE
    while True:
        line, why = library.read_line(deadline, 2**20)
        if line is None:
            break
        try:
            document = json.loads(line.decode("utf-8"))
        except Exception:  # noqa: BLE001 - untrusted bytes: RecursionError and MemoryError too
            continue  # not the answer (the library may write on the pipe it inherited)
        if not isinstance(document, dict):
            continue
        if document.get("ready") is True:
            shared = document.get("shared")
            library.shared = shared if isinstance(shared, str) or shared is None else "unknown"
            return library, {}
        reported = document.get("import_error")
        if isinstance(reported, dict) and isinstance(reported.get("type"), str) \
                and isinstance(reported.get("message"), str):
            library.stop()
            return None, {"type": reported["type"][:200],
                          "message": reported["message"][:request["output_limit"] + 200]}
    if why == "deadline":
        error = {"type": "TimeoutError", "message": f"importing the library took longer than {timeout:g} s"}
    elif why == "ended":
        error = {"type": "crash", "message": f"the library's process ended while importing it: {_ended(library.pid)}"}
    else:
        error = {"type": "crash", "message": "the library's process sent an over-long line"}
    library.stop()
    return None, error


_TEXT_FIELDS = ("error_type", "error_message", "signal", "stdout", "stderr")


def _checked(document: Any) -> Optional[Dict[str, Any]]:
    """The fields of one outcome line of the library process, each of the right type, or ``None``."""
    if not isinstance(document, dict):
        return None
    ok, reason = document.get("ok"), document.get("reason")
    if not isinstance(ok, bool) or ok != (reason is None) or (reason is not None and reason not in REASONS):
        return None
    fields = {key: document.get(key) for key in _TEXT_FIELDS}
    if not all(value is None or isinstance(value, str) for value in fields.values()):
        return None
    wall = document.get("wall_time")
    if not isinstance(wall, (int, float)) or isinstance(wall, bool) or not 0 <= wall < 1e9:
        wall = None
    result = document.get("result") if ok else None
    if _depth(result) > MAX_DEPTH:
        return None
    fields.update(ok=ok, reason=reason, result=result, wall_time=wall)
    fields["stdout"] = fields["stdout"] or ""
    fields["stderr"] = fields["stderr"] or ""
    return fields


def _ask(library: _LibraryProcess, index: int, call: Dict[str, Any],
         request: Dict[str, Any]) -> Tuple[Dict[str, Any], bool]:
    """Have the library process run call ``index``: its checked outcome, and whether the library
    process can take the next call."""
    started = time.monotonic()
    failed = {"name": call.get("name"), "ok": False, "result": None, "reason": "crash", "error_type": None,
              "error_message": None, "signal": None, "stdout": "", "stderr": ""}
    try:
        _write_all(library.cmd, f"{index}\n".encode())
    except OSError:
        failed["error_message"] = f"the library's process was gone before the call: {_ended(library.pid)}"
        return failed, False
    wait = request["timeout"] + LIBRARY_GRACE
    limit = _line_allowance(request) + 4096
    while True:
        line, why = library.read_line(started + wait, limit)
        if line is None:
            break
        try:
            document = json.loads(line.decode("utf-8"))
        except Exception:  # noqa: BLE001 - untrusted bytes: RecursionError and MemoryError too
            continue
        if not isinstance(document, dict) or document.get("index") != index:
            continue  # not this call's line (the library may write on the pipe it inherited)
        fields = _checked(document)
        if fields is None:
            failed["error_message"] = "the library's process sent an outcome with fields of the wrong type"
            return dict(failed, wall_time=round(time.monotonic() - started, 6)), False
        if fields["wall_time"] is None:
            fields["wall_time"] = round(time.monotonic() - started, 6)
        return dict(fields, name=call.get("name")), True
    if why == "deadline":
        failed.update(reason="timeout", signal="SIGKILL",
                      error_message=f"the library's process did not report the call within {wait:g} s")
    elif why == "ended":
        failed["error_message"] = f"the library's process ended during the call: {_ended(library.pid)}"
    else:
        failed["error_message"] = f"its result took more than {limit} bytes once encoded"
    return dict(failed, wall_time=round(time.monotonic() - started, 6)), False


def _read_request() -> Dict[str, Any]:
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    if not isinstance(request, dict) or not isinstance(request.get("calls"), list):
        raise ValueError("the request must be a JSON object with a 'calls' list")
    limits = dict(DEFAULT_LIMITS)
    limits.update(request.get("limits") or {})
    request["limits"] = limits
    request["timeout"] = float(request.get("timeout") or DEFAULT_TIMEOUT)
    request["import_timeout"] = float(request.get("import_timeout") or DEFAULT_IMPORT_TIMEOUT)
    request["output_limit"] = int(request.get("output_limit") or DEFAULT_OUTPUT_LIMIT)
    request["result_limit"] = int(request.get("result_limit") or DEFAULT_RESULT_LIMIT)
    request["module"] = str(request.get("module") or "library")
    offered = request.get("functions")
    request["functions"] = [str(name) for name in offered] if isinstance(offered, list) else None
    request["calls"] = [call if isinstance(call, dict) else {"name": str(call), "arguments": None}
                        for call in request["calls"]]
    return request


def _emit(fd: int, document: Dict[str, Any]) -> None:
    _write_all(fd, (json.dumps(document) + "\n").encode())


# --------------------------------------------------------------------------- resetting the container


def _scratch_entries() -> Dict[str, List[str]]:
    """Every path, at any depth, in the writable folders (what the library made at import stays)."""
    entries: Dict[str, List[str]] = {}
    for folder in SCRATCH_DIRS:
        entries[folder] = []
        for root, dirs, files in os.walk(folder):
            entries[folder] += [os.path.join(root, name) for name in dirs + files]
    return entries


def _clean_scratch(keep: Dict[str, List[str]]) -> None:
    """Remove what the last call left in the writable folders, at any depth: a path not in
    ``keep`` goes with all below it; a kept folder is searched in turn."""
    for folder in SCRATCH_DIRS:
        kept = set(keep.get(folder, []))
        for root, dirs, files in os.walk(folder):
            for name in files:
                path = os.path.join(root, name)
                if path not in kept:
                    _remove(folder, path)
            for name in list(dirs):
                path = os.path.join(root, name)
                if path not in kept or os.path.islink(path):
                    dirs.remove(name)  # not searched: it goes whole
                    if path not in kept:
                        _remove(folder, path)
                    continue
                try:
                    os.chmod(path, 0o700)  # a call may have locked a kept folder to hide what it left there
                except OSError:
                    pass


def _remove(folder: str, top: str) -> None:
    """Delete ``top`` and all below it without recursion: each directory is made writable, its
    subdirectories are moved up into ``folder`` (so paths stay short however deep the tree) and
    removed in turn. Errors skip the entry; they never raise."""
    pending, moved = [top], 0
    while pending:
        path = pending.pop()
        try:
            if not os.path.isdir(path) or os.path.islink(path):
                os.unlink(path)
                continue
            os.chmod(path, 0o700)
            with os.scandir(path) as entries:
                children = [(entry.path, entry.is_dir(follow_symlinks=False)) for entry in entries]
            for child, is_dir in children:
                if is_dir:
                    os.chmod(child, 0o700)  # moving a directory rewrites its ".." entry
                    moved += 1
                    # a name no call can have made first: a fixed one could already be a full directory
                    target = os.path.join(folder, f".apigen-removing-{moved}-{os.urandom(8).hex()}")
                    os.rename(child, target)
                    pending.append(target)
                else:
                    os.unlink(child)
            os.rmdir(path)
        except OSError:
            continue


def _load_libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _clean_ipc(libc: Any) -> None:
    """Remove every SysV shared-memory segment, semaphore set and message queue in the container's
    IPC namespace (a segment still attached goes once its last user, killed before this, is gone)."""
    for listing, control in SYSV_IPC:
        try:
            with open(listing) as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 2 or not fields[1].isdigit():
                continue
            if control == "semctl":
                libc.semctl(int(fields[1]), 0, IPC_RMID, None)
            else:
                getattr(libc, control)(int(fields[1]), IPC_RMID, None)


def _kill_strays(spare: Optional[int] = None) -> None:
    """As PID 1, kill every other process of the container but ``spare`` (the library process) and
    reap what is its own (a call's child can fork only where ``nproc`` allows, but nothing it
    started may outlive it)."""
    if os.getpid() != 1:
        return
    if spare is None:
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass  # no other process
    else:
        for _ in range(100):  # a stray that forks between two rounds is found by the next one
            found = False
            for name in os.listdir("/proc"):
                if not name.isdigit() or int(name) in (1, spare):
                    continue
                state = _read_small(f"/proc/{name}/stat").rpartition(")")[2].split()[:1]
                if state and state[0] not in ("Z", "X"):
                    found = True
                    try:
                        os.kill(int(name), signal.SIGKILL)
                    except OSError:
                        continue
            _reap_orphans(spare)
            if not found:
                break
            time.sleep(0.001)
    _reap_orphans(spare)


def _reap_orphans(spare: Optional[int]) -> None:
    """Reap every child of the runner that has ended, waiting for the killed ones, but not
    ``spare`` while it runs."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG if spare is not None else 0)
        except ChildProcessError:
            return
        except OSError:
            return
        if pid == 0:
            return


def _reset(keep: Dict[str, List[str]], libc: Any, spare: Optional[int]) -> None:
    """Undo what a call may have left in the container (see the module docstring)."""
    _kill_strays(spare)
    _clean_ipc(libc)
    _clean_scratch(keep)


def _make_undumpable() -> None:
    """``prctl(PR_SET_DUMPABLE, 0)``: /proc/<pid> of this process becomes root's, ptrace is refused;
    the processes it forks inherit this."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")


def _finish(code: int) -> NoReturn:
    """Kill every other process and leave at once: no timer, thread or ``atexit`` handler of the
    library can hold the batch (the library never ran in this process, but a process it started
    could still be running)."""
    try:
        _kill_strays()
        sys.stderr.flush()
    finally:
        os._exit(code)


def main() -> NoReturn:
    """Read the batch, have the library imported, run every call, stream one JSON line per call."""
    protocol_fd = os.dup(1)
    os.dup2(2, 1)  # anything printed in this process stays off the protocol stream
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a library process that is gone is an error, not a signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as PID 1 the runner then ignores every signal
    _make_undumpable()
    try:
        request = _read_request()
    except Exception as exc:  # noqa: BLE001 - any unreadable request is reported, not raised
        _emit(protocol_fd, {"request_error": str(exc)})
        _finish(2)
    request["protocol_fd"] = protocol_fd
    guard = _Guard()
    before_import = _scratch_entries()
    library, error = _start_library(request, guard)
    if library is None:
        _emit(protocol_fd, {"import_error": error})
        _emit(protocol_fd, {"done": True, "python": sys.version.split()[0]})
        _finish(0)
    if library.shared is not None:
        print(f"apigen runner: the library is imported again for each call: {library.shared}", file=sys.stderr)
    after_import = _scratch_entries()
    libc = _load_libc()
    again: Optional[Dict[str, str]] = None  # why the library could not be imported again, once it could not
    for index, call in enumerate(request["calls"]):
        try:
            if library is not None and not library.alive():
                library.stop()  # it ended between two calls
                library = None
            if library is None and again is None:
                library, failure = _start_library(request, guard)
                again = failure or None
            if library is None:
                assert again is not None
                outcome = {"name": call.get("name"), "ok": False, "result": None, "reason": "crash",
                           "error_type": again["type"], "signal": None, "stdout": "", "stderr": "", "wall_time": 0.0,
                           "error_message": "the library could not be imported again for this call: "
                                            + again["message"]}
            else:
                outcome, healthy = _ask(library, index, call, request)
                if not healthy or library.shared is not None:
                    library.stop()  # the next call gets a library process of its own
                    library = None
            line = _outcome_line(index, call, outcome, request)
        except BaseException as exc:  # noqa: BLE001 - the runner outlives whatever a call does
            line = (json.dumps({"index": index, "ok": False, "reason": "crash", "error_type": type(exc).__name__,
                                "error_message": "the runner could not report this call"}) + "\n").encode()
        _write_all(protocol_fd, line)
        try:
            # a library process that is kept keeps what its import made; a new one imports into
            # the container as it was before the first import
            _reset(after_import if library is not None else before_import, libc,
                   library.pid if library is not None else None)
        except BaseException:  # noqa: BLE001 - a failed reset must not stop the batch
            traceback.print_exc()
    _emit(protocol_fd, {"done": True, "python": sys.version.split()[0]})
    _finish(0)


if __name__ == "__main__":
    main()
