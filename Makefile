# Quick start:  make demo   (creates .venv, installs lstmae, runs the demo job)
#               make test   (installs the dev extras, checks the import layers, runs the whole test suite)
#               make lint   (the import layers only: lint-imports, contracts in pyproject.toml)
# pip install -e . compiles src/lstmae/backends/kernels.c into src/lstmae/backends/ (rebuilt here when it changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
CONSTRAINTS := -c constraints.txt

.PHONY: demo test lint install dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml setup.py src/lstmae/backends/kernels.c constraints.txt | $(BIN)/python
	$(PIP) install -q $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -q $(CONSTRAINTS) -e '.[dev]'
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/lstmae demo -o demo-output

lint: $(VENV)/.installed-dev
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) demo-output .pytest_cache build src/lstmae/backends/_kernels*
