"""The local model: one GGUF loaded through llama.cpp, prompted with its own chat template, and
constrained by Outlines to a JSON schema. Shared by the generator and the semantic judge."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel

from ..errors import ConstraintError, ModelError
from .bounds import max_json_bytes
from .cpu import CoreWaitClock
from .engine import KV_KEY_TYPES, SEQUENCE_CELLS, SEQUENCE_HEADROOM, BatchEngine, EngineRequest, KvKeys
from .engine import prompt_tokens as tokenize_prompt
from .files import check_gguf
from .scorer import ContinuationScorer
from .weights import gguf_file_type, needs_reencoding, reencoded_q8_0

if TYPE_CHECKING:
    from llama_cpp import Llama
    from outlines_core import Index

log = logging.getLogger(__name__)

# Whitespace the constraint allows between JSON tokens: at most one space, so a weak model
# cannot spend its token budget on indentation.
JSON_WHITESPACE = r"[ ]?"

CONSTRAINT_BACKENDS = ("outlines_core", "llguidance")

_PROBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"probe": {"type": "integer", "minimum": 0}, "ok": {"type": "boolean"}},
    "required": ["probe", "ok"],
    "additionalProperties": False,
}


# llama.cpp's own sampling defaults (as in ``Llama.create_completion``).
_SAMPLING: dict[str, Any] = {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.0}


class Completion(BaseModel):
    """One completion and its cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float  # wall time of the request, including waiting for its constraint
    cached_tokens: int = 0  # prompt tokens whose KV state was reused from the previous request
    # share of the time the model's threads wanted a core that they waited for one (model/cpu.py);
    # None where the system does not say
    core_wait: float | None = None


class JsonConstraint:
    """Outlines' regex constraint applied to llama.cpp's logits, one bitmask per token.

    A lean replacement for ``OutlinesCoreLogitsProcessor`` on the llama.cpp path: the same
    ``outlines_core`` ``Guide`` and numba kernel, without the per-token tensor-adapter wrapping.
    ``keep`` clears the bits of control and end-of-generation tokens other than EOS: Outlines
    reads them as plain text (``<|endoftext|>``) and may allow them inside a JSON string, but
    llama.cpp stops at any end-of-generation token and would cut the JSON short.
    """

    def __init__(self, index: Index, keep: np.ndarray) -> None:
        self.index = index
        self._keep = keep
        self._mask = np.empty_like(keep)
        self._address = self._mask.ctypes.data
        self._guide: Any = None

    def reset(self) -> None:
        """Start a new completion."""
        self._guide = None

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        from outlines_core import Guide
        from outlines_core.kernels.numpy import apply_token_bitmask_inplace

        guide = self._guide
        if guide is None:
            guide = self._guide = Guide(self.index)
        else:
            last = int(input_ids[-1])
            # as Outlines does: a finished guide only advances on a token it still accepts
            if not guide.is_finished() or guide.accepts_tokens([last]):
                guide.advance(token_id=last, return_tokens=False)
        guide.write_mask_into(self._address, self._mask.size, self._mask.itemsize)
        np.bitwise_and(self._mask, self._keep, out=self._mask)
        apply_token_bitmask_inplace(scores[np.newaxis], self._mask)
        return scores


