# Set-up and entry points. Every target installs first, so a fresh clone needs only
# `make demo` or `make test`. Override the torch wheel with TORCH_SPEC, e.g.
#   TORCH_SPEC='torch==2.5.1' make demo
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.neuron-pilot-installed
PYTEST_ARGS ?=
# test files run in parallel (pytest-xdist; one file stays on one process, so module fixtures run
# once; at most 8 processes); PYTEST_WORKERS=0 runs them in this process, one after another. The
# suite mostly waits (worker subprocesses, a Slurm scheduler, UI pilots), so it runs one process more
# than there are cores, and at least 3.
NPROC := $(shell nproc 2>/dev/null || echo 2)
PYTEST_WORKERS ?= $(shell n=$(NPROC); if [ $$n -lt 2 ]; then echo 3; else echo $$((n + 1)); fi)
PYTEST_PARALLEL := $(if $(filter 0,$(PYTEST_WORKERS)),-p no:xdist,-n $(PYTEST_WORKERS) --maxprocesses 8 --dist loadfile)

.PHONY: install demo demo-headless test test-fast bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/neuron-pilot demo

demo-headless: install
	$(BIN)/neuron-pilot demo --headless

test: install
	$(BIN)/lint-imports
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q $(PYTEST_PARALLEL) $(PYTEST_ARGS)

test-fast: install
	$(BIN)/lint-imports
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q $(PYTEST_PARALLEL) -m "not slow" $(PYTEST_ARGS)

bench: install
	$(BIN)/neuron-pilot bench

clean:
	rm -rf $(VENV) .pytest_cache
