"""apigen-local: verifiable function-calling datasets from a local GGUF model, fully offline."""

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

__version__ = "0.1.0"

__all__ = [
    "ApigenError",
    "ConfigError",
    "ConstraintError",
    "DockerUnavailableError",
    "ImageMissingError",
    "LibraryError",
    "ModelError",
    "SandboxError",
    "__version__",
]