class LocalModel:
    """A GGUF model loaded once and reused for every request of a run.

    Use as a context manager, or call :meth:`close`. The constructor checks that Outlines'
    constraint really is applied (see :meth:`verify_constraint`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        seed: int = 0,
        constraint_cache_size: int = 64,
        verify: bool = True,
        constraint_backend: str = "outlines_core",
        reencode_weights: bool = True,
        kv_keys: KvKeys = "q8_0",
    ) -> None:
        self.path = check_gguf(path)
        self.seed = seed
        self.n_threads = n_threads  # None: llama-cpp-python's defaults (batches use every core)
        if kv_keys not in KV_KEY_TYPES:
            raise ModelError(f"unknown KV key type {kv_keys!r}; choose one of {', '.join(KV_KEY_TYPES)}")
        self.kv_keys = kv_keys  # how the batched engine caches attention keys
        # the file llama.cpp computes with: a Q8_0 copy of a Q4_1 file on a CPU (model/weights.py)
        self.weights_path = self.path
        if reencode_weights and n_gpu_layers == 0 and needs_reencoding(gguf_file_type(self.path)):
            self.weights_path = reencoded_q8_0(self.path)
        self._llama = _load_llama(self.weights_path, n_ctx=n_ctx, n_threads=n_threads,
                                  n_gpu_layers=n_gpu_layers, seed=seed)
        self.name = str(self._llama.metadata.get("general.name") or self.path.stem)
        self._template = self._chat_formatter()
        import outlines
        from outlines.backends.outlines_core import OutlinesCoreBackend

        self._vocabulary = OutlinesCoreBackend(
            outlines.from_llamacpp(self._llama, chat_mode=False)).vocabulary
        self._keep = _keep_mask(self._llama.n_vocab(), _special_tokens(self._llama))
        self._constraints: OrderedDict[str, JsonConstraint] = OrderedDict()
        self._cache_size = constraint_cache_size
        self._compiler = ThreadPoolExecutor(max_workers=1, thread_name_prefix="constraint")
        self._compiling: dict[str, Future[JsonConstraint]] = {}
        self.compile_seconds: list[float] = []
        if constraint_backend not in CONSTRAINT_BACKENDS:
            raise ConstraintError(f"unknown constraint backend {constraint_backend!r}; "
                                  f"choose one of {', '.join(CONSTRAINT_BACKENDS)}")
        self.constraint_backend = constraint_backend
        self._engine: Any = None  # the BatchEngine of complete_json_many, made on first use
        self._scorer: ContinuationScorer | None = None  # made on the first score_after
        self._llg_tokenizer: Any = None
        self._grammars: OrderedDict[str, str] = OrderedDict()
        if verify:
            self.verify_constraint()

    # -- life cycle -------------------------------------------------------------------------
    def __enter__(self) -> LocalModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Free the llama.cpp context and stop compiling constraints."""
        self._compiler.shutdown(wait=True, cancel_futures=True)
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if self._scorer is not None:
            self._scorer.close()
            self._scorer = None
        self._compiling.clear()
        self._constraints.clear()
        close = getattr(self._llama, "close", None)
        if close is not None:
            close()

    @property
    def llama(self) -> Llama:
        """The underlying ``llama_cpp.Llama`` (for benchmarks and low-level use)."""
        return self._llama

    # -- prompting --------------------------------------------------------------------------
    def _chat_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self._llama.metadata.get("tokenizer.chat_template")
        if not template:
            log.warning("%s has no chat template in its metadata; using plain ChatML", self.path.name)
            template = (
                "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
            )
        eos = self._token_text(self._llama.token_eos())
        bos = self._token_text(self._llama.token_bos())
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llama.detokenize([token], special=True).decode("utf-8", errors="replace")

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        """The prompt text for ``messages``, through the model's own chat template."""
        return self._template(messages=list(messages)).prompt

    def score_after(self, prompts: Sequence[Sequence[dict[str, str]]], text: str) -> list[float]:
        """For each chat prompt, the mean log-probability per token of ``text`` as the assistant's
        reply (see :class:`~apigen_local.model.scorer.ContinuationScorer`)."""
        if self._scorer is None:
            self._scorer = ContinuationScorer(self._llama, n_threads=self.n_threads)
        continuation = self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        if not continuation:
            return [-math.inf for _ in prompts]
        return [self._scorer.mean_logprob(tokenize_prompt(self._llama, self.render(p)), continuation)
                for p in prompts]

    # -- constrained generation -------------------------------------------------------------
    def constraint(self, schema: dict[str, Any]) -> JsonConstraint:
        """The logits processor for ``schema``, compiled once and cached (LRU, keyed by schema).

        Waits for a compilation :meth:`prepare` started, or compiles now.
        """
        key = _schema_key(schema)
        cached = self._constraints.get(key)
        if cached is not None:
            self._constraints.move_to_end(key)
            return cached
        compiling = self._compiling.pop(key, None)
        built = compiling.result() if compiling is not None else self._compile(key)
        self._constraints[key] = built
        if len(self._constraints) > self._cache_size:
            self._constraints.popitem(last=False)
        return built

    def prepare(self, schemas: Iterable[dict[str, Any]]) -> None:
        """Start compiling the constraints of ``schemas`` in a background thread.

        outlines_core builds its index without holding the GIL, so the compilation of the next
        requests' constraints overlaps with decoding the current one. The llguidance backend
        compiles lazily while decoding, so there is nothing to prepare.
        """
        if self.constraint_backend != "outlines_core":
            return
        for schema in schemas:
            key = _schema_key(schema)
            if key not in self._constraints and key not in self._compiling:
                self._compiling[key] = self._compiler.submit(self._compile, key)

    def _compile(self, key: str) -> JsonConstraint:
        from outlines_core import Index
        from outlines_core.json_schema import build_regex_from_schema

        started = time.perf_counter()
        try:
            regex = _widen_number_regex(build_regex_from_schema(key, JSON_WHITESPACE))
        except Exception as exc:  # outlines_core raises plain errors for unsupported schemas
            raise ConstraintError(f"cannot turn the output schema into a constraint: {exc}") from exc
        built = JsonConstraint(Index(regex, self._vocabulary), self._keep)
        self.compile_seconds.append(time.perf_counter() - started)
        return built

    def complete_json(
        self,
        messages: Sequence[dict[str, str]],
        schema: dict[str, Any],
        *,
        max_tokens: int | None = None,
        temperature: float = 0.7,
        seed: int | None = None,
    ) -> Completion:
        """Generate text for ``messages`` that the constraint keeps inside ``schema``.

        ``max_tokens`` defaults to the longest text the schema admits (see
        :func:`~apigen_local.model.bounds.max_json_bytes`), so output is never cut short. The text
        is returned as produced; callers validate it themselves. llama.cpp keeps the evaluated
        prompt between calls, so a shared prefix (system prompt, examples) is not evaluated again.
        """
        if self.constraint_backend != "outlines_core":  # llguidance runs in the batched engine
            return self.complete_json_many([(messages, schema)], max_tokens=max_tokens,
                                           temperature=temperature,
                                           seeds=[self.seed if seed is None else seed], batch=1)[0]
        started = time.perf_counter()
        processor = self.constraint(schema)
        processor.reset()
        budget = max_json_bytes(schema) + 4 if max_tokens is None else max_tokens
        return self._complete(self.render(messages), budget, temperature, seed, processor,
                              started=started)

    def matcher(self, schema: dict[str, Any]) -> Any:
        """A fresh per-sequence constraint state for ``schema`` (see :mod:`.engine`).

        ``outlines_core``: a Guide over the cached compiled Index. ``llguidance``: an LLMatcher
        over the same regex Outlines builds from the schema (same language, compiled lazily).
        """
        from .engine import LLGuidanceMatcher, OutlinesCoreMatcher

        if self.constraint_backend == "outlines_core":
            return OutlinesCoreMatcher(self.constraint(schema).index)
        key = _schema_key(schema)
        grammar = self._grammars.get(key)
        if grammar is None:
            started = time.perf_counter()
            grammar = self._llguidance_grammar(key)
            self._grammars[key] = grammar
            if len(self._grammars) > self._cache_size:
                self._grammars.popitem(last=False)
            self.compile_seconds.append(time.perf_counter() - started)
        try:
            return LLGuidanceMatcher(self._llg_tokenizer, grammar)
        except ValueError as exc:
            raise ConstraintError(f"llguidance cannot constrain to the output schema: {exc}") from exc

    def _llguidance_grammar(self, key: str) -> str:
        """Outlines' regex for the schema as an llguidance grammar (tokenizer made once)."""
        import llguidance
        from outlines_core.json_schema import build_regex_from_schema

        if self._llg_tokenizer is None:
            import outlines
            from outlines.backends.llguidance import LLGuidanceBackend

            self._llg_tokenizer = LLGuidanceBackend(
                outlines.from_llamacpp(self._llama, chat_mode=False)).llg_tokenizer
        try:
            regex = _widen_number_regex(build_regex_from_schema(key, JSON_WHITESPACE))
        except Exception as exc:
            raise ConstraintError(f"cannot turn the output schema into a constraint: {exc}") from exc
        return llguidance.grammar_from("regex", regex)

    def complete_json_many(
        self,
        items: Sequence[tuple[Sequence[dict[str, str]], dict[str, Any]]],
        *,
        max_tokens: int | None = None,
        temperature: float = 0.7,
        seeds: Sequence[int] | None = None,
        batch: int = 8,
        on_done: Callable[[int, str], None] | None = None,
    ) -> list[Completion]:
        """:meth:`complete_json` for many ``(messages, schema)`` at once, ``batch`` sequences per
        llama.cpp decode (see :class:`~apigen_local.model.engine.BatchEngine`); results in order.
        ``on_done(i, text)`` is called as item ``i`` finishes with ``text``, in the order they finish.

        Sampling runs in numpy with one random generator per request (``seeds[i]``), so at a
        temperature above 0 the text differs from :meth:`complete_json`'s for the same seed; at
        temperature 0 both are the argmax under the constraint.
        """
        started = time.perf_counter()
        if not items:
            return []
        requests = []
        for i, (messages, schema) in enumerate(items):
            budget = max_json_bytes(schema) + 4 if max_tokens is None else max_tokens
            requests.append(EngineRequest(
                tokens=tokenize_prompt(self.llama, self.render(messages)), matcher=self.matcher(schema),
                max_tokens=budget, temperature=temperature,
                seed=self.seed + i if seeds is None else seeds[i]))
        prepared = time.perf_counter() - started  # rendering, tokenising, constraint compiles
        clock = CoreWaitClock().start()
        # streams of SEQUENCE_CELLS, or as many as the longest prompt needs up to the model's n_ctx
        longest = max(len(r.tokens) for r in requests) + SEQUENCE_HEADROOM
        cells = min(self.llama.n_ctx(), max(SEQUENCE_CELLS, longest))
        engine = self._engine
        if engine is None or engine.n_seq < batch or engine.n_ctx_seq < cells or engine.kv_keys != self.kv_keys:
            if engine is not None:
                engine.close()
            engine = self._engine = BatchEngine(self.llama, n_seq=batch, n_ctx_seq=cells, keep=self._keep,
                                                n_threads=self.n_threads, kv_keys=self.kv_keys)
        results = engine.run(requests, width=batch,
                             on_done=None if on_done is None else lambda index, result: on_done(index, result.text))
        core_wait = clock.share()
        return [Completion(text=r.text, prompt_tokens=r.prompt_tokens, completion_tokens=len(r.tokens),
                           seconds=prepared + r.seconds, cached_tokens=r.cached_tokens, core_wait=core_wait)
                for r in results]

    def complete_text(self, messages: Sequence[dict[str, str]], *, max_tokens: int = 256,
                      temperature: float = 0.7, seed: int | None = None) -> Completion:
        """Unconstrained generation (used by benchmarks to compare against constrained decoding)."""
        return self._complete(self.render(messages), max_tokens, temperature, seed, None,
                              started=time.perf_counter())

    def _complete(self, prompt: str, max_tokens: int, temperature: float, seed: int | None,
                  processor: Any, *, started: float) -> Completion:
        """Tokenise once, decode until end of generation or ``max_tokens``, detokenise once.

        ``Llama.create_completion`` detokenises the whole completion after every token (quadratic
        in its length); this loop does the same sampling without that.
        """
        import llama_cpp

        llama = self._llama
        tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        bos = llama.token_bos()
        if len(tokens) > 1 and tokens[0] == tokens[1] == bos:  # the template wrote its own BOS
            tokens = tokens[1:]
        room = llama.n_ctx() - len(tokens)
        if room <= 0:
            raise ModelError(f"the prompt takes {len(tokens)} tokens, more than the context "
                             f"window of {llama.n_ctx()}: raise n_ctx")
        cached = _reused_prefix(llama.input_ids[:llama.n_tokens], tokens)
        clock = CoreWaitClock().start()
        llama.set_seed(self.seed if seed is None else seed)
        vocab = llama_cpp.llama_model_get_vocab(llama.model)
        processors = None if processor is None else llama_cpp.LogitsProcessorList([processor])
        generated: list[int] = []
        budget = min(max_tokens, room)
        for token in llama.generate(tokens, temp=temperature, logits_processor=processors,
                                    **_SAMPLING):
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            generated.append(token)
            if len(generated) >= budget:
                break
        text = llama.detokenize(generated).decode("utf-8", errors="ignore")
        return Completion(text=text, prompt_tokens=len(tokens), completion_tokens=len(generated),
                          seconds=time.perf_counter() - started, cached_tokens=cached, core_wait=clock.share())

    def verify_constraint(self) -> None:
        """Fail loudly unless Outlines really constrains llama.cpp's sampling.

        Outlines' llama.cpp path needs numba; without it the logits processor fails inside a
        ctypes callback, the error is swallowed, and decoding silently runs unconstrained.
        """
        try:
            import numba  # noqa: F401
        except ImportError as exc:
            raise ConstraintError(
                "numba is not installed, so Outlines would silently decode unconstrained: "
                "pip install numba"
            ) from exc
        messages = [{"role": "user", "content": "Answer with any JSON."}]
        for attempt in range(2):
            text = self.complete_json(messages, _PROBE_SCHEMA, seed=attempt).text
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = None
            if not (isinstance(value, dict) and set(value) == {"probe", "ok"}
                    and isinstance(value["ok"], bool)):
                raise ConstraintError(
                    "the JSON constraint is not active: a probe generation returned "
                    f"{text[:80]!r}; check that numba and outlines import cleanly"
                )


