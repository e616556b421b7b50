"""The local model: finding GGUF files, loading them with llama.cpp, chat templates, Outlines constraints."""
