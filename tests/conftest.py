"""Fixtures shared by the test files."""

from __future__ import annotations

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
