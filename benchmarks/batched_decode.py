"""Decode throughput of several sequences per llama_decode call vs one at a time (issue 18, step c).

Usage: python benchmarks/batched_decode.py [--model GGUF] [--seqs 16] [--tokens 48] [--sizes 1,2,4,8,16]

Loads the model as LocalModel does (extra CPU buffer types off), renders one generation-style
chat prompt, evaluates it once into sequence 0 and copies that KV prefix to every other
sequence (llama_memory_seq_cp), then greedily decodes ``--seqs`` continuations of ``--tokens``
tokens, ``B`` sequences per llama_decode call, for each batch size ``B``. Finished sequences
are replaced by waiting ones (continuous batching). Unconstrained argmax: this measures the
llama.cpp side only, the ceiling a batched engine can reach. Prints tokens/s per batch size and
the ratio to B=1, all in one run. It also checks that each sequence's greedy output at B>1 equals
the one-at-a-time output (logits of a batched decode may differ in the last bits; the count of
equal sequences is printed, not asserted).
"""

from __future__ import annotations

import argparse
import ctypes
import time

import llama_cpp
import numpy as np
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from apigen_local.model.files import find_model
from apigen_local.model.local import _SAFE_MODEL_PARAMS, _model_params


def _context(model: llama_cpp.Llama, n_seq: int, n_ctx: int) -> ctypes.c_void_p:
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = n_ctx
    params.n_batch = 512
    params.n_ubatch = 512
    params.n_seq_max = n_seq
    params.kv_unified = True
    params.n_threads = params.n_threads_batch = 2
    ctx = llama_cpp.llama_init_from_model(model.model, params)
    if not ctx:
        raise RuntimeError("could not create a llama.cpp context")
    return ctx


def _add(batch: llama_cpp.llama_batch, token: int, pos: int, seq: int, logits: bool) -> None:
    i = batch.n_tokens
    batch.token[i] = token
    batch.pos[i] = pos
    batch.n_seq_id[i] = 1
    batch.seq_id[i][0] = seq
    batch.logits[i] = logits
    batch.n_tokens = i + 1


def run(ctx: ctypes.c_void_p, prompt: list[int], n_vocab: int, size: int, seqs: int, tokens: int,
        eos: set[int]) -> tuple[float, int, list[list[int]]]:
    """Greedy-decode ``seqs`` continuations, ``size`` at a time; return (seconds, tokens, outputs)."""
    mem = llama_cpp.llama_get_memory(ctx)
    llama_cpp.llama_memory_clear(mem, True)
    batch = llama_cpp.llama_batch_init(max(len(prompt), size), 0, 1)
    try:
        start = time.perf_counter()
        batch.n_tokens = 0
        for pos, tok in enumerate(prompt):
            _add(batch, tok, pos, 0, pos == len(prompt) - 1)
        if llama_cpp.llama_decode(ctx, batch) != 0:
            raise RuntimeError("prompt decode failed")
        first = int(np.argmax(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))))
        # slots: sequence id in the KV cache (1..size), each holding one row of the queue
        waiting = list(range(seqs))
        outputs: list[list[int]] = [[] for _ in range(seqs)]
        active: dict[int, int] = {}  # slot -> row
        generated = 0
        while waiting or active:
            for slot in range(1, size + 1):
                if slot not in active and waiting:
                    row = waiting.pop(0)
                    llama_cpp.llama_memory_seq_rm(mem, slot, -1, -1)
                    llama_cpp.llama_memory_seq_cp(mem, 0, slot, -1, -1)
                    active[slot] = row
                    outputs[row].append(first)
                    generated += 1
            batch.n_tokens = 0
            order = list(active)
            for slot in order:
                out = outputs[active[slot]]
                _add(batch, out[-1], len(prompt) + len(out) - 1, slot, True)
            if llama_cpp.llama_decode(ctx, batch) != 0:
                raise RuntimeError("decode failed")
            for i, slot in enumerate(order):
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, i), shape=(n_vocab,))
                tok = int(np.argmax(logits))
                out = outputs[active[slot]]
                if tok in eos or len(out) >= tokens:
                    del active[slot]
                    llama_cpp.llama_memory_seq_rm(mem, slot, -1, -1)
                    continue
                out.append(tok)
                generated += 1
        return time.perf_counter() - start, generated, outputs
    finally:
        llama_cpp.llama_batch_free(batch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--seqs", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--sizes", default="1,2,4,8,16")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    path = find_model(args.model)
    with _model_params(_SAFE_MODEL_PARAMS):
        llama = llama_cpp.Llama(model_path=str(path), n_ctx=512, n_threads=2, verbose=False)
    messages = [{"role": "system", "content": "You write one user query and the function calls that answer it, "
                 "as JSON. Functions: get_weather(city: str, unit: str = 'c'): current weather; "
                 "convert_currency(amount: float, src: str, dst: str): convert money."},
                {"role": "user", "content": "Write a new query that needs one or two of these functions."}]
    prompt_text = Jinja2ChatFormatter(
        template=llama.metadata["tokenizer.chat_template"], eos_token="", bos_token="",
    )(messages=messages).prompt
    prompt = llama.tokenize(prompt_text.encode(), add_bos=False, special=True)
    n_vocab = llama.n_vocab()
    eos = {llama.token_eos()}
    ctx = _context(llama._model, max(sizes) + 1, (len(prompt) + args.tokens + 8) * (max(sizes) + 1))
    try:
        run(ctx, prompt, n_vocab, 1, 1, 8, eos)  # warm-up
        totals = {size: [0.0, 0] for size in sizes}
        same = {size: args.seqs for size in sizes}
        reference: list[list[int]] = []
        for _ in range(args.rounds):  # alternate batch sizes within each round: shared-machine noise hits all
            for size in sizes:
                seconds, generated, outputs = run(ctx, prompt, n_vocab, size, args.seqs, args.tokens, eos)
                totals[size][0] += seconds
                totals[size][1] += generated
                if size == sizes[0] and not reference:
                    reference = outputs
                elif reference:
                    same[size] = sum(a == b for a, b in zip(reference, outputs, strict=True))
        print(f"model: {path.name}; shared 2-core x86-64 VM, no GPU; prompt {len(prompt)} tokens, "
              f"{args.seqs} sequences x <= {args.tokens} tokens, {args.rounds} alternating rounds")
        base = totals[sizes[0]][1] / totals[sizes[0]][0]
        print(f"{'batch':>6}{'tok/s':>9}{'x B=1':>8}{'same as B=1':>13}")
        for size in sizes:
            rate = totals[size][1] / totals[size][0]
            print(f"{size:>6}{rate:>9.1f}{rate / base:>8.2f}{same[size]:>9}/{args.seqs}")
    finally:
        llama_cpp.llama_free(ctx)
        llama.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
