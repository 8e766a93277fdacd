"""coursepkg.regression against NumPy's Vandermonde matrix, the pseudo-inverse and scikit-learn's ridge."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import Ridge

from coursepkg import regression


@given(st.integers(1, 12), st.integers(0, 8), st.integers(0, 2**31 - 1))
@settings(max_examples=30, deadline=None)
def test_polynomial_features_are_the_vandermonde_matrix(n, degree, seed):
    x = np.random.default_rng(seed).uniform(-2, 2, size=n)
    np.testing.assert_allclose(regression.polynomial_features(x, degree), np.vander(x, degree + 1, increasing=True))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shape", [(20, 5), (8, 30)])
def test_least_squares_is_the_pseudo_inverse_solution(seed, shape):
    rng = np.random.default_rng(seed)
    features, t = rng.normal(size=shape), rng.normal(size=shape[0])
    w = regression.fit_least_squares(features, t)
    np.testing.assert_allclose(w, np.linalg.pinv(features) @ t, atol=1e-10)
    if shape[1] > shape[0]:  # many exact fits: this one interpolates and has the smallest norm
        np.testing.assert_allclose(features @ w, t, atol=1e-10)
        null_direction = np.linalg.svd(features)[2][-1]  # features @ null_direction = 0
        assert np.linalg.norm(w + 0.1 * null_direction) > np.linalg.norm(w)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("lam", [1e-3, 0.5, 10.0])
def test_ridge_agrees_with_scikit_learn(seed, lam):
    rng = np.random.default_rng(seed)
    features, t = rng.normal(size=(15, 6)), rng.normal(size=15)
    reference = Ridge(alpha=lam, fit_intercept=False, solver="svd").fit(features, t).coef_
    np.testing.assert_allclose(regression.fit_least_squares(features, t, lam), reference, rtol=1e-8, atol=1e-10)


def test_random_features_are_relu_units_with_fixed_random_weights():
    x = np.linspace(-1, 1, 7)
    phi = regression.random_relu_features(x, 50, seed=3)
    slopes, offsets = np.random.default_rng(3).normal(size=(2, 50))
    np.testing.assert_allclose(phi, np.maximum(0, np.outer(x, slopes) + offsets) / np.sqrt(50))
    np.testing.assert_array_equal(phi, regression.random_relu_features(x, 50, seed=3))  # reproducible


def test_min_norm_test_errors_fit_each_width_separately():
    rng = np.random.default_rng(0)
    features, test_features = rng.normal(size=(10, 30)), rng.normal(size=(25, 30))
    t, test_t = rng.normal(size=10), rng.normal(size=25)
    errors = regression.min_norm_test_errors(features, t, test_features, test_t, [4, 10, 30])
    for width, error in zip([4, 10, 30], errors, strict=True):
        w = np.linalg.pinv(features[:, :width]) @ t
        assert error == pytest.approx(np.mean((test_features[:, :width] @ w - test_t) ** 2), rel=1e-8)
    with pytest.raises(ValueError, match="width must be <= 30"):
        regression.min_norm_test_errors(features, t, test_features, test_t, [31])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: regression.polynomial_features(np.ones((2, 2)), 3), "x must have 1 dimension"),
        (lambda: regression.polynomial_features(np.ones(3), -1), "degree must be >= 0"),
        (lambda: regression.fit_least_squares(np.ones((3, 2)), np.ones(4)), "one target per row"),
        (lambda: regression.fit_least_squares(np.ones((3, 2)), np.ones(3), lam=-1.0), "lam must lie in"),
        (lambda: regression.random_relu_features(np.ones(3), 0), "n_features must be >= 1"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
