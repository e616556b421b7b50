"""Fetch real tools-aware chat templates for the messages export's tests (issue 41).

Usage: python scripts/fetch_chat_templates.py DIR

The templates come from a registry package: the source distribution of the installed
llama-cpp-python, whose vendored llama.cpp ships models' own chat templates. ``pip download``
fetches it once (pip's cache keeps it); the named templates are written into DIR. Nothing is
done when they are all there.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

TEMPLATES = ("Qwen-Qwen2.5-7B-Instruct.jinja", "mistralai-Mistral-Nemo-Instruct-2407.jinja")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    target = Path(argv[0])
    if all((target / name).is_file() for name in TEMPLATES):
        return 0
    target.mkdir(parents=True, exist_ok=True)
    release = version("llama_cpp_python")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        "-d", tmp, f"llama-cpp-python=={release}"], check=True)
        archive = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(archive) as sdist:
            for member in sdist.getmembers():
                name = Path(member.name).name
                if name in TEMPLATES and member.isfile() and "/models/templates/" in member.name:
                    handle = sdist.extractfile(member)
                    assert handle is not None
                    (target / name).write_bytes(handle.read())
    missing = [name for name in TEMPLATES if not (target / name).is_file()]
    if missing:
        print(f"llama-cpp-python {release}'s source holds no {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"chat templates: {', '.join(TEMPLATES)} in {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
