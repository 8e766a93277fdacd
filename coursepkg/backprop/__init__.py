"""Chapter 3: backpropagation by error signals.

For a loss L computed by a graph of intermediate values v_1, ..., v_N = L, the *error signal* of v_i is
v_bar_i = dL/dv_i (eq. ``eq-ch3-error-signal``). Backpropagation visits the nodes in reverse topological order, starts
from v_bar_N = 1 and sets v_bar_i = sum over the children j of v_i of v_bar_j dv_j/dv_i (eq. ``eq-ch3-backprop``).

The package has one module per idea; every public name is importable from ``coursepkg.backprop``:

* this file: the hand-derived error signals of the chapter's examples, which are the graded exercises: logistic
  least squares (with the regulariser R = w^2 / 2), the two-layer network (element-wise and vectorised),
  softmax with cross-entropy, and the matrix product's rule that the engine's ``@`` uses;
* :mod:`~coursepkg.backprop.engine`: a small reverse-mode engine, :class:`Value`, in the spirit of micrograd but
  on NumPy arrays: every value carries its error signal ``.grad`` and ``backward()`` accumulates into it;
* :mod:`~coursepkg.backprop.paths`: gradients as sums over paths, :func:`count_paths` and :func:`path_sum`;
* :mod:`~coursepkg.backprop.classifier`: a two-layer MNIST classifier trained with the hand-written backward pass.
"""

from __future__ import annotations

import numpy as np

from .. import nn, validation
from ..exercise import exercise
from .classifier import classifier_gradients, cross_entropy, init_two_layer, predict, train_classifier
from .engine import Value, as_value, mul_backward, topological_order, unbroadcast
from .paths import count_paths, enumerate_paths, layered_graph, path_sum

__all__ = [
    "Value",
    "as_value",
    "classifier_gradients",
    "count_paths",
    "cross_entropy",
    "enumerate_paths",
    "init_two_layer",
    "layered_graph",
    "logistic_least_squares_signals",
    "matmul_backward",
    "mul_backward",
    "path_sum",
    "predict",
    "softmax_cross_entropy_backward",
    "topological_order",
    "train_classifier",
    "two_layer_backward",
    "two_layer_backward_elementwise",
    "unbroadcast",
]


# --- Error signals of the chapter's examples ---------------------------------------------------------------------


@exercise(
    hint="Forward: z = w x + b, y = logistic(z). Backward: y_bar = y - t, z_bar = y_bar * y * (1 - y), "
    "w_bar = sum(z_bar * x) + lam * w, b_bar = sum(z_bar)."
)
def logistic_least_squares_signals(w, b, x, t, lam=0.0):
    """The error signals of regularised logistic least squares (eqs. ``eq-ch3-lls-signals`` and ``eq-ch3-lls-reg``).

    The model is z = w x + b, y = sigma(z), with the loss L = sum_n (y_n - t_n)^2 / 2 and the regulariser
    R = w^2 / 2 weighted by ``lam``: L_reg = L + lam R. ``w``, ``b``, ``lam`` are numbers; ``x`` and ``t`` are
    numbers (one example) or arrays of shape (N,) (N examples). Return a dict with

    * ``"y_bar"`` and ``"z_bar"``: dL_reg/dy and dL_reg/dz, with the shape of ``x``;
    * ``"w_bar"`` and ``"b_bar"``: dL_reg/dw and dL_reg/db, numbers (summed over the examples).
    """
    w, b = (float(validation.array(v, name, ndim=0)) for v, name in ((w, "w"), (b, "b")))
    lam = validation.number(lam, "lam, the weight of the regulariser,", minimum=0.0)
    x, t = validation.array(x, "x", ndim=(0, 1)), validation.array(t, "t", ndim=(0, 1))
    validation.same_shape(x, t, ("x", "t"))
    z = w * x + b
    y = nn.logistic(z)
    y_bar = y - t
    z_bar = y_bar * y * (1 - y)  # sigma'(z) = y (1 - y)
    w_bar = np.sum(z_bar * x) + lam * w  # R_bar = lam, dR/dw = w
    b_bar = np.sum(z_bar)
    return {"y_bar": y_bar, "z_bar": z_bar, "w_bar": w_bar, "b_bar": b_bar}


def _check_two_layer(W1, b1, W2, b2, x, t) -> tuple[np.ndarray, ...]:
    W1, W2 = validation.array(W1, "W1", ndim=2), validation.array(W2, "W2", ndim=2)
    b1, b2, x, t = (validation.array(v, n, ndim=1) for v, n in ((b1, "b1"), (b2, "b2"), (x, "x"), (t, "t")))
    k, d = W1.shape
    m = W2.shape[0]
    expected = {"b1": (k,), "W2": (m, k), "b2": (m,), "x": (d,), "t": (m,)}
    for name, array in (("b1", b1), ("W2", W2), ("b2", b2), ("x", x), ("t", t)):
        if array.shape != expected[name]:
            raise ValueError(f"{name} must have shape {expected[name]} for W1 of shape {W1.shape}, got {array.shape}")
    return W1, b1, W2, b2, x, t


