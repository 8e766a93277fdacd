# The course's two commands (see README.md):
#   make book   set up .venv, regenerate the chapters' Colab notebooks, execute every chapter and build the site
#               into _build/html (fails on any warning or cell error)
#   make test   set up .venv (and Chromium when it can), then lint, check generated files, build the book, run
#               the unit and grading tests, every chapter's Colab notebook under nbval and the browser test of
#               the built site (tests/test_book_site.py, screenshots in _build/screenshots/)
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
# Each pytest worker (and each notebook kernel it starts) gets its share of the cores: with torch's default of one
# thread per core in every process, the two workers' thread pools oversubscribed the two cores and spun, and the
# nbval stage took about 11 minutes instead of 2.
CORES := $(shell nproc 2>/dev/null || echo 2)
THREADS_PER_WORKER := $(shell echo $$(( $(CORES) / $(PYTEST_WORKERS) > 0 ? $(CORES) / $(PYTEST_WORKERS) : 1 )))

.PHONY: setup book test lint generated notebooks browser clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: the local CPU build satisfies the package's torch range, so nothing else is pulled
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[book,test,dev]"
	touch $(STAMP)

# _build/book.ok marks a build that passed: the browser test reuses a build newer than every source.
book: setup
	$(BIN)/python -m coursepkg.notebooks
	rm -f _build/book.ok
	$(BIN)/jupyter-book build . -W -n --keep-going --all
	touch _build/book.ok

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

generated: setup
	$(BIN)/python -m tools.exercises --check

# The Colab notebook beside each chapter (book/*.ipynb) must be what `python -m coursepkg.notebooks` writes.
notebooks: setup
	$(BIN)/python -m coursepkg.notebooks --check

# Chromium for the browser test (Debian's package, driven by playwright; no browser download). Installed when
# this runs as root with apt-get; otherwise the browser test is skipped unless COURSE_REQUIRE_BROWSER=1.
browser:
	@if [ -n "$$CHROMIUM" ] || command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium for the browser test"; \
	  apt-get install -y -qq chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null); \
	else echo "chromium is not installed: tests/test_book_site.py will be skipped (apt-get install chromium)"; fi

test: lint generated notebooks browser book
	OMP_NUM_THREADS=$(THREADS_PER_WORKER) $(BIN)/python -m pytest tests $(NOTEBOOKS:.md=.ipynb) \
	  -n $(PYTEST_WORKERS) --dist loadfile \
	  --nbval-lax --nbval-current-env --nbval-cell-timeout=900 -p no:cacheprovider --durations=15

clean:
	rm -rf _build book/api .pytest_cache .ruff_cache
