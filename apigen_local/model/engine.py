"""Batched constrained decoding: many sequences per ``llama_decode``, continuous batching, and
the prompt prefix the requests share evaluated once and copied to each sequence's KV cache.

The engine owns a second llama.cpp context on the same model weights (the ``Llama`` object's own
context keeps serving one-at-a-time requests). Each sequence has its own constraint matcher and
its own random generator; sampling is done here in numpy over the masked logits:

- the logits of every sequence of a step are copied once, as one ``(n, vocab)`` block, and the
  constraint bitmasks of all sequences are applied to that block in place;
- temperature 0 is an argmax; otherwise llama.cpp's default chain (top-k 40, top-p 0.95,
  min-p 0.05, then temperature) runs on the 40 top-k candidates only;
- tokens are detokenised once per sequence, when it ends.

Requests are admitted into free sequence slots as earlier ones finish (continuous batching). The
token prefix that saves the most evaluation across the requests of a call lives in sequence 0; each request
takes the part of it that it starts with by ``llama_memory_seq_cp`` (a copy of sequence 0's KV
stream, cut where the request departs from it) and evaluates only the rest of its prompt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

import numpy as np

from ..errors import ModelError

if TYPE_CHECKING:
    from llama_cpp import Llama

TOP_K = 40
TOP_P = 0.95
MIN_P = 0.05
_PREFIX_SEQ = 0  # the sequence that holds the shared prompt prefix
# how the batched context stores attention keys (values stay F16: llama.cpp quantizes them only
# with flash attention, which evaluated prompts a third slower here; benchmarks/README.md)
KvKeys = Literal["f16", "q8_0"]
KV_KEY_TYPES: tuple[str, ...] = get_args(KvKeys)


class Matcher(Protocol):
    """One sequence's constraint state: writes the allowed-token bitmask, consumes tokens."""

    def fill(self, bitmask: np.ndarray, row: int) -> None: ...

    def consume(self, token: int) -> None: ...


@dataclass
class EngineRequest:
    """One prompt (already tokenised) to complete under ``matcher``."""

    tokens: list[int]
    matcher: Matcher | None
    max_tokens: int
    temperature: float = 0.7
    seed: int = 0


@dataclass
class EngineResult:
    tokens: list[int]
    text: str
    prompt_tokens: int
    cached_tokens: int  # prompt tokens taken from the shared prefix instead of evaluated
    seconds: float  # from the start of the call to this sequence's end


@dataclass
class EngineStats:
    """Where the time of the engine's calls went (cumulative)."""

    calls: int = 0
    decode_calls: int = 0
    generated_tokens: int = 0
    evaluated_tokens: int = 0  # prompt tokens evaluated (prefix once + suffixes)
    prefix_copies: int = 0  # sequences whose prompt started from a seq_cp of the prefix
    prefix_copied_tokens: int = 0
    prompt_seconds: float = 0.0  # llama_decode time spent on prompt tokens
    decode_seconds: float = 0.0  # llama_decode time spent on single-token generation steps
    step_seconds: float = 0.0  # wall time of generation steps (llama_decode + Python + masks)
    mask_seconds: float = 0.0  # of step_seconds: constraint masks and token consumption
    peak_active: int = 0  # most sequences decoded in one llama_decode
    # CPU time of this process (llama.cpp's worker threads included) over the generation steps:
    # unlike wall time it does not count the time other processes held the cores
    step_cpu_seconds: float = 0.0

    @property
    def python_share(self) -> float:
        """Share of generation-step wall time spent outside ``llama_decode``."""
        return 0.0 if self.step_seconds <= 0 else 1.0 - self.decode_seconds / self.step_seconds


@dataclass
class _Slot:
    seq: int
    index: int = -1  # request index, -1 when free
    request: EngineRequest | None = None
    pos: int = 0  # next position in the sequence
    out: list[int] = field(default_factory=list)
    rng: np.random.Generator | None = None
    cached: int = 0


