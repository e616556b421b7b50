"""The sandbox base image: a real container runs Python; Docker problems read as one clear sentence."""

from __future__ import annotations

import pytest

from apigen_local import cli
from apigen_local.errors import DockerUnavailableError, ImageMissingError
from apigen_local.sandbox.engine import connect
from apigen_local.sandbox.image import (
    build_sandbox_image,
    mirror_from_sources,
    require_sandbox_image,
    sandbox_image_tag,
)

pytestmark = pytest.mark.docker


def test_container_from_the_image_runs_python(docker_client, sandbox_image: str) -> None:
    output = docker_client.containers.run(
        sandbox_image,
        ["python3", "-c", "import os, sys; print(sys.version_info[0], os.getuid())"],
        network_mode="none",
        remove=True,
    )
    major, uid = output.decode().split()
    assert major == "3"
    assert uid == "65534"  # the image runs as nobody, not root


def test_rebuild_is_a_no_op(docker_client, sandbox_image: str) -> None:
    before = docker_client.images.get(sandbox_image).id
    assert build_sandbox_image(docker_client) == sandbox_image == sandbox_image_tag()
    assert docker_client.images.get(sandbox_image).id == before


def test_missing_image_says_what_to_run(docker_client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apigen_local.sandbox.image.recipe_hash", lambda: "0000notbuilt0000")
    with pytest.raises(ImageMissingError, match="apigen-local sandbox build"):
        require_sandbox_image(docker_client)


def test_stopped_daemon_is_one_clear_sentence(monkeypatch: pytest.MonkeyPatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    with pytest.raises(DockerUnavailableError, match=r"daemon is not running.*dockerd"):
        connect(timeout=5)
    assert cli.main(["sandbox", "check"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert err.startswith("error:") and "dockerd" in err


def test_mirror_is_read_from_apt_sources() -> None:
    deb822 = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
    one_line = "deb [arch=amd64] http://other.example/debian bookworm main\n"
    assert mirror_from_sources([deb822], "bookworm") == "http://mirror.example/debian"
    assert mirror_from_sources([one_line], "bookworm") == "http://other.example/debian"
    assert mirror_from_sources([deb822], "trixie") is None


def test_missing_engine_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from apigen_local.sandbox import engine as docker_client

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(docker_client.shutil, "which", lambda name: None)
    message = docker_client._diagnose(FileNotFoundError("No such file or directory"))
    assert "not installed" in message and "apt-get install -y docker.io" in message


def test_base_image_from_a_docker_save_archive(docker_client, sandbox_image: str, tmp_path) -> None:
    from apigen_local.sandbox.image import BASE_REPOSITORY, _find_local_base, _load_base_from_tar

    base = _find_local_base(docker_client)
    assert base is not None and base.startswith((BASE_REPOSITORY, "python:"))
    archive = tmp_path / "base.tar"
    with open(archive, "wb") as handle:
        for chunk in docker_client.images.get(base).save(named=True):
            handle.write(chunk)
    assert _load_base_from_tar(docker_client, archive) == base
    not_an_archive = tmp_path / "junk.tar"
    not_an_archive.write_bytes(b"junk")
    from apigen_local.errors import ConfigError

    with pytest.raises(ConfigError, match="not a 'docker save' archive"):
        _load_base_from_tar(docker_client, not_an_archive)
