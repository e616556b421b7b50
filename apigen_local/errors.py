"""The exceptions a user can cause. Each carries one clear sentence saying what to do."""

from __future__ import annotations


class ApigenError(Exception):
    """Base of every error caused by input or environment rather than by a bug.

    The CLI prints the message on one line and exits with code 2.
    """


class ConfigError(ApigenError):
    """A setting, path or option given by the user is not usable."""


class ModelError(ApigenError):
    """The GGUF model is missing, unreadable or cannot be loaded."""


class ConstraintError(ApigenError):
    """Constrained decoding is not active, so output would not be guaranteed well-formed."""


class LibraryError(ApigenError):
    """The function library cannot be imported or described as tools."""


class SandboxError(ApigenError):
    """The Docker engine or the sandbox image is not available."""


class DockerUnavailableError(SandboxError):
    """The Docker engine is not installed, not running, or not reachable."""


class ImageMissingError(SandboxError):
    """The sandbox image has not been built on this machine."""
