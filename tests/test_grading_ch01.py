"""The checks of exercise set ch01_gradients: the reference passes, deliberately wrong functions fail."""

from __future__ import annotations

import numpy as np
import pytest

from coursepkg import gd
from coursepkg.grading import checks_for
from coursepkg.grading.checks import run_in_process

CHECKS = {check.name: check for check in checks_for("ch01_gradients")}


# What every set must satisfy (one check per graded function, the reference passes, a stub fails) is tested
# for all sets at once in test_grading_sets.py.


def test_the_chapter_grades_at_least_four_functions():
    assert len(CHECKS) >= 4


# Deliberately wrong versions: each must be caught, with a message naming what differs.


def _permutation(n, seed):
    return np.random.default_rng(seed).permutation(n)


def _epoch(grad_on_batch, w, order, batch_size, lr):
    for start in range(0, len(order), batch_size):
        w = w - lr * grad_on_batch(w, order[start : start + batch_size])
    return w


def _halving(f, w, g, lr, *, strict=True, factor=0.5, recompute=None):
    eta = lr
    for _ in range(60):
        direction = g if recompute is None else recompute
        new_value, old_value = f(w - eta * direction), f(w)
        if new_value < old_value or (not strict and new_value <= old_value):
            return w - eta * direction, eta
        eta *= factor
    return w, 0.0


MUTANTS = {
    "least_squares_grad": {
        "wrong sign": lambda X, t, w: -X.T @ (X @ w - t),
        "missing the 1/2 cancellation": lambda X, t, w: 2 * X.T @ (X @ w - t),
        "mean instead of sum": lambda X, t, w: X.T @ (X @ w - t) / len(t),
        "residual t - Xw": lambda X, t, w: X.T @ (t - X @ w),
        "the loss, not its gradient": lambda X, t, w: np.full(len(w), 0.5 * np.sum((X @ w - t) ** 2)),
    },
    "halving_step": {
        "never halves": lambda f, w, g, lr: (w - lr * g, lr),
        "divides by 3": lambda f, w, g, lr: _halving(f, w, g, lr, factor=1 / 3),
        "returns the last rejected step": lambda f, w, g, lr: (lambda new, eta: (new, eta * 2 if eta < lr else eta))(
            *_halving(f, w, g, lr)
        ),
        "ascends": lambda f, w, g, lr: (lambda new, eta: (w + eta * g, eta))(*_halving(f, w, g, lr)),
        "ignores g (uses the steepest direction)": lambda f, w, g, lr: _halving(
            f, w, g, lr, recompute=gd.numerical_gradient(f, w, 1e-6)
        ),
    },
    "sgd_epoch": {
        "no shuffle": lambda grad_on_batch, w, n, batch_size, lr, seed: _epoch(
            grad_on_batch, w, np.arange(n), batch_size, lr
        ),
        "another seed": lambda grad_on_batch, w, n, batch_size, lr, seed: _epoch(
            grad_on_batch, w, _permutation(n, seed + 1), batch_size, lr
        ),
        "drops the short last batch": lambda grad_on_batch, w, n, batch_size, lr, seed: _epoch(
            grad_on_batch, w, _permutation(n, seed)[: n - n % batch_size], batch_size, lr
        ),
        "sums instead of averaging": lambda grad_on_batch, w, n, batch_size, lr, seed: _epoch(
            lambda v, S: len(S) * grad_on_batch(v, S), w, _permutation(n, seed), batch_size, lr
        ),
        "one full-batch step": lambda grad_on_batch, w, n, batch_size, lr, seed: (
            w - lr * grad_on_batch(w, _permutation(n, seed))
        ),
    },
    "numerical_gradient": {
        "forward differences": lambda f, w, eps: np.array([(f(w + eps * e) - f(w)) / eps for e in np.eye(len(w))]),
        "missing the factor 2": lambda f, w, eps: np.array(
            [(f(w + eps * e) - f(w - eps * e)) / eps for e in np.eye(len(w))]
        ),
        "perturbs every coordinate at once": lambda f, w, eps: np.full(len(w), (f(w + eps) - f(w - eps)) / (2 * eps)),
    },
    "relu_jacobian": {
        "H(0) = 1": lambda x: np.diag((x >= 0) * 1.0),
        "a vector, not a matrix": lambda x: (x > 0) * 1.0,
        "diag(relu(x))": lambda x: np.diag(np.maximum(x, 0)),
        "all ones": lambda x: np.ones((len(x), len(x))) * (x > 0),
    },
    "linear_jacobian": {
        "transposed": lambda W, x, wrt="x": W.T if wrt == "x" else np.einsum("ij,k->ijk", np.eye(len(W)), x),
        "x instead of delta * x": lambda W, x, wrt="x": (
            W if wrt == "x" else np.broadcast_to(x, (len(W), len(W), len(x))).copy()
        ),
        "outer product shape": lambda W, x, wrt="x": W if wrt == "x" else np.outer(np.ones(len(W)), x),
    },
}


@pytest.mark.parametrize(
    ("name", "mutation"), [(name, mutation) for name, mutants in MUTANTS.items() for mutation in mutants]
)
def test_wrong_functions_fail(name, mutation):
    wrong = MUTANTS[name][mutation]
    failures = run_in_process(CHECKS[name], wrong)
    assert failures, f"the check of {name} accepts a function that is wrong: {mutation}"
    assert failures[0].startswith("case ")
    assert "expected" in failures[0] or "raised" in failures[0]


def test_messages_name_shape_entry_and_values():
    [message] = run_in_process(CHECKS["relu_jacobian"], MUTANTS["relu_jacobian"]["a vector, not a matrix"])
    assert "has shape" in message and "expected" in message
    [message] = run_in_process(CHECKS["least_squares_grad"], MUTANTS["least_squares_grad"]["wrong sign"])
    assert "at index" in message and "expected" in message
    [message] = run_in_process(CHECKS["sgd_epoch"], MUTANTS["sgd_epoch"]["one full-batch step"])
    assert "number of grad_on_batch calls" in message or "'w'" in message
