"""Chapter 2: neural networks. Units, layers, activation functions and multilayer perceptrons, in NumPy.

A unit computes y = phi(w^T x + b) (eq. ``eq-ch2-unit``); a layer applies units side by side, h = phi(W x + b)
(eq. ``eq-ch2-layer``); a network composes layers, y = f^(L)(... f^(1)(x)) (eq. ``eq-ch2-composition``). Weights follow
the lectures: the matrix of layer l has shape (n_l, n_{l-1}), one row per unit. Batched inputs have the batch
as their first dimension, so a layer on a batch X of shape (N, n_{l-1}) computes phi(X W^T + b).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from . import validation
from .exercise import exercise

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "collapse_linear",
    "get_activation",
    "hard_threshold",
    "hard_threshold_derivative",
    "identity",
    "identity_derivative",
    "logistic",
    "logistic_derivative",
    "mlp_forward",
    "relu",
    "relu_derivative",
    "softmax",
    "softplus",
    "softplus_derivative",
    "staircase_network",
    "tanh",
    "tanh_derivative",
]

ArrayFunction = Callable[[np.ndarray], np.ndarray]


# --- The six activation functions of the lectures and their derivatives (eq. ``eq-ch2-activations``) -----------------


def identity(z):
    """phi(z) = z."""
    return np.array(z, dtype=np.float64)


def identity_derivative(z):
    """phi'(z) = 1."""
    return np.ones_like(np.asarray(z, dtype=np.float64))


def relu(z):
    """The rectified linear unit phi(z) = max(0, z)."""
    return np.maximum(np.asarray(z, dtype=np.float64), 0.0)


def relu_derivative(z):
    """phi'(z) = 1 for z > 0 and 0 for z < 0 (and, by convention, 0 at z = 0, as in PyTorch)."""
    return (np.asarray(z, dtype=np.float64) > 0).astype(np.float64)


def softplus(z):
    """The soft ReLU phi(z) = log(1 + e^z), computed as logaddexp(0, z) so that large z does not overflow."""
    return np.logaddexp(0.0, np.asarray(z, dtype=np.float64))


def softplus_derivative(z):
    """phi'(z) = e^z / (1 + e^z) = sigma(z): the soft ReLU's derivative is the logistic function."""
    return logistic(z)


def hard_threshold(z):
    """phi(z) = 1 for z > 0 and 0 otherwise."""
    return (np.asarray(z, dtype=np.float64) > 0).astype(np.float64)


def hard_threshold_derivative(z):
    """phi'(z) = 0 wherever it exists (everywhere but z = 0, where we also return 0): no gradient signal."""
    return np.zeros_like(np.asarray(z, dtype=np.float64))


def logistic(z):
    """The logistic sigmoid sigma(z) = 1 / (1 + e^{-z}), computed as exp(-log(1 + e^{-z})) without overflow."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(z, dtype=np.float64)))


@exercise(hint="sigma'(z) = sigma(z) (1 - sigma(z)); use logistic(z), and note that 1 - sigma(z) = sigma(-z).")
def logistic_derivative(z):
    """The logistic function's derivative, sigma'(z) = sigma(z) (1 - sigma(z)) (eq. ``eq-ch2-logistic-derivative``).

    ``z`` is a NumPy array of any shape (or a number); return an array of the same shape, element by element.
    It must stay accurate for large |z| (no overflow warnings, no NaN): ``logistic(z)`` is available.
    """
    return logistic(z) * logistic(-np.asarray(z, dtype=np.float64))


def tanh(z):
    """phi(z) = tanh(z) = (e^z - e^{-z}) / (e^z + e^{-z})."""
    return np.tanh(np.asarray(z, dtype=np.float64))


def tanh_derivative(z):
    """phi'(z) = 1 - tanh(z)^2."""
    return 1.0 - np.tanh(np.asarray(z, dtype=np.float64)) ** 2


class Activation(NamedTuple):
    """An activation function and its derivative, both applied element by element to NumPy arrays."""

    value: ArrayFunction
    derivative: ArrayFunction


ACTIVATIONS = MappingProxyType(
    {
        "identity": Activation(identity, identity_derivative),
        "relu": Activation(relu, relu_derivative),
        "softplus": Activation(softplus, softplus_derivative),
        "hard_threshold": Activation(hard_threshold, hard_threshold_derivative),
        "logistic": Activation(logistic, logistic_derivative),
        "tanh": Activation(tanh, tanh_derivative),
    }
)
"""Name -> (value, derivative) for the six activation functions of the lectures (read-only)."""


def get_activation(name: str) -> Activation:
    """The ``(value, derivative)`` pair called ``name`` in :data:`ACTIVATIONS`, or a ValueError naming the choices."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


def softmax(z):
    """The softmax over the last axis, y_k = e^{z_k} / sum_j e^{z_j} (eq. ``eq-ch2-softmax``), shifted by the
    maximum so that large logits do not overflow."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --- Multilayer perceptrons ----------------------------------------------------------------------------------------


