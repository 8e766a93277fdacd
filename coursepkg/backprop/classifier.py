"""A two-layer MNIST classifier trained with chapter 3's hand-written backward pass (eq. ``eq-ch3-batch-backward``).

NumPy only: the forward pass, the mean cross-entropy, its gradients by the vectorised error signals, and a
mini-batch gradient-descent loop. Every torch model of the course trains with ``coursepkg.train.fit`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.special import logsumexp

from .. import nn, validation

__all__ = ["classifier_gradients", "cross_entropy", "init_two_layer", "predict", "train_classifier"]


def cross_entropy(z, t) -> np.ndarray:
    """The cross-entropy L = -sum_k t_k log y_k of y = softmax(z), per example (over the last axis).

    With rows of ``t`` that sum to 1, log y_k = z_k - logsumexp(z), so L = logsumexp(z) - sum_k t_k z_k: no
    logarithm of a softmax entry that underflowed to 0.
    """
    z, t = validation.array(z, "z", ndim=(1, 2)), validation.array(t, "t", ndim=(1, 2))
    validation.same_shape(z, t, ("z", "t"))
    return logsumexp(z, axis=-1) - (t * z).sum(axis=-1)


def init_two_layer(d: int, k: int, m: int, seed: int = 0, dtype=np.float32) -> dict[str, np.ndarray]:
    """Parameters of a d-k-m network: weights N(0, 1/fan_in), zero biases."""
    d, k, m = (validation.integer(v, name, minimum=1) for v, name in ((d, "d"), (k, "k"), (m, "m")))
    rng = np.random.default_rng(seed)
    return {
        "W1": (rng.standard_normal((k, d)) / np.sqrt(d)).astype(dtype),
        "b1": np.zeros(k, dtype=dtype),
        "W2": (rng.standard_normal((m, k)) / np.sqrt(k)).astype(dtype),
        "b2": np.zeros(m, dtype=dtype),
    }


def predict(params: Mapping[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """The logits Z2 = sigma(X W1^T + b1) W2^T + b2 of a batch X of shape (N, d)."""
    H = nn.logistic(X @ params["W1"].T + params["b1"]).astype(X.dtype)
    return H @ params["W2"].T + params["b2"]


def classifier_gradients(params: Mapping[str, np.ndarray], X: np.ndarray, T: np.ndarray):
    """The mean cross-entropy of a batch and its gradients, by the vectorised error signals of the chapter.

    Logistic hidden layer H = sigma(X W1^T + b1), logits Z2 = H W2^T + b2, targets T (one-hot, (N, m)).
    Rows are examples, so each error-signal equation of ``two_layer_backward`` is transposed and summed over
    the batch (eq. ``eq-ch3-batch-backward``). Returns ``(loss, grads)`` with grads keyed like ``params``.
    """
    from . import softmax_cross_entropy_backward  # a graded exercise: it lives in the package's __init__

    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    n = X.shape[0]
    H = nn.logistic(X @ W1.T + b1).astype(X.dtype)
    Z2 = H @ W2.T + b2
    loss = cross_entropy(Z2, T).mean()
    Z2_bar = (softmax_cross_entropy_backward(Z2, T) / n).astype(X.dtype)  # the mean over the batch
    H_bar = Z2_bar @ W2
    Z1_bar = H_bar * H * (1 - H)
    grads = {"W1": Z1_bar.T @ X, "b1": Z1_bar.sum(0), "W2": Z2_bar.T @ H, "b2": Z2_bar.sum(0)}
    return float(loss), grads


def train_classifier(
    X: np.ndarray,
    labels: np.ndarray,
    *,
    hidden: int = 100,
    epochs: int = 2,
    batch_size: int = 100,
    lr: float = 0.5,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], list[float]]:
    """Train a d-``hidden``-m logistic network by mini-batch gradient descent with :func:`classifier_gradients`.

    ``X`` (N, d) holds the inputs, ``labels`` (N,) integer classes 0..m-1. Returns the parameters and the loss
    of every mini-batch, in order. This is the chapter's NumPy-only loop, there to show the hand-written
    backward pass at work; every torch model of the course trains with ``coursepkg.train.fit``.
    """
    X = np.asarray(X)
    labels = np.asarray(labels)
    if X.ndim != 2 or labels.shape != (X.shape[0],):
        raise ValueError(f"X must be (N, d) and labels (N,), got {X.shape} and {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError("labels must be non-negative integers")
    epochs = validation.integer(epochs, "epochs", minimum=1)
    batch_size = validation.integer(batch_size, "batch_size", minimum=1)
    lr = validation.positive(lr, "lr")
    m = int(labels.max()) + 1
    T = np.eye(m, dtype=X.dtype)[labels]
    params = init_two_layer(X.shape[1], hidden, m, seed=seed, dtype=X.dtype)
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(epochs):
        order = rng.permutation(X.shape[0])
        for start in range(0, X.shape[0], batch_size):
            batch = order[start : start + batch_size]
            loss, grads = classifier_gradients(params, X[batch], T[batch])
            for name in params:
                params[name] -= lr * grads[name]
            losses.append(loss)
    return params, losses
