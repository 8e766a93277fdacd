"""Regression with fixed features: the lectures' polynomial over-fitting and benign over-fitting (chapter 2).

A model linear in its parameters, y(x) = phi(x)^T w, is fitted by least squares on N examples. With the polynomial
features phi(x) = (1, x, ..., x^M) of degree M = N - 1 the fit passes through every training point
(eq-ch2-polynomial); an L2 penalty lam ||w||^2 picks a smoother fit (eq-ch2-ridge). With more features than
examples there are many exact fits, and the one of smallest norm, w = Phi^+ t, is what gradient descent from zero
converges to (eq-ch2-min-norm); fitted on more and more random features, its test error peaks where the number
of features passes the number of examples and falls again beyond it ("double descent").
"""

from __future__ import annotations

import numpy as np

from . import validation

__all__ = [
    "fit_least_squares",
    "polynomial_features",
    "random_relu_features",
    "min_norm_test_errors",
]


def polynomial_features(x, degree: int) -> np.ndarray:
    """The design matrix of a polynomial of degree M = ``degree``: row n is (1, x_n, ..., x_n^M) (eq-ch2-polynomial).

    ``x`` has shape (N,); the result has shape (N, degree + 1).
    """
    x = validation.array(x, "x", ndim=1)
    degree = validation.integer(degree, "degree", minimum=0)
    return x[:, None] ** np.arange(degree + 1)


def fit_least_squares(features, t, lam: float = 0.0) -> np.ndarray:
    """The weights w minimising ||Phi w - t||^2 + lam ||w||^2 (eq-ch2-ridge).

    With ``lam = 0`` and more features than examples there are many minimisers; this returns the one of smallest
    norm, w = Phi^+ t (eq-ch2-min-norm), computed from the SVD (``numpy.linalg.lstsq``).
    """
    features = validation.array(features, "features", ndim=2)
    t = validation.array(t, "t", ndim=1)
    if len(t) != len(features):
        raise ValueError(f"t must have one target per row of features ({len(features)}), got {len(t)}")
    lam = validation.number(lam, "lam", minimum=0.0)
    if lam == 0.0:
        return np.linalg.lstsq(features, t, rcond=None)[0]
    n_features = features.shape[1]
    return np.linalg.solve(features.T @ features + lam * np.eye(n_features), features.T @ t)


def random_relu_features(x, n_features: int, seed: int = 0) -> np.ndarray:
    """phi_j(x) = max(0, a_j x + b_j) / sqrt(n_features) for j = 1..n_features, with a_j, b_j ~ N(0, 1) drawn from
    ``seed``: the hidden layer of a one-hidden-layer ReLU network whose first layer is random and fixed.

    ``x`` has shape (N,); the same seed gives the same features for training and test inputs.
    """
    x = validation.array(x, "x", ndim=1)
    n_features = validation.integer(n_features, "n_features", minimum=1)
    rng = np.random.default_rng(validation.integer(seed, "seed", minimum=0))
    slopes, offsets = rng.normal(size=(2, n_features))
    return np.maximum(0.0, x[:, None] * slopes + offsets) / np.sqrt(n_features)


def min_norm_test_errors(features, t, test_features, test_t, widths) -> np.ndarray:
    """The mean squared test error of the minimum-norm least-squares fit (eq-ch2-min-norm) that uses only the
    first p columns of the features, for each p in ``widths`` (one error per width, in order).

    ``features`` (N, P) and ``test_features`` (N_test, P) hold the same P features of the training and test
    inputs; every p in ``widths`` must be between 1 and P.
    """
    features = validation.array(features, "features", ndim=2)
    test_features = validation.array(test_features, "test_features", ndim=2)
    test_t = validation.array(test_t, "test_t", ndim=1)
    if test_features.shape[1] != features.shape[1] or len(test_t) != len(test_features):
        raise ValueError(
            f"test_features must have the {features.shape[1]} columns of features and one row per test_t entry, "
            f"got shape {test_features.shape} and {len(test_t)} targets"
        )
    errors = []
    for width in widths:
        width = validation.integer(width, "width", minimum=1, maximum=features.shape[1])
        w = fit_least_squares(features[:, :width], t)
        errors.append(np.mean((test_features[:, :width] @ w - test_t) ** 2))
    return np.array(errors)
