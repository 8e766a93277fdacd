"""Chapter 1: gradients, Jacobians, gradient descent and stochastic gradient descent, in NumPy.

Every function takes NumPy arrays (or anything ``numpy.asarray`` accepts) and returns float64 NumPy arrays.
The equation labels in the docstrings are those of the book's chapter 1 (``book/01_gradients.md``):

* ``eq-ch1-central``: central differences, :func:`numerical_gradient`;
* ``eq-ch1-gd``: gradient descent, :func:`gradient_descent`; ``eq-ch1-halving``: the halving rule, :func:`halving_step`;
* ``eq-ch1-ls`` / ``eq-ch1-ls-grad``: least squares and its gradient, :func:`least_squares_loss`,
  :func:`least_squares_grad`;
* ``eq-ch1-minibatch``: mini-batch stochastic gradient descent, :func:`sgd_epoch`, :func:`minibatch_sgd`;
* ``eq-ch1-relu-jacobian`` / ``eq-ch1-linear-jacobian``: Jacobians, :func:`relu_jacobian`, :func:`linear_jacobian`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import validation
from .exercise import exercise

__all__ = [
    "DescentResult",
    "SGDResult",
    "gradient_descent",
    "halving_step",
    "least_squares_grad",
    "least_squares_loss",
    "linear_jacobian",
    "minibatch_sgd",
    "numerical_gradient",
    "relu_jacobian",
    "sgd_epoch",
]

Objective = Callable[[np.ndarray], float]
Gradient = Callable[[np.ndarray], np.ndarray]
BatchGradient = Callable[[np.ndarray, np.ndarray], np.ndarray]
Schedule = Callable[[int], float]


# ----------------------------------------------------------------------------------------------------------
# Input checks shared by the functions below (not graded).


def _least_squares_inputs(X, t, w) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check X (N, d), t (N,), w (d,) and return them as float64 arrays."""
    X = validation.array(X, "X", ndim=2)
    t = validation.array(t, "t", ndim=1)
    w = validation.array(w, "w", ndim=1)
    if t.shape[0] != X.shape[0]:
        raise ValueError(f"t has {t.shape[0]} targets but X has {X.shape[0]} rows (examples); they must match")
    if w.shape[0] != X.shape[1]:
        raise ValueError(f"w has {w.shape[0]} entries but X has {X.shape[1]} columns (features); they must match")
    return X, t, w


def _gradient_value(grad: Gradient, w: np.ndarray) -> np.ndarray:
    """``grad(w)`` as a float64 array of ``w``'s shape (no finiteness check: divergence is detected later)."""
    g = np.asarray(grad(w), dtype=np.float64)
    if g.shape != w.shape:
        raise ValueError(f"grad(w) returned shape {g.shape}, expected w's shape {w.shape}")
    return g


