"""Tests of coursepkg.nn against torch (float64) and central differences."""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coursepkg import nn

TORCH = {
    "identity": lambda z: z,
    "relu": torch.relu,
    "softplus": lambda z: torch.logaddexp(torch.zeros_like(z), z),  # F.softplus is linear beyond 20
    "hard_threshold": lambda z: (z > 0).to(z.dtype),
    "logistic": torch.sigmoid,
    "tanh": torch.tanh,
}

arrays = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=0, max_dims=3, max_side=5),
    elements=st.floats(-30, 30, allow_nan=False),
)


def torch_derivative(name: str, z: np.ndarray) -> np.ndarray:
    """The element-wise derivative of torch's version of the activation, by autograd."""
    leaf = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    out = TORCH[name](leaf)
    if not out.requires_grad:  # the hard threshold is piecewise constant: autograd sees no dependence
        return np.zeros_like(z)
    out.sum().backward()
    return leaf.grad.numpy()


def central_difference(f, z: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    return (f(z + eps) - f(z - eps)) / (2 * eps)


def test_activations_are_the_six_of_the_lectures():
    assert set(nn.ACTIVATIONS) == {"identity", "relu", "softplus", "hard_threshold", "logistic", "tanh"}
    with pytest.raises(TypeError):
        nn.ACTIVATIONS["new"] = nn.ACTIVATIONS["relu"]  # read-only
    with pytest.raises(ValueError, match="activation must be one of"):
        nn.get_activation("sigmoid")


@pytest.mark.parametrize("name", sorted(nn.ACTIVATIONS))
@settings(max_examples=40, deadline=None)
@given(z=arrays)
def test_activation_values_and_derivatives_match_torch(name, z):
    value, derivative = nn.ACTIVATIONS[name]
    expected = TORCH[name](torch.tensor(z, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(value(z), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(derivative(z), torch_derivative(name, z), rtol=1e-10, atol=1e-10)
    assert np.shape(derivative(z)) == np.shape(z)


@pytest.mark.parametrize("name", sorted(nn.ACTIVATIONS))
@settings(max_examples=40, deadline=None)
@given(z=arrays)
def test_activation_derivatives_match_central_differences(name, z):
    value, derivative = nn.ACTIVATIONS[name]
    if name in ("relu", "hard_threshold"):
        z = np.where(np.abs(z) < 1e-3, 1.0, z)  # not differentiable at 0: stay away from the kink
    # central differences are accurate to O(eps^2) + rounding / eps, about 1e-9 here
    np.testing.assert_allclose(derivative(z), central_difference(value, z), rtol=1e-6, atol=1e-8)


def test_logistic_and_softplus_are_stable_for_huge_inputs():
    z = np.array([-1e4, -800.0, -40.0, 0.0, 40.0, 800.0, 1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        s = nn.logistic(z)
        ds = nn.logistic_derivative(z)
        sp = nn.softplus(z)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(ds)) and np.all(np.isfinite(sp))
    np.testing.assert_allclose(s[2], math.exp(-40) / (1 + math.exp(-40)), rtol=1e-12)
    np.testing.assert_allclose(ds[[2, 4]], math.exp(-40) / (1 + math.exp(-40)) ** 2, rtol=1e-12)
    assert sp[-1] == 1e4 and sp[0] == 0.0


@given(z=hnp.arrays(np.float64, (3, 5), elements=st.floats(-500, 500)))
@settings(max_examples=30, deadline=None)
def test_softmax_matches_torch(z):
    np.testing.assert_allclose(nn.softmax(z), torch.softmax(torch.from_numpy(z), -1).numpy(), rtol=1e-10, atol=1e-300)


def random_network(rng, widths):
    weights = [rng.normal(size=(n_out, n_in)) for n_in, n_out in zip(widths[:-1], widths[1:], strict=True)]
    biases = [rng.normal(size=w.shape[0]) for w in weights]
    return weights, biases


def torch_mlp(weights, biases, x, activation, output_activation="identity"):
    h = torch.from_numpy(np.asarray(x, dtype=np.float64))
    for l, (W, b) in enumerate(zip(weights, biases, strict=True)):
        h = torch.nn.functional.linear(h, torch.from_numpy(W), torch.from_numpy(b))
        h = TORCH[activation if l < len(weights) - 1 else output_activation](h)
    return h.numpy()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("activation", sorted(nn.ACTIVATIONS))
def test_mlp_forward_matches_torch_on_one_input_and_a_batch(seed, activation):
    rng = np.random.default_rng(seed)
    widths = list(rng.integers(1, 7, size=rng.integers(2, 6)))
    weights, biases = random_network(rng, widths)
    batch = rng.normal(size=(int(rng.integers(1, 5)), widths[0]))
    out = nn.mlp_forward(weights, biases, batch, activation)
    assert out.shape == (batch.shape[0], widths[-1])
    np.testing.assert_allclose(out, torch_mlp(weights, biases, batch, activation), rtol=1e-10, atol=1e-12)
    for row, x in zip(out, batch, strict=True):  # one input at a time gives the rows of the batch
        np.testing.assert_allclose(nn.mlp_forward(weights, biases, x, activation), row, rtol=1e-12, atol=1e-14)
    classified = nn.mlp_forward(weights, biases, batch, activation, output_activation="logistic")
    np.testing.assert_allclose(classified, torch_mlp(weights, biases, batch, activation, "logistic"), rtol=1e-10)


def test_mlp_forward_rejects_bad_shapes_with_clear_messages():
    rng = np.random.default_rng(0)
    weights, biases = random_network(rng, [3, 4, 2])
    with pytest.raises(ValueError, match=r"x must have shape \(3,\) or \(N, 3\)"):
        nn.mlp_forward(weights, biases, np.zeros(4), "relu")
    with pytest.raises(ValueError, match=r"biases\[1\]"):
        nn.mlp_forward(weights, [biases[0], np.zeros(3)], np.zeros(3), "relu")
    with pytest.raises(ValueError, match=r"weights\[1\] has 5 columns but layer 1 has 4 units"):
        nn.mlp_forward([weights[0], np.zeros((2, 5))], biases, np.zeros(3), "relu")
    with pytest.raises(ValueError, match="equal length"):
        nn.mlp_forward(weights, biases[:1], np.zeros(3), "relu")
    with pytest.raises(ValueError, match="x must be finite"):
        nn.mlp_forward(weights, biases, np.array([0.0, np.nan, 1.0]), "relu")
    with pytest.raises(ValueError, match="activation must be one of"):
        nn.mlp_forward(weights, biases, np.zeros(3), "sigmoid")


@pytest.mark.parametrize("seed", range(8))
def test_deep_linear_network_collapses_to_one_layer(seed):
    rng = np.random.default_rng(seed)
    widths = list(rng.integers(1, 7, size=rng.integers(2, 6)))
    weights, biases = random_network(rng, widths)
    W, b = nn.collapse_linear(weights, biases)
    product = np.linalg.multi_dot(weights[::-1]) if len(weights) > 1 else weights[0]  # W_L ... W_2 W_1
    np.testing.assert_allclose(W, product, rtol=1e-10, atol=1e-12)
    x = rng.normal(size=(5, widths[0]))
    np.testing.assert_allclose(x @ W.T + b, nn.mlp_forward(weights, biases, x, "identity"), rtol=1e-10, atol=1e-12)
    assert np.linalg.matrix_rank(W) <= min(widths)  # the narrowest layer bounds the rank


def test_staircase_network_approximates_better_as_width_grows():
    grid = np.linspace(0, 1, 2001)
    errors = []
    for width in (2, 4, 8, 16, 32, 64):
        weights, biases = nn.staircase_network(np.sin, 0.0, 1.0, width)
        approx = nn.mlp_forward(weights, biases, grid[:, None], "logistic")[:, 0]
        errors.append(np.abs(approx - np.sin(grid)).max())
    assert all(later < earlier for earlier, later in zip(errors[:-1], errors[1:], strict=True)), errors
    assert errors[-1] < 0.02
    # a very steep staircase is a sum of hard thresholds: exact at the knots
    weights, biases = nn.staircase_network(np.cos, 0.0, 2.0, 5, steepness=1e6)
    knots = np.linspace(0.0, 2.0, 6)
    np.testing.assert_allclose(nn.mlp_forward(weights, biases, knots[:, None], "logistic")[:, 0], np.cos(knots))


def test_staircase_network_rejects_bad_arguments():
    with pytest.raises(ValueError, match="width"):
        nn.staircase_network(np.sin, 0.0, 1.0, 0)
    with pytest.raises(ValueError, match="a < b"):
        nn.staircase_network(np.sin, 1.0, 0.0, 3)
    with pytest.raises(ValueError, match="steepness"):
        nn.staircase_network(np.sin, 0.0, 1.0, 3, steepness=-1.0)
