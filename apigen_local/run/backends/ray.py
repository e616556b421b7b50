"""The Ray backend: one actor per worker owns a model and a sandbox; the driver admits and writes.

Tasks go to whichever worker is least busy (at most ``DEPTH`` calls queued per worker, so a slow
node takes fewer), earlier batches first; the base loop keeps ``WINDOW`` batches per worker out.
When a worker process or its node dies, its unfinished calls go to the other workers; Ray
restarts the actor where there is room and it rejoins when it answers. Rows are deterministic per
index, so a task that runs again yields the same rows, and nothing is written twice.

The model reaches the workers either at a path that exists on every node (the default), or, with
``ship_model``, once through Ray's object store: each node writes it to a cache folder
(``$APIGEN_RAY_MODEL_CACHE``, default ``~/.cache/apigen-local/ray-models``) and checks its sha256.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ApigenError
from ...model.files import file_sha256
from ...model.local import LocalModel
from ...tools import Library
from ...types import Record
from ..worker import Worker, WorkerSettings
from .base import Backend, ExecutionBackend, Task

log = logging.getLogger(__name__)

DEPTH = 2  # calls queued per worker: one running, one ready to start
WINDOW = 4  # batches per worker that may be out before the oldest unwritten one is written
CACHE_ENV = "APIGEN_RAY_MODEL_CACHE"
PING_RETRIES = 60


@dataclass(frozen=True)
class RayCluster(Backend):
    """A Ray cluster to run on: ``auto`` (the one ``ray start`` set up here), ``local`` (a private
    one) or ``host:port``, with ``workers`` actors (default: one per node with a CPU). Each worker
    loads the model from its file, at the same path on every node or, with ``ship_model``, sent
    once through Ray's object store; a model loaded in the driver is not used."""

    address: str = "auto"
    workers: int | None = None
    ship_model: bool = False

    def start(self, settings: WorkerSettings, *, model: LocalModel | None,
              library: Library | None) -> ExecutionBackend:
        return RayBackend(self.address, settings, workers=self.workers, ship_model=self.ship_model)


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class ShippedModel:
    """A GGUF the driver put in Ray's object store once; each node writes it to its cache once."""

    ref: Any  # ObjectRef of the file's bytes (uint8 array); nested, so Ray fetches it only on demand
    sha256: str
    name: str

    @classmethod
    def put(cls, path: Path) -> ShippedModel:
        import numpy as np
        import ray

        return cls(ray.put(np.fromfile(path, dtype=np.uint8)), file_sha256(path), path.name)

    def local_path(self) -> Path:
        """The model's path in this node's cache, written (under a lock, so once) if missing or damaged."""
        import fcntl

        import ray

        cache = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "apigen-local" / "ray-models")
        folder = cache.expanduser() / self.sha256[:16]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.name  # the file name is kept: it can be the model's name in the records
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # the node's other workers wait, then reuse the file
            if path.is_file() and file_sha256(path) == self.sha256:
                return path
            part = folder / f".{self.name}.{os.getpid()}.part"
            with open(part, "wb") as handle:
                handle.write(memoryview(ray.get(self.ref)))
                handle.flush()
                os.fsync(handle.fileno())
            if file_sha256(part) != self.sha256:
                part.unlink()
                raise ApigenError(f"the shipped model {self.name} arrived damaged (sha256 mismatch)")
            os.replace(part, path)
        return path


# --------------------------------------------------------------------------- the actor


def _cleanup_node() -> None:
    """Remove sandbox containers that ended processes (e.g. a killed worker) left on this node."""
    try:
        from ...sandbox.engine import connect as connect_docker
        from ...sandbox.executor import cleanup_leftovers

        cleanup_leftovers(connect_docker())
    except Exception as exc:  # best effort: the run goes on without it
        log.warning("could not clean up leftover sandbox containers on %s: %s", socket.gethostname(), exc)


class RayWorker:
    """The actor: a :class:`Worker` built on its node; records travel as JSON."""

    def __init__(self, settings_json: str, model: ShippedModel | None) -> None:
        settings = WorkerSettings.model_validate_json(settings_json)
        if model is not None and settings.model is not None:
            settings.model.path = str(model.local_path())
        _cleanup_node()
        self.worker = Worker(settings)
        self.worker.open()

    def ready(self) -> str:
        """Answers once the worker is up: its host name."""
        return socket.gethostname()

    def generate(self, indices: list[int], ahead: list[int]) -> list[str]:
        """Generate and format-check rows ``indices`` (see :meth:`Worker.generate`)."""
        return [r.model_dump_json() for r in self.worker.generate(indices, ahead=ahead)]

    def check(self, rows: list[str]) -> list[str]:
        """Execute and judge the records ``rows`` (see :meth:`Worker.check`)."""
        records = [Record.model_validate_json(row) for row in rows]
        return [r.model_dump_json() for r in self.worker.check(records)]

    def close(self) -> None:
        """Remove this worker's sandbox containers (and those of dead workers here); free the model."""
        self.worker.close()
        _cleanup_node()


# --------------------------------------------------------------------------- the driver


