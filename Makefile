# The course's two commands (see README.md):
#   make book   set up .venv, execute every chapter and build the site into _build/html
#   make test   set up .venv, then lint, check generated files, run the unit and grading tests and every
#               chapter notebook under nbval
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Notebooks and the grader run in other working directories: make the data folder absolute.
ifdef COURSEPKG_DATA
export COURSEPKG_DATA := $(abspath $(COURSEPKG_DATA))
endif
export PYTHONDONTWRITEBYTECODE := 1
NOTEBOOKS := $(shell grep -l '^kernelspec:' book/*.md)
PYTEST_WORKERS ?= 2

.PHONY: setup book test lint generated notebooks clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: the local CPU build satisfies the package's torch range, so nothing else is pulled
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[book,test,dev]"
	touch $(STAMP)

book: setup
	$(BIN)/jupyter-book build . -W -n --keep-going --all

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

generated: setup
	$(BIN)/python -m coursepkg.grading generate --check

notebooks: setup
	rm -rf _build/nbval && mkdir -p _build/nbval
	for notebook in $(NOTEBOOKS); do \
	  $(BIN)/jupytext --quiet --to ipynb -o _build/nbval/$$(basename $${notebook%.md}).ipynb $$notebook || exit 1; \
	done

test: lint generated notebooks
	$(BIN)/python -m pytest tests _build/nbval -n $(PYTEST_WORKERS) --dist loadfile \
	  --nbval-lax --nbval-current-env --nbval-cell-timeout=900 -p no:cacheprovider

clean:
	rm -rf _build .pytest_cache .ruff_cache
