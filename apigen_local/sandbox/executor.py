"""Running generated calls inside locked-down, throw-away Docker containers.

Generated calls are untrusted input: they never run in this process. :class:`SandboxExecutor`
builds one image per library (the sandbox base image plus the library files under
``/opt/library``, tagged by content hash), then runs each batch of calls in a fresh container with
no network, a read-only root, a small ``/tmp`` tmpfs, a non-root user, no capabilities, no new
privileges, and bounded pids, memory (without swap) and CPU. ``sandbox/runner.py`` runs every call
of the batch in its own child process with a per-call timeout and resource limits.

Every container carries the labels ``apigen-local.run`` (the run id), ``apigen-local.pid``,
``apigen-local.pid-start`` and ``apigen-local.host``; it is removed however the batch ends, and
:func:`cleanup_leftovers` removes containers whose run's process is gone.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import socket
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, LibraryError, SandboxError
from ..types import CallResult, FunctionCall
from .engine import connect, engine_lost
from .image import require_sandbox_image

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)

LIBRARY_REPOSITORY = "apigen-local-lib"
LIBRARY_ROOT = "/opt/library"
LABEL_RUN = "apigen-local.run"
LABEL_PID = "apigen-local.pid"
LABEL_PID_START = "apigen-local.pid-start"
LABEL_HOST = "apigen-local.host"
LABEL_LIBRARY = "apigen-local.library"
SANDBOX_USER = "65534:65534"
TMPFS_OPTIONS = "rw,noexec,nosuid,nodev,size=16m,mode=1777"
STARTUP_ALLOWANCE = 15.0  # seconds a container may take to start and import the library
IMPORT_TIMEOUT = 10.0  # seconds the runner gives the import (within STARTUP_ALLOWANCE)
SKIPPED_FILES = ("__pycache__", ".git", ".mypy_cache", ".pytest_cache")
FRAME_HEADER = 8
MAX_ARGUMENT_DEPTH = 200  # nesting of lists and objects a call's arguments may have
ENGINE_GRACE = 5.0  # seconds an engine that failed a request has to stop answering to count as lost
MAX_ARGUMENT_BYTES = 2**20  # JSON size of one call's arguments; a larger call fails alone (invalid_arguments)
INVALID_ARGUMENTS = "invalid_arguments"
MAX_RESULT_DEPTH = 512  # nesting a result line may have (the runner allows 500)


def library_files(library: str | os.PathLike[str]) -> tuple[str, dict[str, bytes]]:
    """The module name of a library and its files, by path relative to ``/opt/library``.

    ``library`` is a single ``.py`` file (module = file stem) or a package directory holding an
    ``__init__.py`` (module = directory name).
    """
    path = Path(library).expanduser()
    if path.is_file():
        if path.suffix != ".py" or not path.stem.isidentifier():
            raise ConfigError(f"the library {path} must be a .py file with a valid module name")
        return path.stem, {path.name: path.read_bytes()}
    if path.is_dir():
        if not (path / "__init__.py").is_file() or not path.name.isidentifier():
            raise ConfigError(f"the library directory {path} must be a package with an __init__.py")
        files: dict[str, bytes] = {}
        for item in sorted(path.rglob("*")):
            relative = item.relative_to(path)
            if any(part.startswith(".") or part in SKIPPED_FILES for part in relative.parts):
                continue
            if item.is_file() and item.suffix != ".pyc":
                files[f"{path.name}/{relative.as_posix()}"] = item.read_bytes()
        return path.name, files
    raise ConfigError(f"the library {path} does not exist: pass a .py file or a package directory")


def json_depth(value: Any, stop: int) -> int:
    """Nesting depth of lists, tuples and dicts in ``value`` without recursion; stops past ``stop``."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, (list, tuple, dict)):
            deepest = max(deepest, level)
            if deepest > stop:
                break
            pending.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def unsendable(call: FunctionCall) -> str | None:
    """Why ``call`` cannot be sent to the sandbox (too deep, or not JSON), or ``None``."""
    if json_depth(call.arguments, MAX_ARGUMENT_DEPTH) > MAX_ARGUMENT_DEPTH:
        return f"the arguments are nested more than {MAX_ARGUMENT_DEPTH} deep"
    try:
        size = len(json.dumps(call.arguments))
    except (TypeError, ValueError, RecursionError) as exc:
        return f"the arguments cannot be encoded as JSON ({type(exc).__name__})"
    if size > MAX_ARGUMENT_BYTES:
        return f"the arguments take {size:,} bytes as JSON, more than {MAX_ARGUMENT_BYTES:,}"
    return None


