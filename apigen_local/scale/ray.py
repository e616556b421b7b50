"""Generate and verify on a Ray cluster: one actor per worker owns a model and a sandbox; the driver writes.

The driver hands out small batches of rows to whichever worker is free (at most ``DEPTH`` calls
queued per worker, so a slow node takes fewer batches). For ``generate`` a worker generates and
format-checks a batch (:meth:`Pipeline.generate_rows`); the driver deduplicates and grounds the
returned rows in index order (:meth:`Pipeline.admit`, so the same duplicates are rejected whatever
order workers finish in) and hands them out again to be executed and judged. For ``verify`` the
driver reads and format-checks the rows itself and the workers execute and judge them. Either
way the driver appends the finished batches to the run files in order and is their only writer.

When a worker process or its node dies, its unfinished calls go to the other workers; Ray
restarts the actor where there is room and it rejoins when it answers. Rows are deterministic per
index, so a batch that runs again yields the same rows, and nothing is written twice. A killed
driver resumes from the run files like a local run.

The model reaches the workers either at a path that exists on every node (the default), or, with
``ship_model``, once through Ray's object store: each node writes it to a cache folder
(``$APIGEN_RAY_MODEL_CACHE``, default ``~/.cache/apigen-local/ray-models``) and checks its sha256.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ApigenError
from ..model.files import file_sha256, find_model
from ..run.config import GenerationConfig
from ..run.labels import load_for_model as load_label_report
from ..run.pipeline import (
    DatasetResult,
    Deduplicator,
    Pipeline,
    build_generator,
    build_sampler,
    goes_to_execution,
    judge_calibration,
    previous_wall_seconds,
    write_stats,
)
from ..types import Record

if TYPE_CHECKING:
    from ..run.batch_runner import ProgressReporter
    from ..run.files import RunFiles

log = logging.getLogger(__name__)

DEPTH = 2  # calls queued per worker: one running, one ready to start
WINDOW = 4  # batches per worker that may be out before the oldest unwritten one is written
CACHE_ENV = "APIGEN_RAY_MODEL_CACHE"
PING_RETRIES = 60


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


def _model_on_node(model: str | ShippedModel | None) -> str | None:
    return str(model.local_path()) if isinstance(model, ShippedModel) else model


# --------------------------------------------------------------------------- the workers


def _cleanup_node() -> None:
    """Remove sandbox containers that ended processes (e.g. a killed worker) left on this node."""
    try:
        from ..sandbox.engine import connect
        from ..sandbox.executor import cleanup_leftovers

        cleanup_leftovers(connect())
    except Exception as exc:  # best effort: the run goes on without it
        log.warning("could not clean up leftover sandbox containers on %s: %s", socket.gethostname(), exc)


class _Worker:
    """What both workers share: a sandbox, an optional model and judge, and a non-writing BatchRunner."""

    def _open(self, library: str, *, lenient: bool, model_path: str | None, model: dict[str, Any],
              sandbox: dict[str, Any] | None, judge: dict[str, Any] | None, seed: int,
              calls_per_container: int, runnable: Callable[[Record], bool]) -> None:
        from ..checks.semantic import SemanticChecker
        from ..model.local import LocalModel
        from ..run.batch_runner import BatchRunner
        from ..sandbox.executor import SandboxExecutor
        from ..tools import load_library

        _cleanup_node()
        self.library = load_library(library, strict=not lenient)
        self.model = LocalModel(model_path, **model).__enter__() if model_path else None
        self.sandbox = (SandboxExecutor(self.library.path, **sandbox).__enter__()
                        if sandbox is not None else None)
        checker = (SemanticChecker(self.model, library=self.library.tools, **judge)
                   if judge is not None and self.model is not None else None)
        self.runner = BatchRunner(self.sandbox, self.library.tools, None, runnable=runnable,
                                  judge=checker, seed=seed, calls_per_container=calls_per_container,
                                  progress=None)

    def ready(self) -> str:
        """Answers once the worker is up: its host name."""
        return socket.gethostname()

    def finish(self, rows: list[str]) -> list[str]:
        """Execute the runnable rows in the sandbox and judge them, as the local run does."""
        records = [Record.model_validate_json(row) for row in rows]
        return [record.model_dump_json() for record in self.runner.check(records)]

    def close(self) -> None:
        """Remove this worker's sandbox containers (and those of dead workers here); free the model."""
        if self.sandbox is not None:
            self.sandbox.close()
        if self.model is not None:
            self.model.close()
        _cleanup_node()