class BatchEngine:
    """Decodes up to ``n_seq`` sequences at once on ``llama``'s weights.

    Each sequence, and the shared prefix, has a KV stream of ``n_ctx_seq`` cells: a longer prompt
    is an error, and a sequence that reaches the end of its stream ends there (cut short, its
    JSON then fails the format check).
    ``keep`` is an optional bitmask (Outlines' int32 layout) ANDed into every constraint mask:
    it bans control tokens a constraint would read as text. ``kv_keys`` is how the cache stores
    attention keys, one of :data:`KV_KEY_TYPES`.
    """

    def __init__(self, llama: Llama, *, n_seq: int, n_ctx_seq: int, n_batch: int = 512,
                 kv_keys: KvKeys, keep: np.ndarray | None = None, n_threads: int | None = None) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self.llama = llama
        self.n_seq = n_seq
        self.n_vocab = llama.n_vocab()
        self.n_batch = max(n_batch, n_seq)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx_seq * (n_seq + 1)
        params.n_batch = self.n_batch
        params.n_ubatch = self.n_batch
        params.n_seq_max = n_seq + 1
        # One KV stream per sequence: a token attends over its own sequence's cells only. In one
        # unified cache every token attends over the cells of all sequences (masked), which
        # halved the speed of prompt evaluation for 8 rows of about 1,000 tokens.
        params.kv_unified = False
        # Flash attention off, as llama-cpp-python's Llama has it: llama.cpp's default ("auto")
        # turns it on for the CPU, where it evaluated prompts at 288 against 443 tokens/s (with
        # Q8_0 keys and values) and so cost a quarter of the rows/min (benchmarks/README.md).
        params.flash_attn_type = 0  # LLAMA_FLASH_ATTN_TYPE_DISABLED
        # Keys as Q8_0 halve the bytes a decode step reads per cached key; attention over each
        # row's own ~1,000 cached tokens is what stops batched decoding from scaling on a CPU
        # (SmolLM2-135M, 2 cores: 31 against 27 rows/min end to end; benchmarks/README.md).
        params.type_k = llama_cpp.GGML_TYPE_Q8_0 if kv_keys == "q8_0" else llama_cpp.GGML_TYPE_F16
        self.kv_keys = kv_keys
        # Steps and prompts both run on the model's batch thread count (all cores by default):
        # on 2 cores, Q8_0 SmolLM2-135M decoded 8 sequences at 156 tokens/s on two threads
        # against 91 on one (benchmarks/README.md).
        self._threads = n_threads or llama.context_params.n_threads_batch or llama.context_params.n_threads
        params.n_threads = self._threads
        params.n_threads_batch = self._threads
        params.no_perf = True
        self._ctx = llama_cpp.llama_init_from_model(llama.model, params)
        if not self._ctx:
            raise ModelError(f"llama.cpp could not create a batched context ({n_seq} sequences, "
                             f"{n_ctx_seq} tokens each)")
        self.n_ctx_seq = llama_cpp.llama_n_ctx_seq(self._ctx)  # cells of one sequence's stream
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self._keep = keep
        words = (self.n_vocab + 31) // 32
        self._bitmask = np.full((n_seq, words), -1, dtype=np.int32)
        self._prefix: list[int] = []  # tokens evaluated into sequence 0
        self.stats = EngineStats()

    def close(self) -> None:
        if self._ctx:
            self._lib.llama_batch_free(self._batch)
            self._lib.llama_free(self._ctx)
            self._ctx = None

    def __enter__(self) -> BatchEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- low level --------------------------------------------------------------------------
    def _decode(self, entries: Sequence[tuple[int, int, int, bool]]) -> float:
        """One ``llama_decode`` of (token, pos, seq, wants_logits) entries; returns its seconds."""
        batch = self._batch
        for i, (token, pos, seq, logits) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits
        batch.n_tokens = len(entries)
        started = time.perf_counter()
        rc = self._lib.llama_decode(self._ctx, batch)
        seconds = time.perf_counter() - started
        self.stats.decode_calls += 1
        if rc != 0:
            raise ModelError(f"llama_decode failed (code {rc}) in the batched context of "
                             f"{self.n_seq} sequences of {self.n_ctx_seq} tokens")
        return seconds

    def _logits(self, n: int) -> np.ndarray:
        """A copy of the ``n`` logits rows of the last decode, as one block (the one copy per step)."""
        pointer = self._lib.llama_get_logits(self._ctx)
        return np.ctypeslib.as_array(pointer, shape=(n, self.n_vocab)).copy()

    def _set_prefix(self, prefix: list[int]) -> int:
        """Make sequence 0 hold exactly ``prefix``, evaluating only what it does not hold yet;
        return how many of its tokens were already there."""
        common = 0
        for a, b in zip(self._prefix, prefix, strict=False):
            if a != b:
                break
            common += 1
        if common < len(self._prefix):
            self._lib.llama_memory_seq_rm(self._mem, _PREFIX_SEQ, common, -1)
        self._prefix = self._prefix[:common]
        todo = prefix[common:]
        for start in range(0, len(todo), self.n_batch):
            chunk = todo[start:start + self.n_batch]
            self.stats.prompt_seconds += self._decode(
                [(t, common + start + i, _PREFIX_SEQ, False) for i, t in enumerate(chunk)])
            self.stats.evaluated_tokens += len(chunk)
        self._prefix = list(prefix)
        return common

    # -- the loop ---------------------------------------------------------------------------
    def run(self, requests: Sequence[EngineRequest], *, width: int | None = None,
            on_done: Callable[[int, EngineResult], None] | None = None) -> list[EngineResult]:
        """Complete every request, ``width`` (at most ``n_seq``) at a time; results in order."""
        lib = self._lib
        started = time.perf_counter()
        self.stats.calls += 1
        results: list[EngineResult | None] = [None] * len(requests)
        if not requests:
            return []
        for request in requests:
            if not 0 < len(request.tokens) < self.n_ctx_seq:
                raise ModelError(f"a prompt of {len(request.tokens)} tokens does not fit a batched "
                                 f"sequence of {self.n_ctx_seq} tokens; raise n_ctx")
        # The tokens most requests start with live in sequence 0 and are copied to each of them;
        # a lone request keeps its whole prompt there, so that the next call reuses what it
        # shares with it (as llama-cpp-python's Llama does between calls).
        prefix = _shared_prefix([r.tokens for r in requests]) if len(requests) > 1 else requests[0].tokens
        # every request evaluates at least its last prompt token in its own sequence
        shares = [min(_common_length(prefix, r.tokens), len(r.tokens) - 1) for r in requests]
        prefix = prefix[:max(shares)]
        reused = self._set_prefix(prefix)
        slots = [_Slot(seq=s + 1) for s in range(min(width or self.n_seq, self.n_seq))]
        waiting = list(range(len(requests)))
        waiting.reverse()  # pop() from the end takes request 0 first
        eog = lib.llama_vocab_is_eog
        vocab = self._vocab

        while waiting or any(s.request is not None for s in slots):
            # admit waiting requests into free slots and evaluate their prompt suffixes
            admitted: list[_Slot] = []
            for slot in slots:
                if slot.request is not None or not waiting:
                    continue
                slot.index = waiting.pop()
                request, share = requests[slot.index], shares[slot.index]
                slot.request = request
                slot.out = []
                slot.rng = np.random.default_rng(request.seed)
                lib.llama_memory_seq_rm(self._mem, slot.seq, -1, -1)
                if share:
                    # llama.cpp copies across streams only whole: copy, then drop the unshared rest
                    lib.llama_memory_seq_cp(self._mem, _PREFIX_SEQ, slot.seq, -1, -1)
                    lib.llama_memory_seq_rm(self._mem, slot.seq, share, -1)
                    self.stats.prefix_copies += 1
                    self.stats.prefix_copied_tokens += share
                slot.pos = share
                # prompt tokens this request did not evaluate itself: in a batch, its share of
                # the prefix (evaluated once for all); alone, what an earlier call left there
                slot.cached = share if len(requests) > 1 else min(share, reused)
                admitted.append(slot)
            if admitted:
                first_logits = self._prefill(admitted)
                self._sample_and_advance(admitted, first_logits, results, started, eog, vocab, on_done)
                continue
            active = [s for s in slots if s.request is not None]
            if not active:
                continue
            step_started = time.perf_counter()
            cpu_started = time.process_time()
            entries = [(s.out[-1], s.pos, s.seq, True) for s in active]
            self.stats.peak_active = max(self.stats.peak_active, len(active))
            self.stats.decode_seconds += self._decode(entries)
            for s in active:
                s.pos += 1
            logits = self._logits(len(active))
            self._sample_and_advance(active, logits, results, started, eog, vocab, on_done)
            self.stats.step_seconds += time.perf_counter() - step_started
            self.stats.step_cpu_seconds += time.process_time() - cpu_started
        return [r for r in results if r is not None]

    def _prefill(self, admitted: list[_Slot]) -> np.ndarray:
        """Evaluate the admitted sequences' own prompt tokens, packed into as few decodes as
        possible; return one logits row per admitted sequence (its last prompt token)."""
        entries: list[tuple[int, int, int, bool]] = []
        rows: list[np.ndarray] = []

        def flush() -> None:
            if not entries:
                return
            self.stats.prompt_seconds += self._decode(entries)
            self.stats.evaluated_tokens += len(entries)
            n_out = sum(1 for e in entries if e[3])
            if n_out:
                block = self._logits(n_out)
                rows.extend(block[i] for i in range(n_out))
            entries.clear()

        for slot in admitted:
            assert slot.request is not None
            own = slot.request.tokens[slot.pos:]
            for i, token in enumerate(own):
                last = i == len(own) - 1
                entries.append((token, slot.pos + i, slot.seq, last))
                if len(entries) == self.n_batch:
                    flush()
            slot.pos += len(own)
        flush()
        return np.stack(rows) if rows else np.empty((0, self.n_vocab), dtype=np.float32)

    def _sample_and_advance(self, slots: list[_Slot], logits: np.ndarray,
                            results: list[EngineResult | None], started: float, eog: Any,
                            vocab: Any, on_done: Callable[[int, EngineResult], None] | None) -> None:
        """Mask every row of ``logits`` with its sequence's constraint, sample one token each,
        feed it to the constraint, and finish sequences that hit end of generation or budget."""
        from outlines_core.kernels.numpy import apply_token_bitmask_inplace

        mask_started = time.perf_counter()
        n = len(slots)
        bitmask = self._bitmask[:n]
        constrained = False
        for row, slot in enumerate(slots):
            matcher = slot.request.matcher  # type: ignore[union-attr]
            if matcher is None:
                bitmask[row] = -1
            else:
                matcher.fill(bitmask, row)
                constrained = True
            if self._keep is not None:
                np.bitwise_and(bitmask[row], self._keep.reshape(-1)[:bitmask.shape[1]], out=bitmask[row])
        if constrained or self._keep is not None:
            apply_token_bitmask_inplace(logits, bitmask)
        mask_seconds = time.perf_counter() - mask_started
        for row, slot in enumerate(slots):
            request = slot.request
            assert request is not None
            token = _sample(logits[row], request.temperature, slot.rng)
            done = bool(eog(vocab, token))
            if not done:
                slot.out.append(token)
                if request.matcher is not None:
                    t = time.perf_counter()
                    request.matcher.consume(token)
                    mask_seconds += time.perf_counter() - t
                self.stats.generated_tokens += 1
                done = len(slot.out) >= request.max_tokens or slot.pos + 1 >= self.n_ctx_seq
            if done:
                text = self.llama.detokenize(slot.out).decode("utf-8", errors="ignore")
                result = EngineResult(tokens=slot.out, text=text, prompt_tokens=len(request.tokens),
                                      cached_tokens=slot.cached,
                                      seconds=time.perf_counter() - started)
                results[slot.index] = result
                if on_done is not None:
                    on_done(slot.index, result)
                self._lib.llama_memory_seq_rm(self._mem, slot.seq, -1, -1)
                slot.request = None
                slot.index = -1
        self.stats.mask_seconds += mask_seconds