def _special_tokens(llama: Llama) -> list[int]:
    """Ids of control and end-of-generation tokens, except the EOS that ends a completion."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    eos = llama.token_eos()
    return [
        token for token in range(llama.n_vocab())
        if token != eos and (llama_cpp.llama_vocab_is_control(vocab, token)
                             or llama_cpp.llama_vocab_is_eog(vocab, token))
    ]


def _schema_key(schema: dict[str, Any]) -> str:
    """The schema as compact JSON: the constraint cache key and outlines_core's input."""
    return json.dumps(schema, separators=(",", ":"))


def _keep_mask(n_vocab: int, banned: Sequence[int]) -> np.ndarray:
    """A token bitmask (Outlines' layout) with every bit set except those of ``banned``."""
    from outlines_core.kernels.numpy import allocate_token_bitmask

    keep = allocate_token_bitmask(n_vocab)
    bits = np.unpackbits(keep.view(np.uint8), bitorder="little")
    bits[list(banned)] = 0
    keep[:] = np.packbits(bits, bitorder="little").view(np.int32)
    return keep


def _reused_prefix(evaluated: np.ndarray, tokens: Sequence[int]) -> int:
    """Prompt tokens llama.cpp can keep from the previous request (``Llama.generate``'s rule)."""
    n = min(len(evaluated), len(tokens))
    differs = np.flatnonzero(evaluated[:n] != np.asarray(tokens[:n], dtype=evaluated.dtype))
    common = int(differs[0]) if len(differs) else n
    return common - 1 if common == len(tokens) else common