class RowWorker(_Worker):
    """A ``generate`` worker: loads the model once and owns a sandbox."""

    def __init__(self, config_json: str, model: str | ShippedModel) -> None:
        from ..generation.sampling import load_seed_examples

        cfg = GenerationConfig.model_validate_json(config_json)
        self._open(cfg.library, lenient=cfg.lenient, model_path=_model_on_node(model),
                   model={"n_ctx": cfg.n_ctx, "n_threads": cfg.n_threads,
                          "n_gpu_layers": cfg.n_gpu_layers, "seed": cfg.seed,
                          "constraint_backend": cfg.constraint_backend,
                          "reencode_weights": cfg.reencode_weights, "kv_keys": cfg.kv_keys},
                   sandbox={"max_containers": cfg.max_containers, "call_timeout": cfg.call_timeout},
                   judge={"design": cfg.judge, "result_chars": cfg.result_chars, "fit_margin": cfg.fit_margin}
                   if cfg.semantic else None,
                   seed=cfg.seed, calls_per_container=cfg.calls_per_container, runnable=goes_to_execution)
        assert self.model is not None
        examples = load_seed_examples(cfg.seed_file) if cfg.seed_file else []
        self.sampler = build_sampler(cfg, self.library, examples)
        self.generator = build_generator(cfg, self.model)
        self.pipeline = Pipeline(cfg, model=self.model)

    def generate(self, indices: list[int]) -> list[str]:
        """Generate and format-check rows ``indices``; dedup and grounding are the driver's."""
        assert self.model is not None
        rows = self.pipeline.generate_rows(indices, self.sampler, self.generator, self.model.name)
        return [row.model_dump_json() for row in rows]


class VerifyWorker(_Worker):
    """A ``verify`` worker: owns a sandbox and, for the semantic stage, a model."""

    def __init__(self, settings_json: str, model: str | ShippedModel | None) -> None:
        from ..run.verify import goes_to_execution as verify_runnable

        s = json.loads(settings_json)
        self._open(s["library"], lenient=s["lenient"], model_path=_model_on_node(model) if s["semantic"] else None,
                   model={"n_ctx": s["n_ctx"], "n_threads": s["n_threads"], "n_gpu_layers": s["n_gpu_layers"]},
                   sandbox={"max_containers": s["max_containers"], "call_timeout": s["call_timeout"]}
                   if s["execution"] else None,
                   judge={"result_chars": s["result_chars"], "fit_margin": None, **s.get("judge", {})}
                   if s["semantic"] else None,  # as a local verify: no function-fit check
                   seed=0, calls_per_container=s["calls_per_container"], runnable=verify_runnable)


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
    method: str = field(compare=False)
    payload: list[Any] = field(compare=False)


