"""Stage 1 inputs: APIGen sampling, all prompt text, and constrained generation of query/answer pairs."""
