# Two entry points for people: `make demo` and `make test`. Both do their own set-up
# (scripts/setup.sh: apt packages, .venv, dockerd, tiny model, sandbox image), idempotently.
VENV ?= .venv
DEMO_ROWS ?= 30
DEMO_OUT ?= out/demo

.PHONY: setup demo test bench clean

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/bin/apigen-local generate --library examples/library.py --seed-file examples/seed.jsonl \
		--rows $(DEMO_ROWS) --out $(DEMO_OUT)

test: setup
	$(VENV)/bin/python -m pytest -q

bench: setup
	$(VENV)/bin/python benchmarks/sandbox_throughput.py

clean:
	rm -rf out .pytest_cache .hypothesis