def library_image_tag(base_tag: str, module: str, files: dict[str, bytes]) -> str:
    """The content-addressed tag of the image holding ``files`` on top of ``base_tag``."""
    digest = hashlib.sha256(f"{base_tag}\0{module}\0".encode())
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return f"{LIBRARY_REPOSITORY}:{digest.hexdigest()[:16]}"


def build_library_image(client: docker.DockerClient, base_tag: str, library: str | os.PathLike[str]) -> tuple[str, str]:
    """Build (or reuse) the library image; return its tag and the library's module name."""
    import docker.errors

    module, files = library_files(library)
    tag = library_image_tag(base_tag, module, files)
    try:
        client.images.get(tag)
        log.debug("library image %s is already built", tag)
        return tag, module
    except docker.errors.ImageNotFound:
        pass
    dockerfile = f"FROM {base_tag}\nCOPY library/ {LIBRARY_ROOT}/\n"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as archive:
        entries = {"Dockerfile": dockerfile.encode()}
        entries.update({f"library/{name}": data for name, data in files.items()})
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    context.seek(0)
    log.info("building library image %s (%d files) on %s", tag, len(files), base_tag)
    try:
        client.images.build(
            fileobj=context, custom_context=True, tag=tag, pull=False, rm=True, forcerm=True,
            network_mode="none", labels={LABEL_LIBRARY: module},
        )
    except (docker.errors.BuildError, docker.errors.APIError) as exc:
        raise SandboxError(f"building the library image {tag} failed: {exc}") from exc
    return tag, module


def offered_functions(library: str | os.PathLike[str]) -> list[str]:
    """The functions ``load_library`` offers as tools for ``library`` (a lenient load: every public
    function it can describe), by name. A package directory is imported by its name from the
    folder that holds it. :class:`LibraryError` if the library cannot be imported or offers none."""
    from ..tools import load_library

    path = Path(library).expanduser().resolve()
    if not path.is_dir():
        return sorted(tool.name for tool in load_library(path, strict=False).tools)
    sys.path.insert(0, str(path.parent))
    try:
        return sorted(tool.name for tool in load_library(path.name, strict=False).tools)
    finally:
        sys.path.remove(str(path.parent))


