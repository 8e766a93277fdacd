"""The checks of exercise set ch03_backpropagation pass the reference and catch typical mistakes."""

from __future__ import annotations

import numpy as np
import pytest

from coursepkg import backprop as bp
from coursepkg import nn
from coursepkg.grading import checks_for
from coursepkg.grading.checks import run_in_process

CHECKS = {check.name: check for check in checks_for("ch03_backpropagation")}


# What every set must satisfy (one check per graded function, the reference passes, a stub fails) is tested
# for all sets at once in test_grading_sets.py.


def test_the_chapter_grades_these_functions():
    assert set(CHECKS) == {
        "logistic_least_squares_signals",
        "two_layer_backward",
        "softmax_cross_entropy_backward",
        "matmul_backward",
    }


def _lls(w, b, x, t, lam=0.0, *, derivative="y(1-y)", reg_factor=1.0, sum_examples=True):
    x, t = np.asarray(x, dtype=float), np.asarray(t, dtype=float)
    y = nn.logistic(w * x + b)
    y_bar = y - t
    z_bar = y_bar * (y * (1 - y) if derivative == "y(1-y)" else y)
    total = np.sum if sum_examples else np.mean
    return {"y_bar": y_bar, "z_bar": z_bar, "w_bar": total(z_bar * x) + reg_factor * lam * w, "b_bar": total(z_bar)}


def _two_layer(W1, b1, W2, b2, x, t, *, mutation=None):
    h = nn.logistic(W1 @ x + b1)
    y = W2 @ h + b2
    y_bar = y - t if mutation != "sign" else t - y
    h_bar = W2.T @ y_bar
    z_bar = h_bar * h * (1 - h) if mutation != "no sigma'" else h_bar
    W2_bar = np.outer(y_bar, h) if mutation != "transposed" else np.outer(h, y_bar).reshape(W2.shape)
    return {"W1": np.outer(z_bar, x), "b1": z_bar, "W2": W2_bar, "b2": y_bar}


def _naive_softmax_minus_t(z, t):
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True) - t


MUTANTS = {
    "logistic_least_squares_signals": {
        "regulariser ignored": lambda w, b, x, t, lam: _lls(w, b, x, t, 0.0),
        "regulariser doubled (R = w^2)": lambda w, b, x, t, lam: _lls(w, b, x, t, lam, reg_factor=2.0),
        "sigma instead of sigma'": lambda w, b, x, t, lam: _lls(w, b, x, t, lam, derivative="sigma"),
        "mean instead of sum over examples": lambda w, b, x, t, lam: _lls(w, b, x, t, lam, sum_examples=False),
    },
    "two_layer_backward": {
        "wrong sign": lambda *a: _two_layer(*a, mutation="sign"),
        "missing sigma'": lambda *a: _two_layer(*a, mutation="no sigma'"),
        "W2_bar transposed": lambda *a: _two_layer(*a, mutation="transposed"),
        "half the gradient": lambda *a: {k: v / 2 for k, v in bp.two_layer_backward(*a).items()},
    },
    "softmax_cross_entropy_backward": {
        "t - y": lambda z, t: t - nn.softmax(z),
        "softmax over the batch axis": lambda z, t: np.exp(z - z.max()) / np.exp(z - z.max()).sum(0) - t,
        "no max shift (overflows)": _naive_softmax_minus_t,
        "divided by the batch size": lambda z, t: (nn.softmax(z) - t) / (len(z) if np.ndim(z) == 2 else 1),
    },
    "matmul_backward": {
        "swapped": lambda A, B, G: (A.T @ G, G @ B.T),
        "transposes forgotten": lambda A, B, G: (G @ B, A @ G),
        "twice": lambda A, B, G: (2 * G @ B.T, 2 * A.T @ G),
    },
}


@pytest.mark.parametrize(("name", "mutant"), [(n, m) for n, ms in MUTANTS.items() for m in ms])
def test_a_wrong_function_fails_with_a_message(name, mutant):
    failures = run_in_process(CHECKS[name], MUTANTS[name][mutant])
    assert failures and "case" in failures[0], failures