def connect(address: str) -> None:
    """Join the cluster: ``auto`` = the one ``ray start`` set up here, ``local`` = a private one."""
    try:
        import ray
    except ImportError as exc:
        raise ApigenError("--ray needs Ray: pip install 'apigen-local[ray]'") from exc
    if ray.is_initialized():
        return
    try:
        ray.init(address=None if address == "local" else address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ApigenError(f"cannot join the Ray cluster at {address!r}: {exc}") from exc


@dataclass(order=True)
class _Call:
    batch: int  # earlier batches go out first: the writer waits for them
    seq: int
    task: Task = field(compare=False)


class RayBackend(ExecutionBackend):
    """Runs tasks on ``workers`` Ray actors (default: one per live node with a CPU).

    Each call goes to the least busy live worker; a lost worker's calls go back in the queue for
    the others, and the worker rejoins when its restarted actor answers.
    """

    def __init__(self, address: str, settings: WorkerSettings, *, workers: int | None = None,
                 ship_model: bool = False) -> None:
        super().__init__()
        connect(address)
        self.settings = _on_every_node(settings)
        self.workers = workers
        self.ship_model = ship_model
        self.actors: list[Any] = []
        self.names: list[str] = []
        self.up: set[int] = set()
        self.ever_up: set[int] = set()
        self.busy: list[int] = []
        self.queue: list[_Call] = []
        self.calls: dict[Any, tuple[int, _Call]] = {}
        self.pings: dict[Any, int] = {}
        self.ping_failures: list[int] = []
        self._seq = itertools.count()

    def open(self) -> None:
        import ray

        n = self.workers or _default_workers()
        self.window = WINDOW * n
        model = None
        if self.ship_model and self.settings.model is not None:
            model = ShippedModel.put(Path(self.settings.model.path))
        actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(RayWorker)
        self.actors = [actor.options(scheduling_strategy="SPREAD").remote(self.settings.model_dump_json(), model)
                       for _ in range(n)]
        self.names = [f"w{i}" for i in range(n)]
        self.busy = [0] * n
        self.ping_failures = [0] * n
        self.pings = {a.ready.remote(): i for i, a in enumerate(self.actors)}

    def close(self) -> None:
        """Close the live workers (their sandboxes), then end every actor."""
        import ray

        closing = [self.actors[i].close.remote() for i in self.up]
        if closing:
            ray.wait(closing, num_returns=len(closing), timeout=60)
        for actor in self.actors:
            ray.kill(actor)

    def submit(self, task: Task) -> None:
        heapq.heappush(self.queue, _Call(task.batch, next(self._seq), task))

    def _dispatch(self) -> None:
        while self.queue:
            idle = [i for i in self.up if self.busy[i] < DEPTH]
            if not idle:
                return
            i = min(idle, key=lambda w: (self.busy[w], w))
            call = heapq.heappop(self.queue)
            task, actor = call.task, self.actors[i]
            if task.kind == "generate":
                ref = actor.generate.remote(task.indices, task.ahead)
            else:
                ref = actor.check.remote([r.model_dump_json() for r in task.records])
            self.calls[ref] = (i, call)
            self.busy[i] += 1

    def _lose(self, i: int, exc: Exception) -> None:
        if i in self.up:
            log.warning("Ray worker %s was lost (%s); its rows run again on the others",
                        self.names[i], str(exc).splitlines()[0])
            self.up.discard(i)
            self.pings[self.actors[i].ready.remote()] = i

    def result(self) -> tuple[Task, list[Record], str]:
        """Wait until a call succeeds; return its task, its records and the worker that ran it."""
        import ray
        from ray.exceptions import NodeDiedError, ObjectLostError, RayActorError, WorkerCrashedError

        lost = (RayActorError, ObjectLostError, WorkerCrashedError, NodeDiedError)
        while True:
            self._dispatch()
            refs = [*self.calls, *self.pings]
            if not refs:
                raise ApigenError("every Ray worker is gone; rerun the same command to resume")
            ready, _ = ray.wait(refs, num_returns=1)
            ref = ready[0]
            if ref in self.pings:
                self._answered(self.pings.pop(ref), ref, lost)
                continue
            i, call = self.calls.pop(ref)
            self.busy[i] -= 1
            try:
                lines = ray.get(ref)
            except lost as exc:
                self._lose(i, exc)
                heapq.heappush(self.queue, call)
                continue
            return call.task, [Record.model_validate_json(line) for line in lines], self.names[i]

    def _answered(self, i: int, ref: Any, lost: tuple[type[Exception], ...]) -> None:
        """A worker's ping came back: it is up, or it failed to start, or it is still restarting."""
        import ray
        from ray.exceptions import RayActorError

        try:
            ray.get(ref)
        except lost as exc:
            if (isinstance(exc, RayActorError) and exc.actor_init_failed) or i not in self.ever_up:
                raise ApigenError(f"Ray worker {self.names[i]} could not start: {exc}") from exc
            self.ping_failures[i] += 1
            if self.ping_failures[i] < PING_RETRIES:
                time.sleep(1)
                self.pings[self.actors[i].ready.remote()] = i
            return
        self.up.add(i)
        self.ever_up.add(i)


def _default_workers() -> int:
    import ray

    return max(1, sum(1 for node in ray.nodes() if node["Alive"] and node["Resources"].get("CPU")))


def _absolute(path: str | None) -> str | None:
    """A file path that means the same on every node; a module name stays as it is."""
    return str(Path(path).resolve()) if path is not None and Path(path).is_file() else path


def _on_every_node(settings: WorkerSettings) -> WorkerSettings:
    """``settings`` with the library, seed file and model as absolute paths."""
    update: dict[str, Any] = {"library": _absolute(settings.library)}
    if settings.generation is not None:
        update["generation"] = settings.generation.model_copy(update={
            "library": _absolute(settings.generation.library),
            "seed_file": _absolute(settings.generation.seed_file)})
    if settings.model is not None:
        update["model"] = settings.model.model_copy(update={"path": str(Path(settings.model.path).resolve())})
    return settings.model_copy(update=update)
