"""The local model: finding GGUF files, loading them with llama.cpp, chat templates, Outlines constraints."""

from .cpu import wait_briefly_at_barriers

wait_briefly_at_barriers()  # before any module of this package loads llama.cpp (and libgomp with it)