def _widen_number_regex(regex: str) -> str:
    """Let bounded JSON numbers have a one-digit integer part (``9.8``).

    outlines_core writes a digit-bounded number's integer part as ``[1-9][0-9]{1,N}``, which
    forbids ``1``-``9`` before a fraction; bounded integers use ``{0,N}`` and stay as they are.
    """
    return re.sub(r"\[1-9\]\[0-9\]\{1,(\d+)\}", r"[1-9][0-9]{0,\1}", regex)


# llama.cpp's "extra" CPU buffer types repack quantized weights for special kernels (AMX, and
# Q4_0/IQ4_NL repacking). On CPUs that report AMX, the AMX kernel segfaults on quantized weights
# for any prompt longer than one token (ggml_backend_amx_mul_mat), so the run would die on its
# first request. Loading with extra buffer types off uses the generic quantized kernels, which
# are correct everywhere; F16/F32 weights never used the extra types.
_SAFE_MODEL_PARAMS: dict[str, Any] = {"use_extra_bufts": False}
_LOAD_LOCK = threading.Lock()


@contextmanager
def _model_params(overrides: dict[str, Any]) -> Iterator[None]:
    """Make ``Llama(...)`` start from llama.cpp's default model parameters plus ``overrides``.

    ``llama_cpp.Llama`` exposes no keyword for these fields; it builds its parameters from
    ``llama_model_default_params()``, which is wrapped here for the duration of one load.
    """
    import llama_cpp.llama as llama_module

    bindings = llama_module.llama_cpp
    original = bindings.llama_model_default_params

    def patched() -> Any:
        params = original()
        for field, value in overrides.items():
            setattr(params, field, value)
        return params

    with _LOAD_LOCK:
        bindings.llama_model_default_params = patched
        try:
            yield
        finally:
            bindings.llama_model_default_params = original


def _load_llama(path: Path, *, n_ctx: int, n_threads: int | None, n_gpu_layers: int,
                seed: int) -> Llama:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelError("llama-cpp-python is not installed: pip install llama-cpp-python") from exc
    try:
        with _model_params(_SAFE_MODEL_PARAMS):
            llama = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_gpu_layers=n_gpu_layers,
                seed=seed,
                verbose=False,
            )
    except (ValueError, RuntimeError) as exc:
        raise ModelError(
            f"llama.cpp could not load {path.name} (unsupported architecture, or a damaged "
            f"or partial download): {exc}"
        ) from exc
    if llama.model_params.use_extra_bufts:  # a llama-cpp-python that builds its params differently
        llama.close()
        raise ModelError("could not turn off llama.cpp's extra CPU buffer types, which crash on "
                         "quantized models on AMX CPUs; use the pinned llama-cpp-python version")
    return llama
