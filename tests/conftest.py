"""Fixtures shared by the test files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

# Modules whose tests share one costly module fixture: a venv set up by the autograder's setup.sh, a class graded
# once, the wheel's venv. Under `pytest -n N --dist load` their tests stay on one worker
# (the fixture is built once); every other test goes, one at a time, to whichever worker is free, so that no
# single file bounds the run.
ONE_WORKER_MODULES = frozenset({"test_autograder.py", "test_batch.py", "test_installed_package.py"})


@pytest.hookimpl(optionalhook=True)  # pytest -p no:xdist runs without the hook
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's scheduler for ``--dist load``: the tests of :data:`ONE_WORKER_MODULES` as one unit each.

    (pytest-xdist's own ``--dist loadgroup`` and its ``xdist_group`` mark would say the same, but xdist 3.8 marks a
    group by setting ``item._nodeid``, which pytest 9's ``Node.nodeid`` no longer reads, so the group is ignored.)
    """
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class CostlyModulesOnOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module.rsplit("/", 1)[-1] in ONE_WORKER_MODULES else nodeid

    return CostlyModulesOnOneWorker(config, log)


def pytest_collection_modifyitems(items):
    """The tests that read the book build (they take :func:`book_build`) run last, every other test in the order
    collected: under `make test` the build runs beside the tests, so the others run while it executes."""
    items.sort(key=lambda item: "book_build" in item.fixturenames)  # a stable sort keeps the rest in order


# How long a test waits for the book build that `make test` runs beside it: far more than the build takes.
BOOK_BUILD_TIMEOUT_S = 45 * 60


@pytest.fixture(scope="session")
def book_build() -> None:
    """Wait for the book build that `make test` runs beside the tests, and fail if it failed.

    `make test` starts ``jupyter-book build`` in the background and sets ``COURSE_BOOK_STATUS`` to the file where
    the build's exit status will be written. Without it (``pytest`` run by hand) there is nothing to wait for: the
    tests use the build already in ``_build/`` (or build it, or skip, as each says).
    """
    status = os.environ.get("COURSE_BOOK_STATUS")
    if not status:
        return
    path, deadline = Path(status), time.monotonic() + BOOK_BUILD_TIMEOUT_S
    while not path.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"the book build wrote no status to {path} in {BOOK_BUILD_TIMEOUT_S} s")
        time.sleep(1)
    code = path.read_text().strip()
    if code != "0":
        # one line: every test that reads the build fails with it, and `make test` prints the log's end once
        pytest.fail(f"the book build failed (exit {code}): see _build/book-build.log", pytrace=False)


def _devices() -> list[str]:
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


@pytest.fixture(params=_devices())
def device(request) -> torch.device:
    """Each available device in turn: the CPU, plus CUDA or Apple's MPS when present. Equivalence tests take it,
    so that a machine with an accelerator checks the accelerator's path too."""
    return torch.device(request.param)


@pytest.fixture(params=[d for d in _devices() if d != "mps"])
def float64_device(request) -> torch.device:
    """Each available device that computes in float64 (Apple's MPS does not): for the float64 equivalence tests."""
    return torch.device(request.param)


MYST_FRONT_MATTER = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


@pytest.fixture
def myst_chapter():
    """The text of a tiny MyST-Markdown chapter notebook: ``myst_chapter(title, body)`` is the jupytext front
    matter, the heading ``# title`` and ``body`` (the chapter's cells, in MyST)."""

    def write(title: str, body: str) -> str:
        return f"{MYST_FRONT_MATTER}\n# {title}\n\n{body}"

    return write
