"""Checks of exercise set ``ch03_backpropagation`` (the graded functions live in :mod:`coursepkg.backprop`).

Every reference is torch.autograd in float64 on the same computation, never the chapter's own code.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import backprop
from .checks import Case, Check, allclose


def _leaf(array) -> torch.Tensor:
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


# --- logistic_least_squares_signals ----------------------------------------------------------------------------------


def _lls_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for n in (None, int(rng.integers(1, 8)), int(rng.integers(1, 8))):
        x = float(rng.normal(scale=2.0)) if n is None else rng.normal(scale=2.0, size=n)
        t = float(rng.uniform()) if n is None else rng.uniform(size=n)
        for lam in (0.0, float(rng.uniform(0.1, 2.0))):
            cases.append({"w": float(rng.normal()), "b": float(rng.normal()), "x": x, "t": t, "lam": lam})
    return cases


def _lls_expect(case: Case) -> dict[str, np.ndarray]:
    w, b = _leaf(case["w"]), _leaf(case["b"])
    x, t = torch.tensor(case["x"], dtype=torch.float64), torch.tensor(case["t"], dtype=torch.float64)
    z = w * x + b
    z.retain_grad()
    y = torch.sigmoid(z)
    y.retain_grad()
    loss = 0.5 * ((y - t) ** 2).sum() + case["lam"] * 0.5 * w**2
    loss.backward()
    return {"y_bar": y.grad.numpy(), "z_bar": z.grad.numpy(), "w_bar": w.grad.numpy(), "b_bar": b.grad.numpy()}


# --- two_layer_backward ----------------------------------------------------------------------------------------------


def _two_layer_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(3):
        d, k, m = (int(s) for s in rng.integers(1, 7, size=3))
        cases.append(
            {
                "W1": rng.normal(size=(k, d)),
                "b1": rng.normal(size=k),
                "W2": rng.normal(size=(m, k)),
                "b2": rng.normal(size=m),
                "x": rng.normal(size=d),
                "t": rng.normal(size=m),
            }
        )
    return cases


def _two_layer_expect(case: Case) -> dict[str, np.ndarray]:
    params = {name: _leaf(case[name]) for name in ("W1", "b1", "W2", "b2")}
    x, t = torch.from_numpy(case["x"]), torch.from_numpy(case["t"])
    h = torch.sigmoid(params["W1"] @ x + params["b1"])
    y = params["W2"] @ h + params["b2"]
    (0.5 * ((y - t) ** 2).sum()).backward()
    return {name: p.grad.numpy() for name, p in params.items()}


# --- softmax_cross_entropy_backward ----------------------------------------------------------------------------------


def _softmax_ce_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for scale, batched, one_hot in ((1.0, False, True), (3.0, True, True), (3.0, True, False), (300.0, True, True)):
        K = int(rng.integers(2, 8))
        shape = (int(rng.integers(1, 6)), K) if batched else (K,)
        z = rng.normal(scale=scale, size=shape)
        if one_hot:
            t = np.eye(K)[rng.integers(K, size=shape[:-1])]
        else:
            t = rng.dirichlet(np.ones(K), size=shape[:-1])
        cases.append({"z": z, "t": t})
    return cases


def _softmax_ce_expect(case: Case) -> np.ndarray:
    z = _leaf(case["z"])
    t = torch.from_numpy(case["t"])
    (-(t * torch.log_softmax(z, dim=-1)).sum()).backward()
    return z.grad.numpy()


# --- matmul_backward -------------------------------------------------------------------------------------------------


def _matmul_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(3):
        m, k, n = (int(s) for s in rng.integers(1, 7, size=3))
        cases.append({"A": rng.normal(size=(m, k)), "B": rng.normal(size=(k, n)), "out_grad": rng.normal(size=(m, n))})
    return cases


def _matmul_expect(case: Case) -> tuple[np.ndarray, np.ndarray]:
    A, B = _leaf(case["A"]), _leaf(case["B"])
    (A @ B).backward(torch.from_numpy(case["out_grad"]))
    return A.grad.numpy(), B.grad.numpy()


# Points by difficulty: 1 for a formula of a line or two, 2 for a few steps or a numerical subtlety, 3 for a
# loop with bookkeeping or a derivation through several layers. Within a function the grader gives credit
# per kind of case and per output (coursepkg.grading.sandbox).
CHECKS = [
    Check(
        function=backprop.logistic_least_squares_signals,
        points=2,
        cases=_lls_cases,
        expect=_lls_expect,
        compare=allclose(rtol=1e-8, atol=1e-12),
        description="the four error signals, with and without the regulariser, one example or several, vs torch",
    ),
    Check(
        function=backprop.two_layer_backward,
        points=3,
        cases=_two_layer_cases,
        expect=_two_layer_expect,
        compare=allclose(rtol=1e-8, atol=1e-12),
        description="the gradients of the two-layer network on random shapes, against torch.autograd",
    ),
    Check(
        function=backprop.softmax_cross_entropy_backward,
        points=2,
        cases=_softmax_ce_cases,
        expect=_softmax_ce_expect,
        compare=allclose(rtol=1e-8, atol=1e-12),
        description="dL/dz for one-hot and soft targets, one example or a batch, and huge logits, vs torch",
    ),
    Check(
        function=backprop.matmul_backward,
        points=2,
        cases=_matmul_cases,
        expect=_matmul_expect,
        compare=allclose(rtol=1e-8, atol=1e-12),
        description="(A_bar, B_bar) of C = A @ B on random shapes, against torch.autograd",
    ),
]
