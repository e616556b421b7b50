"""Finding a GGUF model on disk: ``--model PATH``, ``$APIGEN_MODEL``, or the only ``*.gguf`` in ``models/``."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelError

GGUF_MAGIC = b"GGUF"
MODEL_ENV = "APIGEN_MODEL"
MODELS_DIR_ENV = "APIGEN_MODELS_DIR"
TINY_MODEL_NAME = "tiny-test.gguf"


def default_models_dir() -> Path:
    """The folder searched for models: ``$APIGEN_MODELS_DIR`` or ``./models``."""
    return Path(os.environ.get(MODELS_DIR_ENV, "models"))


def check_gguf(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` if it is a readable GGUF file, else raise :class:`ModelError`."""
    model_path = Path(path).expanduser()
    if not model_path.exists():
        raise ModelError(f"model file not found: {model_path}")
    if not model_path.is_file():
        raise ModelError(f"model path is not a file: {model_path}")
    try:
        with open(model_path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelError(f"cannot read model file {model_path}: {exc.strerror}") from exc
    if magic != GGUF_MAGIC:
        raise ModelError(f"not a GGUF file (bad magic bytes): {model_path}")
    return model_path


def find_model(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Resolve which model to use.

    In order: ``explicit``, ``$APIGEN_MODEL``, the only user GGUF in models/, the tiny test model.
    """
    if explicit:
        return check_gguf(explicit)
    from_env = os.environ.get(MODEL_ENV)
    if from_env:
        return check_gguf(from_env)
    models_dir = default_models_dir()
    found = sorted(models_dir.glob("*.gguf")) if models_dir.is_dir() else []
    user_models = [path for path in found if path.name != TINY_MODEL_NAME]
    if len(user_models) == 1:
        return check_gguf(user_models[0])
    if len(user_models) > 1:
        names = ", ".join(path.name for path in user_models)
        raise ModelError(
            f"several models in {models_dir}/ ({names}): choose one with --model PATH or {MODEL_ENV}"
        )
    if found:
        return check_gguf(found[0])
    raise ModelError(
        f"no model given and no *.gguf in {models_dir}/: pass --model PATH, set "
        f"{MODEL_ENV}, or run 'apigen-local model build-tiny' for the test model"
    )
