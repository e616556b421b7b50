"""Connecting to the Docker engine, with one clear sentence when that is impossible."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

from ..errors import DockerUnavailableError

if TYPE_CHECKING:
    import docker

START_HINT = "start it with 'dockerd --bridge=none --iptables=false &' (or 'systemctl start docker')"


def _diagnose(exc: Exception) -> str:
    """Turn a failed connection into what the user should run."""
    host = os.environ.get("DOCKER_HOST", "")
    text = str(exc)
    if "Permission denied" in text or "PermissionError" in text:
        return "no permission to use the Docker socket: run as root or add your user to the 'docker' group"
    if not host and shutil.which("dockerd") is None:
        return "the Docker engine is not installed: run 'apt-get install -y docker.io', then " + START_HINT
    where = host or "/var/run/docker.sock"
    return f"the Docker daemon is not running (nothing answers at {where}): {START_HINT}"


def connect(timeout: int = 120) -> docker.DockerClient:
    """Return a client for the engine named by the environment (``DOCKER_HOST`` or the local socket).

    Raises :class:`DockerUnavailableError` when the engine cannot be reached.
    """
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (DockerException, OSError) as exc:
        raise DockerUnavailableError(_diagnose(exc)) from exc
    return client


def engine_lost(exc: Exception | None = None) -> DockerUnavailableError:
    """The error for an engine that stopped answering in the middle of a run."""
    return DockerUnavailableError(
        f"lost the Docker engine during the run: {_diagnose(exc or ConnectionError())}; "
        "then rerun the same command to resume"
    )
