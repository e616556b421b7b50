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

Each call runs in its own forked child, so one call can neither crash nor change the state seen by
the next. The child gets ``RLIMIT_AS``, ``RLIMIT_NPROC``, ``RLIMIT_FSIZE`` and ``RLIMIT_CPU``; its
stdout and stderr go to pipes that the parent drains (keeping at most ``output_limit`` bytes each);
it is killed with ``SIGKILL`` when ``timeout`` seconds of wall time pass, or once it has written more
than ``FLOOD_LIMIT`` bytes to them. After each call the runner resets what a call can leave
behind in the container: every process but itself is killed, every SysV shared-memory segment,
semaphore set and message queue is removed, every entry a call left in ``/tmp``, ``/dev/shm``
and ``/dev/mqueue`` is deleted at any depth, inside folders the library made at import too
(iteratively, after restoring write permission, so locked or very deep directories go too), and
the files the library opened at import are put back at their offsets. Each call runs under a
seccomp filter that keeps ``prlimit``, ``setpriority``, ``ioprio_set`` and ``sched_set*`` to its
own process, and the runner waits for a call only until its deadline. Timers, signal
dispositions, environment, working directory and memory die with the call's child process. The
runner is PID 1 of its container, so the kernel drops any signal a call sends it unless the
runner handles that signal; it handles none (``SIGINT`` is ignored). The runner also makes itself
non-dumpable, so a call, which runs as the same user, can neither ptrace
it nor open its file descriptors under ``/proc/1/fd`` to forge lines of the protocol stream.

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

Whatever a call writes into its result pipe is untrusted: the runner parses it with a nesting
bound, checks every field's type, and turns anything else into that call's ``crash``.
"""

from __future__ import annotations

import json
import os
import re
import resource
import selectors
import signal
import sys
import time
import traceback
from typing import Any, Dict, List, Optional, Tuple

DEFAULT_TIMEOUT = 5.0
DEFAULT_IMPORT_TIMEOUT = 10.0
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
    import inspect

    if not name.isidentifier() or name.startswith("_"):
        raise NameError(f"{name!r} is not a public function of the library")
    if offered is not None and name not in offered:
        raise NameError(f"{name!r} is not one of the functions offered")
    target = vars(module).get(name)
    if target is None:
        raise NameError(f"the library has no function named {name!r}")
    if not inspect.isfunction(target) or target.__module__ != module.__name__ or target.__name__ != name:
        raise NameError(f"{name!r} is not a function defined in the library")
    return target


def _type_name(value: Any) -> str:
    """The name of ``value``'s class, read past any metaclass override; never raises."""
    try:
        return str.__str__(type.__dict__["__name__"].__get__(type(value), type))[:200]
    except BaseException:  # noqa: BLE001
        return "object"


def _set_limits(limits: Dict[str, Optional[int]], timeout: float) -> None:
    """Apply the child's resource limits; ``None`` leaves one unchanged."""
    cpu = limits.get("cpu")
    if cpu is None:
        cpu = int(timeout) + 1
    pairs = (
        (resource.RLIMIT_AS, limits.get("address_space")),
        (resource.RLIMIT_NPROC, limits.get("nproc")),
        (resource.RLIMIT_FSIZE, limits.get("fsize")),
        (resource.RLIMIT_CPU, cpu),
    )
    for which, value in pairs:
        if value is None:
            continue
        _, hard = resource.getrlimit(which)
        soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
        new_hard = hard if which == resource.RLIMIT_CPU else soft
        if which == resource.RLIMIT_CPU and hard == resource.RLIM_INFINITY:
            new_hard = soft + 1
        resource.setrlimit(which, (soft, new_hard))


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


def _guard_others() -> None:
    """Install :func:`_seccomp_program` in this (child) process; raises ``OSError`` if the kernel
    refuses, so that no call runs unguarded."""
    import ctypes
    import platform

    machine = platform.machine()
    if machine not in _SECCOMP_ARCH:
        raise OSError(f"no seccomp filter for the {machine} architecture")

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                    ("k", ctypes.c_uint32)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    instructions = _seccomp_program(machine)
    array = (SockFilter * len(instructions))(*[SockFilter(*i) for i in instructions])
    program = SockFprog(len(instructions), array)
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0 or \
            libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.byref(program), 0, 0) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"could not guard the runner from the call: {os.strerror(number)}")


