"""The exceptions a user can cause. Each carries one clear sentence saying what to do."""

from __future__ import annotations

import errno


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


def os_error_line(exc: OSError, doing: str = "") -> str:
    """One line for an ``OSError`` the environment caused, naming the file and what to do; ``doing``
    (such as "write") says what failed. A full disk is said as such."""
    name = exc.filename if exc.filename is not None else "a file"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"the disk holding {name} is full: free some space, then run the same command again "
                "(a run resumes where it stopped)")
    action = f"cannot {doing} {name}" if doing else f"cannot use {name}"
    hint = {errno.EACCES: "check its permissions, or choose a folder of your own",
            errno.EPERM: "check its permissions, or choose a folder of your own",
            errno.EROFS: "the disk is read-only: choose a folder on a writable disk",
            errno.ENOENT: "it does not exist"}.get(exc.errno or 0)
    return f"{action}: {exc.strerror or type(exc).__name__}" + (f" ({hint})" if hint else "")
