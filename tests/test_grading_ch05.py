"""The checks of exercise set ch05_regularized_autoencoders: the reference passes, deliberately wrong functions fail."""

from __future__ import annotations

import pytest
import torch

from coursepkg.grading import checks_for
from coursepkg.grading.checks import run_in_process

SET = "ch05_regularized_autoencoders"
CHECKS = {check.name: check for check in checks_for(SET)}


# What every set must satisfy (one check per graded function, the reference passes, a stub fails) is tested
# for all sets at once in test_grading_sets.py.


def test_the_chapter_grades_these_functions():
    assert {"kl_sparsity_penalty", "masking_noise", "sigmoid_contractive_penalty", "top_k_sparse"} <= set(CHECKS)


# Deliberately wrong versions: each must be caught, with a message that says what differs.


def _kl(rho, q):
    return rho * torch.log(rho / q) + (1 - rho) * torch.log((1 - rho) / (1 - q))


WRONG = {
    "bernoulli_kl": {
        "swapped arguments": lambda rho, rho_hat: _kl(rho_hat, torch.as_tensor(rho, dtype=rho_hat.dtype)),
        "log base 2": lambda rho, rho_hat: _kl(rho, rho_hat) / torch.log(torch.tensor(2.0, dtype=rho_hat.dtype)),
        "first term only": lambda rho, rho_hat: rho * torch.log(rho / rho_hat),
    },
    "kl_sparsity_penalty": {
        "swapped arguments": lambda h, rho: _kl(h.mean(0), torch.tensor(rho, dtype=h.dtype)).sum(),
        "mean over units": lambda h, rho: _kl(rho, h.mean(0)).mean(),
        "mean over the wrong axis": lambda h, rho: _kl(rho, h.mean(1)).sum(),
        "per-activation KL": lambda h, rho: _kl(rho, h).sum(1).mean(),
    },
    "top_k_sparse": {
        "smallest k": lambda h, k: h * torch.zeros_like(h).scatter(1, torch.topk(-h, k, dim=1).indices, 1.0),
        "largest magnitude": lambda h, k: h * torch.zeros_like(h).scatter(1, torch.topk(h.abs(), k, dim=1).indices, 1),
        "k - 1 kept": lambda h, k: h * torch.zeros_like(h).scatter(1, torch.topk(h, max(k - 1, 0), dim=1).indices, 1.0),
        "mask instead of values": lambda h, k: torch.zeros_like(h).scatter(1, torch.topk(h, k, dim=1).indices, 1.0),
        "top k of the columns": lambda h, k: (
            h * torch.zeros_like(h).scatter(0, torch.topk(h, min(k, h.shape[0]), dim=0).indices, 1.0)
        ),
    },
    "sigmoid_contractive_penalty": {
        "slope not squared": lambda W, h: ((h * (1 - h)) @ (W**2).sum(1)).mean(),
        "|W| instead of W^2": lambda W, h: (((h * (1 - h)) ** 2) @ W.abs().sum(1)).mean(),
        "sum over the batch": lambda W, h: (((h * (1 - h)) ** 2) @ (W**2).sum(1)).sum(),
        "h instead of h(1 - h)": lambda W, h: ((h**2) @ (W**2).sum(1)).mean(),
    },
}


def _masking(x, p, *, generator=None, keep_probability=False, rescale=False, rows=False, in_place=False):
    shape = (x.shape[0], 1) if rows else x.shape
    u = torch.rand(shape, generator=generator, dtype=x.dtype).expand(x.shape)
    drop = u >= p if keep_probability else u < p
    if in_place:
        x[drop] = 0
        return x
    out = torch.where(drop, torch.zeros_like(x), x)
    return out / (1 - p) if rescale else out


WRONG["masking_noise"] = {
    "drops with probability 1 - p": lambda x, p, generator=None: _masking(
        x, p, generator=generator, keep_probability=True
    ),
    "rescales the survivors": lambda x, p, generator=None: _masking(x, p, generator=generator, rescale=True),
    "drops whole rows": lambda x, p, generator=None: _masking(x, p, generator=generator, rows=True),
    "modifies x in place": lambda x, p, generator=None: _masking(x, p, generator=generator, in_place=True),
    "ignores the generator": lambda x, p, generator=None: _masking(x, p),
    "drops with probability p / 2": lambda x, p, generator=None: _masking(x, p / 2, generator=generator),
}


@pytest.mark.parametrize(("name", "mutation"), [(name, mutation) for name in WRONG for mutation in WRONG[name]])
def test_wrong_function_fails(name, mutation):
    wrong = WRONG[name][mutation]
    wrong.__name__ = name
    failures = run_in_process(CHECKS[name], wrong)
    assert failures, f"the check of {name} accepted a version that {mutation}"
    assert failures[0].startswith("case "), failures[0]


def test_masking_messages_name_the_problem():
    check = CHECKS["masking_noise"]
    assert "rescaled" in run_in_process(check, WRONG["masking_noise"]["rescales the survivors"])[0]
    assert "independently" in run_in_process(check, WRONG["masking_noise"]["drops whole rows"])[0]
    assert "in place" in run_in_process(check, WRONG["masking_noise"]["modifies x in place"])[0]
    assert "generator" in run_in_process(check, WRONG["masking_noise"]["ignores the generator"])[0]