def _child(module: Any, call: Dict[str, Any], request: Dict[str, Any], result_fd: int) -> None:
    """Body of the forked child: run one call and write its JSON outcome to ``result_fd``."""
    outcome: Dict[str, Any]
    try:
        _set_limits(request["limits"], request["timeout"])
        _guard_others()
        function = _resolve(module, str(call.get("name", "")), request.get("functions"))
        arguments = call.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise TypeError("arguments must be a JSON object")
        value = function(**arguments)
        outcome = _encode_result(value, request["result_limit"])
    except MemoryError as exc:
        outcome = {"ok": False, "reason": "oom", "error_type": "MemoryError",
                   "error_message": _text(exc, request["output_limit"]) or "out of memory"}
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are call errors too
        outcome = {"ok": False, "reason": "exception", "error_type": _type_name(exc),
                   "error_message": _text(exc, request["output_limit"])}
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - a closed or replaced stream must not lose the result
        pass
    try:
        data = json.dumps(outcome).encode()
    except BaseException:  # noqa: BLE001 - whatever the outcome holds, a result line is written
        data = json.dumps({"ok": False, "reason": "not_serializable",
                           "error_message": "the outcome could not be encoded"}).encode()
    view = memoryview(data)
    while view:
        written = os.write(result_fd, view)
        view = view[written:]


def _oom_kills() -> int:
    """How many processes the kernel's OOM killer has killed in this container's cgroup."""
    for path in OOM_COUNTER_FILES:
        try:
            with open(path) as handle:
                for line in handle:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
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
    selector = selectors.DefaultSelector()
    for name, fd in fds.items():
        selector.register(fd, selectors.EVENT_READ, name)
    killed: Optional[str] = None
    try:
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if seen.get("stdout", 0) + seen.get("stderr", 0) > FLOOD_LIMIT:
                killed = "flood"
            elif remaining <= 0:
                killed = "timeout"
            if killed:
                os.kill(pid, signal.SIGKILL)
                break
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                bound = limits[key.data]
                buffer = data[key.data]
                seen[key.data] += len(chunk)
                if len(buffer) < bound:
                    buffer.extend(chunk[: bound - len(buffer)])
    finally:
        selector.close()
    return {name: bytes(buffer) for name, buffer in data.items()}, seen, killed


