"""Tests of coursepkg.gd against independent references: numpy.linalg.lstsq, torch.autograd (float64),
closed forms of quadratics, and exact identities of mini-batch SGD."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coursepkg import gd

SEEDS = range(5)


def _problem(seed: int, n: int = 40, d: int = 4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    t = X @ rng.normal(size=d) + 0.3 * rng.normal(size=n)
    return X, t, rng


def _spd(rng: np.random.Generator, d: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (q * rng.uniform(0.3, 5.0, size=d)) @ q.T


def _autograd(fn, w: np.ndarray) -> np.ndarray:
    w = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    (gradient,) = torch.autograd.grad(fn(w), w)
    return gradient.numpy()


# ------------------------------------------------------------------------------------------------ least squares


@pytest.mark.parametrize("seed", SEEDS)
def test_least_squares_loss_and_grad_match_torch(seed):
    X, t, rng = _problem(seed, n=int(np.random.default_rng(seed).integers(1, 30)), d=3)
    w = rng.normal(size=3)
    Xt, tt = torch.from_numpy(X), torch.from_numpy(t)
    expected_loss = 0.5 * float(((Xt @ torch.from_numpy(w) - tt) ** 2).sum())
    assert gd.least_squares_loss(X, t, w) == pytest.approx(expected_loss, rel=1e-12)
    expected = _autograd(lambda v: 0.5 * ((Xt @ v - tt) ** 2).sum(), w)
    np.testing.assert_allclose(gd.least_squares_grad(X, t, w), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_gradient_descent_reaches_lstsq(seed):
    X, t, _ = _problem(seed, n=60, d=5)
    lam_max = np.linalg.eigvalsh(X.T @ X).max()
    result = gd.gradient_descent(
        lambda w: gd.least_squares_loss(X, t, w),
        lambda w: gd.least_squares_grad(X, t, w),
        np.zeros(5),
        lr=1.0 / lam_max,
        tol=1e-10,
        max_iter=20_000,
    )
    w_star = np.linalg.lstsq(X, t, rcond=None)[0]
    assert result.stopped == "tolerance"
    assert np.max(np.abs(result.w - w_star)) < 1e-6
    assert result.grad_norms[-1] < 1e-10 <= result.grad_norms[-2]


# ------------------------------------------------------------------------------------------ gradient descent


def _quadratic(A, b):
    return (lambda w: 0.5 * w @ A @ w - b @ w), (lambda w: A @ w - b)


@pytest.mark.parametrize("seed", SEEDS)
def test_gradient_descent_records_a_consistent_trajectory(seed):
    rng = np.random.default_rng(seed)
    A, b = _spd(rng, 3), rng.normal(size=3)
    f, grad = _quadratic(A, b)
    result = gd.gradient_descent(f, grad, rng.normal(size=3), lr=0.1, tol=0.0, max_iter=25)
    assert result.stopped == "max_iter" and result.iterations == 25
    assert result.trajectory.shape == (26, 3) and result.losses.shape == result.grad_norms.shape == (26,)
    for k in range(25):  # each iterate is the previous one minus lr times the gradient
        w = result.trajectory[k]
        np.testing.assert_allclose(result.trajectory[k + 1], w - 0.1 * (A @ w - b))
    np.testing.assert_allclose(result.losses, [f(w) for w in result.trajectory])
    np.testing.assert_allclose(result.grad_norms, [np.linalg.norm(grad(w)) for w in result.trajectory])


@pytest.mark.parametrize("seed", SEEDS)
def test_step_size_threshold_two_over_lambda_max(seed):
    """On a quadratic, GD converges for lr < 2 / λ_max and diverges for lr > 2 / λ_max."""
    rng = np.random.default_rng(seed)
    A, b = _spd(rng, 4), rng.normal(size=4)
    f, grad = _quadratic(A, b)
    lam_max = np.linalg.eigvalsh(A).max()
    w0 = rng.normal(size=4)
    good = gd.gradient_descent(f, grad, w0, lr=1.9 / lam_max, tol=1e-8, max_iter=100_000)
    bad = gd.gradient_descent(f, grad, w0, lr=2.1 / lam_max, tol=1e-8, max_iter=100_000)
    assert good.stopped == "tolerance"
    np.testing.assert_allclose(good.w, np.linalg.solve(A, b), atol=1e-6)
    assert bad.stopped == "diverged"


def test_schedule_sets_the_step_sizes():
    rng = np.random.default_rng(0)
    A, b = _spd(rng, 2), rng.normal(size=2)
    f, grad = _quadratic(A, b)
    result = gd.gradient_descent(f, grad, np.ones(2), 0.2, tol=0.0, max_iter=10, schedule=lambda k: 1 / (1 + k))
    np.testing.assert_allclose(result.step_sizes, 0.2 / (1 + np.arange(10)))
    with pytest.raises(ValueError, match="schedule"):
        gd.gradient_descent(f, grad, np.ones(2), 0.2, max_iter=10, schedule=lambda k: -1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_halving_converges_from_a_far_too_large_learning_rate(seed):
    rng = np.random.default_rng(seed)
    A, b = _spd(rng, 3), rng.normal(size=3)
    f, grad = _quadratic(A, b)
    lr = 1000.0 / np.linalg.eigvalsh(A).max()
    assert gd.gradient_descent(f, grad, np.zeros(3), lr, tol=1e-6, max_iter=500).stopped == "diverged"
    result = gd.gradient_descent(f, grad, np.zeros(3), lr, tol=1e-6, max_iter=5_000, halving=True)
    assert result.stopped == "tolerance"
    assert np.all(np.diff(result.losses) < 0)
    np.testing.assert_allclose(result.w, np.linalg.solve(A, b), atol=1e-5)


# ------------------------------------------------------------------------------------------------ halving rule


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    lr=st.floats(1e-6, 1e6),
    descent=st.booleans(),
)
def test_halving_step_never_increases_f(seed, lr, descent):
    """On random quadratics and on Rosenbrock's function, with gradients or arbitrary directions."""
    rng = np.random.default_rng(seed)
    A, b = _spd(rng, 3) - 0.5 * np.eye(3), rng.normal(size=3)  # possibly indefinite
    functions = [
        _quadratic(A, b),
        (lambda w: (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2 + w[2] ** 2, None),
    ]
    for f, grad in functions:
        w = rng.normal(size=3)
        g = grad(w) if grad is not None and descent else rng.normal(size=3)
        new_w, step = gd.halving_step(f, w, g, lr)
        assert f(new_w) <= f(w)
        if step > 0:
            assert f(new_w) < f(w)
            k = math.log2(lr / step)
            assert k == pytest.approx(round(k)) and round(k) >= 0  # step is lr / 2**k
            np.testing.assert_allclose(new_w, w - step * g)
        else:
            np.testing.assert_array_equal(new_w, w)


@pytest.mark.parametrize("seed", SEEDS)
def test_halving_step_takes_the_first_decreasing_step(seed):
    """For a quadratic, f(w − η g) < f(w) exactly when η < 2 gᵀ∇f / gᵀAg (closed form)."""
    rng = np.random.default_rng(seed)
    A, b = _spd(rng, 4), rng.normal(size=4)
    f, grad = _quadratic(A, b)
    w = rng.normal(size=4)
    g = grad(w)
    threshold = 2 * (g @ g) / (g @ A @ g)
    lr = threshold * 2 ** (rng.integers(0, 6) + 0.5)
    expected = lr
    while expected >= threshold:
        expected /= 2
    new_w, step = gd.halving_step(f, w, g, lr)
    assert step == expected
    np.testing.assert_allclose(new_w, w - expected * g)


def test_halving_descent_stalls_when_no_step_decreases_f():
    rng = np.random.default_rng(0)
    A, b = _spd(rng, 3), rng.normal(size=3)
    f, grad = _quadratic(A, b)
    result = gd.gradient_descent(f, grad, np.zeros(3), 1.0, tol=0.0, max_iter=10_000, halving=True)
    assert result.stopped == "stalled" and result.step_sizes[-1] == 0.0 and result.iterations < 10_000
    np.testing.assert_allclose(result.w, np.linalg.solve(A, b), atol=1e-7)


def test_halving_step_at_the_minimum_returns_w():
    A = np.diag([1.0, 2.0])
    f, _ = _quadratic(A, np.zeros(2))
    new_w, step = gd.halving_step(f, np.zeros(2), np.array([1.0, 1.0]), 1.0)
    assert step == 0.0 and np.array_equal(new_w, np.zeros(2))


# ------------------------------------------------------------------------------------------ mini-batch SGD


def _batch_gradient(X, t):
    def grad_on_batch(w, S):
        return X[S].T @ (X[S] @ w - t[S]) / len(S)

    return grad_on_batch


@pytest.mark.parametrize("seed", SEEDS)
def test_full_batch_sgd_is_gradient_descent_step_for_step(seed):
    X, t, rng = _problem(seed, n=int(np.random.default_rng(seed).integers(5, 50)), d=3)
    n = X.shape[0]
    w0 = rng.normal(size=3)
    sgd = gd.minibatch_sgd(_batch_gradient(X, t), w0, n, n, lr=0.3, epochs=15, seed=seed)
    full = gd.gradient_descent(
        lambda w: gd.least_squares_loss(X, t, w) / n,
        lambda w: gd.least_squares_grad(X, t, w) / n,
        w0,
        lr=0.3,
        tol=0.0,
        max_iter=15,
    )
    assert sgd.trajectory.shape == full.trajectory.shape == (16, 3)
    np.testing.assert_allclose(sgd.trajectory, full.trajectory, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sgd.epoch_trajectory, full.trajectory, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_sgd_visits_every_example_once_per_epoch(seed):
    rng = np.random.default_rng(seed)
    n, epochs = int(rng.integers(3, 40)), 3
    batch_size = int(rng.integers(1, n + 1))
    seen = []

    def grad_on_batch(w, S):
        seen.append(np.array(S))
        return np.zeros_like(w)

    result = gd.minibatch_sgd(grad_on_batch, np.zeros(2), n, batch_size, 0.1, epochs, seed)
    per_epoch = math.ceil(n / batch_size)
    assert len(seen) == epochs * per_epoch == result.trajectory.shape[0] - 1
    for e in range(epochs):
        batches = seen[e * per_epoch : (e + 1) * per_epoch]
        assert all(len(S) == batch_size for S in batches[:-1])
        assert sorted(np.concatenate(batches).tolist()) == list(range(n))


@pytest.mark.parametrize("seed", SEEDS)
def test_one_epoch_of_minibatch_sgd_matches_torch(seed):
    """sgd_epoch and minibatch_sgd against an epoch written with torch.autograd and torch.split."""
    X, t, rng = _problem(seed, n=23, d=3)
    w0, batch_size, lr = rng.normal(size=3), int(rng.integers(1, 23)), 0.05
    order = torch.from_numpy(np.random.default_rng(seed).permutation(23))
    w = torch.from_numpy(w0)
    Xt, tt = torch.from_numpy(X), torch.from_numpy(t)
    for S in torch.split(order, batch_size):
        w = w - lr * torch.from_numpy(_autograd(lambda v, S=S: 0.5 * ((Xt[S] @ v - tt[S]) ** 2).mean(), w.numpy()))
    got = gd.sgd_epoch(_batch_gradient(X, t), w0, 23, batch_size, lr, seed)
    np.testing.assert_allclose(got, w.numpy(), rtol=1e-10, atol=1e-12)
    result = gd.minibatch_sgd(_batch_gradient(X, t), w0, 23, batch_size, lr, 1, seed)
    np.testing.assert_allclose(result.w, w.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_minibatch_gradients_average_to_the_full_gradient(seed):
    """With |S| dividing N, the mini-batch gradients of one epoch average to the full mean gradient."""
    X, t, rng = _problem(seed, n=24, d=3)
    w = rng.normal(size=3)
    order = np.random.default_rng(seed).permutation(24)
    estimates = [_batch_gradient(X, t)(w, order[i : i + 6]) for i in range(0, 24, 6)]
    np.testing.assert_allclose(np.mean(estimates, axis=0), gd.least_squares_grad(X, t, w) / 24, atol=1e-12)


def test_minibatch_sgd_records_losses_schedules_and_divergence():
    X, t, _ = _problem(0, n=20, d=2)
    loss = lambda w: gd.least_squares_loss(X, t, w) / 20  # noqa: E731
    result = gd.minibatch_sgd(_batch_gradient(X, t), np.zeros(2), 20, 5, 0.1, 3, 0, loss=loss, schedule=lambda k: 0.5)
    np.testing.assert_allclose(result.epoch_losses, [loss(w) for w in result.epoch_trajectory])
    np.testing.assert_allclose(result.step_sizes, 0.05)
    blown = gd.minibatch_sgd(_batch_gradient(X, t), np.ones(2), 20, 20, 1e3, 2000, 0)
    assert blown.stopped == "diverged" and not np.all(np.isfinite(blown.w))
    unshuffled = gd.minibatch_sgd(_batch_gradient(X, t), np.zeros(2), 20, 5, 0.1, 1, 0, shuffle=False)
    w = np.zeros(2)
    for start in range(0, 20, 5):
        w = w - 0.1 * _batch_gradient(X, t)(w, np.arange(start, start + 5))
    np.testing.assert_allclose(unshuffled.w, w)


# ------------------------------------------------------------------------------------ numerical gradients


@pytest.mark.parametrize("seed", SEEDS)
def test_numerical_gradient_of_quadratics_and_least_squares(seed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 7))
    A, b, w = rng.normal(size=(d, d)), rng.normal(size=d), rng.normal(size=d)  # A need not be symmetric
    f = lambda v: 0.5 * v @ A @ v - b @ v  # noqa: E731
    np.testing.assert_allclose(gd.numerical_gradient(f, w, 1e-5), 0.5 * (A + A.T) @ w - b, rtol=1e-7, atol=1e-8)
    X, t, _ = _problem(seed, n=15, d=d)
    numeric = gd.numerical_gradient(lambda v: gd.least_squares_loss(X, t, v), w)
    np.testing.assert_allclose(numeric, gd.least_squares_grad(X, t, w), rtol=1e-6, atol=1e-6)


def test_numerical_gradient_error_is_second_order_and_works_for_matrices():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(2, 3))
    f = lambda v: float(np.sum(np.sin(v) * v**2))  # noqa: E731
    exact = _autograd(lambda v: (torch.sin(v) * v**2).sum(), w)
    errors = [np.abs(gd.numerical_gradient(f, w, eps) - exact).max() for eps in (1e-2, 5e-3)]
    assert 3.5 < errors[0] / errors[1] < 4.5  # halving eps divides the error by 4


# ----------------------------------------------------------------------------------------------- Jacobians


@pytest.mark.parametrize("seed", SEEDS)
def test_relu_jacobian_matches_autograd(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=int(rng.integers(1, 10)))
    x[rng.random(x.size) < 0.3] = 0.0
    expected = torch.autograd.functional.jacobian(torch.relu, torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(gd.relu_jacobian(x), expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_jacobian_matches_autograd(seed):
    rng = np.random.default_rng(seed)
    m, n = (int(k) for k in rng.integers(1, 6, size=2))
    W, x = rng.normal(size=(m, n)), rng.normal(size=n)
    Wt, xt = torch.from_numpy(W), torch.from_numpy(x)
    jacobian = torch.autograd.functional.jacobian
    np.testing.assert_allclose(gd.linear_jacobian(W, x), jacobian(lambda v: Wt @ v, xt).numpy())
    by_w = gd.linear_jacobian(W, x, wrt="W")
    assert by_w.shape == (m, m, n)
    np.testing.assert_allclose(by_w, jacobian(lambda M: M @ xt, Wt).numpy())


# ---------------------------------------------------------------------------------------------- bad inputs


def test_errors_name_the_argument():
    X, t = np.ones((4, 2)), np.ones(4)
    with pytest.raises(ValueError, match="t has 3 targets but X has 4 rows"):
        gd.least_squares_grad(X, np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="w has 3 entries but X has 2 columns"):
        gd.least_squares_loss(X, t, np.ones(3))
    with pytest.raises(ValueError, match="X must have 2 dimension"):
        gd.least_squares_grad(np.ones(4), t, np.ones(2))
    with pytest.raises(ValueError, match="X must be finite, but has nan at index \\[1, 0\\]"):
        gd.least_squares_grad(np.array([[1.0, 2.0], [np.nan, 0.0], [1, 1], [1, 1]]), t, np.ones(2))
    f, grad = _quadratic(np.eye(2), np.zeros(2))
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match=r"lr must (lie in \(0, inf\)|be finite)"):
            gd.gradient_descent(f, grad, np.ones(2), bad)
        with pytest.raises(ValueError, match=r"lr must (lie in \(0, inf\)|be finite)"):
            gd.halving_step(f, np.ones(2), np.ones(2), bad)
        with pytest.raises(ValueError, match=r"lr must (lie in \(0, inf\)|be finite)"):
            gd.minibatch_sgd(lambda w, S: w, np.ones(2), 4, 2, bad, 1, 0)
    with pytest.raises(ValueError, match=r"divergence must lie in \(0, inf\), got 0"):
        gd.gradient_descent(f, grad, np.ones(2), 0.1, divergence=0)
    with pytest.raises(ValueError, match=r"tol must lie in \[0, inf\], got -1"):
        gd.gradient_descent(f, grad, np.ones(2), 0.1, tol=-1.0)
    with pytest.raises(ValueError, match="w0 must be finite"):
        gd.gradient_descent(f, grad, np.array([1.0, np.inf]), 0.1)
    with pytest.raises(ValueError, match=r"grad\(w\) returned shape \(3,\)"):
        gd.gradient_descent(f, lambda w: np.ones(3), np.ones(2), 0.1)
    with pytest.raises(ValueError, match="g has shape"):
        gd.halving_step(f, np.ones(2), np.ones(3), 0.1)
    with pytest.raises(ValueError, match="batch_size must be <= n"):
        gd.sgd_epoch(lambda w, S: w, np.ones(2), 4, 5, 0.1, 0)
    with pytest.raises(ValueError, match=r"grad_on_batch\(w, S\) returned shape"):
        gd.sgd_epoch(lambda w, S: np.ones(5), np.ones(2), 4, 2, 0.1, 0)
    with pytest.raises(ValueError, match=r"eps must lie in \(0, inf\), got 0"):
        gd.numerical_gradient(f, np.ones(2), 0.0)
    with pytest.raises(ValueError, match="W has 3 columns but x has 2 entries"):
        gd.linear_jacobian(np.ones((2, 3)), np.ones(2))
    with pytest.raises(ValueError, match="wrt must be"):
        gd.linear_jacobian(np.ones((2, 3)), np.ones(3), wrt="b")
    with pytest.raises(ValueError, match="x must have 1 dimension"):
        gd.relu_jacobian(np.ones((2, 2)))
    for name, call in {
        "max_iter": lambda: gd.gradient_descent(f, grad, np.ones(2), 0.1, max_iter=True),
        "batch_size": lambda: gd.sgd_epoch(lambda w, S: w, np.ones(2), 4, True, 0.1, 0),
        "lr": lambda: gd.halving_step(f, np.ones(2), np.ones(2), True),
    }.items():
        with pytest.raises(TypeError, match=f"{name} must be"):  # a bool is not a count nor a number
            call()
