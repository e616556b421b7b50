"""apigen-local: verifiable function-calling datasets from a local GGUF model, fully offline.

The public API is what ``__all__`` lists. The heavy parts (llama.cpp, Docker, transformers) are
imported on first use, so ``import apigen_local`` and the CLI start fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import (
    ApigenError,
    ConfigError,
    ConstraintError,
    DockerUnavailableError,
    ImageMissingError,
    LibraryError,
    ModelError,
    SandboxError,
)

if TYPE_CHECKING:
    from .model.local import LocalModel
    from .run.backends.local import InProcess
    from .run.backends.memory import InMemory
    from .run.backends.ray import RayCluster
    from .run.config import GenerationConfig
    from .run.generate import generate_dataset
    from .run.job import DatasetResult
    from .run.verify import verify_dataset
    from .sandbox.executor import SandboxExecutor
    from .tools import load_library

__version__ = "0.1.0"

_LAZY = {
    "GenerationConfig": ".run.config",
    "InMemory": ".run.backends.memory",
    "InProcess": ".run.backends.local",
    "RayCluster": ".run.backends.ray",
    "SandboxExecutor": ".sandbox.executor",
    "LocalModel": ".model.local",
    "DatasetResult": ".run.job",
    "generate_dataset": ".run.generate",
    "load_library": ".tools",
    "verify_dataset": ".run.verify",
}

__all__ = [
    "ApigenError",
    "ConfigError",
    "ConstraintError",
    "DatasetResult",
    "DockerUnavailableError",
    "GenerationConfig",
    "ImageMissingError",
    "InMemory",
    "InProcess",
    "LibraryError",
    "LocalModel",
    "ModelError",
    "RayCluster",
    "SandboxError",
    "SandboxExecutor",
    "__version__",
    "generate_dataset",
    "load_library",
    "verify_dataset",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'apigen_local' has no attribute {name!r}")
