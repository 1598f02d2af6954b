# modif-solde: `make run` starts everything, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fautes lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/modif-solde dev

lint: $(STAMP)
	$(BIN)/ruff check modif_solde tests $(wildcard bench)
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/pytest -q

# The fault suite alone (it is part of `make test` too): real processes killed mid-cycle.
test-fautes: $(STAMP)
	$(BIN)/pytest -q -m fautes tests/fautes

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
