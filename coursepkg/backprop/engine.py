"""A small reverse-mode engine: values that carry their error signal (chapter 3, eq. ``eq-ch3-backprop``).

In the spirit of micrograd's engine, but on NumPy arrays. A :class:`Value` holds ``data`` and its error signal
``grad``; every operation returns a new Value that remembers its parents and a backward *rule*. ``backward()``
visits the graph in reverse topological order and *adds* d out / d v to ``v.grad``, as PyTorch and micrograd do;
``zero_grad()`` clears the graph's error signals before the next pass.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import nn

__all__ = ["Value", "as_value", "mul_backward", "topological_order", "unbroadcast"]

Rule = Callable[[np.ndarray], tuple[np.ndarray, ...]]


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


class Value:
    """A node of a computation graph: a float64 NumPy array ``data`` and its error signal ``grad``.

    Operations on Values (``+ - * / ** @``, ``exp``, ``log``, ``cos``, the activations of chapter 2, ``sum``,
    ``mean``, ``logsumexp``, ``T``, ``reshape``) return new Values that remember their ``parents`` and a
    backward *rule*: a function from the node's error signal to its parents' contributions, dv_j/dv_i v_bar_j.

    ``out.backward()`` adds d out / d v to ``v.grad`` for every node ``v`` that ``out`` depends on. Like
    PyTorch's ``.grad``, the error signals accumulate: a second call adds the same gradient again, and a pass
    from another output adds that output's gradient (the gradient of the sum of the two). ``out.zero_grad()``
    sets them back to zero, as ``optimizer.zero_grad()`` does in a PyTorch training loop.
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
        """Matrix products of 1-D and 2-D arrays, by ``matmul_backward`` (eq. ``eq-ch3-matmul-backward``) on
        their 2-D forms."""
        # The rule is a graded exercise, so it lives in the package's __init__, which imports this module.
        from . import matmul_backward

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
        moved = np.moveaxis(self.data, axis, -1)
        top = moved.max(axis=-1)
        out = top + np.log(np.exp(moved - top[..., None]).sum(axis=-1))
        softmax = np.moveaxis(nn.softmax(moved), -1, axis)
        return Value(out, (self,), "logsumexp", lambda g: (np.expand_dims(g, axis) * softmax,))

    @property
    def T(self) -> Value:
        return Value(self.data.T, (self,), "T", lambda g: (g.T,))

    def reshape(self, *shape) -> Value:
        original = self.shape
        return Value(self.data.reshape(*shape), (self,), "reshape", lambda g: (g.reshape(original),))

    # -- backpropagation --
    def backward(self, grad=None) -> None:
        """Backpropagate from this node: add d self / d v to ``v.grad`` for every node v that self depends on.

        The nodes are visited in reverse topological order (children before parents). This pass's error signal
        starts at v_bar_N = 1 (``self`` must then hold one number) or at ``grad`` when given, and each node
        sends its contribution v_bar_j dv_j/dv_i to each parent (eq. ``eq-ch3-backprop``). Only when a node's
        signal is complete is it added to ``node.grad``, so earlier passes never leak into this one.
        """
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"backward() needs grad= for an output of shape {self.shape}; a loss is one number")
            grad = np.ones_like(self.data)
        grad = np.array(grad, dtype=np.float64)
        if grad.shape != self.shape:
            raise ValueError(f"grad must have the output's shape {self.shape}, got {grad.shape}")
        signals = {id(self): grad}  # this pass's error signals, by node
        for node in reversed(topological_order(self)):
            signal = signals.pop(id(node))  # final: every child of the node has been visited
            node.grad = node.grad + signal  # accumulate across passes, like PyTorch's .grad
            if node._rule is None:
                continue
            for parent, contribution in zip(node.parents, node._rule(signal), strict=True):
                # the sum over the children of the parent: fan-out accumulates
                signals[id(parent)] = signals[id(parent)] + contribution if id(parent) in signals else contribution

    def zero_grad(self) -> None:
        """Set ``grad`` to zero on this node and every node it depends on, before a fresh backward pass."""
        for node in topological_order(self):
            node.grad = np.zeros_like(node.data)


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