def _check_layers(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], x=None) -> None:
    """Raise a ValueError naming the argument when the layers do not chain or ``x`` does not fit the first one."""
    if len(weights) == 0 or len(weights) != len(biases):
        raise ValueError(
            f"weights and biases must be non-empty lists of equal length, got {len(weights)} and {len(biases)}"
        )
    width = None
    for l, (W, b) in enumerate(zip(weights, biases, strict=True), start=1):
        W, b = validation.array(W, f"weights[{l - 1}]"), validation.array(b, f"biases[{l - 1}]")
        if W.ndim != 2:
            raise ValueError(f"weights[{l - 1}] (W^({l})) must be a matrix (n_{l}, n_{l - 1}), got shape {W.shape}")
        if b.shape != (W.shape[0],):
            raise ValueError(
                f"biases[{l - 1}] (b^({l})) must have shape ({W.shape[0]},) to match W^({l}) of shape "
                f"{W.shape}, got {b.shape}"
            )
        if width is not None and W.shape[1] != width:
            raise ValueError(f"weights[{l - 1}] has {W.shape[1]} columns but layer {l - 1} has {width} units")
        width = W.shape[0]
    if x is not None:
        x = np.asarray(x)
        if x.ndim not in (1, 2) or x.shape[-1] != np.shape(weights[0])[1]:
            raise ValueError(
                f"x must have shape ({np.shape(weights[0])[1]},) or (N, {np.shape(weights[0])[1]}) "
                f"to match weights[0], got {x.shape}"
            )
        validation.array(x, "x")


@exercise(
    hint="Start from h = x; for each layer compute h = phi(h @ W.T + b), with phi = activation on hidden "
    "layers and output_activation on the last one (get_activation(name).value gives phi)."
)
def mlp_forward(weights, biases, x, activation, *, output_activation="identity"):
    """The forward pass of a multilayer perceptron (eqs. ``eq-ch2-layer`` and ``eq-ch2-composition``).

    ``weights[l]`` has shape (n_{l+1}, n_l) and ``biases[l]`` shape (n_{l+1},). ``x`` is one input of shape
    (n_0,) or a batch of shape (N, n_0). Every hidden layer computes h = phi(W h_prev + b) with phi the
    activation called ``activation`` (a key of ``ACTIVATIONS``); the last layer uses ``output_activation``
    (``"identity"``: a linear output, as for regression). Return the output, of shape (n_L,) or (N, n_L).
    """
    _check_layers(weights, biases, x)
    h = np.asarray(x, dtype=np.float64)
    for l, (W, b) in enumerate(zip(weights, biases, strict=True)):
        phi = get_activation(activation if l < len(weights) - 1 else output_activation).value
        h = phi(h @ np.asarray(W).T + b)
    return h


@exercise(hint="Compose the layers one by one: after W^(l), the map is x -> W^(l) (W x + b) + b^(l).")
def collapse_linear(weights, biases):
    """The single linear layer (W, b) that a deep *linear* network computes (eq. ``eq-ch2-deep-linear``).

    With identity activations, y = W^(L)(... (W^(1) x + b^(1)) ...) + b^(L) = W x + b. ``weights[l]`` has
    shape (n_{l+1}, n_l) and ``biases[l]`` shape (n_{l+1},). Return the tuple ``(W, b)`` with W of shape
    (n_L, n_0) and b of shape (n_L,).
    """
    _check_layers(weights, biases)
    W = np.eye(np.shape(weights[0])[1])
    b = np.zeros(np.shape(weights[0])[1])
    for W_l, b_l in zip(weights, biases, strict=True):
        W, b = W_l @ W, W_l @ b + b_l
    return W, b


def staircase_network(f: ArrayFunction, a: float, b: float, width: int, steepness: float | None = None):
    """A one-hidden-layer logistic network of ``width`` units that approximates ``f`` on [a, b] by a staircase.

    With knots x_i = a + i (b - a) / width, unit i switches on at the midpoint m_i of [x_{i-1}, x_i] and adds
    the increment f(x_i) - f(x_{i-1}):  g(x) = f(a) + sum_i (f(x_i) - f(x_{i-1})) sigma(k (x - m_i))
    (eq. ``eq-ch2-staircase``). As ``steepness`` k grows each sigma(k .) tends to the hard threshold, and as
    ``width`` grows the staircase follows f more closely. The default k is 10 / (knot spacing).
    Returns ``(weights, biases)`` for ``mlp_forward(weights, biases, x[:, None], "logistic")``.
    """
    width = validation.integer(width, "width", minimum=1)
    a, b = validation.number(a, "a"), validation.number(b, "b")
    if not a < b:
        raise ValueError(f"need a < b (the interval [a, b]), got a={a!r}, b={b!r}")
    spacing = (b - a) / width
    k = 10.0 / spacing if steepness is None else validation.positive(steepness, "steepness")
    knots = np.linspace(a, b, width + 1)
    values = np.asarray(f(knots), dtype=np.float64)
    if values.shape != knots.shape or not np.all(np.isfinite(values)):
        raise ValueError("f must map an array of shape (width + 1,) to finite values of the same shape")
    midpoints = (knots[:-1] + knots[1:]) / 2
    weights = [np.full((width, 1), k), np.diff(values)[None, :]]
    biases = [-k * midpoints, values[:1]]
    return weights, biases
