"""An air-gapped bundle: everything a machine with no network needs to install and run the tool.

``create_bundle`` runs on a connected machine of the same OS, architecture and Python version.
The bundle holds wheels (the compiled llama-cpp-python one included), the sandbox base image as a
``docker save`` archive, the default model and any extra GGUFs, the examples, optionally the Debian
packages of Docker and debootstrap, ``install.sh`` and ``MANIFEST.json`` (sha256 and size of each file).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel

from .errors import ConfigError, SandboxError
from .model.files import DEFAULT_MODEL, check_gguf, fetch_default_model, file_sha256

MANIFEST_NAME = "MANIFEST.json"
INSTALL_NAME = "install.sh"
IMAGE_ARCHIVE = "image/sandbox-base.tar"
DEB_PACKAGES = ("docker.io", "debootstrap")


class ManifestFile(BaseModel):
    """One file of the bundle, as ``install.sh`` checks it."""

    path: str
    size: int
    sha256: str


class Manifest(BaseModel):
    """What the bundle holds and which target it was made for."""

    package_version: str
    python: str  # major.minor the wheels were made for
    machine: str
    files: list[ManifestFile]


def project_root() -> Path:
    """The source checkout this package runs from (its wheel is built from there)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file() or not (root / "scripts" / "constraints.txt").is_file():
        raise ConfigError("'bundle create' runs from a source checkout (pyproject.toml and scripts/ not found)")
    return root


def create_bundle(out_dir: str | os.PathLike[str], *, models: list[str] | None = None,
                  with_debs: bool = False) -> Manifest:
    """Fill ``out_dir`` with the bundle and return its manifest."""
    root = project_root()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    extra = [check_gguf(path) for path in models or []]
    _build_wheels(root, out / "wheels")
    _save_base_image(out / IMAGE_ARCHIVE)
    _copy_models(extra, out / "models")
    _replace_dir(root / "examples", out / "examples")
    if with_debs:
        _download_debs(out / "debs")
    shutil.copyfile(Path(__file__).with_name("bundle_install.sh"), out / INSTALL_NAME)
    (out / INSTALL_NAME).chmod(0o755)
    return write_manifest(out)


def write_manifest(out: Path) -> Manifest:
    """Hash every file of the bundle (but the manifest itself) into ``MANIFEST.json``."""
    from . import __version__

    files = [
        ManifestFile(path=path.relative_to(out).as_posix(), size=path.stat().st_size, sha256=file_sha256(path))
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.name != MANIFEST_NAME
    ]
    manifest = Manifest(package_version=__version__, python=f"{sys.version_info[0]}.{sys.version_info[1]}",
                        machine=platform.machine(), files=files)
    (out / MANIFEST_NAME).write_text(manifest.model_dump_json(indent=1) + "\n")
    return manifest


def bundle_size(manifest: Manifest) -> int:
    """Total bytes of the files the manifest lists."""
    return sum(entry.size for entry in manifest.files)


def _replace_dir(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:]
        raise ConfigError(f"{what} failed: {' '.join(tail) or f'exit code {result.returncode}'}")


def _build_wheels(root: Path, wheels: Path) -> None:
    """Wheels of the package and its runtime dependencies at the pinned versions.

    ``pip wheel`` takes built wheels (llama-cpp-python's) from pip's cache, so on a machine where
    the set-up ran nothing compiles again.
    """
    if wheels.exists():
        shutil.rmtree(wheels)
    wheels.mkdir(parents=True)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
          "-c", str(root / "scripts" / "constraints.txt"), "--wheel-dir", str(wheels), str(root)],
         "pip wheel (building the bundle's wheels)")
    sdists = [path.name for path in wheels.iterdir() if not path.name.endswith(".whl")]
    if sdists:
        raise ConfigError(f"pip left non-wheel files in the bundle: {', '.join(sdists)}")


def _save_base_image(archive: Path) -> None:
    """``docker save`` the Python base the sandbox image is built on (built first if needed)."""
    import docker.errors

    from .sandbox.engine import connect
    from .sandbox.image import _find_local_base, build_sandbox_image

    client = connect()
    base = _find_local_base(client)
    if base is None:
        build_sandbox_image(client)
        base = _find_local_base(client)
    if base is None:
        raise SandboxError("no sandbox base image to put in the bundle: run 'apigen-local sandbox build' first")
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_suffix(".partial")
    try:
        with open(partial, "wb") as sink:
            for chunk in client.images.get(base).save(named=True):
                sink.write(chunk)
    except docker.errors.DockerException as exc:
        raise SandboxError(f"docker save of {base} failed: {exc}") from exc
    os.replace(partial, archive)


def _copy_models(extra: list[Path], target: Path) -> None:
    """The default model (fetched if absent) and each extra GGUF."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    default = fetch_default_model()  # the user's cache; linked from a checkout's models/, else downloaded
    names = {DEFAULT_MODEL.name}
    shutil.copyfile(default, target / DEFAULT_MODEL.name)
    for path in extra:
        if path.name in names:
            raise ConfigError(f"two models named {path.name}: rename one")
        names.add(path.name)
        shutil.copyfile(path, target / path.name)


def _download_debs(target: Path) -> None:
    """``apt-get download`` Docker's engine, debootstrap and every package they depend on."""
    if shutil.which("apt-get") is None:
        raise ConfigError("--with-debs needs apt-get (a Debian or Ubuntu machine)")
    result = subprocess.run(
        ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
         "--no-breaks", "--no-replaces", "--no-enhances", *DEB_PACKAGES],
        capture_output=True, text=True, check=False,
    )
    names = sorted({line.strip() for line in result.stdout.splitlines() if line and not line[0].isspace()
                    and not line.startswith("<")})
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    missing = []
    for name in names:  # virtual packages have no candidate: skipped, their providers are listed too
        fetched = subprocess.run(["apt-get", "download", "-q", name], cwd=target, capture_output=True, text=True)
        if fetched.returncode != 0:
            missing.append(name)
    if any(name in missing for name in DEB_PACKAGES):
        raise ConfigError(f"apt-get download failed for {', '.join(missing)}: run 'apt-get update' first")
