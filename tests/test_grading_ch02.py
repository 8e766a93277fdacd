"""The checks of exercise set ch02_neural_networks pass the reference and catch typical mistakes."""

from __future__ import annotations

import numpy as np
import pytest

from coursepkg import nn
from coursepkg.grading import checks_for
from coursepkg.grading.checks import run_in_process

CHECKS = {check.name: check for check in checks_for("ch02_neural_networks")}


# What every set must satisfy (one check per graded function, the reference passes, a stub fails) is tested
# for all sets at once in test_grading_sets.py.


def test_the_chapter_grades_these_functions():
    assert set(CHECKS) == {"logistic_derivative", "mlp_forward", "collapse_linear"}


def _sigmoid(z):
    return 1 / (1 + np.exp(-np.asarray(z, dtype=float)))


def _forward(weights, biases, x, activation, last=lambda z: z, transpose=False, skip_last_bias=False):
    phi = nn.ACTIVATIONS[activation].value
    h = np.asarray(x, dtype=float)
    for l, (W, b) in enumerate(zip(weights, biases, strict=True)):
        a = h @ (W if transpose and W.shape[0] == W.shape[1] else W.T)
        if not (skip_last_bias and l == len(weights) - 1):
            a = a + b
        h = phi(a) if l < len(weights) - 1 else last(a)
    return h


def _collapse(weights, biases, drop_bias=False):
    W, b = np.eye(weights[0].shape[1]), np.zeros(weights[0].shape[1])
    for W_l, b_l in zip(weights, biases, strict=True):
        W, b = W_l @ W, W_l @ b + (0 if drop_bias else b_l)
    return W, b


def _overflowing_logistic_derivative(z):
    with np.errstate(over="ignore", invalid="ignore"):
        return np.exp(z) / (1 + np.exp(z)) ** 2


MUTANTS = {
    "logistic_derivative": {
        "sigma itself": _sigmoid,
        "missing (1 - sigma)": lambda z: _sigmoid(z) ** 2,
        "wrong sign": lambda z: -_sigmoid(z) * (1 - _sigmoid(z)),
        "tanh derivative": lambda z: 1 - np.tanh(z) ** 2,
        "overflowing formula": _overflowing_logistic_derivative,
    },
    "mlp_forward": {
        "activation on the output too": lambda W, b, x, a: _forward(W, b, x, a, last=nn.ACTIVATIONS[a].value),
        "no bias on the last layer": lambda W, b, x, a: _forward(W, b, x, a, skip_last_bias=True),
        "W instead of W^T on square layers": lambda W, b, x, a: _forward(W, b, x, a, transpose=True),
        "always relu": lambda W, b, x, a: _forward(W, b, x, "relu"),
    },
    "collapse_linear": {
        "biases ignored": lambda W, b: _collapse(W, b, drop_bias=True),
        "only the last bias": lambda W, b: (_collapse(W, b)[0], b[-1]),
        "the first layer only": lambda W, b: (W[0], b[0]),
        "transposed": lambda W, b: (_collapse(W, b)[0].T, _collapse(W, b)[1]),
    },
}


@pytest.mark.parametrize(("name", "mutant"), [(n, m) for n, ms in MUTANTS.items() for m in ms])
def test_a_wrong_function_fails_with_a_message(name, mutant):
    failures = run_in_process(CHECKS[name], MUTANTS[name][mutant])
    assert failures and "case" in failures[0], failures


def test_an_unsolved_exercise_is_reported_as_not_implemented():
    def logistic_derivative(z):
        raise NotImplementedError("sigma'(z) = sigma(z) (1 - sigma(z))")

    failures = run_in_process(CHECKS["logistic_derivative"], logistic_derivative)
    assert failures == ["logistic_derivative is not implemented yet: sigma'(z) = sigma(z) (1 - sigma(z))"]