def _process_start(pid: int) -> str:
    """The start time of a process in clock ticks since boot ("" when /proc cannot tell)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def _process_alive(pid: int, start: str) -> bool:
    """Whether the process that labelled a container still runs (a reused pid does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not start or _process_start(pid) in ("", start)


def cleanup_leftovers(client: docker.DockerClient) -> int:
    """Remove sandbox containers of runs on this host whose process has ended; return how many."""
    import docker.errors

    removed = 0
    hostname = socket.gethostname()
    for summary in client.api.containers(all=True, filters={"label": LABEL_RUN}):
        labels = summary.get("Labels") or {}
        if labels.get(LABEL_HOST) != hostname:
            continue
        try:
            pid = int(labels.get(LABEL_PID, ""))
        except ValueError:
            pid = -1
        if pid > 0 and _process_alive(pid, labels.get(LABEL_PID_START, "")):
            continue
        try:
            client.api.remove_container(summary["Id"], force=True)
            removed += 1
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as exc:
            log.warning("could not remove leftover container %s: %s", summary["Id"][:12], exc)
    if removed:
        log.info("removed %d leftover sandbox container(s) of ended runs", removed)
    return removed


class SandboxExecutor:
    """Executes function calls against a library in fresh, locked-down containers.

    Use as a context manager; :meth:`execute` runs one batch in one container and
    :meth:`execute_many` runs batches with up to ``max_containers`` containers in flight.
    """

    def __init__(
        self,
        library: str | os.PathLike[str],
        *,
        max_containers: int = 2,
        call_timeout: float = 5.0,
        batch_timeout: float | None = None,
        mem_limit: str = "256m",
        cpus: float = 1.0,
        pids_limit: int = 64,
        output_limit: int = 4096,
        result_limit: int = 65536,
        run_id: str | None = None,
        client: docker.DockerClient | None = None,
        functions: Sequence[str] | None = None,
    ) -> None:
        """``functions`` names the only functions calls may run (``generate`` and ``verify`` pass
        the tools ``load_library`` offers); ``None`` means those same tools, found by
        :func:`offered_functions` when the executor starts, so a function ``load_library`` does
        not offer (``*args``, ``**kwargs``, no docstring) is refused unless named here."""
        from docker.utils import parse_bytes

        if max_containers < 1 or call_timeout <= 0 or cpus <= 0 or pids_limit < 4:
            raise ConfigError(
                "max_containers must be >= 1, call_timeout and cpus > 0, and pids_limit >= 4"
            )
        if batch_timeout is not None and batch_timeout <= 0:
            raise ConfigError("batch_timeout must be a positive number of seconds")
        try:
            self.mem_bytes = int(parse_bytes(mem_limit))
        except Exception as exc:  # docker raises its own error type for bad sizes
            raise ConfigError(f"mem_limit {mem_limit!r} is not a size such as '256m'") from exc
        if self.mem_bytes < 32 * 2**20:
            raise ConfigError("mem_limit must be at least 32m")
        library_files(library)  # fail early, with a clear message, on a bad path
        self.library = Path(library)
        self.max_containers = max_containers
        self.call_timeout = call_timeout
        self.batch_timeout = batch_timeout
        self.cpus = cpus
        self.pids_limit = pids_limit
        self.output_limit = output_limit
        self.result_limit = result_limit
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.client = client
        self.functions = sorted(functions) if functions is not None else None
        self.image: str | None = None
        self.module: str | None = None
        self._lock = threading.Lock()
        self._active: set[str] = set()
        self._closing = False

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> SandboxExecutor:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Connect, check the base image, clean up leftovers of dead runs, build the library image."""
        if self.image is not None:
            return
        if self.functions is None:
            self.functions = offered_functions(self.library)
        if self.client is None:
            self.client = connect()
        base = require_sandbox_image(self.client)
        cleanup_leftovers(self.client)
        self.image, self.module = build_library_image(self.client, base, self.library)
        self._closing = False

    def close(self) -> None:
        """Kill and remove every container of this run, including ones still in flight."""
        with self._lock:
            self._closing = True
            active = list(self._active)
        for container_id in active:
            self._remove(container_id)
        if self.client is not None:
            try:
                leftovers = self.client.api.containers(
                    all=True, filters={"label": f"{LABEL_RUN}={self.run_id}"}
                )
            except OSError as exc:  # the engine is gone; the next run's cleanup removes them
                log.debug("cannot list this run's containers: %s", exc)
                return
            for summary in leftovers:
                self._remove(summary["Id"])

    # -- execution -----------------------------------------------------------------------------

    def execute(self, calls: Sequence[FunctionCall]) -> list[CallResult]:
        """Run one batch of calls in one fresh container; results come back in call order."""
        if not calls:
            return []
        self.start()
        return self._run_batch(list(calls))

    def execute_many(self, batches: Sequence[Sequence[FunctionCall]]) -> list[list[CallResult]]:
        """Run many batches, ``max_containers`` containers at a time; order is preserved."""
        if not batches:
            return []
        self.start()
        workers = min(self.max_containers, len(batches))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="apigen-sandbox") as pool:
            futures = [pool.submit(self.execute, batch) for batch in batches]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                self.close()
                raise

    def _request(self, calls: list[FunctionCall]) -> bytes:
        limits = {
            "address_space": self.mem_bytes * 3 // 4,
            "nproc": 0,
            "fsize": 2**20,
            "cpu": int(self.call_timeout) + 1,
        }
        return json.dumps({
            "module": self.module,
            "timeout": self.call_timeout,
            "import_timeout": IMPORT_TIMEOUT,
            "output_limit": self.output_limit,
            "result_limit": self.result_limit,
            "limits": limits,
            "functions": self.functions,
            "calls": [{"name": call.name, "arguments": call.arguments} for call in calls],
        }).encode()

    def _container_config(self) -> dict[str, Any]:
        from docker.types import LogConfig

        assert self.client is not None
        host_config = self.client.api.create_host_config(
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": TMPFS_OPTIONS},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            pids_limit=self.pids_limit,
            mem_limit=self.mem_bytes,
            memswap_limit=self.mem_bytes,
            nano_cpus=int(self.cpus * 1e9),
            log_config=LogConfig(type=LogConfig.types.NONE),
        )
        pid = os.getpid()
        return {
            "image": self.image,
            "stdin_open": True,
            "user": SANDBOX_USER,
            "network_disabled": True,
            "environment": {},
            "labels": {
                LABEL_RUN: self.run_id,
                LABEL_PID: str(pid),
                LABEL_PID_START: _process_start(pid),
                LABEL_HOST: socket.gethostname(),
            },
            "host_config": host_config,
        }

    def _output_cap(self, count: int) -> int:
        """Most bytes a well-behaved runner writes for ``count`` calls (ASCII JSON may take 12 bytes
        for one character: a surrogate pair)."""
        return count * 12 * (self.result_limit + 3 * self.output_limit + 1024) + 65536

    def _run_batch(self, calls: list[FunctionCall]) -> list[CallResult]:
        """One container for ``calls``; :class:`DockerUnavailableError` if the engine goes away.
        Calls whose arguments cannot be sent fail alone with ``invalid_arguments``."""
        refused = {index: problem for index, call in enumerate(calls) if (problem := unsendable(call))}
        if refused:
            sent = [call for index, call in enumerate(calls) if index not in refused]
            results = iter(self._run_batch(sent) if sent else [])
            return [
                CallResult(name=call.name, ok=False, reason=INVALID_ARGUMENTS, error_message=refused[index])
                if index in refused else next(results)
                for index, call in enumerate(calls)
            ]
        import docker.errors
        from requests.exceptions import ConnectionError as EngineUnreachable

        try:
            stdout, stderr, state, expired, overflow, bound = self._run_container(calls)
        except EngineUnreachable as exc:
            raise engine_lost(exc) from exc
        except docker.errors.APIError as exc:
            # an engine that is shutting down fails requests with a 500 before it stops answering
            if self._engine_going_away():
                raise engine_lost(exc) from exc
            raise SandboxError(f"the Docker engine could not run a sandbox container: "
                               f"{exc.explanation or exc}") from exc
        if b'"done": true' not in stdout and not self._engine_answers():
            raise engine_lost()
        return self._results(calls, stdout, stderr, state, expired, overflow, bound)

    def _engine_answers(self) -> bool:
        assert self.client is not None
        try:
            return bool(self.client.ping())
        except Exception:  # any failure means no answer
            return False

    def _engine_going_away(self) -> bool:
        """Whether the engine stops answering within :data:`ENGINE_GRACE` seconds (polled every 0.2 s)."""
        deadline = time.monotonic() + ENGINE_GRACE
        while time.monotonic() < deadline:
            if not self._engine_answers():
                return True
            time.sleep(0.2)
        return False

    def _run_container(
        self, calls: list[FunctionCall]
    ) -> tuple[bytes, bytes, dict[str, Any], bool, bool, float]:
        """Run ``calls`` in a fresh container and remove it; return its stdout, stderr and final
        state, whether the batch bound expired, whether the output overflowed, and the bound."""
        import docker.errors

        assert self.client is not None
        api = self.client.api
        bound = self.batch_timeout or STARTUP_ALLOWANCE + len(calls) * (self.call_timeout + 0.5)
        expired = threading.Event()
        container_id = ""
        started = time.monotonic()
        try:
            try:
                container_id = api.create_container(**self._container_config())["Id"]
            except docker.errors.ImageNotFound as exc:
                raise SandboxError(
                    f"the library image {self.image} disappeared: start a new SandboxExecutor"
                ) from exc
            with self._lock:
                if self._closing:
                    raise SandboxError("the sandbox executor is closed")
                self._active.add(container_id)
            attached = api.attach_socket(
                container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            raw: socket.socket = getattr(attached, "_sock", attached)
            timer = threading.Timer(bound, self._expire, (container_id, expired))
            timer.daemon = True
            try:
                api.start(container_id)
                timer.start()
                raw.settimeout(bound + STARTUP_ALLOWANCE)
                raw.sendall(self._request(calls))
                raw.shutdown(socket.SHUT_WR)
                stdout, stderr, overflow = self._read_frames(raw, self._output_cap(len(calls)))
            finally:
                timer.cancel()
                attached.close()
            if overflow:
                self._kill(container_id)
            state = self._final_state(container_id)
        finally:
            if container_id:
                self._remove(container_id)
        log.debug(
            "batch of %d calls in container %s took %.2fs",
            len(calls), container_id[:12], time.monotonic() - started,
        )
        return stdout, stderr, state, expired.is_set(), overflow, bound

    @staticmethod
    def _read_frames(raw: socket.socket, cap: int) -> tuple[bytes, bytes, bool]:
        """Read the multiplexed attach stream to its end; stop at ``cap`` bytes of output."""
        buffer = bytearray()
        stdout, stderr = bytearray(), bytearray()
        while True:
            try:
                chunk = raw.recv(65536)
            except OSError:  # includes the socket timeout
                break
            if not chunk:
                break
            buffer.extend(chunk)
            while len(buffer) >= FRAME_HEADER:
                size = int.from_bytes(buffer[4:8], "big")
                if len(buffer) < FRAME_HEADER + size:
                    break
                target = stderr if buffer[0] == 2 else stdout
                target.extend(buffer[FRAME_HEADER:FRAME_HEADER + size])
                del buffer[:FRAME_HEADER + size]
            if len(stdout) + len(stderr) > cap:
                return bytes(stdout), bytes(stderr), True
        return bytes(stdout), bytes(stderr), False

    def _final_state(self, container_id: str) -> dict[str, Any]:
        """The container's exit code and OOM flag, once it has stopped."""
        import docker.errors

        assert self.client is not None
        try:
            self.client.api.wait(container_id, timeout=STARTUP_ALLOWANCE)
            return dict(self.client.api.inspect_container(container_id).get("State") or {})
        except (docker.errors.APIError, OSError) as exc:
            log.debug("no final state for container %s: %s", container_id[:12], exc)
            self._kill(container_id)
            return {}

    def _results(
        self,
        calls: list[FunctionCall],
        stdout: bytes,
        stderr: bytes,
        state: dict[str, Any],
        expired: bool,
        overflow: bool,
        bound: float,
    ) -> list[CallResult]:
        """Turn the runner's JSON lines into one :class:`CallResult` per call, in order."""
        found: dict[int, CallResult] = {}
        for line in stdout.splitlines():
            try:
                document = json.loads(line)
            except Exception:  # untrusted bytes: RecursionError and MemoryError too
                continue
            if not isinstance(document, dict):
                continue
            if "import_error" in document:
                error = document["import_error"] if isinstance(document["import_error"], dict) else {}
                hint = ("; the sandbox has only the Python standard library, so make the library "
                        "import without other packages"
                        if error.get("type") in ("ImportError", "ModuleNotFoundError") else "")
                raise LibraryError(
                    f"the library {self.library} cannot be imported in the sandbox "
                    f"({error.get('type')}: {error.get('message')}){hint}"
                )
            if "request_error" in document:
                raise SandboxError(f"the sandbox runner rejected the batch: {document['request_error']}")
            index = document.get("index")
            if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(calls):
                found[index] = self._call_result(calls[index].name, document)
        if len(found) < len(calls):
            detail = stderr.decode("utf-8", errors="replace").strip().splitlines()[-1:]
            log.debug("container ended early: state=%s stderr=%s", state, detail)
        if expired:
            reason, message = "timeout", f"the batch did not finish within {bound:g} s"
        elif state.get("OOMKilled"):
            reason, message = "oom", "the container ran out of memory"
        elif overflow:
            reason, message = "crash", "the batch wrote more output than allowed"
        else:
            reason = "crash"
            message = f"the sandbox container exited with code {state.get('ExitCode')} before this call finished"
        return [
            found.get(index)
            or CallResult(name=call.name, ok=False, reason=reason, error_message=message)
            for index, call in enumerate(calls)
        ]

    @staticmethod
    def _call_result(name: str, document: dict[str, Any]) -> CallResult:
        """One call's result line, checked; anything malformed becomes that call's ``crash``."""
        from pydantic import ValidationError

        fields = {key: document.get(key) for key in CallResult.model_fields if key in document}
        fields.update(name=name, stdout=fields.get("stdout") or "", stderr=fields.get("stderr") or "",
                      coerced={})
        problem = "its result line is malformed or nested too deep"
        depth = json_depth(fields.get("result"), MAX_RESULT_DEPTH)
        if isinstance(fields.get("ok"), bool) and depth <= MAX_RESULT_DEPTH:
            try:
                return CallResult.model_validate(fields)
            except ValidationError as exc:
                problem = f"its result line has {exc.error_count()} fields of the wrong type"
        return CallResult(name=name, ok=False, reason="crash",
                          error_message=f"the sandbox returned no valid result: {problem}")

    # -- container removal ---------------------------------------------------------------------

    def _expire(self, container_id: str, expired: threading.Event) -> None:
        expired.set()
        self._kill(container_id)

    def _kill(self, container_id: str) -> None:
        import docker.errors

        assert self.client is not None
        try:
            self.client.api.kill(container_id)
        except (docker.errors.APIError, OSError):
            pass  # already stopped or gone, or the engine is gone

    def _remove(self, container_id: str) -> None:
        import docker.errors

        assert self.client is not None
        try:
            self.client.api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                log.warning("could not remove sandbox container %s: %s", container_id[:12], exc)
        except OSError as exc:  # the engine is gone; the next run's cleanup removes it
            log.debug("could not remove sandbox container %s: %s", container_id[:12], exc)
        with self._lock:
            self._active.discard(container_id)
