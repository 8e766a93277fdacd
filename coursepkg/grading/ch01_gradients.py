"""Checks of exercise set ``ch01_gradients`` (the graded functions live in :mod:`coursepkg.gd`).

Every reference is independent of ``coursepkg.gd``: gradients and Jacobians come from ``torch.autograd`` in
float64, the halving rule from the closed form of a quadratic's decrease along a line. Functions that take a
callable (``halving_step``, ``sgd_epoch``, ``numerical_gradient``) get it built inside the sandbox, by
``call``, from the case's arrays. Only the references use torch, and they import it when they run: the sandbox,
which runs ``cases`` and ``call`` only, grades this NumPy chapter without loading torch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .. import gd
from .checks import Case, Check, allclose

if TYPE_CHECKING:
    import torch

__all__ = ["CHECKS"]


def _tensor(array: np.ndarray) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.array(array, dtype=np.float64))


def _spd(rng: np.random.Generator, d: int) -> np.ndarray:
    """A random symmetric positive-definite (d, d) matrix with eigenvalues between 0.5 and about 5."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (q * rng.uniform(0.5, 5.0, size=d)) @ q.T


# ----------------------------------------------------------------------------------------------------------
# least_squares_grad


def _least_squares_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for n, d in ((int(rng.integers(2, 30)), int(rng.integers(2, 8))), (1, int(rng.integers(1, 4)))):
        cases.append({"X": rng.normal(size=(n, d)), "t": rng.normal(size=n), "w": rng.normal(size=d)})
    return cases


def _least_squares_expect(case: Case) -> np.ndarray:
    import torch

    X, t = _tensor(case["X"]), _tensor(case["t"])
    w = _tensor(case["w"]).requires_grad_(True)
    loss = 0.5 * ((X @ w - t) ** 2).sum()
    (gradient,) = torch.autograd.grad(loss, w)
    return gradient.numpy()


# ----------------------------------------------------------------------------------------------------------
# halving_step on a quadratic f(w) = ½ wᵀAw − bᵀw: along w − η g, f decreases iff η < 2 gᵀ∇f(w) / gᵀAg.


def _halving_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for halvings in (0, int(rng.integers(1, 4)), int(rng.integers(4, 9))):
        d = int(rng.integers(1, 6))
        A, b, w = _spd(rng, d), rng.normal(size=d), rng.normal(size=d)
        gradient = A @ w - b
        g = gradient + 0.3 * np.linalg.norm(gradient) * rng.normal(size=d) / math.sqrt(d)
        if g @ gradient <= 0.1 * np.linalg.norm(g) * np.linalg.norm(gradient):
            g = gradient  # keep g a clear descent direction
        threshold = 2 * (g @ gradient) / (g @ A @ g)
        # lr / threshold = 2**(halvings - u) with u in [0.1, 0.9] keeps every tried step away from the threshold
        lr = threshold * 2.0 ** (halvings - rng.uniform(0.1, 0.9))
        cases.append({"A": A, "b": b, "w": w, "g": g, "lr": float(lr)})
    return cases


def _quadratic(A: np.ndarray, b: np.ndarray):
    return lambda v: 0.5 * float(np.asarray(v) @ A @ np.asarray(v)) - float(b @ np.asarray(v))


def _halving_call(candidate, case: Case):
    return candidate(_quadratic(case["A"], case["b"]), case["w"].copy(), case["g"].copy(), case["lr"])


def _halving_expect(case: Case) -> tuple[np.ndarray, float]:
    A, b, w, g = case["A"], case["b"], case["w"], case["g"]
    threshold = 2 * (g @ (A @ w - b)) / (g @ A @ g)
    eta = case["lr"]
    while eta >= threshold:
        eta /= 2
    return w - eta * g, eta


# ----------------------------------------------------------------------------------------------------------
# sgd_epoch on mean least squares: grad_on_batch(w, S) = (1/|S|) Σ_{n∈S} x_n (x_nᵀw − t_n).


def _sgd_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for kind in ("uneven", "any", "single"):
        n, d = int(rng.integers(5, 40)), int(rng.integers(1, 6))
        if kind == "single":
            batch_size = 1
        else:
            batch_size = int(rng.integers(2, n))
            while kind == "uneven" and n % batch_size == 0:
                batch_size = int(rng.integers(2, n))
        X = rng.normal(size=(n, d)) / math.sqrt(d)
        cases.append(
            {
                "X": X,
                "t": rng.normal(size=n),
                "w": rng.normal(size=d),
                "n": n,
                "batch_size": batch_size,
                "lr": float(rng.uniform(0.05, 0.4)),
                "seed": int(rng.integers(0, 2**31)),
            }
        )
    return cases


def _sgd_call(candidate, case: Case) -> dict:
    X, t, n = case["X"], case["t"], case["n"]
    calls = []

    def grad_on_batch(w, S):
        S = np.asarray(S)
        if S.ndim != 1 or S.size == 0 or not np.issubdtype(S.dtype, np.integer):
            raise ValueError(f"grad_on_batch got indices {S!r}; expected a non-empty 1-D integer array")
        if S.min() < 0 or S.max() >= n:
            raise IndexError(f"grad_on_batch got an index outside 0..{n - 1}")
        calls.append(S.size)
        w = np.asarray(w, dtype=np.float64)
        return X[S].T @ (X[S] @ w - t[S]) / S.size

    w = candidate(grad_on_batch, case["w"].copy(), n, case["batch_size"], case["lr"], case["seed"])
    return {"w": w, "number of grad_on_batch calls": len(calls)}


