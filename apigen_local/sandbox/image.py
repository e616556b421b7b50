"""Building the sandbox base image offline, tagged by the hash of its recipe.

The recipe is ``sandbox/Dockerfile`` plus ``sandbox/runner.py``. Its layer has no ``RUN`` step,
so it builds without network on top of a base that already has ``python3``:

1. ``--from-tar FILE``: a ``docker save`` archive brought to an air-gapped site;
2. a Python image already present locally (``python:3.*``), or a base this tool imported earlier;
3. otherwise a Debian rootfs made with ``debootstrap`` from the machine's own apt mirror,
   turned into an image with ``docker import``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, ImageMissingError, SandboxError

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)

IMAGE_REPOSITORY = "apigen-local-sandbox"
BASE_REPOSITORY = "apigen-local-base"
LABEL_RECIPE = "apigen-local.recipe"
DEBOOTSTRAP_PACKAGES = "python3"
RECIPE_FILES = ("Dockerfile", "runner.py")
MIRROR_ENV = "APIGEN_DEBIAN_MIRROR"


def sandbox_dir() -> Path:
    """Where ``Dockerfile`` and ``runner.py`` live: bundled in the wheel, or the repo's ``sandbox/``."""
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "_sandbox", package_dir.parent / "sandbox"):
        if (candidate / "Dockerfile").is_file():
            return candidate
    raise SandboxError("the sandbox recipe (sandbox/Dockerfile) is missing from this installation")


def recipe_hash() -> str:
    """Short content hash of the recipe files; it names the image, so a rebuild is a no-op."""
    digest = hashlib.sha256()
    folder = sandbox_dir()
    for name in RECIPE_FILES:
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def sandbox_image_tag() -> str:
    """The tag the current recipe builds to."""
    return f"{IMAGE_REPOSITORY}:{recipe_hash()}"


def require_sandbox_image(client: docker.DockerClient) -> str:
    """Return the tag of the current sandbox image, or raise :class:`ImageMissingError`."""
    import docker.errors

    tag = sandbox_image_tag()
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound as exc:
        raise ImageMissingError(
            f"the sandbox image {tag} is not built yet: run 'apigen-local sandbox build'"
        ) from exc
    return tag


def build_sandbox_image(
    client: docker.DockerClient,
    *,
    from_tar: str | os.PathLike[str] | None = None,
    mirror: str | None = None,
    suite: str | None = None,
    force: bool = False,
) -> str:
    """Build (or find) the sandbox image for the current recipe and return its tag."""
    import docker.errors

    tag = sandbox_image_tag()
    if not force:
        try:
            client.images.get(tag)
            log.info("sandbox image %s is already built", tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
    if from_tar is not None:
        base = _load_base_from_tar(client, Path(from_tar))
    else:
        base = _find_local_base(client) or _debootstrap_base(client, mirror=mirror, suite=suite)
    log.info("building %s on base %s", tag, base)
    try:
        client.images.build(
            path=str(sandbox_dir()),
            tag=tag,
            buildargs={"BASE": base},
            labels={LABEL_RECIPE: recipe_hash()},
            pull=False,
            rm=True,
            forcerm=True,
            network_mode="none",
        )
    except (docker.errors.BuildError, docker.errors.APIError) as exc:
        raise SandboxError(f"building the sandbox image on {base} failed: {exc}") from exc
    return tag


def _load_base_from_tar(client: docker.DockerClient, archive: Path) -> str:
    """Load a ``docker save`` archive and return the first image it holds."""
    import docker.errors

    if not archive.is_file():
        raise ConfigError(f"image archive not found: {archive}")
    try:
        with open(archive, "rb") as handle:
            images = client.images.load(handle)
    except docker.errors.DockerException as exc:  # APIError or ImageLoadError
        detail = getattr(exc, "explanation", None) or str(exc)
        raise ConfigError(f"{archive} is not a 'docker save' archive: {detail}") from exc
    if not images:
        raise ConfigError(f"{archive} holds no image")
    image = images[0]
    return image.tags[0] if image.tags else image.id


def _find_local_base(client: docker.DockerClient) -> str | None:
    """A Python base already on this machine: our own earlier import first, then ``python:3.*``."""
    tags = [t for image in client.images.list() for t in image.tags]
    ours = sorted(t for t in tags if t.startswith(BASE_REPOSITORY + ":"))
    official = sorted((t for t in tags if re.fullmatch(r"python:3[.\d]*(-slim)?(-\w+)?", t)), reverse=True)
    for candidate in ours + official:
        log.info("using local base image %s", candidate)
        return candidate
    return None


def apt_mirror_and_suite() -> tuple[str, str]:
    """The Debian mirror and release this machine's apt already uses."""
    suite = _os_codename()
    texts = [
        path.read_text(errors="replace")
        for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
        if path.is_file() and path.suffix in {".list", ".sources", ""}
    ]
    mirror = mirror_from_sources(texts, suite)
    if mirror is None:
        raise ConfigError(
            f"no Debian mirror for '{suite}' found in /etc/apt: pass --mirror URL or set {MIRROR_ENV}"
        )
    return mirror, suite


def mirror_from_sources(texts: list[str], suite: str) -> str | None:
    """The first mirror serving ``suite`` in apt source files (deb822 or one-line format)."""
    for text in texts:
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.MULTILINE)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.MULTILINE)
            if uris and suites and suite in suites.group(1).split():
                return uris.group(1)
        for line in text.splitlines():
            match = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if match and match.group(2) == suite:
                return match.group(1)
    return None


def _os_codename() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return "bookworm"
    match = re.search(r"^VERSION_CODENAME=(\w+)", text, re.MULTILINE)
    return match.group(1) if match else "bookworm"


def _debootstrap_base(client: docker.DockerClient, *, mirror: str | None, suite: str | None) -> str:
    """Make a minimal Debian rootfs with python3 and import it as ``apigen-local-base:SUITE``."""
    if shutil.which("debootstrap") is None:
        raise SandboxError(
            "no local Python base image and no debootstrap: run 'apt-get install -y debootstrap', "
            "or pass --from-tar FILE with a 'docker save' archive of a Python image"
        )
    if os.geteuid() != 0:
        raise SandboxError("debootstrap needs root: run 'sudo apigen-local sandbox build'")
    mirror = mirror or os.environ.get(MIRROR_ENV)
    if mirror is None or suite is None:
        found_mirror, found_suite = apt_mirror_and_suite()
        mirror, suite = mirror or found_mirror, suite or found_suite
    base_tag = f"{BASE_REPOSITORY}:{suite}"
    with tempfile.TemporaryDirectory(prefix="apigen-rootfs-") as workdir:
        rootfs = Path(workdir) / "rootfs"
        command = [
            "debootstrap", "--variant=minbase", f"--include={DEBOOTSTRAP_PACKAGES}",
            suite, str(rootfs), mirror,
        ]
        log.info("running %s", " ".join(command))
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
            raise SandboxError(f"debootstrap of {suite} from {mirror} failed: {' '.join(tail)}")
        _slim_rootfs(rootfs)
        archive = Path(workdir) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
        repository, tag = base_tag.split(":")
        client.api.import_image_from_file(str(archive), repository=repository, tag=tag)
    return base_tag


def _slim_rootfs(rootfs: Path) -> None:
    """Drop caches and docs the sandbox never needs."""
    for relative in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
        target = rootfs / relative
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