class _Workers:
    """The run's actors. Each call goes to the least busy live worker; a lost worker's calls go
    back in the queue for the others, and the worker rejoins when its restarted actor answers."""

    def __init__(self, actor_class: Any, n: int, *args: Any) -> None:
        import ray

        actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(actor_class)
        self.actors = [actor.options(scheduling_strategy="SPREAD").remote(*args) for _ in range(n)]
        self.names = [f"w{i}" for i in range(n)]
        self.rows: Counter[str] = Counter({name: 0 for name in self.names})
        self.up: set[int] = set()
        self.ever_up: set[int] = set()
        self.busy = [0] * n
        self.queue: list[_Call] = []
        self.calls: dict[Any, tuple[int, _Call]] = {}
        self.pings: dict[Any, int] = {a.ready.remote(): i for i, a in enumerate(self.actors)}
        self.ping_failures = [0] * n
        self._seq = itertools.count()

    def add(self, batch: int, method: str, payload: list[Any]) -> None:
        heapq.heappush(self.queue, _Call(batch, next(self._seq), method, payload))

    def _dispatch(self) -> None:
        while self.queue:
            idle = [i for i in self.up if self.busy[i] < DEPTH]
            if not idle:
                return
            i = min(idle, key=lambda w: (self.busy[w], w))
            call = heapq.heappop(self.queue)
            self.calls[getattr(self.actors[i], call.method).remote(call.payload)] = (i, call)
            self.busy[i] += 1

    def _lose(self, i: int, exc: Exception) -> None:
        if i in self.up:
            log.warning("Ray worker %s was lost (%s); its rows run again on the others",
                        self.names[i], str(exc).splitlines()[0])
            self.up.discard(i)
            self.pings[self.actors[i].ready.remote()] = i

    def result(self) -> tuple[_Call, str, Any]:
        """Wait until a call succeeds; return it, the name of the worker that ran it and its result."""
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
                i = self.pings.pop(ref)
                try:
                    ray.get(ref)
                except lost as exc:
                    if (isinstance(exc, RayActorError) and exc.actor_init_failed) or i not in self.ever_up:
                        raise ApigenError(f"Ray worker {self.names[i]} could not start: {exc}") from exc
                    self.ping_failures[i] += 1
                    if self.ping_failures[i] < PING_RETRIES:
                        time.sleep(1)
                        self.pings[self.actors[i].ready.remote()] = i
                    continue
                self.up.add(i)
                self.ever_up.add(i)
                continue
            i, call = self.calls.pop(ref)
            self.busy[i] -= 1
            try:
                value = ray.get(ref)
            except lost as exc:
                self._lose(i, exc)
                heapq.heappush(self.queue, call)
                continue
            return call, self.names[i], value

    def count(self, name: str, rows: int, progress: ProgressReporter | None) -> None:
        """Add ``rows`` to worker ``name``'s tally and show the tallies on a bar that can."""
        self.rows[name] += rows
        show = getattr(progress, "workers", None)
        if callable(show):
            show(dict(self.rows))

    def close(self) -> None:
        """Close the live workers (their sandboxes), then end every actor."""
        import ray

        closing = [self.actors[i].close.remote() for i in self.up]
        if closing:
            ray.wait(closing, num_returns=len(closing), timeout=60)
        for actor in self.actors:
            ray.kill(actor)


def _default_workers() -> int:
    import ray

    return max(1, sum(1 for node in ray.nodes() if node["Alive"] and node["Resources"].get("CPU")))


def _absolute(path: str | None) -> str | None:
    """A file path that means the same on every node; a module name stays as it is."""
    return str(Path(path).resolve()) if path is not None and Path(path).is_file() else path


def _write_in_order(batches: Iterable[tuple[int, list[Record]]], files: RunFiles,
                    progress: ProgressReporter | None) -> Iterator[Record]:
    for _, rows in batches:
        for record in rows:
            files.append(record)
            if progress is not None:
                progress.advance(record)
            yield record


