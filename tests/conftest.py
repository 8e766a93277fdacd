"""Fixtures shared by the test files."""

from __future__ import annotations

import pytest
import torch


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
