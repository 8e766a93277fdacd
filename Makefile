# The course's two commands (see README.md):
#   make book   set up .venv and the installed package (wheel-env, below), regenerate the chapters' Colab
#               notebooks, execute every chapter in the installed package's environment and build the site into
#               _build/html (fails on any warning or cell error)
#   make test   set up .venv (and Chromium when it can), then lint, check generated files, build the book, and
#               run the unit and grading tests, the checks of the executed chapters, the installed-package test
#               (the Colab notebooks' install cell and the exercise notebooks, in the wheel's environment) and the
#               browser test of the built site (tests/test_book_site.py, screenshots in _build/screenshots/)
#
# Each chapter runs once per `make test`: in the book build. Its kernel is the python of a fresh venv outside the
# repository that holds the built wheel (not editable, the repository not on sys.path), so the book's outputs
# come from the package as a student installs it; tests/test_executed_chapters.py then checks the executed
# notebooks the build leaves in _build/jupyter_execute (every cell ran, no error). What a chapter's Colab
# notebook adds to the chapter, its install cell, is cheap and runs on its own, with the exercise notebooks, in
# tests/test_installed_package.py, so the chapters are not run a second time under nbval.
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
PYTEST_WORKERS ?= 2
# Each pytest worker (and each notebook kernel it starts) gets its share of the cores: with torch's default of one
# thread per core in every process, the workers' thread pools would oversubscribe the cores and spin.
CORES := $(shell nproc 2>/dev/null || echo 2)
# The installed package: the wheel built from this tree, in a fresh venv outside the repository, with the notebook
# runtime Colab has (ipykernel, ipywidgets), nbclient to run notebooks and, for the book build's kernel only,
# myst-nb (coursepkg.book.glue stores the chapters' numbers with it). KERNELS holds the kernelspec "python3" that
# the chapters name, pointing at that venv's python; the book build finds it through JUPYTER_PATH.
WHEEL_ENV ?= $(or $(TMPDIR),/tmp)/coursepkg-wheel-env-$(shell id -u)
WHEEL_PYTHON := $(WHEEL_ENV)/bin/python
KERNELS := $(CURDIR)/_build/kernels
export COURSEPKG_WHEEL_ENV := $(WHEEL_ENV)
THREADS_PER_WORKER := $(shell echo $$(( $(CORES) / $(PYTEST_WORKERS) > 0 ? $(CORES) / $(PYTEST_WORKERS) : 1 )))

.PHONY: setup wheel-env wheel-runtime wheel-install book book-build test full lint generated notebooks browser clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: the local CPU build satisfies the package's torch range, so nothing else is pulled
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[book,test,dev]"
	touch $(STAMP)

# Rebuilt every time: the wheel must be the tree as it is. In two halves, so that the slow one (a fresh venv with
# torch and the notebook runtime, which needs nothing of .venv) is set up beside .venv; then .venv's pip builds
# the wheel from the tree and the venv installs it. torch first, as in setup, so that nothing else is pulled.
wheel-env:
	$(MAKE) --no-print-directory -j2 setup wheel-runtime
	$(MAKE) --no-print-directory wheel-install

wheel-runtime:
	rm -rf $(WHEEL_ENV)
	$(PYTHON) -m venv $(WHEEL_ENV)
	$(WHEEL_PYTHON) -m pip install --quiet torch==2.13.0
	$(WHEEL_PYTHON) -m pip install --quiet ipykernel ipywidgets nbclient myst-nb

wheel-install: setup
	rm -rf _build/wheel $(KERNELS) build  # a stale build/lib would put removed modules in the wheel
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir _build/wheel .
	rm -rf build coursepkg.egg-info
	$(WHEEL_PYTHON) -m pip install --quiet _build/wheel/coursepkg-*.whl
	mkdir -p $(KERNELS)/kernels/python3
	printf '{"argv": ["%s", "-m", "ipykernel_launcher", "-f", "{connection_file}"],\n "display_name": "Python 3 (the coursepkg wheel)", "language": "python"}\n' \
	  "$(WHEEL_PYTHON)" > $(KERNELS)/kernels/python3/kernel.json

# _build/book.ok marks a build that passed: the browser test reuses a build newer than every source.
book: wheel-env
	$(MAKE) --no-print-directory book-build

book-build:
	$(BIN)/python -m tools.notebooks
	rm -f _build/book.ok
	JUPYTER_PATH=$(KERNELS) $(BIN)/jupyter-book build . -W -n --keep-going --all
	touch _build/book.ok

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

generated: setup
	$(BIN)/python -m tools.exercises --check

# The Colab notebook beside each chapter (book/*.ipynb) must be what `python -m tools.notebooks` writes.
notebooks: setup
	$(BIN)/python -m tools.notebooks --check

# Chromium for the browser test (Debian's package, driven by playwright; no browser download). Installed when
# this runs as root with apt-get; otherwise the browser test is skipped unless COURSE_REQUIRE_BROWSER=1.
browser:
	@if [ -n "$$CHROMIUM" ] || command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium for the browser test"; \
	  apt-get install -y -qq chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null); \
	else echo "chromium is not installed: tests/test_book_site.py will be skipped (apt-get install chromium)"; fi

# The setup of .venv, the wheel's runtime venv and Chromium run side by side (mostly unpacking: one core each);
# the book build and pytest run one after the other: on two cores, run side by side, the chapters' torch threads
# and the tests compete for the same cores and the whole run takes longer (README.md, Timings).
# --dist load, with the scheduler of tests/conftest.py: a test at a time to whichever worker is free, except the
# modules with a costly module fixture (a venv, a graded class), whose tests stay on one worker.
# COURSE_REQUIRE_BUILD: the checks of the executed chapters and of the wheel fail, not skip, without the build.
test:
	$(MAKE) --no-print-directory -j3 setup wheel-runtime browser
	$(MAKE) --no-print-directory lint generated notebooks wheel-install
	$(MAKE) --no-print-directory book-build
	OMP_NUM_THREADS=$(THREADS_PER_WORKER) COURSE_REQUIRE_BUILD=1 $(BIN)/python -m pytest tests \
	  -n $(PYTEST_WORKERS) --dist load -p no:cacheprovider --durations=15

# The full profile (long enough to reach the papers' numbers; meant for a GPU): every chapter run in
# the installed package's kernel, and a record per chapter in records/full/ (glued numbers, time, memory, device).
full: setup wheel-env
	JUPYTER_PATH=$(KERNELS) $(BIN)/python -m tools.profile_record --profile full

clean:
	rm -rf _build book/api .pytest_cache .ruff_cache $(WHEEL_ENV)