def _shared_prefix(sequences: Sequence[Sequence[int]]) -> list[int]:
    """The token prefix that saves the most evaluation: followed position by position along the
    token most of the sequences still on it agree on, and cut where its length times the number of
    other sequences that share it is largest (a short prefix all share beats a long one two share)."""
    on = list(range(len(sequences)))
    prefix: list[int] = []
    best, saved = 0, 0
    while len(on) >= 2:
        pos = len(prefix)
        counts: dict[int, list[int]] = {}
        for i in on:
            if pos < len(sequences[i]):
                counts.setdefault(sequences[i][pos], []).append(i)
        if not counts:
            break
        token, on = max(counts.items(), key=lambda item: len(item[1]))
        if len(on) >= 2:
            prefix.append(token)
            if len(prefix) * (len(on) - 1) > saved:
                best, saved = len(prefix), len(prefix) * (len(on) - 1)
    return prefix[:best]


def _common_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    differs = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(differs[0]) if len(differs) else n


def _sample(logits: np.ndarray, temperature: float, rng: np.random.Generator | None) -> int:
    """One token from a masked logits row (masked entries are -inf), in place of llama.cpp's
    default chain: argmax at temperature 0, else top-k 40, top-p 0.95, min-p 0.05, temperature."""
    if temperature <= 0 or rng is None:
        return int(np.argmax(logits))
    # a constraint leaves few tokens; argpartition over a row that is mostly -inf is slow
    # (3 ms against 0.1 ms on 49k tokens), so it runs on the allowed tokens only
    top = np.flatnonzero(logits > -np.inf)
    if len(top) == 0:
        return int(np.argmax(logits))
    if len(top) > TOP_K:
        top = top[np.argpartition(logits[top], -TOP_K)[-TOP_K:]]
    values = logits[top]
    order = np.argsort(-values, kind="stable")
    top, values = top[order], values[order]
    probs = np.exp(values - values[0])
    probs /= probs.sum()
    keep = int(np.searchsorted(np.cumsum(probs), TOP_P)) + 1  # smallest set reaching top_p
    keep = max(1, min(keep, len(top)))
    cut = probs[:keep] >= MIN_P * probs[0]
    top, values = top[:keep][cut], values[:keep][cut]
    scaled = np.exp((values - values[0]) / temperature)
    return int(top[rng.choice(len(top), p=scaled / scaled.sum())])


