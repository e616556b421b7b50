"""Build the tiny GGUF used by tests and the demo.

The model has random weights, so its text is noise, but everything around it is real: the
llama architecture, a byte-level BPE vocabulary (trained here, deterministically, on a small
built-in corpus) with ChatML special tokens, and a chat template in the metadata. llama.cpp
loads it like any other GGUF, which is what the tests need.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .files import TINY_MODEL_NAME, default_models_dir

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VOCAB_SIZE = 1024
EMBED_DIM = 64
N_LAYERS = 2
N_HEADS = 4
FFN_DIM = 128
CONTEXT_LENGTH = 8192
SEED = 20240626

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Text the BPE merges are learned from: English prose, JSON and Python-ish snippets, the kind
# of text the pipeline prompts and generates. Order and content fix the vocabulary.
_CORPUS = [
    "You are a data labeler. Generate diverse queries and answers for the given functions.",
    "Each query is clear, practical and uses concrete, plausible values for every parameter.",
    "The number of function calls equals the number of requests in the query.",
    "As a data quality evaluator, assess whether the function calls match the user query.",
    "What would be the final velocity of an object that starts at rest and accelerates?",
    "Calculate the number of permutations of 3 elements from a set of 10 elements.",
    "Divide 144 by 12 and add the binary numbers 1011 and 110.",
    "Find the planet Tatooine and the Disney character Mickey Mouse.",
    '{"pairs": [{"query": "text", "answers": [{"name": "final_velocity", '
    '"arguments": {"initial_velocity": 0, "acceleration": 9.8, "time": 10}}]}]}',
    '{"thought": "The call matches the request.", "passes": "yes"}',
    '{"thought": "The arguments are wrong.", "passes": "no"}',
    '[{"name": "permutation_count", "arguments": {"n": 10, "k": 3}}]',
    "def final_velocity(initial_velocity: float, acceleration: float, time: float) -> float:",
    "    return initial_velocity + acceleration * time",
    "The quick brown fox jumps over the lazy dog. Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000.",
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April.",
    "string number integer boolean array object null true false required properties type",
    "description parameters function tools query answers arguments name result error",
]


def _train_tokenizer() -> tuple[list[str], list[str]]:
    """Train a byte-level BPE and return (tokens in id order, merges)."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS * 4, trainer=trainer)
    model = json.loads(tokenizer.to_str())["model"]
    vocab: dict[str, int] = model["vocab"]
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return tokens, merges


def build_tiny_model(path: str | os.PathLike[str] | None = None, *, force: bool = False) -> Path:
    """Write the deterministic tiny GGUF to ``path`` (default ``models/tiny-test.gguf``).

    Returns the path. An existing file is kept unless ``force`` is set.
    """
    target = Path(path) if path is not None else default_models_dir() / TINY_MODEL_NAME
    if target.exists() and not force:
        return target
    try:
        import gguf
    except ImportError as exc:  # the builder is a test-time tool
        raise ConfigError(
            "building the tiny model needs the 'gguf' package: pip install 'apigen-local[test]'"
        ) from exc

    logging.getLogger("gguf").setLevel(logging.WARNING)
    tokens, merges = _train_tokenizer()
    token_types = [
        gguf.TokenType.CONTROL if token in SPECIAL_TOKENS else gguf.TokenType.NORMAL
        for token in tokens
    ]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".gguf.partial")
    writer = gguf.GGUFWriter(str(partial), "llama")
    writer.add_name("apigen-local tiny test model")
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(EMBED_DIM)
    writer.add_block_count(N_LAYERS)
    writer.add_feed_forward_length(FFN_DIM)
    writer.add_head_count(N_HEADS)
    writer.add_head_count_kv(N_HEADS)
    writer.add_rope_dimension_count(EMBED_DIM // N_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(token_types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokens.index("<|endoftext|>"))
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    rng = np.random.default_rng(SEED)

    def weights(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    n_vocab = len(tokens)
    writer.add_tensor("token_embd.weight", weights(n_vocab, EMBED_DIM))
    writer.add_tensor("output_norm.weight", np.ones(EMBED_DIM, dtype=np.float32))
    writer.add_tensor("output.weight", weights(n_vocab, EMBED_DIM))
    for layer in range(N_LAYERS):
        prefix = f"blk.{layer}"
        writer.add_tensor(f"{prefix}.attn_norm.weight", np.ones(EMBED_DIM, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{prefix}.{name}.weight", weights(EMBED_DIM, EMBED_DIM))
        writer.add_tensor(f"{prefix}.ffn_norm.weight", np.ones(EMBED_DIM, dtype=np.float32))
        writer.add_tensor(f"{prefix}.ffn_gate.weight", weights(FFN_DIM, EMBED_DIM))
        writer.add_tensor(f"{prefix}.ffn_up.weight", weights(FFN_DIM, EMBED_DIM))
        writer.add_tensor(f"{prefix}.ffn_down.weight", weights(EMBED_DIM, FFN_DIM))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(target)
    return target
