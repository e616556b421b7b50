"""How likely the model finds a text after a prompt: the mean log-probability per token of a
continuation, on a llama.cpp context of its own that shares the loaded weights.

Used by the function-fit check (:mod:`apigen_local.checks.fit`), which scores one request
after several prompts. Consecutive prompts mostly share their opening (the chat template and
the instruction), so the context keeps the tokens it evaluated last and evaluates only what
differs. Logits are read for the continuation's positions alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelError

if TYPE_CHECKING:
    from llama_cpp import Llama

_SEQ = 0


class ContinuationScorer:
    """Scores continuations on ``llama``'s weights in a context of ``n_ctx`` tokens."""

    def __init__(self, llama: Llama, *, n_ctx: int = 2048, n_batch: int = 512,
                 n_threads: int | None = None) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self.llama = llama
        self.n_vocab = llama.n_vocab()
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = 1
        params.flash_attn_type = 0  # as the batched engine: off on the CPU (model/engine.py)
        threads = n_threads or llama.context_params.n_threads_batch or llama.context_params.n_threads
        params.n_threads = threads
        params.n_threads_batch = threads
        params.no_perf = True
        self._ctx = llama_cpp.llama_init_from_model(llama.model, params)
        if not self._ctx:
            raise ModelError(f"llama.cpp could not create a scoring context of {n_ctx} tokens")
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._held: list[int] = []  # the tokens the context holds, in order

    def close(self) -> None:
        if self._ctx:
            self._lib.llama_batch_free(self._batch)
            self._lib.llama_free(self._ctx)
            self._ctx = None

    def __enter__(self) -> ContinuationScorer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def mean_logprob(self, prompt: Sequence[int], continuation: Sequence[int]) -> float:
        """The mean natural-log probability of each ``continuation`` token after ``prompt``."""
        if not prompt or not continuation:
            raise ValueError("prompt and continuation must both hold tokens")
        tokens = [*prompt, *continuation]
        if len(tokens) > self.n_ctx:
            raise ModelError(f"a scored text of {len(tokens)} tokens exceeds the scoring context ({self.n_ctx})")
        common = 0
        for held, token in zip(self._held, tokens[:len(prompt) - 1], strict=False):
            if held != token:
                break
            common += 1
        self._lib.llama_memory_seq_rm(self._mem, _SEQ, common, -1)
        self._held = self._held[:common]
        first_scored = len(prompt) - 1  # the position whose logits predict continuation[0]
        rows: list[np.ndarray] = []
        for start in range(common, len(tokens) - 1, self.n_batch):
            chunk = range(start, min(start + self.n_batch, len(tokens) - 1))
            wanted = [pos >= first_scored for pos in chunk]
            self._decode([(tokens[pos], pos, want) for pos, want in zip(chunk, wanted, strict=True)])
            if any(wanted):
                pointer = self._lib.llama_get_logits(self._ctx)
                rows.append(np.ctypeslib.as_array(pointer, shape=(sum(wanted), self.n_vocab)).copy())
        self._held = tokens[:-1]
        logits = np.concatenate(rows).astype(np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        picked = logits[np.arange(len(continuation)), list(continuation)]
        value = float(np.mean(picked - log_z))
        return value if math.isfinite(value) else -math.inf

    def _decode(self, entries: Sequence[tuple[int, int, bool]]) -> None:
        batch = self._batch
        for i, (token, pos, logits) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = _SEQ
            batch.logits[i] = logits
        batch.n_tokens = len(entries)
        rc = self._lib.llama_decode(self._ctx, batch)
        if rc != 0:
            raise ModelError(f"llama_decode failed (code {rc}) in the scoring context")
