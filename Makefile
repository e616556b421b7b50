# Two entry points for people: `make demo` and `make test`. Both do their own set-up
# (scripts/setup.sh: apt packages, .venv, dockerd, tiny model, sandbox image), idempotently.
VENV ?= .venv
DEMO_ROWS ?= 30
DEMO_OUT ?= out/demo

.PHONY: setup demo test lint bench clean

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/bin/apigen-local generate --library examples/library.py --seed-file examples/seed.jsonl \
		--rows $(DEMO_ROWS) --out $(DEMO_OUT)
	@echo "open the run report: $(abspath $(DEMO_OUT))/report.html"

test: setup
	$(VENV)/bin/python -m pytest -q

lint: setup
	$(VENV)/bin/ruff check apigen_local sandbox tests benchmarks examples scripts

# The four benchmarks (not part of `make test`); each prints its table and ratios and exits 1 when
# it misses its target. All of them run; the target fails if any did.
BENCHMARKS = constrained_overhead sandbox_throughput end_to_end prompt_cache

bench: setup
	@status=0; for name in $(BENCHMARKS); do \
		echo "== benchmarks/$$name.py"; $(VENV)/bin/python benchmarks/$$name.py || status=1; \
	done; exit $$status

clean:
	rm -rf out .pytest_cache .hypothesis
