"""Where and how the course's code runs: device, profile, seeds.

Every function that trains takes ``device=`` and defaults to :func:`device`; every experiment takes a seed
and calls :func:`seed_everything`; the amount of work an experiment does is chosen by :func:`profile`.
"""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import torch

PROFILES = ("quick", "full")


def device() -> torch.device:
    """The best available device: CUDA if present, else Apple MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def profile() -> str:
    """``"quick"`` or ``"full"``: how long experiments train.

    The environment variable ``COURSE_PROFILE`` decides when set; otherwise ``"full"`` on a GPU (CUDA or MPS)
    and ``"quick"`` on a CPU. Quick keeps each chapter to about a minute on two CPU cores; full trains long
    enough to reach the numbers the chapters quote from the papers.
    """
    chosen = os.environ.get("COURSE_PROFILE", "").strip().lower()
    if chosen:
        if chosen not in PROFILES:
            raise ValueError(f"COURSE_PROFILE must be one of {PROFILES}, got {chosen!r}")
        return chosen
    return "quick" if device().type == "cpu" else "full"


def by_profile(quick, full):
    """Pick the setting of the current :func:`profile`: ``by_profile(quick=3, full=100)``."""
    return quick if profile() == "quick" else full


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and torch's global generators (CPU and CUDA) with ``seed``.

    Returns a fresh ``torch.Generator`` seeded with the same value, for code that prefers an explicit
    generator. The same seed on the same device gives the same numbers.
    """
    from .validation import integer

    seed = integer(seed, "seed", minimum=0, maximum=2**32 - 1)
    random.seed(int(seed))
    np.random.seed(int(seed))  # noqa: NPY002 -- seeding the legacy global generator is the point
    torch.manual_seed(int(seed))  # also seeds every CUDA device
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return generator


def _draw(sampler, shape, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    from .validation import check_generator

    check_generator(generator)
    where = generator.device if generator is not None else like.device
    return sampler(tuple(shape), generator=generator, dtype=like.dtype, device=where).to(like.device)


def randn(shape, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """N(0, I) noise of ``shape`` with ``like``'s dtype and device, drawn from ``generator`` when given.

    The course's one rule for generators and devices: the numbers are drawn on the generator's device and then
    moved to ``like``'s, so a seeded CPU generator gives the same draws for a model on the CPU or on a GPU.
    """
    return _draw(torch.randn, shape, like, generator)


def rand(shape, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform [0, 1) noise of ``shape`` with ``like``'s dtype and device (the rule of :func:`randn`)."""
    return _draw(torch.rand, shape, like, generator)


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def describe() -> str:
    """One line naming the device, profile, torch version and thread count: printed at the top of chapters."""
    dev = device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type
    return (
        f"device={name} profile={profile()} torch={torch.__version__} "
        f"threads={torch.get_num_threads()} colab={in_colab()}"
    )