def _sgd_expect(case: Case) -> dict:
    import torch

    X, t, n, size = _tensor(case["X"]), _tensor(case["t"]), case["n"], case["batch_size"]
    order = torch.from_numpy(np.random.default_rng(case["seed"]).permutation(n))
    w = _tensor(case["w"])
    batches = torch.split(order, size)  # consecutive blocks of `size`, the last one shorter
    for S in batches:
        w = w.detach().requires_grad_(True)
        loss = 0.5 * ((X[S] @ w - t[S]) ** 2).mean()
        (gradient,) = torch.autograd.grad(loss, w)
        w = w.detach() - case["lr"] * gradient
    return {"w": w.numpy(), "number of grad_on_batch calls": len(batches)}


# ----------------------------------------------------------------------------------------------------------
# numerical_gradient of f(w) = ½ wᵀAw − bᵀw + Σ c_i sin(w_i), whose gradient torch.autograd gives exactly.


def _numerical_gradient_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for d in (1, int(rng.integers(2, 7))):
        A = _spd(rng, d) + np.eye(d)  # curvature >= 1 > |c|, so one-sided differences are visibly off
        cases.append(
            {
                "A": A,
                "b": rng.normal(size=d),
                "c": rng.uniform(-0.5, 0.5, size=d),
                "w": rng.normal(size=d),
                "eps": 1e-4,
            }
        )
    return cases


def _numerical_gradient_call(candidate, case: Case):
    A, b, c = case["A"], case["b"], case["c"]

    def f(v):
        v = np.asarray(v, dtype=np.float64)
        return 0.5 * float(v @ A @ v) - float(b @ v) + float(np.sum(c * np.sin(v)))

    return candidate(f, case["w"].copy(), case["eps"])


def _numerical_gradient_expect(case: Case) -> np.ndarray:
    import torch

    A, b, c = _tensor(case["A"]), _tensor(case["b"]), _tensor(case["c"])
    w = _tensor(case["w"]).requires_grad_(True)
    value = 0.5 * w @ A @ w - b @ w + (c * torch.sin(w)).sum()
    (gradient,) = torch.autograd.grad(value, w)
    return gradient.numpy()


# ----------------------------------------------------------------------------------------------------------
# Jacobians, against torch.autograd.functional.jacobian.


def _relu_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for d in (1, int(rng.integers(2, 9))):
        x = rng.normal(size=d)
        if d > 1:
            x[rng.random(d) < 0.25] = 0.0  # ReLU's kink: the docstring says to use 0 there
        cases.append({"x": x})
    return cases


def _relu_expect(case: Case) -> np.ndarray:
    import torch

    return torch.autograd.functional.jacobian(torch.relu, _tensor(case["x"])).numpy()


def _linear_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for m, n in ((int(rng.integers(2, 5)), int(rng.integers(2, 5))), (1, int(rng.integers(2, 4)))):
        cases.append({"W": rng.normal(size=(m, n)), "x": rng.normal(size=n)})
    return cases


def _linear_call(candidate, case: Case) -> dict:
    return {
        'wrt="x"': candidate(case["W"].copy(), case["x"].copy(), wrt="x"),
        'wrt="W"': candidate(case["W"].copy(), case["x"].copy(), wrt="W"),
    }


def _linear_expect(case: Case) -> dict:
    import torch

    W, x = _tensor(case["W"]), _tensor(case["x"])
    jacobian = torch.autograd.functional.jacobian
    return {'wrt="x"': jacobian(lambda v: W @ v, x).numpy(), 'wrt="W"': jacobian(lambda M: M @ x, W).numpy()}


# Points by difficulty: 1 for a formula of a line or two, 2 for a few steps or a numerical subtlety, 3 for a
# loop with bookkeeping or a derivation through several layers. Within a function the grader gives credit
# per kind of case and per output (coursepkg.grading.sandbox).
CHECKS = [
    Check(
        function=gd.least_squares_grad,
        points=1,
        families=("N examples", "one example"),
        cases=_least_squares_cases,
        expect=_least_squares_expect,
        compare=allclose(rtol=1e-9, atol=1e-10),
        description="the gradient of ½ Σ (x_nᵀw − t_n)², against torch.autograd",
    ),
    Check(
        function=gd.halving_step,
        points=2,
        families=("no halving", "1 to 3 halvings", "4 to 8 halvings"),
        cases=_halving_cases,
        expect=_halving_expect,
        call=_halving_call,
        compare=allclose(rtol=1e-9, atol=1e-12),
        description="(new w, step used) on random quadratics, against the exact condition for a decrease",
    ),
    Check(
        function=gd.sgd_epoch,
        points=3,
        families=("a shorter last batch", "any batch size", "batches of one"),
        cases=_sgd_cases,
        expect=_sgd_expect,
        call=_sgd_call,
        compare=allclose(rtol=1e-8, atol=1e-10),
        description="one shuffled epoch of mini-batch SGD on least squares, against torch.autograd",
    ),
    Check(
        function=gd.numerical_gradient,
        points=2,
        families=("d = 1", "d > 1"),
        cases=_numerical_gradient_cases,
        expect=_numerical_gradient_expect,
        call=_numerical_gradient_call,
        compare=allclose(rtol=1e-7, atol=1e-6),
        description="central differences with eps = 1e-4, against torch.autograd",
    ),
    Check(
        function=gd.relu_jacobian,
        points=1,
        families=("d = 1", "d > 1, some entries 0"),
        cases=_relu_cases,
        expect=_relu_expect,
        compare=allclose(rtol=0, atol=0),
        description="diag(H(x)), against torch.autograd.functional.jacobian",
    ),
    Check(
        function=gd.linear_jacobian,
        points=2,
        families=("m x n", "one row"),
        cases=_linear_cases,
        expect=_linear_expect,
        call=_linear_call,
        compare=allclose(rtol=1e-12, atol=1e-12),
        description="the Jacobians of Wx with respect to x and W, against torch.autograd.functional.jacobian",
    ),
]
