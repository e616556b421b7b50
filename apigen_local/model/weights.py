"""CPU weights: a Q4_1 model re-encoded once as Q8_0, which llama.cpp computes faster on a CPU.

llama.cpp has no batched CPU kernel for Q4_1 (with its extra buffer types off, see
``local._SAFE_MODEL_PARAMS``), so evaluating a prompt or decoding several sequences at once gains
little over one token at a time. Its Q8_0 kernels batch well. Re-encoding Q4_1 as Q8_0 keeps the
model's values to within 8-bit rounding of what Q4_1 stores (the 4-bit levels are not refined,
only re-expressed), so the model is the same one; on SmolLM2-135M it evaluated prompts 1.6x as
fast and decoded 8 sequences 1.3x as fast (benchmarks/README.md). The copy is written once, next
to the other caches, and reused while the source file is unchanged.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import ModelError
from .files import cache_dir, file_sha256
from .gguf_header import gguf_file_type

__all__ = ["gguf_file_type", "needs_reencoding", "reencoded_q8_0"]

# llama_ftype values of the files that are re-encoded: LLAMA_FTYPE_MOSTLY_Q4_1
REENCODED_FILE_TYPES = frozenset({3})
_Q8_0 = 7  # LLAMA_FTYPE_MOSTLY_Q8_0


def needs_reencoding(file_type: int | None) -> bool:
    """Whether a GGUF whose ``general.file_type`` is ``file_type`` gets re-encoded."""
    return file_type in REENCODED_FILE_TYPES


def reencoded_q8_0(path: Path) -> Path:
    """The Q8_0 copy of the GGUF at ``path``, written on first use (about a second for 135M)."""
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    target = cache_dir("weights") / f"{path.stem}-{file_sha256(path)[:16]}-q8_0.gguf"
    if target.is_file():
        return target
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = _Q8_0
    params.allow_requantize = True
    params.nthread = os.cpu_count() or 1
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=target.parent, prefix=".reencode-", suffix=".gguf")
        os.close(handle)
    except OSError as exc:
        raise ModelError(f"cannot write the Q8_0 copy of {path.name} under {target.parent}: {exc}; "
                         "set XDG_CACHE_HOME, or pass reencode_weights=False") from exc
    try:
        with suppress_stdout_stderr(disable=False):
            rc = llama_cpp.llama_model_quantize(str(path).encode(), partial.encode(), params)
        if rc != 0:
            raise ModelError(f"llama.cpp could not re-encode {path.name} as Q8_0 (code {rc}); "
                             "pass reencode_weights=False to use the file as it is")
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target
