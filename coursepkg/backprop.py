"""Chapter 3: backpropagation by error signals.

For a loss L computed by a graph of intermediate values v_1, ..., v_N = L, the *error signal* of v_i is
v_bar_i = dL/dv_i (eq. ``eq-ch3-error-signal``). Backpropagation visits the nodes in reverse topological order, starts
from v_bar_N = 1 and sets v_bar_i = sum over the children j of v_i of v_bar_j dv_j/dv_i (eq. ``eq-ch3-backprop``).

This module holds

* the hand-derived error signals of the chapter's examples: logistic least squares (with the regulariser
  R = w^2 / 2), the two-layer network (element-wise and vectorised), softmax with cross-entropy;
* a small reverse-mode engine, :class:`Value`, in the spirit of micrograd but on NumPy arrays: every value
  carries its error signal ``.grad`` and ``backward()`` fills them in, without recursion;
* gradients as sums over paths: :func:`count_paths` and :func:`path_sum`;
* a two-layer MNIST classifier trained with the hand-written backward pass (:func:`train_classifier`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping

import numpy as np
from scipy.special import log_softmax

from . import nn
from .exercise import exercise

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


def _array(value, name: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """``value`` as a finite float64 array, or a ValueError naming the argument."""
    array = np.asarray(value, dtype=np.float64)
    if ndim is not None and array.ndim not in np.atleast_1d(ndim):
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    return array


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
    w, b, lam = (float(_array(v, n, 0)) for v, n in ((w, "w"), (b, "b"), (lam, "lam")))
    if lam < 0:
        raise ValueError(f"lam, the weight of the regulariser, must be non-negative, got {lam}")
    x, t = _array(x, "x", (0, 1)), _array(t, "t", (0, 1))
    if x.shape != t.shape:
        raise ValueError(f"x and t must have the same shape, got {x.shape} and {t.shape}")
    z = w * x + b
    y = nn.logistic(z)
    y_bar = y - t
    z_bar = y_bar * y * (1 - y)  # sigma'(z) = y (1 - y)
    w_bar = np.sum(z_bar * x) + lam * w  # R_bar = lam, dR/dw = w
    b_bar = np.sum(z_bar)
    return {"y_bar": y_bar, "z_bar": z_bar, "w_bar": w_bar, "b_bar": b_bar}


def _check_two_layer(W1, b1, W2, b2, x, t) -> tuple[np.ndarray, ...]:
    W1, W2 = _array(W1, "W1", 2), _array(W2, "W2", 2)
    b1, b2, x, t = (_array(v, n, 1) for v, n in ((b1, "b1"), (b2, "b2"), (x, "x"), (t, "t")))
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


def cross_entropy(z, t) -> np.ndarray:
    """The cross-entropy L = -sum_k t_k log y_k of y = softmax(z), per example (over the last axis)."""
    return -(np.asarray(t, dtype=np.float64) * log_softmax(np.asarray(z, dtype=np.float64), axis=-1)).sum(axis=-1)


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
    z, t = _array(z, "z", (1, 2)), _array(t, "t", (1, 2))
    if z.shape != t.shape:
        raise ValueError(f"z and t must have the same shape, got {z.shape} and {t.shape}")
    if np.any(t < 0) or not np.allclose(t.sum(axis=-1), 1.0):
        raise ValueError("each row of t must be a probability distribution (non-negative, summing to 1)")
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True) - t


# --- Backward rules of the engine's operations --------------------------------------------------------------------


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that NumPy broadcasting added or stretched, so that it has ``shape``.

    An input that broadcasting copied to several places feeds each of them: its error signal is the sum of
    theirs (fan-out, eq. ``eq-ch3-backprop``).
    """
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def mul_backward(a: np.ndarray, b: np.ndarray, out_grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Error signals of c = a * b (element-wise, broadcasting): a_bar = c_bar * b and b_bar = c_bar * a."""
    return unbroadcast(out_grad * b, np.shape(a)), unbroadcast(out_grad * a, np.shape(b))


@exercise(hint="For C = A @ B, A_bar = C_bar @ B.T and B_bar = A.T @ C_bar (check the shapes).")
def matmul_backward(A, B, out_grad):
    """The error signals of a matrix product C = A B (eq. ``eq-ch3-matmul-backward``).

    ``A`` has shape (m, k), ``B`` shape (k, n) and ``out_grad`` = C_bar = dL/dC shape (m, n). Return the tuple
    ``(A_bar, B_bar)`` of dL/dA (shape (m, k)) and dL/dB (shape (k, n)). The engine's ``@`` uses this rule.
    """
    A, B, out_grad = _array(A, "A", 2), _array(B, "B", 2), _array(out_grad, "out_grad", 2)
    if A.shape[1] != B.shape[0] or out_grad.shape != (A.shape[0], B.shape[1]):
        raise ValueError(
            f"A {A.shape} @ B {B.shape} needs A.shape[1] == B.shape[0] and out_grad of shape "
            f"({A.shape[0]}, {B.shape[1]}), got out_grad {out_grad.shape}"
        )
    return out_grad @ B.T, A.T @ out_grad


# --- The engine -----------------------------------------------------------------------------------------------------

Rule = Callable[[np.ndarray], tuple[np.ndarray, ...]]


class Value:
    """A node of a computation graph: a float64 NumPy array ``data`` and its error signal ``grad``.

    Operations on Values (``+ - * / ** @``, ``exp``, ``log``, ``cos``, the activations of chapter 2, ``sum``,
    ``mean``, ``logsumexp``, ``T``, ``reshape``) return new Values that remember their ``parents`` and a
    backward *rule*: a function from the node's error signal to its parents' contributions, dv_j/dv_i v_bar_j.

    ``out.backward()`` sets ``v.grad`` = d out / d v for every node ``v`` that ``out`` depends on. It computes
    the error signals afresh: a second call gives the same ``.grad``, never twice it, and a backward pass from
    another output replaces the error signals of the nodes the two share. (To add the gradients of two
    losses, backpropagate from their sum.)
    """

    __array_ufunc__ = None  # `array + value`, `array @ value`: NumPy defers to Value's reflected operators

    def __init__(self, data, parents: tuple[Value, ...] = (), op: str = "", rule: Rule | None = None):
        self.data = np.array(data, dtype=np.float64)
        self.grad = np.zeros_like(self.data)
        self.parents = tuple(parents)
        self.op = op
        self._rule = rule

    # -- plumbing --
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def __repr__(self) -> str:
        op = f", op={self.op!r}" if self.op else ""
        return f"Value(shape={self.shape}{op}, data={np.array2string(self.data, threshold=6)})"

    def _unary(self, data, op: str, local_derivative: np.ndarray) -> Value:
        """A node computed element-wise from ``self`` alone: x_bar = out_bar * (d out / d x)."""
        return Value(data, (self,), op, lambda g: (g * local_derivative,))

    # -- arithmetic (broadcasting like NumPy) --
    def __add__(self, other) -> Value:
        other = as_value(other)
        return Value(
            self.data + other.data,
            (self, other),
            "+",
            lambda g: (unbroadcast(g, self.shape), unbroadcast(g, other.shape)),
        )

    def __mul__(self, other) -> Value:
        other = as_value(other)
        return Value(self.data * other.data, (self, other), "*", lambda g: mul_backward(self.data, other.data, g))

    def __pow__(self, exponent: float) -> Value:
        if not isinstance(exponent, (int, float)):
            raise TypeError(f"Value ** exponent needs a number exponent, got {type(exponent).__name__}")
        return self._unary(self.data**exponent, f"**{exponent}", exponent * self.data ** (exponent - 1))

    def __neg__(self) -> Value:
        return self * -1.0

    def __sub__(self, other) -> Value:
        return self + (-as_value(other))

    def __truediv__(self, other) -> Value:
        return self * as_value(other) ** -1

    def __radd__(self, other) -> Value:
        return as_value(other) + self

    def __rmul__(self, other) -> Value:
        return as_value(other) * self

    def __rsub__(self, other) -> Value:
        return as_value(other) - self

    def __rtruediv__(self, other) -> Value:
        return as_value(other) / self

    def __matmul__(self, other) -> Value:
        """Matrix products of 1-D and 2-D arrays, by :func:`matmul_backward` on their 2-D forms."""
        other = as_value(other)
        A, B = self.data, other.data
        if A.ndim not in (1, 2) or B.ndim not in (1, 2):
            raise ValueError(f"@ works on 1-D and 2-D Values, got shapes {A.shape} and {B.shape}")
        A2, B2 = A.reshape(-1, A.shape[-1]), B.reshape(B.shape[0], -1)
        if A2.shape[1] != B2.shape[0]:
            raise ValueError(f"shapes {A.shape} and {B.shape} do not match for @")

        def rule(g):
            A_bar, B_bar = matmul_backward(A2, B2, g.reshape(A2.shape[0], B2.shape[1]))
            return A_bar.reshape(A.shape), B_bar.reshape(B.shape)

        return Value(A @ B, (self, other), "@", rule)

    def __rmatmul__(self, other) -> Value:
        return as_value(other) @ self

    # -- element-wise functions --
    def exp(self) -> Value:
        y = np.exp(self.data)
        return self._unary(y, "exp", y)

    def log(self) -> Value:
        return self._unary(np.log(self.data), "log", 1.0 / self.data)

    def cos(self) -> Value:
        return self._unary(np.cos(self.data), "cos", -np.sin(self.data))

    def activation(self, name: str) -> Value:
        """phi(self) for an activation of ``nn.ACTIVATIONS``, whose derivative is the local derivative."""
        phi, phi_prime = nn.get_activation(name)
        return self._unary(phi(self.data), name, phi_prime(self.data))

    def logistic(self) -> Value:
        return self.activation("logistic")

    def tanh(self) -> Value:
        return self.activation("tanh")

    def relu(self) -> Value:
        return self.activation("relu")

    # -- reductions and shapes --
    def sum(self, axis: int | tuple[int, ...] | None = None) -> Value:
        """The sum over ``axis`` (all axes when None); every summed entry receives the sum's error signal."""
        shape = self.shape

        def rule(g):
            expanded = g if axis is None else np.expand_dims(g, axis)
            return (np.broadcast_to(expanded, shape).copy(),)

        return Value(self.data.sum(axis=axis), (self,), "sum", rule)

    def mean(self, axis: int | tuple[int, ...] | None = None) -> Value:
        total = self.sum(axis)
        return total * (total.data.size / self.data.size)

    def logsumexp(self, axis: int = -1) -> Value:
        """log sum_k exp(x_k) over ``axis``, stably; its local derivatives are softmax(x) (``eq-ch3-softmax-ce``)."""
        top = self.data.max(axis=axis, keepdims=True)
        shifted = np.exp(self.data - top)
        total = shifted.sum(axis=axis, keepdims=True)
        softmax = shifted / total
        out = np.squeeze(top + np.log(total), axis=axis)
        return Value(out, (self,), "logsumexp", lambda g: (np.expand_dims(g, axis) * softmax,))

    @property
    def T(self) -> Value:
        return Value(self.data.T, (self,), "T", lambda g: (g.T,))

    def reshape(self, *shape) -> Value:
        original = self.shape
        return Value(self.data.reshape(*shape), (self,), "reshape", lambda g: (g.reshape(original),))

    # -- backpropagation --
    def backward(self, grad=None) -> None:
        """Backpropagate from this node: v.grad = d self / d v for every node v that self depends on.

        The nodes are visited in reverse topological order (children before parents). ``self.grad`` starts at
        1 (v_bar_N = 1; ``self`` must then hold one number) or at ``grad`` when given, and each node adds
        its contribution v_bar_j dv_j/dv_i to each parent's error signal (eq. ``eq-ch3-backprop``). Every error
        signal is reset to zero first, so calling ``backward()`` twice does not double anything.
        """
        order = topological_order(self)
        for node in order:
            node.grad = np.zeros_like(node.data)
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"backward() needs grad= for an output of shape {self.shape}; a loss is one number")
            grad = np.ones_like(self.data)
        grad = np.array(grad, dtype=np.float64)
        if grad.shape != self.shape:
            raise ValueError(f"grad must have the output's shape {self.shape}, got {grad.shape}")
        self.grad = grad
        for node in reversed(order):
            if node._rule is None:
                continue
            for parent, signal in zip(node.parents, node._rule(node.grad), strict=True):
                parent.grad += signal  # sum over the children of the parent: fan-out accumulates


