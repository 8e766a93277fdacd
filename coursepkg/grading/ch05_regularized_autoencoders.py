"""Checks of exercise set ``ch05_regularized_autoencoders`` (the graded functions live in
:mod:`coursepkg.autoencoders`).

Every reference is independent of ``coursepkg.autoencoders``: the KL divergences come from
``torch.distributions.kl_divergence`` between ``Bernoulli`` distributions, the contractive penalty from the
Jacobian that ``torch.autograd.functional.jacobian`` computes for the sigmoid layer, the top-k code from NumPy's
``argsort``. ``masking_noise`` is random, so it is judged by what its docstring promises rather than by one
exact mask: the dropped fraction is p up to sampling error, entries are dropped independently (per-row and
per-column fractions vary as much as independent draws do, no more), surviving entries are unchanged, the input
is not modified, and the same generator seed gives the same mask while another seed gives another.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.distributions import Bernoulli, kl_divergence

from .. import autoencoders
from .checks import Case, Check, Outputs, allclose, call_with_tensors

__all__ = ["CHECKS"]


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float64))


# ----------------------------------------------------------------------------------------------------------
# bernoulli_kl(rho, rho_hat): elementwise KL(Bernoulli(rho) || Bernoulli(rho_hat))


def _bernoulli_kl_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for shape in ((int(rng.integers(1, 12)),), (int(rng.integers(1, 6)), int(rng.integers(1, 6)))):
        cases.append({"rho": float(rng.uniform(0.01, 0.99)), "rho_hat": rng.uniform(0.005, 0.995, size=shape)})
    rho = float(rng.uniform(0.05, 0.5))  # rho_hat = rho somewhere: the divergence must vanish there
    rho_hat = rng.uniform(0.01, 0.99, size=5)
    rho_hat[int(rng.integers(0, 5))] = rho
    cases.append({"rho": rho, "rho_hat": rho_hat})
    return cases


def _bernoulli_kl_expect(case: Case) -> np.ndarray:
    rho_hat = _tensor(case["rho_hat"])
    rho = torch.full_like(rho_hat, case["rho"])
    return kl_divergence(Bernoulli(probs=rho), Bernoulli(probs=rho_hat)).numpy()


# ----------------------------------------------------------------------------------------------------------
# kl_sparsity_penalty(h, rho) = sum_j KL(rho || mean_n h_nj)


def _kl_sparsity_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for n, m in ((int(rng.integers(2, 40)), int(rng.integers(1, 30))), (1, int(rng.integers(1, 5)))):
        cases.append({"h": rng.uniform(0.02, 0.98, size=(n, m)), "rho": float(rng.uniform(0.01, 0.5))})
    # sparse activations near a target: rho_hat close to rho in some units, far in others
    n, m = int(rng.integers(5, 20)), int(rng.integers(3, 12))
    rho = float(rng.uniform(0.02, 0.2))
    cases.append({"h": rng.uniform(0.0, 2 * rho, size=(n, m)).clip(0.001, 0.999), "rho": rho})
    return cases


def _kl_sparsity_expect(case: Case) -> float:
    rho_hat = _tensor(case["h"]).mean(dim=0)
    rho = torch.full_like(rho_hat, case["rho"])
    return float(kl_divergence(Bernoulli(probs=rho), Bernoulli(probs=rho_hat)).sum())


# ----------------------------------------------------------------------------------------------------------
# top_k_sparse(h, k): keep the k largest entries of every row


def _top_k_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(2):
        n, m = int(rng.integers(1, 9)), int(rng.integers(2, 13))
        cases.append({"h": rng.normal(size=(n, m)), "k": int(rng.integers(1, m))})
    m = int(rng.integers(1, 6))
    cases.append({"h": rng.normal(size=(3, m)), "k": m})  # k = m keeps everything
    cases.append({"h": -np.abs(rng.normal(size=(4, 6))), "k": 2})  # all negative: the largest are nearest 0
    return cases


def _top_k_expect(case: Case) -> np.ndarray:
    h, k = case["h"], case["k"]
    kept = np.argsort(-h, axis=1)[:, :k]
    out = np.zeros_like(h)
    np.put_along_axis(out, kept, np.take_along_axis(h, kept, axis=1), axis=1)
    return out


# ----------------------------------------------------------------------------------------------------------
# sigmoid_contractive_penalty(W, h): mean over the batch of ||d sigmoid(W x + b) / dx||_F^2


def _sigmoid_contractive_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for n, d, m in ((int(rng.integers(1, 10)), int(rng.integers(1, 12)), int(rng.integers(1, 10))), (1, 3, 1)):
        W, b, x = rng.normal(size=(m, d)), rng.normal(size=m), rng.normal(size=(n, d))
        h = 1 / (1 + np.exp(-(x @ W.T + b)))
        cases.append({"W": W, "h": h, "x": x, "b": b})
    return cases


def _sigmoid_contractive_call(candidate, case: Case):
    return candidate(_tensor(case["W"]), _tensor(case["h"]))


def _sigmoid_contractive_expect(case: Case) -> float:
    W, b = _tensor(case["W"]), _tensor(case["b"])
    squared_norms = []
    for x in _tensor(case["x"]):
        jacobian = torch.autograd.functional.jacobian(lambda v: torch.sigmoid(W @ v + b), x)  # (m, d)
        squared_norms.append(float((jacobian**2).sum()))
    return float(np.mean(squared_norms))


# ----------------------------------------------------------------------------------------------------------
# masking_noise(x, p, generator=...): judged statistically


def _masking_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for p in (float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.02, 0.2))):
        rows, cols = int(rng.integers(120, 200)), int(rng.integers(120, 200))
        cases.append({"x": rng.uniform(0.1, 1.0, size=(rows, cols)), "p": p, "seed": int(rng.integers(0, 2**31))})
    cases.append({"x": rng.uniform(0.1, 1.0, size=(7, 9)), "p": 0.0, "seed": int(rng.integers(0, 2**31))})
    return cases


def _masking_call(candidate, case: Case):
    x = _tensor(case["x"])
    seed, p = case["seed"], case["p"]
    first = candidate(x, p, generator=torch.Generator().manual_seed(seed))
    again = candidate(x.clone(), p, generator=torch.Generator().manual_seed(seed))
    other = candidate(x.clone(), p, generator=torch.Generator().manual_seed(seed + 1))
    return {"first": first, "again": again, "other": other, "x_after": x}


def _masking_expect(case: Case) -> dict:
    return {"p": case["p"]}


def _first_index(mask: np.ndarray) -> list[int]:
    return [int(i) for i in np.argwhere(mask)[0]]


def _masking_compare(expected: Outputs, got: Outputs, case: Case) -> str | None:
    x, p = case["x"], case["p"]
    if set(got) != {"first", "again", "other", "x_after"}:
        return "masking_noise must return one tensor"
    for key in ("first", "again", "other"):
        if got[key].shape != x.shape:
            return f"the output has shape {got[key].shape}, expected the shape of x, {x.shape}"
    if not np.array_equal(got["x_after"], x):
        return "masking_noise modified its input x in place; return a new tensor and leave x unchanged"
    out = got["first"].astype(np.float64)
    wrong = ~((out == 0) | (out == x))
    if wrong.any():
        i = _first_index(wrong)
        return (
            f"entry {i} is {out[tuple(i)]:.6g}; every entry must be either 0 (dropped) or x{i} = "
            f"{x[tuple(i)]:.6g} (kept unchanged, not rescaled)"
        )
    dropped = out == 0
    if p > 0:
        for axis, name in ((1, "row"), (0, "column")):
            per_line = dropped.mean(axis=axis)
            independent_variance = p * (1 - p) / x.shape[axis]
            if per_line.var() > 3 * independent_variance + 1e-12:
                return (
                    f"the fraction of dropped entries varies from {name} to {name} (variance {per_line.var():.4g}) "
                    f"far more than independent draws would ({independent_variance:.4g}): drop every entry "
                    "independently, not whole rows or columns"
                )
    fraction = float(dropped.mean())
    tolerance = 5 * math.sqrt(p * (1 - p) / x.size) + 1e-12
    if abs(fraction - p) > tolerance:
        return (
            f"{fraction:.4f} of the entries were set to 0 with p={p:.4f}; expected each entry to be dropped with "
            f"probability p (a fraction within {tolerance:.4f} of p)"
        )
    if not np.array_equal(got["again"], got["first"]):
        return (
            "two calls with generators seeded alike gave different masks: draw the random numbers with "
            "torch.rand(..., generator=generator)"
        )
    if p > 0 and np.array_equal(got["other"], got["first"]):
        return "generators with different seeds gave the same mask: draw the random numbers from generator"
    return None


# Points by difficulty: 1 for a formula of a line or two, 2 for a few steps or a numerical subtlety, 3 for a
# loop with bookkeeping or a derivation through several layers. Within a function the grader gives credit
# per kind of case and per output (coursepkg.grading.sandbox).
CHECKS = [
    Check(
        function=autoencoders.bernoulli_kl,
        points=1,
        cases=_bernoulli_kl_cases,
        expect=_bernoulli_kl_expect,
        call=call_with_tensors(torch.float64),
        compare=allclose(rtol=1e-7, atol=1e-10),
        description="KL(Bernoulli(rho) || Bernoulli(rho_hat)) elementwise, against torch.distributions",
    ),
    Check(
        function=autoencoders.kl_sparsity_penalty,
        points=2,
        cases=_kl_sparsity_cases,
        expect=_kl_sparsity_expect,
        call=call_with_tensors(torch.float64),
        compare=allclose(rtol=1e-6, atol=1e-9),
        description="sum over units of KL(rho || mean activation), against torch.distributions",
    ),
    Check(
        function=autoencoders.top_k_sparse,
        points=2,
        cases=_top_k_cases,
        expect=_top_k_expect,
        call=call_with_tensors(torch.float64),
        compare=allclose(rtol=0, atol=0),
        description="the k largest entries of every row kept, the others zero, against NumPy's argsort",
    ),
    Check(
        function=autoencoders.sigmoid_contractive_penalty,
        points=3,
        cases=_sigmoid_contractive_cases,
        expect=_sigmoid_contractive_expect,
        call=_sigmoid_contractive_call,
        compare=allclose(rtol=1e-6, atol=1e-10),
        description="the closed form against the squared Frobenius norm of the autograd Jacobian",
    ),
    Check(
        function=autoencoders.masking_noise,
        points=1,
        cases=_masking_cases,
        expect=_masking_expect,
        call=_masking_call,
        compare=_masking_compare,
        description="dropped fraction, independence, unchanged survivors and reproducibility with a generator",
    ),
]
