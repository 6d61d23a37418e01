# Quick start:  make demo   (creates .venv, installs lstmae, runs the demo job)
#               make test   (installs the dev extras, checks the import layers, runs the whole test suite)
#               make docs   (installs the docs extra, builds the site into docs/_build/html; warnings are errors)
#               make lint   (the import layers only: lint-imports, contracts in pyproject.toml)
# pip install -e . compiles src/lstmae/backends/kernels.c into src/lstmae/backends/ (rebuilt here when it changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
CONSTRAINTS := -c constraints.txt

.PHONY: demo test lint docs install dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml setup.py src/lstmae/backends/kernels.c constraints.txt | $(BIN)/python
	$(PIP) install -q $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -q $(CONSTRAINTS) -e '.[dev]'
	touch $@

$(VENV)/.installed-docs: $(VENV)/.installed
	$(PIP) install -q $(CONSTRAINTS) -e '.[docs]'
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/lstmae demo -o demo-output

lint: $(VENV)/.installed-dev
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest

# The gallery runs its examples (a few seconds each); open docs/_build/html/index.html.
docs: $(VENV)/.installed-docs
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) demo-output docs/_build docs/auto_examples docs/generated docs/sg_execution_times.rst .pytest_cache build src/lstmae/backends/_kernels*
