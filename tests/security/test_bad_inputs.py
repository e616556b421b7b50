"""Bad inputs end with exit code 2 and one clear line, never a traceback (``--debug`` shows it).

Every case goes through ``apigen_local.cli.main`` exactly as a user would type it; all other
inputs of the command are valid, so the line must be about the one bad input.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from apigen_local import cli, tools

from ..conftest import EXAMPLE_LIBRARY, EXAMPLE_SEEDS, REPO

TINY_MODEL = REPO / "models" / "tiny-test.gguf"


def _generate(tmp: Path, **given: str) -> list[str]:
    """A valid ``generate`` command line, with the options in ``given`` replaced."""
    options = {"--library": str(EXAMPLE_LIBRARY), "--seed-file": str(EXAMPLE_SEEDS),
               "--model": str(TINY_MODEL), "--out": str(tmp / "out"), "--rows": "2", "--quiet": ""}
    options.update(given)
    argv = ["generate"]
    for flag, value in options.items():
        argv += [flag, value] if value else [flag]
    return argv


def _write(tmp: Path, name: str, content: str | bytes) -> str:
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def _unknown_architecture_gguf(tmp: Path) -> str:
    """A well-formed GGUF whose architecture llama.cpp does not know."""
    import gguf
    import numpy as np

    logging.getLogger("gguf").setLevel(logging.WARNING)
    path = tmp / "unknown-arch.gguf"
    writer = gguf.GGUFWriter(str(path), "apigen-no-such-architecture")
    writer.add_name("not a real architecture")
    writer.add_tensor("token_embd.weight", np.zeros((8, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return str(path)


def _not_writable_out(tmp: Path) -> str:
    # Tests run as root, where permissions do not stop writes: a path below a file cannot be made.
    blocker = tmp / "a-file"
    blocker.write_text("not a directory")
    return str(blocker / "out")


LIBRARY_WITH_SYNTAX_ERROR = "def add(a: int, b: int) -> int:\n    return a +\n"
LIBRARY_WITHOUT_TOOLS = '"""Only private helpers."""\n\ndef _helper() -> int:\n    return 1\n\nVALUE = 3\n'
LIBRARY_RAISING = "raise RuntimeError('the library refuses to load')\n"
LIBRARY_HANGING = "import time\nwhile True:\n    time.sleep(0.05)\n"

Case = Callable[[Path], list[str]]
CASES: dict[str, tuple[Case, str]] = {
    "missing model file": (lambda t: _generate(t, **{"--model": str(t / "nope.gguf")}),
                           "model file not found"),
    "model that is not a GGUF": (lambda t: _generate(t, **{"--model": _write(t, "m.gguf", "hello")}),
                                 "not a GGUF file"),
    "library with a syntax error": (
        lambda t: _generate(t, **{"--library": _write(t, "broken.py", LIBRARY_WITH_SYNTAX_ERROR)}),
        "syntax error"),
    "library with no usable function": (
        lambda t: _generate(t, **{"--library": _write(t, "empty_lib.py", LIBRARY_WITHOUT_TOOLS)}),
        "no public function"),
    "library whose import raises": (
        lambda t: _generate(t, **{"--library": _write(t, "raising.py", LIBRARY_RAISING)}),
        "the library refuses to load"),
    "library whose import hangs": (
        lambda t: _generate(t, **{"--library": _write(t, "hanging.py", LIBRARY_HANGING)}),
        "did not finish importing within 1 s; make"),
    "empty few-shot file": (lambda t: _generate(t, **{"--seed-file": _write(t, "seed.jsonl", "")}),
                            "holds no example rows"),
    "few-shot file that is not JSON": (
        lambda t: _generate(t, **{"--seed-file": _write(t, "seed.jsonl", "{not json\n")}),
        "line 1"),
    "few-shot rows without answers": (
        lambda t: _generate(t, **{"--seed-file": _write(t, "seed.jsonl", '{"query": "q"}\n[1, 2]\n')}),
        "line 1"),
    "few-shot row nested too deeply": (
        lambda t: _generate(t, **{"--seed-file": _write(t, "seed.jsonl", "[" * 100_000 + "\n")}),
        "line 1"),
    "few-shot file that is not text": (
        lambda t: _generate(t, **{"--seed-file": _write(t, "seed.jsonl", b"\xff\xfe\x00binary")}),
        "seed.jsonl"),
    "output directory that is not writable": (
        lambda t: _generate(t, **{"--out": _not_writable_out(t)}), "not writable"),
    "config with unknown keys": (
        lambda t: ["generate", "--config", _write(
            t, "run.toml", f'library = "{EXAMPLE_LIBRARY}"\nrowz = 3\ntemprature = 0.5\n')],
        "rowz"),
}


@pytest.fixture(autouse=True)
def quick_import_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools, "IMPORT_TIMEOUT", 1.0)


def _assert_one_clear_line(argv: list[str], fragment: str, capfd: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    out, err = capfd.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error:") and fragment in lines[0], lines[0]
    assert "Traceback" not in out + err
    assert cli.main(["--debug", *argv]) == 2
    out, err = capfd.readouterr()
    assert "Traceback" in err and fragment in err


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line(case: str, tmp_path: Path,
                                         capfd: pytest.CaptureFixture[str]) -> None:
    build, fragment = CASES[case]
    _assert_one_clear_line(build(tmp_path), fragment, capfd)


@pytest.mark.docker
@pytest.mark.model
def test_gguf_of_an_unknown_architecture(tmp_path: Path, sandbox_image: str,
                                         capfd: pytest.CaptureFixture[str]) -> None:
    argv = _generate(tmp_path, **{"--model": _unknown_architecture_gguf(tmp_path)})
    _assert_one_clear_line(argv, "could not load unknown-arch.gguf", capfd)


def test_library_printing_megabytes_on_import_is_reported_once(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    library = _write(tmp_path, "noisy.py", (
        "import sys\nfor _ in range(8):\n    print('x' * 2**20)\n    sys.stderr.write('y' * 2**20)\n\n"
        "def add(a: int, b: int) -> int:\n    \"\"\"Add.\n\n    Args:\n        a: A.\n        b: B.\n"
        "    \"\"\"\n    return a + b\n"))
    with caplog.at_level(logging.WARNING, logger=tools.__name__):
        loaded = tools.load_library(library)
    assert [tool.name for tool in loaded.tools] == ["add"]
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "printed 16777224 characters" in warnings[0]