def _batch_gradient(grad_on_batch: BatchGradient, w: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """``grad_on_batch(w, batch)`` as a float64 array of ``w``'s shape."""
    g = np.asarray(grad_on_batch(w, batch), dtype=np.float64)
    if g.shape != w.shape:
        raise ValueError(f"grad_on_batch(w, S) returned shape {g.shape}, expected w's shape {w.shape}")
    return g


def _step_size(lr: float, schedule: Schedule | None, step: int) -> float:
    """The learning rate of update ``step``: ``lr * schedule(step)``, or ``lr`` without a schedule."""
    if schedule is None:
        return lr
    return validation.positive(lr * float(schedule(step)), f"lr * schedule({step})")


def _check_batching(n, batch_size) -> tuple[int, int]:
    n = validation.integer(n, "n", minimum=1)
    batch_size = validation.integer(batch_size, "batch_size", minimum=1)
    if batch_size > n:
        raise ValueError(f"batch_size must be <= n = {n} (the number of examples), got {batch_size}")
    return n, batch_size


# ----------------------------------------------------------------------------------------------------------
# Least squares, eq. (eq-ch1-ls).


def least_squares_loss(X, t, w) -> float:
    """The least-squares error E(w) = ½ Σ_n (x_nᵀw − t_n)², eq. (eq-ch1-ls).

    X: (N, d) inputs, one example x_n per row; t: (N,) targets; w: (d,) weights. Returns a float.
    """
    X, t, w = _least_squares_inputs(X, t, w)
    residual = X @ w - t
    return 0.5 * float(residual @ residual)


@exercise(
    hint="Differentiate each term ½ (x_n^T w - t_n)^2 with the chain rule and sum over n; in matrix form this "
    "needs one product with X and one with X.T, no Python loop."
)
def least_squares_grad(X, t, w):
    """The gradient of the least-squares error E(w) = ½ Σ_n (x_nᵀw − t_n)², eq. (eq-ch1-ls-grad):

        ∇E(w) = Σ_n x_n (x_nᵀw − t_n) = Xᵀ(Xw − t).

    X: (N, d) array, one example x_n per row; t: (N,) targets; w: (d,) weights. Returns a (d,) array.
    """
    X, t, w = _least_squares_inputs(X, t, w)
    return X.T @ (X @ w - t)


# ----------------------------------------------------------------------------------------------------------
# Gradient descent, eq. (eq-ch1-gd), and the halving rule, eq. (eq-ch1-halving).


@exercise(
    hint="Try eta = lr, lr/2, lr/4, ... in turn and return (w - eta * g, eta) for the first eta with "
    "f(w - eta * g) < f(w)."
)
def halving_step(f, w, g, lr, max_halvings=50):
    """One descent step with the halving rule, "start big, halve until f decreases", eq. (eq-ch1-halving).

    Try the step sizes η = lr, lr/2, lr/4, ... in this order and take the first step that makes f strictly
    smaller: f(w − η g) < f(w).

    f: a function of a (d,) array returning a number; w: (d,) the current point; g: (d,) the descent
    direction, usually the gradient ∇f(w) (use the g you are given; do not recompute it); lr: the first
    step size to try (> 0); max_halvings: how many times to halve at most.
    Returns the pair (w − η g, η). If none of lr, lr/2, ..., lr/2**max_halvings decreases f (w is already a
    minimum to machine precision, or g is not a descent direction), returns (w, 0.0): f never increases.
    """
    w = validation.array(w, "w")
    g = validation.array(g, "g")
    if g.shape != w.shape:
        raise ValueError(f"g has shape {g.shape} but w has shape {w.shape}; they must match")
    eta = validation.positive(lr, "lr")
    current = float(f(w))
    for _ in range(validation.integer(max_halvings, "max_halvings", minimum=0) + 1):
        candidate = w - eta * g
        if float(f(candidate)) < current:  # False for nan, so a non-finite value also halves
            return candidate, eta
        eta /= 2
    return w.copy(), 0.0


@dataclass(frozen=True)
class DescentResult:
    """What :func:`gradient_descent` did: every iterate, its loss and gradient norm, and why it stopped.

    ``trajectory[t]`` is w_t (``trajectory[0]`` is w_0), ``losses[t]`` is f(w_t), ``grad_norms[t]`` is
    ‖∇f(w_t)‖ and ``step_sizes[t]`` the η_t of the update from w_t to w_{t+1}. ``stopped`` is ``"tolerance"``
    (‖∇f‖ < tol), ``"max_iter"``, ``"diverged"`` or, with the halving rule, ``"stalled"`` (no step size
    decreased f).
    """

    trajectory: np.ndarray
    losses: np.ndarray
    grad_norms: np.ndarray
    step_sizes: np.ndarray
    stopped: str

    @property
    def w(self) -> np.ndarray:
        """The last iterate."""
        return self.trajectory[-1]

    @property
    def iterations(self) -> int:
        """The number of updates taken."""
        return len(self.step_sizes)

    @property
    def converged(self) -> bool:
        return self.stopped == "tolerance"


def gradient_descent(
    f: Objective,
    grad: Gradient,
    w0,
    lr: float,
    tol: float = 1e-6,
    max_iter: int = 1000,
    *,
    schedule: Schedule | None = None,
    halving: bool = False,
    divergence: float = 1e8,
) -> DescentResult:
    """Gradient descent w_{t+1} = w_t − η_t ∇f(w_t), eq. (eq-ch1-gd), from w0 until ‖∇f(w_t)‖ < tol.

    f: the function to minimise (array -> number); grad: its gradient (array -> array of the same shape);
    w0: the starting point; lr: the learning rate η > 0; tol: stop as soon as ‖∇f(w_t)‖ < tol (0 never stops
    early); max_iter: the most updates to take.

    schedule: a learning-rate schedule, η_t = lr · schedule(t) for the update t = 0, 1, ... (for example
    ``lambda t: 1 / (1 + t / 50)``). halving: take each step with :func:`halving_step`, starting at η_t and
    halving until f decreases; the run stops with ``"stalled"`` if no step size decreases f (w is a minimum to
    machine precision). divergence: stop with ``"diverged"`` when f(w_t) > f(w_0) + divergence · (1 + |f(w_0)|),
    or f or ∇f is no longer finite.

    Returns a :class:`DescentResult` with the whole trajectory and why the run stopped.
    """
    w = validation.array(w0, "w0")
    lr = validation.positive(lr, "lr")
    tol = validation.number(tol, "tol", minimum=0.0)
    max_iter = validation.integer(max_iter, "max_iter", minimum=0)
    divergence = validation.positive(divergence, "divergence")
    loss, g = float(f(w)), _gradient_value(grad, w)
    if not np.isfinite(loss) or not np.all(np.isfinite(g)):
        raise ValueError(f"f(w0) = {loss} or grad(w0) is not finite; start from another w0")
    limit = loss + divergence * (1.0 + abs(loss))
    trajectory, losses, norms, steps = [w], [loss], [float(np.linalg.norm(g))], []

    def why_stop() -> str | None:
        if not np.isfinite(losses[-1]) or not np.isfinite(norms[-1]) or losses[-1] > limit:
            return "diverged"
        return "tolerance" if norms[-1] < tol else None

    stopped = why_stop()
    while stopped is None and len(steps) < max_iter:
        eta = _step_size(lr, schedule, len(steps))
        if halving:
            w, eta = halving_step(f, w, g, eta)
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                w = w - eta * g
        with np.errstate(over="ignore", invalid="ignore"):
            loss, g = float(f(w)), _gradient_value(grad, w)
        trajectory.append(w)
        losses.append(loss)
        norms.append(float(np.linalg.norm(g)))
        steps.append(eta)
        stopped = "stalled" if halving and eta == 0.0 else why_stop()
    return DescentResult(
        trajectory=np.array(trajectory),
        losses=np.array(losses),
        grad_norms=np.array(norms),
        step_sizes=np.array(steps, dtype=np.float64),
        stopped=stopped or "max_iter",
    )


# ----------------------------------------------------------------------------------------------------------
# Stochastic and mini-batch gradient descent, eq. (eq-ch1-minibatch).


@exercise(
    hint="order = np.random.default_rng(seed).permutation(n); then for start in range(0, n, batch_size): "
    "S = order[start:start + batch_size] and w = w - lr * grad_on_batch(w, S)."
)
def sgd_epoch(grad_on_batch, w, n, batch_size, lr, seed):
    """One epoch of mini-batch stochastic gradient descent, eq. (eq-ch1-minibatch).

    Shuffle the example indices 0, ..., n − 1 with ``order = np.random.default_rng(seed).permutation(n)`` and
    cut ``order`` into consecutive mini-batches S of ``batch_size`` indices: ``order[0:batch_size]``,
    ``order[batch_size:2 * batch_size]``, ... (the last one is shorter when batch_size does not divide n).
    For each mini-batch in turn take the step w ← w − lr · grad_on_batch(w, S), where grad_on_batch(w, S)
    returns the mean gradient (1/|S|) Σ_{n∈S} ∇E_n(w) over the examples in S.

    grad_on_batch: a function (w, S) -> array of w's shape; w: (d,) weights at the start of the epoch;
    n: the number of examples; batch_size: |S|, between 1 and n; lr: the learning rate η > 0; seed: the seed
    of the shuffle. Returns the (d,) weights after the epoch.
    """
    w = validation.array(w, "w")
    n, batch_size = _check_batching(n, batch_size)
    lr = validation.positive(lr, "lr")
    order = np.random.default_rng(seed).permutation(n)
    for start in range(0, n, batch_size):
        w = w - lr * _batch_gradient(grad_on_batch, w, order[start : start + batch_size])
    return w


@dataclass(frozen=True)
class SGDResult:
    """What :func:`minibatch_sgd` did.

    ``trajectory[k]`` is the weight vector after k updates (``trajectory[0]`` is w_0); ``epoch_trajectory[e]``
    after e epochs; ``step_sizes[k]`` the learning rate of update k; ``epoch_losses[e]`` the loss after e
    epochs when a ``loss`` function was given (else None); ``stopped`` is ``"epochs"`` or ``"diverged"``.
    """

    trajectory: np.ndarray
    epoch_trajectory: np.ndarray
    step_sizes: np.ndarray
    epoch_losses: np.ndarray | None
    stopped: str

    @property
    def w(self) -> np.ndarray:
        """The last iterate."""
        return self.trajectory[-1]


def minibatch_sgd(
    grad_on_batch: BatchGradient,
    w0,
    n: int,
    batch_size: int,
    lr: float,
    epochs: int,
    seed: int,
    *,
    loss: Objective | None = None,
    schedule: Schedule | None = None,
    shuffle: bool = True,
) -> SGDResult:
    """Mini-batch stochastic gradient descent w ← w − η_k · (1/|S|) Σ_{n∈S} ∇E_n(w), eq. (eq-ch1-minibatch).

    grad_on_batch(w, S) returns the mean gradient over the examples with indices S (a NumPy integer array);
    n: the number of examples; batch_size: |S| (1 is SGD, n is batch gradient descent); lr: η > 0; epochs: the
    number of passes over the data; seed: the generator ``rng = np.random.default_rng(seed)`` is made once and
    epoch e visits the examples in the order ``rng.permutation(n)`` (``np.arange(n)`` when ``shuffle=False``),
    in consecutive mini-batches of ``batch_size`` (the last one shorter when batch_size does not divide n).
    One epoch with a given seed is therefore exactly :func:`sgd_epoch` with that seed.

    loss: an optional function of w recorded after every epoch (in ``epoch_losses``); schedule: η_k = lr ·
    schedule(k) for update k = 0, 1, ... Stops early with ``stopped="diverged"`` when w is no longer finite.
    """
    w = validation.array(w0, "w0")
    n, batch_size = _check_batching(n, batch_size)
    lr = validation.positive(lr, "lr")
    epochs = validation.integer(epochs, "epochs", minimum=0)
    rng = np.random.default_rng(seed)
    trajectory, epoch_trajectory, steps = [w], [w], []
    losses = None if loss is None else [float(loss(w))]
    stopped = "epochs"
    for _ in range(epochs):
        order = rng.permutation(n) if shuffle else np.arange(n)
        for start in range(0, n, batch_size):
            eta = _step_size(lr, schedule, len(steps))
            g = _batch_gradient(grad_on_batch, w, order[start : start + batch_size])
            with np.errstate(over="ignore", invalid="ignore"):
                w = w - eta * g
            trajectory.append(w)
            steps.append(eta)
            if not np.all(np.isfinite(w)):
                stopped = "diverged"
                break
        epoch_trajectory.append(w)
        if losses is not None:
            losses.append(float(loss(w)) if stopped == "epochs" else np.nan)
        if stopped != "epochs":
            break
    return SGDResult(
        trajectory=np.array(trajectory),
        epoch_trajectory=np.array(epoch_trajectory),
        step_sizes=np.array(steps, dtype=np.float64),
        epoch_losses=None if losses is None else np.array(losses),
        stopped=stopped,
    )


# ----------------------------------------------------------------------------------------------------------
# Numerical gradients, eq. (eq-ch1-central), and Jacobians, eqs. (eq-ch1-relu-jacobian), (eq-ch1-linear-jacobian).


@exercise(
    hint="For each coordinate i, with e_i the i-th unit vector: (f(w + eps * e_i) - f(w - eps * e_i)) / (2 * eps)."
)
def numerical_gradient(f, w, eps=1e-6):
    """The gradient of f at w by central differences, eq. (eq-ch1-central):

        ∂f/∂w_i ≈ (f(w + ε e_i) − f(w − ε e_i)) / (2ε),   e_i the i-th unit vector,

    whose error shrinks like ε². f: a function of a (d,) array returning a number; w: (d,) the point (arrays
    of any shape also work: every entry is perturbed in turn); eps: the step ε > 0. Returns an array of w's
    shape.
    """
    w = validation.array(w, "w")
    eps = validation.positive(eps, "eps")
    gradient = np.empty_like(w)
    for i in np.ndindex(w.shape):
        step = np.zeros_like(w)
        step[i] = eps
        gradient[i] = (float(f(w + step)) - float(f(w - step))) / (2 * eps)
    return gradient


@exercise(hint="The Jacobian is diagonal: entry [i, i] is H(x_i), 1 where x_i > 0 and 0 elsewhere (also at 0).")
def relu_jacobian(x):
    """The Jacobian of the elementwise ReLU, v_i = max(0, x_i), at x, eq. (eq-ch1-relu-jacobian):

        ∂v/∂x = diag(H(x)),   H(x_i) = 1 if x_i > 0 else 0.

    At x_i = 0, where ReLU has no derivative, use 0 (PyTorch makes the same choice). x: (d,) array. Returns
    the (d, d) Jacobian matrix, entry [i, j] = ∂v_i/∂x_j.
    """
    x = validation.array(x, "x", ndim=1)
    return np.diag((x > 0).astype(np.float64))


@exercise(
    hint="With respect to x the Jacobian of Wx is W itself; with respect to W, entry [i, j, k] is "
    "(1 if i == j else 0) * x[k]: start from np.zeros((m, m, n)) and fill the entries with i == j."
)
def linear_jacobian(W, x, wrt="x"):
    """The Jacobian of the linear map v = Wx, eq. (eq-ch1-linear-jacobian).

    W: (m, n) matrix; x: (n,) vector. With ``wrt="x"`` return ∂v/∂x, an (m, n) matrix with entry [i, k] =
    ∂v_i/∂x_k (it is W). With ``wrt="W"`` return ∂v/∂W, an (m, m, n) array with entry [i, j, k] = ∂v_i/∂W_jk
    = δ_ij x_k (1 when i = j, 0 otherwise, times x_k).
    """
    W = validation.array(W, "W", ndim=2)
    x = validation.array(x, "x", ndim=1)
    if W.shape[1] != x.shape[0]:
        raise ValueError(f"W has {W.shape[1]} columns but x has {x.shape[0]} entries; they must match")
    if wrt == "x":
        return W.copy()
    if wrt == "W":
        return np.einsum("ij,k->ijk", np.eye(W.shape[0]), x)
    raise ValueError(f'wrt must be "x" or "W", got {wrt!r}')