def _reap(pid: int, deadline: float) -> Tuple[int, bool]:
    """Wait for the child until ``deadline``, then kill it: a child that closed its pipes may still
    run. Returns its wait status, and whether it had to be killed."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, False
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            return os.waitpid(pid, 0)[1], True
        time.sleep(0.005)


def _decode_stream(raw: bytes, total: int) -> str:
    text = raw.decode("utf-8", errors="replace")
    if total > len(raw):
        text += f"... [{total - len(raw)} more bytes]"
    return text


def run_call(module: Any, call: Dict[str, Any], request: Dict[str, Any]) -> Dict[str, Any]:
    """Fork a child for one call and describe what happened."""
    pipes = {name: os.pipe() for name in ("result", "stdout", "stderr")}
    oom_before = _oom_kills()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = EXIT_RESULT_WRITTEN
        try:
            os.close(request["protocol_fd"])
            for read_end, _ in pipes.values():
                os.close(read_end)
            os.dup2(pipes["stdout"][1], 1)
            os.dup2(pipes["stderr"][1], 2)
            _child(module, call, request, pipes["result"][1])
        except BaseException:  # noqa: BLE001 - the child must never return into the parent's loop
            code = 70
        finally:
            os._exit(code)
    for _, write_end in pipes.values():
        os.close(write_end)
    keep = request["output_limit"]
    # every character of the result and error text may take ESCAPE_FACTOR bytes in the pipe's JSON
    bounds = {"result": ESCAPE_FACTOR * (request["result_limit"] + keep + 512) + 4096, "stdout": keep, "stderr": keep}
    deadline = started + request["timeout"]
    try:
        data, seen, killed = _drain(pid, {name: pair[0] for name, pair in pipes.items()}, deadline, bounds)
    finally:
        for read_end, _ in pipes.values():
            os.close(read_end)
    if killed:
        _, status = os.waitpid(pid, 0)
    else:
        status, late = _reap(pid, deadline)
        killed = "timeout" if late else None
    wall = time.monotonic() - started
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
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        base["signal"] = name
        if number == signal.SIGXCPU:
            base.update(reason="timeout", error_message="the call used up its CPU time limit")
        elif number == signal.SIGKILL and _oom_kills() > oom_before:
            base.update(reason="oom", error_message="the kernel's OOM killer stopped the call")
        else:
            base.update(reason="crash", error_message=f"the call's process was killed by {name}")
        return base
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
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
    return request


def _emit(fd: int, document: Dict[str, Any]) -> None:
    _write_all(fd, (json.dumps(document) + "\n").encode())


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _import_library(name: str, timeout: float) -> Any:
    """Import the library with its output discarded; ``TimeoutError`` after ``timeout`` seconds
    (raised again every second, should the library swallow it)."""
    import importlib

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"importing the library took longer than {timeout:g} s")

    # the library is found after the standard library and never in the runner's own folder, so a
    # library file named like a standard module or like this runner cannot stand in for them
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) not in (here, LIBRARY_ROOT)]
    sys.path.append(LIBRARY_ROOT)
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout, 1.0)
    try:
        return importlib.import_module(name)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001 - the library may have replaced or closed it
                pass
        os.dup2(saved_stderr, 2)
        os.dup2(saved_stderr, 1)  # later prints in this process stay off the protocol stream
        os.close(saved_stderr)
        os.close(devnull)


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


def _file_offsets(protocol_fd: int) -> Dict[int, int]:
    """The offset of every regular file this process holds open (the library's, from its import).
    A forked call shares each file's offset with the runner, so the offsets are put back after
    every call and each call reads such a file from where the import left it."""
    import stat

    offsets: Dict[int, int] = {}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd <= 2 or fd == protocol_fd:
            continue
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                offsets[fd] = os.lseek(fd, 0, os.SEEK_CUR)
        except OSError:
            continue
    return offsets


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


def _kill_strays() -> None:
    """As PID 1, kill every other process of the container and reap it (a call's child can fork
    only where ``nproc`` allows, but nothing it started may outlive it)."""
    if os.getpid() != 1:
        return
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        return  # no other process
    while True:
        try:
            pid, _ = os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except OSError:
            return
        if pid == 0:
            return


def _reset(scratch: Dict[str, List[str]], libc: Any, offsets: Dict[int, int]) -> None:
    """Undo what a call may have left in the container (see the module docstring)."""
    _kill_strays()
    _clean_ipc(libc)
    _clean_scratch(scratch)
    for fd, offset in offsets.items():
        try:
            os.lseek(fd, offset, os.SEEK_SET)
        except OSError:
            continue


def _make_undumpable() -> None:
    """``prctl(PR_SET_DUMPABLE, 0)``: /proc/<pid> of this process becomes root's, ptrace is refused."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")


def main() -> int:
    """Read the batch, import the library once, run every call, stream one JSON line per call."""
    protocol_fd = os.dup(1)
    os.dup2(2, 1)  # anything printed in this process stays off the protocol stream
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as PID 1 the runner then ignores every signal
    _make_undumpable()
    try:
        request = _read_request()
    except Exception as exc:  # noqa: BLE001 - any unreadable request is reported, not raised
        _emit(protocol_fd, {"request_error": str(exc)})
        return 2
    request["protocol_fd"] = protocol_fd
    try:
        module = _import_library(request["module"], request["import_timeout"])
    except BaseException as exc:  # noqa: BLE001 - any import failure is reported, not raised
        traceback.print_exc()
        _emit(protocol_fd, {"import_error": {
            "type": _type_name(exc), "message": _text(exc, request["output_limit"])}})
        _emit(protocol_fd, {"done": True, "python": sys.version.split()[0]})
        return 0
    scratch = _scratch_entries()
    offsets = _file_offsets(protocol_fd)
    libc = _load_libc()
    calls: List[Any] = request["calls"]
    for index, call in enumerate(calls):
        try:
            if not isinstance(call, dict):
                call = {"name": str(call), "arguments": None}
            outcome = run_call(module, call, request)
            outcome["index"] = index
            line = (json.dumps(outcome) + "\n").encode()
            allowance = ESCAPE_FACTOR * (request["result_limit"] + 3 * request["output_limit"] + 1024)
            if len(line) > allowance:  # a forged outcome that grew when re-escaped: its call's crash
                line = (json.dumps({"index": index, "name": outcome.get("name"), "ok": False, "reason": "crash",
                                    "error_message": f"its result took more than {allowance} bytes once "
                                                     "encoded"}) + "\n").encode()
        except BaseException as exc:  # noqa: BLE001 - the runner outlives whatever a call does
            line = (json.dumps({"index": index, "ok": False, "reason": "crash", "error_type": type(exc).__name__,
                                "error_message": "the runner could not report this call"}) + "\n").encode()
        _write_all(protocol_fd, line)
        try:
            _reset(scratch, libc, offsets)
        except BaseException:  # noqa: BLE001 - a failed reset must not stop the batch
            traceback.print_exc()
    _emit(protocol_fd, {"done": True, "python": sys.version.split()[0]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
