"""The local model: one GGUF loaded through llama.cpp, prompted with its own chat template, and
constrained by Outlines to a JSON schema. Shared by the generator and the semantic judge."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .errors import ConstraintError, ModelError
from .json_bounds import max_json_bytes
from .model_files import check_gguf

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger(__name__)

# Whitespace the constraint allows between JSON tokens: at most one space, so a weak model
# cannot spend its token budget on indentation.
JSON_WHITESPACE = r"[ ]?"

_PROBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"probe": {"type": "integer", "minimum": 0}, "ok": {"type": "boolean"}},
    "required": ["probe", "ok"],
    "additionalProperties": False,
}


class Completion(BaseModel):
    """One constrained completion and its cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float


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
    ) -> None:
        self.path = check_gguf(path)
        self.seed = seed
        self._llama = _load_llama(self.path, n_ctx=n_ctx, n_threads=n_threads,
                                  n_gpu_layers=n_gpu_layers, seed=seed)
        self.name = str(self._llama.metadata.get("general.name") or self.path.stem)
        self._template = self._chat_formatter()
        import outlines

        self._outlines = outlines.from_llamacpp(self._llama, chat_mode=False)
        self._banned_tokens = _special_tokens(self._llama)
        self._constraints: OrderedDict[str, Any] = OrderedDict()
        self._cache_size = constraint_cache_size
        self.compile_seconds: list[float] = []
        if verify:
            self.verify_constraint()

    # -- life cycle -------------------------------------------------------------------------
    def __enter__(self) -> LocalModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Free the llama.cpp context."""
        self._constraints.clear()
        close = getattr(self._llama, "close", None)
        if close is not None:
            close()

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

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes in this model's vocabulary."""
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    # -- constrained generation -------------------------------------------------------------
    def constraint(self, schema: dict[str, Any]) -> Any:
        """Outlines' logits processor for ``schema``, compiled once and cached (LRU)."""
        from outlines.backends import get_regex_logits_processor
        from outlines_core.json_schema import build_regex_from_schema

        try:
            regex = _widen_number_regex(build_regex_from_schema(json.dumps(schema), JSON_WHITESPACE))
        except Exception as exc:  # outlines_core raises plain errors for unsupported schemas
            raise ConstraintError(f"cannot turn the output schema into a constraint: {exc}") from exc
        cached = self._constraints.get(regex)
        if cached is not None:
            self._constraints.move_to_end(regex)
            return cached
        started = time.perf_counter()
        built = get_regex_logits_processor("outlines_core", self._outlines, regex)
        self.compile_seconds.append(time.perf_counter() - started)
        self._constraints[regex] = built
        if len(self._constraints) > self._cache_size:
            self._constraints.popitem(last=False)
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
        :func:`~apigen_local.json_bounds.max_json_bytes`), so output is never cut short. The text is returned as produced; callers validate it themselves. llama.cpp keeps the
        evaluated prompt between calls, so a shared prefix (system prompt, examples) is reused.
        """
        from llama_cpp import LogitsProcessorList

        processor = self.constraint(schema)
        processor.reset()
        prompt = self.render(messages)
        started = time.perf_counter()
        out = self._llama.create_completion(
            prompt,
            max_tokens=max_json_bytes(schema) + 4 if max_tokens is None else max_tokens,
            temperature=temperature,
            seed=self.seed if seed is None else seed,
            logits_processor=LogitsProcessorList([processor, self._ban_control_tokens]),
        )
        usage = out["usage"]
        return Completion(
            text=out["choices"][0]["text"],
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            seconds=time.perf_counter() - started,
        )

    def _ban_control_tokens(self, input_ids: Any, scores: Any) -> Any:
        """Never sample a control or end-of-generation token other than EOS.

        Outlines reads them as plain text (``<|endoftext|>``) and may allow them inside a JSON
        string, but llama.cpp stops at any end-of-generation token and cuts the JSON short.
        """
        scores[self._banned_tokens] = -float("inf")
        return scores

    def complete_text(self, messages: Sequence[dict[str, str]], *, max_tokens: int = 256,
                      temperature: float = 0.7, seed: int | None = None) -> Completion:
        """Unconstrained generation (used by benchmarks to compare against constrained decoding)."""
        prompt = self.render(messages)
        started = time.perf_counter()
        out = self._llama.create_completion(
            prompt, max_tokens=max_tokens, temperature=temperature,
            seed=self.seed if seed is None else seed,
        )
        seconds = time.perf_counter() - started
        usage = out["usage"]
        return Completion(text=out["choices"][0]["text"], prompt_tokens=usage["prompt_tokens"],
                          completion_tokens=usage["completion_tokens"], seconds=seconds)

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


def _widen_number_regex(regex: str) -> str:
    """Let bounded JSON numbers have a one-digit integer part (``9.8``).

    outlines_core writes a digit-bounded number's integer part as ``[1-9][0-9]{1,N}``, which
    forbids ``1``-``9`` before a fraction; bounded integers use ``{0,N}`` and stay as they are.
    """
    return re.sub(r"\[1-9\]\[0-9\]\{1,(\d+)\}", r"[1-9][0-9]{0,\1}", regex)


def _load_llama(path: Path, *, n_ctx: int, n_threads: int | None, n_gpu_layers: int,
                seed: int) -> Llama:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelError("llama-cpp-python is not installed: pip install llama-cpp-python") from exc
    try:
        return Llama(
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
