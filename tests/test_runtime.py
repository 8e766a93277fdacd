"""Device, profile and seeds."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from coursepkg import runtime


def test_device_is_the_cpu_without_an_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.device() == torch.device("cpu")


def test_device_prefers_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.device().type == "cuda"


@pytest.mark.parametrize("accelerated, expected", [(False, "quick"), (True, "full")])
def test_profile_follows_the_device(monkeypatch, accelerated, expected):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: accelerated)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.profile() == expected
    assert runtime.by_profile(quick=1, full=2) == (1 if expected == "quick" else 2)


@pytest.mark.parametrize("value", ["quick", "FULL", " full "])
def test_profile_environment_variable_wins(monkeypatch, value):
    monkeypatch.setenv("COURSE_PROFILE", value)
    assert runtime.profile() == value.strip().lower()


def test_bad_profile_is_named(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "medium")
    with pytest.raises(ValueError, match="COURSE_PROFILE"):
        runtime.profile()


@pytest.mark.parametrize("seed", [0, 7, 2**32 - 1])
def test_seed_everything_repeats_every_generator(seed):
    def draw():
        generator = runtime.seed_everything(seed)
        return random.random(), np.random.rand(), torch.rand(3), torch.rand(3, generator=generator)  # noqa: NPY002

    first, second = draw(), draw()
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2]) and torch.equal(first[3], second[3])


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (2**32, ValueError), (1.5, TypeError), (True, TypeError)])
def test_bad_seeds_are_named(seed, error):
    with pytest.raises(error, match="seed"):
        runtime.seed_everything(seed)


def test_in_colab(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert runtime.in_colab() is False
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20260101")
    assert runtime.in_colab() is True
    assert "colab=True" in runtime.describe()
