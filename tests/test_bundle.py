"""Air-gapped bundle: made here, installed and run inside a network namespace with only loopback.

The Docker daemon stays outside the namespace; the CLI reaches it through /var/run/docker.sock.
Nothing here sends traffic anywhere: the namespace has no route, and no test probes one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from apigen_local.bundle import MANIFEST_NAME, create_bundle

NO_NETWORK = ["unshare", "--net"]


def _offline(command: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NO_NETWORK, "bash", "-c", command], cwd=cwd, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a network namespace")
    out = tmp_path_factory.mktemp("bundle")
    create_bundle(out)
    return out


def _tree_state(root: Path) -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in root.rglob("*") if path.is_file() and "__pycache__" not in path.parts}


@pytest.mark.docker
@pytest.mark.real_model
def test_bundle_installs_and_generates_without_network(bundle: Path, tmp_path: Path) -> None:
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    names = {entry["path"] for entry in manifest["files"]}
    assert any(name.startswith("wheels/llama_cpp_python-") and name.endswith(".whl") for name in names)
    assert {"image/sandbox-base.tar", "models/SmolLM2-135M-Instruct.Q4_1.gguf", "install.sh"} <= names
    assert not any(name.endswith((".tar.gz", ".zip")) for name in names if name.startswith("wheels/"))

    links = _offline("ip -o link")
    assert links.returncode == 0, links.stderr
    interfaces = [line.split(":")[1].strip() for line in links.stdout.splitlines()]
    assert interfaces == ["lo"]

    prefix = tmp_path / "site"
    cache = f"APIGEN_HOME={tmp_path / 'cache'}"  # the user's cache, where install.sh links the models
    first = _offline(f"{cache} {bundle}/install.sh --prefix {prefix}")
    assert first.returncode == 0, first.stdout + first.stderr
    demo = first.stdout.strip().splitlines()[-1]
    assert demo.startswith(f"cd '{prefix}' && venv/bin/apigen-local generate")

    before = _tree_state(prefix)
    second = _offline(f"{cache} {bundle}/install.sh --prefix {prefix}")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "up to date" in second.stdout
    assert _tree_state(prefix) == before
    anywhere = _offline(f"{cache} {prefix}/venv/bin/apigen-local model find", cwd=tmp_path)
    assert anywhere.stdout.strip() == str(tmp_path / "cache" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"), \
        anywhere.stderr

    run = _offline("venv/bin/apigen-local model find && venv/bin/apigen-local generate --library examples/library.py "
                   "--seed-file examples/seed.jsonl --rows 2 --batch-rows 2 --out out/t --quiet "
                   # grounding off: two rows of the 135M model must reach the sandbox, which grounding
                   # would allow only by luck (it rejects most of the values this model writes)
                   "--no-grounding", cwd=prefix)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[0] == "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    stats = json.loads((prefix / "out" / "t" / "stats.json").read_text())
    assert stats["rows"] == 2
    assert stats["stages"]["execution"]["total"] > 0  # calls ran in the sandbox


def _linked_copy(bundle: Path, target: Path) -> Path:
    """A copy of the bundle whose files are hard links (cheap); replace a file before changing it."""
    subprocess.run(["cp", "-al", str(bundle), str(target)], check=True)
    return target


@pytest.mark.docker
@pytest.mark.real_model
def test_install_refuses_a_corrupted_wheel(bundle: Path, tmp_path: Path) -> None:
    copy = _linked_copy(bundle, tmp_path / "bundle")
    wheel = sorted((copy / "wheels").glob("pydantic-*.whl"))[0]
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    wheel.unlink()
    wheel.write_bytes(bytes(data))
    prefix = tmp_path / "site"
    result = _offline(f"{copy}/install.sh --prefix {prefix}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"install.sh: wheels/{wheel.name} is damaged (checksum does not match MANIFEST.json)"
    ]
    assert not prefix.exists()


@pytest.mark.docker
@pytest.mark.real_model
def test_install_refuses_a_missing_file(bundle: Path, tmp_path: Path) -> None:
    copy = _linked_copy(bundle, tmp_path / "bundle")
    (copy / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").unlink()
    prefix = tmp_path / "site"
    result = _offline(f"{copy}/install.sh --prefix {prefix}")
    assert result.returncode != 0
    assert result.stderr.strip() == "install.sh: models/SmolLM2-135M-Instruct.Q4_1.gguf is missing from the bundle"
    assert not prefix.exists()


def test_bundle_create_rejects_a_bad_model_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from apigen_local.cli import main

    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_text("not a model")
    assert main(["bundle", "create", str(tmp_path / "out"), "--model", str(not_gguf)]) == 2
    assert f"not a GGUF file (bad magic bytes): {not_gguf}" in capsys.readouterr().err
    assert not (tmp_path / "out" / "wheels").exists()