# -- constraint matchers ------------------------------------------------------------------------
class OutlinesCoreMatcher:
    """An ``outlines_core`` Guide over a compiled Index."""

    def __init__(self, index: Any) -> None:
        from outlines_core import Guide

        self.guide = Guide(index)

    def fill(self, bitmask: np.ndarray, row: int) -> None:
        target = bitmask[row]
        self.guide.write_mask_into(target.ctypes.data, target.size, target.itemsize)

    def consume(self, token: int) -> None:
        guide = self.guide
        if not guide.is_finished() or guide.accepts_tokens([token]):
            guide.advance(token_id=token, return_tokens=False)


class LLGuidanceMatcher:
    """An ``llguidance`` LLMatcher (the grammar is compiled lazily, token by token)."""

    def __init__(self, tokenizer: Any, grammar: str) -> None:
        from llguidance import LLMatcher

        self.matcher = LLMatcher(tokenizer, grammar)
        error = self.matcher.get_error()
        if error:
            raise ValueError(error)

    def fill(self, bitmask: np.ndarray, row: int) -> None:
        target = bitmask[row]
        self.matcher.unsafe_compute_mask_ptr(target.ctypes.data, target.size * target.itemsize)

    def consume(self, token: int) -> None:
        self.matcher.consume_token(token)


def prompt_tokens(llama: Llama, prompt: str) -> list[int]:
    """``prompt`` tokenised as ``LocalModel`` does (one BOS, even when the template wrote one)."""
    tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
    bos = llama.token_bos()
    if len(tokens) > 1 and tokens[0] == tokens[1] == bos:
        tokens = tokens[1:]
    return tokens


# KV cells of one batched sequence: the generation prompts run to about 1,200 tokens and a row's
# JSON to a few hundred; a call with a longer prompt gets streams that fit it plus the headroom
# (up to the model's n_ctx). A row that reaches the end of its stream is cut there.
SEQUENCE_CELLS = 4096
SEQUENCE_HEADROOM = 1024