@exercise(
    hint="Forward z = W1 @ x + b1, h = logistic(z), y = W2 @ h + b2. Backward y_bar = y - t, "
    "W2_bar = outer(y_bar, h), h_bar = W2.T @ y_bar, z_bar = h_bar * h * (1 - h), W1_bar = outer(z_bar, x)."
)
def two_layer_backward(W1, b1, W2, b2, x, t):
    """The gradients of L = ||y - t||^2 / 2 for the two-layer network, vectorised (eq. ``eq-ch3-two-layer-vec``).

    The network is z = W1 x + b1, h = sigma(z) (logistic), y = W2 h + b2 (linear output), with W1 of shape
    (k, d), b1 (k,), W2 (m, k), b2 (m,), x (d,) and t (m,). Use matrix-vector operations, no loops. Return a
    dict with keys ``"W1"``, ``"b1"``, ``"W2"``, ``"b2"`` holding W1_bar, b1_bar, W2_bar, b2_bar, each of the
    shape of its parameter.
    """
    W1, b1, W2, b2, x, t = _check_two_layer(W1, b1, W2, b2, x, t)
    z = W1 @ x + b1
    h = nn.logistic(z)
    y = W2 @ h + b2
    y_bar = y - t
    W2_bar = np.outer(y_bar, h)
    h_bar = W2.T @ y_bar
    z_bar = h_bar * h * (1 - h)
    W1_bar = np.outer(z_bar, x)
    return {"W1": W1_bar, "b1": z_bar, "W2": W2_bar, "b2": y_bar}


def two_layer_backward_elementwise(W1, b1, W2, b2, x, t) -> dict[str, np.ndarray]:
    """The same gradients as :func:`two_layer_backward`, one scalar at a time (eq. ``eq-ch3-two-layer-elem``).

    Slow and explicit: every line is one of the element-wise error-signal equations of the lecture.
    """
    W1, b1, W2, b2, x, t = _check_two_layer(W1, b1, W2, b2, x, t)
    (n_hidden, n_in), n_out = W1.shape, W2.shape[0]
    I, J, K = range(n_hidden), range(n_in), range(n_out)  # i: hidden unit, j: input, k: output
    z = [sum(W1[i, j] * x[j] for j in J) + b1[i] for i in I]
    h = [float(nn.logistic(z[i])) for i in I]
    y = [sum(W2[k, i] * h[i] for i in I) + b2[k] for k in K]
    y_bar = [y[k] - t[k] for k in K]
    W2_bar = [[y_bar[k] * h[i] for i in I] for k in K]
    h_bar = [sum(y_bar[k] * W2[k, i] for k in K) for i in I]
    z_bar = [h_bar[i] * h[i] * (1 - h[i]) for i in I]  # sigma'(z_i) = h_i (1 - h_i)
    W1_bar = [[z_bar[i] * x[j] for j in J] for i in I]
    return {"W1": np.array(W1_bar), "b1": np.array(z_bar), "W2": np.array(W2_bar), "b2": np.array(y_bar)}


@exercise(
    hint="z_bar = softmax(z) - t. Compute the softmax over the last axis after subtracting the row maximum, "
    "so that large logits do not overflow."
)
def softmax_cross_entropy_backward(z, t):
    """The error signal z_bar = y - t of softmax with cross-entropy (eq. ``eq-ch3-softmax-ce``).

    ``z`` holds logits of shape (K,) or a batch of shape (N, K); ``t`` has the same shape and holds target
    distributions (one-hot rows, or rows of probabilities summing to 1). With y = softmax(z) over the last
    axis and L = -sum_n sum_k t_nk log y_nk, return dL/dz, of the shape of ``z``. It must not overflow for
    large logits.
    """
    z, t = validation.array(z, "z", ndim=(1, 2)), validation.array(t, "t", ndim=(1, 2))
    validation.same_shape(z, t, ("z", "t"))
    if np.any(t < 0) or not np.allclose(t.sum(axis=-1), 1.0):
        raise ValueError("each row of t must be a probability distribution (non-negative, summing to 1)")
    return nn.softmax(z) - t  # nn.softmax subtracts each row's maximum first


@exercise(hint="For C = A @ B, A_bar = C_bar @ B.T and B_bar = A.T @ C_bar (check the shapes).")
def matmul_backward(A, B, out_grad):
    """The error signals of a matrix product C = A B (eq. ``eq-ch3-matmul-backward``).

    ``A`` has shape (m, k), ``B`` shape (k, n) and ``out_grad`` = C_bar = dL/dC shape (m, n). Return the tuple
    ``(A_bar, B_bar)`` of dL/dA (shape (m, k)) and dL/dB (shape (k, n)). The engine's ``@`` uses this rule.
    """
    A, B = validation.array(A, "A", ndim=2), validation.array(B, "B", ndim=2)
    out_grad = validation.array(out_grad, "out_grad", ndim=2)
    if A.shape[1] != B.shape[0] or out_grad.shape != (A.shape[0], B.shape[1]):
        raise ValueError(
            f"A {A.shape} @ B {B.shape} needs A.shape[1] == B.shape[0] and out_grad of shape "
            f"({A.shape[0]}, {B.shape[1]}), got out_grad {out_grad.shape}"
        )
    return out_grad @ B.T, A.T @ out_grad
