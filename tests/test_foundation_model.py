"""The tiny GGUF: deterministic build, real llama.cpp loading, and model discovery rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from apigen_local.errors import ModelError
from apigen_local.model.files import DEFAULT_MODEL, check_gguf, default_models_dir, file_sha256, find_model
from apigen_local.model.tiny import TINY_MODEL_NAME, build_tiny_model

from .conftest import empty_gguf


def test_tiny_model_is_small_and_deterministic(tiny_model_path: Path, tmp_path: Path) -> None:
    again = build_tiny_model(tmp_path / "again.gguf")
    assert tiny_model_path.stat().st_size < 5 * 1024 * 1024
    assert file_sha256(again) == file_sha256(tiny_model_path)


@pytest.mark.model
def test_tiny_model_loads_in_llama_cpp_and_produces_tokens(tiny_model_path: Path) -> None:
    from llama_cpp import Llama

    llm = Llama(model_path=str(tiny_model_path), n_ctx=512, seed=1, verbose=False)
    assert llm.metadata["general.architecture"] == "llama"
    assert "<|im_start|>" in llm.metadata["tokenizer.chat_template"]
    tokens = llm.tokenize(b"The final velocity is 9.8 m/s.", add_bos=False)
    assert llm.detokenize(tokens) == b"The final velocity is 9.8 m/s."
    assert len(tokens) < len("The final velocity is 9.8 m/s.")  # BPE merges are used
    out = llm.create_completion("Hello", max_tokens=12, temperature=0.8)
    assert out["usage"]["completion_tokens"] >= 1
    llm.close()


def test_check_gguf_rejects_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        check_gguf(tmp_path / "absent.gguf")
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ModelError, match="not a GGUF"):
        check_gguf(fake)


def test_find_model_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          tiny_model_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("APIGEN_MODELS_DIR", str(models))
    monkeypatch.delenv("APIGEN_MODEL", raising=False)
    with pytest.raises(ModelError, match="model fetch"):
        find_model()
    tiny = models / TINY_MODEL_NAME
    tiny.write_bytes(tiny_model_path.read_bytes())
    with pytest.raises(ModelError, match="no model given"):
        find_model()  # the random-weight tiny model is never chosen implicitly
    default = models / DEFAULT_MODEL.name
    empty_gguf(default)
    assert find_model() == default
    user = models / "user-7b.Q4_K_M.gguf"
    empty_gguf(user)
    assert find_model() == user  # a user's model wins over the default one
    empty_gguf(models / "other.gguf")
    with pytest.raises(ModelError, match="several models"):
        find_model()
    monkeypatch.setenv("APIGEN_MODEL", str(tiny))
    assert find_model() == tiny
    assert find_model(user) == user


def test_an_installed_tool_finds_the_users_models_from_any_folder(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    default = empty_gguf(home / "models" / DEFAULT_MODEL.name)
    elsewhere = tmp_path / "anywhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for name in ("APIGEN_MODEL", "APIGEN_MODELS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APIGEN_HOME", str(home))
    assert find_model() == default
    assert default_models_dir() == home / "models"  # where model fetch writes from here
    (elsewhere / "models").mkdir()  # a project checkout's models/ comes first
    local = empty_gguf(elsewhere / "models" / "mine.gguf")
    assert find_model().resolve() == local.resolve()
    assert default_models_dir() == Path("models")
    for path in (local, default):
        path.unlink()
    with pytest.raises(ModelError, match=r"no \*\.gguf in models/ or .*home/models/"):
        find_model()
