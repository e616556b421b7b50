"""Shared fixtures: the tiny GGUF, one loaded model, a Docker client and the sandbox image.

These fixtures use the real things: `make test` (scripts/setup.sh) installs and starts them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_LIBRARY = REPO / "examples" / "library.py"
EXAMPLE_SEEDS = REPO / "examples" / "seed.jsonl"


@pytest.fixture(scope="session")
def tiny_model_path() -> Path:
    """The tiny test GGUF, built if it is missing."""
    from apigen_local.model.tiny import TINY_MODEL_NAME, build_tiny_model

    return build_tiny_model(REPO / "models" / TINY_MODEL_NAME)


@pytest.fixture(scope="session")
def local_model(tiny_model_path: Path) -> Iterator[LocalModel]:  # noqa: F821
    """One LocalModel on the tiny GGUF for the whole session (loading is the slow part), with the
    constraint backend a run uses by default (``GenerationConfig.constraint_backend``)."""
    from apigen_local.model.local import LocalModel
    from apigen_local.run.config import GenerationConfig

    backend = GenerationConfig.model_fields["constraint_backend"].default
    with LocalModel(tiny_model_path, n_ctx=8192, seed=7, constraint_backend=backend) as model:
        yield model


@pytest.fixture(scope="session")
def docker_client():
    """A client for the running engine; a missing engine is a test failure, not a skip."""
    from apigen_local.sandbox.engine import connect

    return connect()


@pytest.fixture(scope="session")
def sandbox_image(docker_client) -> str:
    """Tag of the sandbox base image for the current recipe, built if needed."""
    from apigen_local.sandbox.image import build_sandbox_image

    return build_sandbox_image(docker_client)


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Chromium]:  # noqa: F821
    """A real headless Chromium, offline, for the module's page tests."""
    from .browser import Chromium, find_chromium

    executable = find_chromium()
    if executable is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; scripts/setup.sh installs it)")
    chromium = Chromium(executable, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield chromium
    finally:
        chromium.close()


#: fixtures that need a real part, and the marker each implies
_FIXTURE_MARKERS = {"docker_client": "docker", "sandbox_image": "docker", "tiny_model_path": "model",
                    "local_model": "model", "default_model_path": "real_model", "default_model": "real_model",
                    "cluster": "ray", "browser": "browser"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the real parts its fixtures bring, so that ``-m "not docker and not model
    and not real_model and not ray and not browser"`` selects only tests that need none of them."""
    for item in items:
        for fixture, marker in _FIXTURE_MARKERS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(getattr(pytest.mark, marker))


def empty_gguf(path: Path, padding: int = 0) -> Path:
    """A GGUF header with no tensors and no metadata (plus ``padding`` zero bytes): a file every
    check of the model path accepts, for tests that never load the model."""
    import struct

    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0) + bytes(padding))
    return path
