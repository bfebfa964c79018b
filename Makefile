# bnablate — `make help` lists the targets. Two commands set everything up on a fresh machine: `make demo`, `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Real datasets for manual runs and benchmarks (tests never need them): ../shared/data here, ./data by default.
DATA_ROOT ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),data)

.PHONY: help setup demo test test-full bench clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv and install bnablate with torch/torchvision pinned by constraints.txt

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

demo: setup ## run the default sweep (BN placement on the embedded digits data) and print the summary table
	BNABLATE_DATA_ROOT=$(DATA_ROOT) $(BIN)/bnablate sweep

test: setup ## the test suite (no downloads, no real datasets; under 10 minutes on 2 cores)
	$(BIN)/python -m pytest -q

test-full: setup ## every test, the slow end-to-end ones included
	$(BIN)/python -m pytest -q -m "slow or not slow"

bench: setup ## samples/s of bnablate vs the tutorial loop, as ratios (needs real data: DATA_ROOT, here ../shared/data)
	BNABLATE_DATA_ROOT=$(DATA_ROOT) $(BIN)/bnablate bench

clean: ## remove runs/, build outputs and caches (keeps .venv)
	rm -rf runs build dist .pytest_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