def as_value(x) -> Value:
    """``x`` itself if it is a :class:`Value`, else a new constant Value holding it."""
    return x if isinstance(x, Value) else Value(x)


def topological_order(output: Value) -> list[Value]:
    """Every node ``output`` depends on, each after all of its parents (inputs first, ``output`` last).

    An iterative depth-first search with an explicit stack: a node is appended once all its parents have
    been, so deep graphs never reach Python's recursion limit.
    """
    order: list[Value] = []
    visited: set[int] = set()
    stack: list[tuple[Value, bool]] = [(output, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif id(node) not in visited:
            visited.add(id(node))
            stack.append((node, True))
            stack.extend((parent, False) for parent in node.parents if id(parent) not in visited)
    return order


# --- Gradients as sums over paths ---------------------------------------------------------------------------------

Graph = Mapping[Hashable, Iterable[Hashable]]


def _children_and_parents(graph: Graph) -> tuple[dict, dict]:
    children = {node: list(kids) for node, kids in graph.items()}
    for kids in list(children.values()):
        for kid in kids:
            children.setdefault(kid, [])
    parents: dict = {node: [] for node in children}
    for node, kids in children.items():
        for kid in kids:
            parents[kid].append(node)
    return children, parents


def _kahn_order(children: dict, parents: dict) -> list:
    """A topological order of the DAG by Kahn's algorithm; a ValueError when the graph has a cycle."""
    indegree = {node: len(ps) for node, ps in parents.items()}
    ready = [node for node, count in indegree.items() if count == 0]
    order = []
    while ready:
        node = ready.pop()
        order.append(node)
        for kid in children[node]:
            indegree[kid] -= 1
            if indegree[kid] == 0:
                ready.append(kid)
    if len(order) != len(children):
        raise ValueError("graph has a cycle: a computation graph must be a directed acyclic graph")
    return order


def count_paths(graph: Graph, output: Hashable | None = None) -> int:
    """The number of paths from the inputs (nodes without parents) to ``output`` in a DAG.

    ``graph`` maps each node to its children (the nodes computed from it). ``output`` defaults to the one node
    without children. By dynamic programming in topological order, paths(input) = 1 and paths(v) = sum of
    paths(p) over the parents p of v (eq. ``eq-ch3-count-paths``): work linear in the number of edges, although the
    count itself can grow exponentially with depth. Returns an exact Python int.
    """
    children, parents = _children_and_parents(graph)
    if not children:
        raise ValueError("graph is empty")
    if output is None:
        sinks = [node for node, kids in children.items() if not kids]
        if len(sinks) != 1:
            raise ValueError(f"graph has {len(sinks)} nodes without children; pass output= to choose one")
        output = sinks[0]
    elif output not in children:
        raise ValueError(f"output {output!r} is not a node of graph")
    paths: dict = {}
    for node in _kahn_order(children, parents):
        paths[node] = sum(paths[p] for p in parents[node]) if parents[node] else 1
    return paths[output]


def enumerate_paths(graph: Graph, source: Hashable, target: Hashable) -> Iterator[tuple]:
    """Every path from ``source`` to ``target`` in a DAG, as a tuple of nodes (iterative depth-first search)."""
    children, _ = _children_and_parents(graph)
    for node, name in ((source, "source"), (target, "target")):
        if node not in children:
            raise ValueError(f"{name} {node!r} is not a node of graph")
    stack = [(source,)]
    while stack:
        path = stack.pop()
        if path[-1] == target:
            yield path
            continue
        stack.extend(path + (kid,) for kid in reversed(children[path[-1]]))


def path_sum(graph: Graph, local_derivative: Mapping[tuple, float], source: Hashable, target: Hashable) -> float:
    """d target / d source as the sum over all paths of the product of local derivatives along each path.

    ``local_derivative[(u, v)]`` is dv/du for each edge u -> v (eq. ``eq-ch3-path-sum``). Exponential work on deep
    layered graphs: compare with backpropagation, which shares the partial sums.
    """
    total = 0.0
    for path in enumerate_paths(graph, source, target):
        product = 1.0
        for u, v in zip(path[:-1], path[1:], strict=True):
            product *= local_derivative[(u, v)]
        total += product
    return total


def layered_graph(widths: Iterable[int]) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """A fully connected layered DAG: node (l, i) is unit i of layer l; every unit feeds every unit above.

    From inputs to a single output, ``layered_graph((w0, ..., w_{L-1}, 1))`` has w0 w1 ... w_{L-1} paths
    but only w0 w1 + w1 w2 + ... edges.
    """
    widths = list(widths)
    if not widths or not all(isinstance(w, (int, np.integer)) and w > 0 for w in widths):
        raise ValueError(f"widths must be positive ints, got {widths!r}")
    graph: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for l, width in enumerate(widths):
        above = [(l + 1, j) for j in range(widths[l + 1])] if l + 1 < len(widths) else []
        for i in range(width):
            graph[(l, i)] = list(above)
    return graph


# --- A two-layer MNIST classifier trained with the hand-written backward pass ---------------------------------------


def init_two_layer(d: int, k: int, m: int, seed: int = 0, dtype=np.float32) -> dict[str, np.ndarray]:
    """Parameters of a d-k-m network: weights N(0, 1/fan_in), zero biases."""
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
