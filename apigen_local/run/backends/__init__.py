"""Where a job's batches run: in this process (``local.py``) or on a Ray cluster (``ray.py``),
both through the one loop of ``base.py``."""

from __future__ import annotations

from dataclasses import dataclass

from ...model.local import LocalModel
from ...tools import Library
from ..worker import Worker, WorkerSettings
from .base import ExecutionBackend
from .local import LocalBackend


@dataclass(frozen=True)
class RayTarget:
    """A Ray cluster to run on: ``auto``, ``local`` or ``host:port``, with ``workers`` actors
    (default: one per node with a CPU); ``ship_model`` sends the GGUF through the object store."""

    address: str
    workers: int | None = None
    ship_model: bool = False


def make_backend(settings: WorkerSettings, *, ray: RayTarget | None = None, model: LocalModel | None = None,
                 library: Library | None = None) -> ExecutionBackend:
    """The backend for ``settings``: Ray workers that build their own model and library from
    them, or one worker in this process that uses ``model`` and ``library`` when given."""
    if ray is not None:
        from .ray import RayBackend

        return RayBackend(ray.address, settings, workers=ray.workers, ship_model=ray.ship_model)
    return LocalBackend(Worker(settings, model=model, library=library))