def run_on_ray(pipeline: Pipeline, address: str, workers: int | None = None, *,
               ship_model: bool = False) -> DatasetResult:
    """Run ``pipeline``'s configuration on Ray; the driver is the only writer of the run files."""
    connect(address)
    cfg = pipeline.config
    files = pipeline.files
    started = time.perf_counter()
    model_path = find_model(cfg.model).resolve()
    done = files.open(cfg.identity())
    previous_wall = previous_wall_seconds(files) if done else 0.0
    done_ids = {r.id for r in done}
    pending = [i for i in range(cfg.rows) if i not in done_ids]
    records = list(done)
    if pipeline.progress is not None:
        pipeline.progress.start(cfg.rows, len(done))
    dedup = Deduplicator()
    for record in sorted(done, key=lambda r: r.id):
        if goes_to_execution(record) and record.query is not None:
            dedup.check(record.id, record.query)
    size = cfg.batch_rows
    batches = [pending[s:s + size] for s in range(0, len(pending), size)]
    pool: _Workers | None = None
    try:
        if batches:
            model = ShippedModel.put(model_path) if ship_model else str(model_path)
            on_node = cfg.model_copy(update={"library": _absolute(cfg.library), "seed_file": _absolute(cfg.seed_file)})
            pool = _Workers(RowWorker, workers or _default_workers(), on_node.model_dump_json(), model)
            window = WINDOW * len(pool.actors)
            generated: dict[int, list[str]] = {}
            finished: dict[int, list[Record]] = {}
            queued = admitted = written = 0
            while written < len(batches):
                while queued < len(batches) and queued < written + window:
                    pool.add(queued, "generate", batches[queued])
                    queued += 1
                call, worker, lines = pool.result()
                if call.method == "generate":
                    pool.count(worker, len(lines), pipeline.progress)
                    generated[call.batch] = lines
                    while admitted in generated:  # dedup and grounding see the rows in index order
                        rows = [pipeline.admit(Record.model_validate_json(line), dedup)
                                for line in generated.pop(admitted)]
                        pool.add(admitted, "finish", [r.model_dump_json() for r in rows])
                        admitted += 1
                    continue
                finished[call.batch] = [Record.model_validate_json(line) for line in lines]
                ready = []
                while written in finished:
                    ready.append((written, finished.pop(written)))
                    written += 1
                records.extend(_write_in_order(ready, files, pipeline.progress))
    finally:
        if pool is not None:
            pool.close()
        files.close()
        stats = write_stats(files, records, previous_wall + time.perf_counter() - started,
                            rows_per_worker=dict(pool.rows) if pool is not None else None,
                            calibration=judge_calibration(model_path) if cfg.semantic else None,
                            labelled=load_label_report(model_path))
    return DatasetResult(out_dir=files.dir, dataset_path=files.dataset, records_path=files.records,
                         rejected_path=files.rejected, stats_path=files.stats, resumed_rows=len(done),
                         stats=stats)


def verify_on_ray(address: str, workers: int | None, batches: Iterable[list[Record]], settings: dict[str, Any],
                  files: RunFiles, progress: ProgressReporter | None, records: list[Record], *,
                  model_path: Path | None = None, ship_model: bool = False) -> dict[str, int]:
    """Execute and judge the format-checked ``batches`` on Ray workers and write them in order.

    ``settings`` are the worker's (see :class:`VerifyWorker`). The records written are appended
    to ``records``; returns the rows each worker did. The driver is the only writer of the run files.
    """
    connect(address)
    model: str | ShippedModel | None = None
    if settings["semantic"] and model_path is not None:
        model = ShippedModel.put(model_path) if ship_model else str(model_path.resolve())
    settings = {**settings, "library": _absolute(settings["library"])}
    pool = _Workers(VerifyWorker, workers or _default_workers(), json.dumps(settings), model)
    try:
        source = iter(batches)
        window = WINDOW * len(pool.actors)
        finished: dict[int, list[Record]] = {}
        queued = written = 0
        exhausted = False
        while True:
            while not exhausted and queued < written + window:
                batch = next(source, None)
                if batch is None:
                    exhausted = True
                    break
                pool.add(queued, "finish", [r.model_dump_json() for r in batch])
                queued += 1
            if exhausted and written == queued:
                break
            call, worker, lines = pool.result()
            pool.count(worker, len(lines), progress)
            finished[call.batch] = [Record.model_validate_json(line) for line in lines]
            ready = []
            while written in finished:
                ready.append((written, finished.pop(written)))
                written += 1
            records.extend(_write_in_order(ready, files, progress))
    finally:
        pool.close()
    return dict(pool.rows)
