"""Tests of coursepkg.backprop: every gradient against torch.autograd (float64) and central differences."""

from __future__ import annotations

import itertools
import math
import sys

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coursepkg import backprop as bp
from coursepkg.backprop import Value

TIGHT = {"rtol": 1e-10, "atol": 1e-10}


def leaf(array) -> torch.Tensor:
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


def central_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """The gradient of the scalar function f at x by central differences, one coordinate at a time."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        grad[index] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


def finite(shape, low=-3.0, high=3.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high, allow_nan=False))


# --- the engine, operation by operation -------------------------------------------------------------------------


BINARY = {
    "+": (lambda a, b: a + b, lambda a, b: a + b),
    "-": (lambda a, b: a - b, lambda a, b: a - b),
    "*": (lambda a, b: a * b, lambda a, b: a * b),
    "/": (lambda a, b: a / (b * b + 1.0), lambda a, b: a / (b * b + 1.0)),
}


@pytest.mark.parametrize("op", sorted(BINARY))
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_binary_operations_with_broadcasting_match_torch(op, data):
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4))
    a_np, b_np = (data.draw(finite(shape)) for shape in shapes.input_shapes)
    weights = data.draw(finite(shapes.result_shape))
    ours, theirs = BINARY[op]
    a, b = Value(a_np), Value(b_np)
    (ours(a, b) * weights).sum().backward()
    ta, tb = leaf(a_np), leaf(b_np)
    (theirs(ta, tb) * torch.from_numpy(weights)).sum().backward()
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), **TIGHT)
    np.testing.assert_allclose(b.grad, tb.grad.numpy(), **TIGHT)
    assert a.grad.shape == a_np.shape and b.grad.shape == b_np.shape


UNARY = {
    "exp": (lambda v: v.exp(), torch.exp),
    "log": (lambda v: (v * v + 0.5).log(), lambda t: torch.log(t * t + 0.5)),
    "cos": (lambda v: v.cos(), torch.cos),
    "logistic": (lambda v: v.logistic(), torch.sigmoid),
    "tanh": (lambda v: v.tanh(), torch.tanh),
    "relu": (lambda v: v.relu(), torch.relu),
    "softplus": (lambda v: v.activation("softplus"), torch.nn.functional.softplus),
    "pow": (lambda v: (v * v + 1.0) ** -1.5, lambda t: (t * t + 1.0) ** -1.5),
    "neg-rsub-rdiv": (lambda v: 2.0 - 3.0 / (1.0 + v * v), lambda t: 2.0 - 3.0 / (1.0 + t * t)),
    "sum0": (lambda v: v.sum(axis=0), lambda t: t.sum(dim=0)),
    "sum-last": (lambda v: v.sum(axis=-1), lambda t: t.sum(dim=-1)),
    "mean": (lambda v: v.mean(), torch.mean),
    "mean0": (lambda v: v.mean(axis=0), lambda t: t.mean(dim=0)),
    "logsumexp": (lambda v: v.logsumexp(axis=-1), lambda t: torch.logsumexp(t, dim=-1)),
    "logsumexp0": (lambda v: v.logsumexp(axis=0), lambda t: torch.logsumexp(t, dim=0)),
    "T": (lambda v: v.T, lambda t: t.T),
    "reshape": (lambda v: v.reshape(-1), lambda t: t.reshape(-1)),
}


@pytest.mark.parametrize("op", sorted(UNARY))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_unary_operations_match_torch(op, data):
    x_np = data.draw(finite(hnp.array_shapes(min_dims=2, max_dims=2, max_side=5)))
    if op == "relu":
        x_np = np.where(np.abs(x_np) < 1e-6, 0.5, x_np)  # torch and we agree at 0, but keep the test about slopes
    ours, theirs = UNARY[op]
    x, tx = Value(x_np), leaf(x_np)
    out, t_out = ours(x), theirs(tx)
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), **TIGHT)
    weights = data.draw(finite(out.shape))
    (out * weights).sum().backward()
    (t_out * torch.from_numpy(weights)).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), **TIGHT)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((3, 4), (4,)), ((4,), (4, 2)), ((4,), (4,)), ((1, 1), (1, 5))])
@pytest.mark.parametrize("seed", range(3))
def test_matmul_of_vectors_and_matrices_matches_torch(shapes, seed):
    rng = np.random.default_rng(seed)
    a_np, b_np = rng.normal(size=shapes[0]), rng.normal(size=shapes[1])
    a, b = Value(a_np), Value(b_np)
    out = a @ b
    weights = rng.normal(size=out.shape)
    (out * weights).sum().backward()
    ta, tb = leaf(a_np), leaf(b_np)
    ((ta @ tb) * torch.from_numpy(weights)).sum().backward()
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), **TIGHT)
    np.testing.assert_allclose(b.grad, tb.grad.numpy(), **TIGHT)
    with pytest.raises(ValueError, match="do not match"):
        Value(a_np) @ Value(np.ones(7))


@pytest.mark.parametrize("seed", range(10))
def test_matmul_and_mul_backward_rules_match_torch(seed):
    rng = np.random.default_rng(seed)
    m, k, n = rng.integers(1, 8, size=3)
    A, B, G = rng.normal(size=(m, k)), rng.normal(size=(k, n)), rng.normal(size=(m, n))
    tA, tB = leaf(A), leaf(B)
    (tA @ tB).backward(torch.from_numpy(G))
    A_bar, B_bar = bp.matmul_backward(A, B, G)
    np.testing.assert_allclose(A_bar, tA.grad.numpy(), **TIGHT)
    np.testing.assert_allclose(B_bar, tB.grad.numpy(), **TIGHT)
    a, b = rng.normal(size=(m, 1)), rng.normal(size=(n,))
    g = rng.normal(size=(m, n))
    ta, tb = leaf(a), leaf(b)
    (ta * tb).backward(torch.from_numpy(g))
    a_bar, b_bar = bp.mul_backward(a, b, g)
    np.testing.assert_allclose(a_bar, ta.grad.numpy(), **TIGHT)
    np.testing.assert_allclose(b_bar, tb.grad.numpy(), **TIGHT)
    with pytest.raises(ValueError, match="out_grad"):
        bp.matmul_backward(A, B, G.T if m != n else np.ones((m + 1, n)))


@pytest.mark.parametrize("seed", range(5))
def test_engine_gradients_match_central_differences(seed):
    rng = np.random.default_rng(seed)
    W_np, x_np = rng.normal(size=(4, 3)), rng.normal(size=3)

    def loss(W):
        v = Value(W)
        return ((v @ x_np).tanh() * (v.sum(axis=1) + 1.0)).logsumexp(axis=0), v

    out, W = loss(W_np)
    out.backward()
    np.testing.assert_allclose(W.grad, central_gradient(lambda w: loss(w)[0].data, W_np), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed", range(5))
def test_engine_mlp_with_cross_entropy_matches_torch(seed):
    rng = np.random.default_rng(seed)
    n, d, k, m = 7, 5, 4, 3
    arrays = {"W1": rng.normal(size=(k, d)), "b1": rng.normal(size=k), "W2": rng.normal(size=(m, k))}
    arrays["b2"] = rng.normal(size=m)
    X, T = rng.normal(size=(n, d)), np.eye(m)[rng.integers(m, size=n)]
    ours = {name: Value(a) for name, a in arrays.items()}
    Z = (X @ ours["W1"].T + ours["b1"]).logistic() @ ours["W2"].T + ours["b2"]
    loss = (Z.logsumexp(axis=1) - (Z * T).sum(axis=1)).mean()
    loss.backward()
    theirs = {name: leaf(a) for name, a in arrays.items()}
    tZ = torch.sigmoid(torch.from_numpy(X) @ theirs["W1"].T + theirs["b1"]) @ theirs["W2"].T + theirs["b2"]
    t_loss = torch.nn.functional.cross_entropy(tZ, torch.from_numpy(T.argmax(1)))
    t_loss.backward()
    assert loss.data == pytest.approx(t_loss.item(), rel=1e-12)
    for name in arrays:
        np.testing.assert_allclose(ours[name].grad, theirs[name].grad.numpy(), **TIGHT)


# --- fan-out, deep graphs, what backward() does twice ----------------------------------------------------------


def test_fan_out_error_signals_add_up():
    x = Value(np.array([0.5, -2.0, 3.0]))
    out = (x * x + x * 3.0 + x.exp()).sum()  # x feeds five places
    out.backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 3 + np.exp(x.data), **TIGHT)
    b = Value(np.array([1.0, 2.0]))  # broadcasting copies b to every row: its signal sums them
    (Value(np.ones((4, 2))) * b).sum().backward()
    np.testing.assert_allclose(b.grad, [4.0, 4.0])


def test_the_lectures_fan_out_example():
    """f(x, y) = y + exp(x y) with x = cos t and y = t^2: df/dt by the multivariate chain rule."""
    for t0 in (-1.3, 0.2, 0.7, 2.0):
        t = Value(t0)
        x, y = t.cos(), t**2
        f = y + (x * y).exp()
        f.backward()
        y_bar, x_bar = 1 + x.data * np.exp(x.data * y.data), y.data * np.exp(x.data * y.data)
        by_hand = x_bar * -math.sin(t0) + y_bar * 2 * t0
        tt = leaf(t0)
        ty = tt**2
        (ty + torch.exp(torch.cos(tt) * ty)).backward()
        assert t.grad == pytest.approx(by_hand, rel=1e-12)
        assert t.grad == pytest.approx(tt.grad.item(), rel=1e-12)
        assert t.grad == pytest.approx(
            central_gradient(lambda s: s**2 + np.exp(np.cos(s) * s**2), np.array(t0)), rel=1e-7
        )


def test_a_graph_ten_thousand_nodes_deep_does_not_recurse():
    depth = 10_000
    assert depth > sys.getrecursionlimit()
    x = Value(0.3)
    y = x
    for _ in range(depth):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001**depth, rel=1e-10)
    assert len(bp.topological_order(y)) == 2 * depth + 1  # x, and a constant and a product per step
    # a non-linear chain, against torch (whose engine is iterative too)
    rng = np.random.default_rng(0)
    a_np = rng.uniform(0.5, 1.5, size=depth)
    v, tv = Value(np.array([0.2, -0.4])), leaf(np.array([0.2, -0.4]))
    h, th = v, tv
    for a in a_np:
        h, th = (h * a).tanh() + 0.1, torch.tanh(th * a) + 0.1
    h.sum().backward()
    th.sum().backward()
    np.testing.assert_allclose(v.grad, tv.grad.numpy(), rtol=1e-8, atol=1e-300)


def test_topological_order_puts_parents_first():
    rng = np.random.default_rng(1)
    nodes = [Value(rng.normal()) for _ in range(3)]
    for _ in range(40):  # a random DAG: each new node combines two earlier ones
        i, j = rng.integers(len(nodes), size=2)
        nodes.append(nodes[i] * nodes[j] + 1.0 if rng.integers(2) else nodes[i] - nodes[j])
    order = bp.topological_order(nodes[-1])
    position = {id(node): k for k, node in enumerate(order)}
    assert len(position) == len(order) and order[-1] is nodes[-1]
    for node in order:
        assert all(position[id(parent)] < position[id(node)] for parent in node.parents)


def test_backward_twice_accumulates_like_torch_and_zero_grad_resets():
    w_np = np.array([1.0, -2.0])
    w = Value(w_np)
    loss = (w * w).sum()
    loss.backward()
    first = w.grad.copy()
    np.testing.assert_allclose(first, 2 * w_np)
    loss.backward()
    tw = leaf(w_np)
    t_loss = (tw * tw).sum()
    t_loss.backward(retain_graph=True)
    t_loss.backward()
    np.testing.assert_allclose(w.grad, tw.grad.numpy(), **TIGHT)  # both added the second pass to the first
    np.testing.assert_allclose(w.grad, 2 * first, **TIGHT)
    other = (w * 3.0).sum()  # another output sharing w: its gradient is added too, as in torch
    other.backward()
    (tw * 3.0).sum().backward()
    np.testing.assert_allclose(w.grad, tw.grad.numpy(), **TIGHT)
    np.testing.assert_allclose(w.grad, 2 * first + 3.0, **TIGHT)
    loss.zero_grad()
    assert all(np.all(node.grad == 0) for node in bp.topological_order(loss))
    loss.backward()
    np.testing.assert_array_equal(w.grad, first)


@pytest.mark.parametrize("seed", range(3))
def test_a_second_pass_adds_exactly_one_more_gradient_through_intermediate_nodes(seed):
    """Intermediate nodes keep their accumulated .grad, but each pass propagates only its own error signals: the
    leaves get 2x the gradient after two passes, as in torch (a pass that sent the stored .grad would give 3x)."""
    rng = np.random.default_rng(seed)
    x_np, W_np = rng.normal(size=3), rng.normal(size=(4, 3))
    x, W = Value(x_np), Value(W_np)
    hidden = (W @ x).tanh()
    out = (hidden * hidden).sum() + hidden.sum()
    out.backward()
    out.backward()
    tx, tW = leaf(x_np), leaf(W_np)
    t_hidden = torch.tanh(tW @ tx)
    t_hidden.retain_grad()
    t_out = (t_hidden * t_hidden).sum() + t_hidden.sum()
    t_out.backward(retain_graph=True)
    t_out.backward()
    for ours, theirs in ((x, tx), (W, tW), (hidden, t_hidden)):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), **TIGHT)


def test_backward_on_a_non_scalar_needs_grad():
    x = Value(np.array([1.0, 2.0, 3.0]))
    y = x * x
    with pytest.raises(ValueError, match="needs grad="):
        y.backward()
    with pytest.raises(ValueError, match="must have the output's shape"):
        y.backward(np.ones(2))
    y.backward(np.array([1.0, 0.0, -1.0]))  # a vector-Jacobian product, as torch's y.backward(v)
    np.testing.assert_allclose(x.grad, [2.0, 0.0, -6.0])


# --- hand-derived error signals ---------------------------------------------------------------------------------


def lls_reference(w, b, x, t, lam):
    tw, tb = leaf(w), leaf(b)
    z = tw * torch.tensor(x, dtype=torch.float64) + tb
    z.retain_grad()
    y = torch.sigmoid(z)
    y.retain_grad()
    (0.5 * ((y - torch.tensor(t, dtype=torch.float64)) ** 2).sum() + lam * tw**2 / 2).backward()
    return {"y_bar": y.grad, "z_bar": z.grad, "w_bar": tw.grad, "b_bar": tb.grad}


def lls_loss(w, b, x, t, lam):
    y = 1 / (1 + np.exp(-(w * x + b)))
    return 0.5 * np.sum((y - t) ** 2) + lam * w**2 / 2


@settings(max_examples=60, deadline=None)
@given(
    n=st.one_of(st.none(), st.integers(1, 6)),
    lam=st.one_of(st.just(0.0), st.floats(0.01, 3.0)),
    seed=st.integers(0, 2**32 - 1),
)
def test_logistic_least_squares_signals_match_torch_and_central_differences(n, lam, seed):
    rng = np.random.default_rng(seed)
    w, b = rng.normal(size=2)
    x = rng.normal(scale=2.0) if n is None else rng.normal(scale=2.0, size=n)
    t = rng.uniform() if n is None else rng.uniform(size=n)
    ours = bp.logistic_least_squares_signals(w, b, x, t, lam)
    for name, value in lls_reference(w, b, x, t, lam).items():
        np.testing.assert_allclose(ours[name], value.numpy(), **TIGHT)
        assert np.shape(ours[name]) == tuple(value.shape)
    w_bar = (lls_loss(w + 1e-6, b, x, t, lam) - lls_loss(w - 1e-6, b, x, t, lam)) / 2e-6
    b_bar = (lls_loss(w, b + 1e-6, x, t, lam) - lls_loss(w, b - 1e-6, x, t, lam)) / 2e-6
    assert ours["w_bar"] == pytest.approx(w_bar, rel=1e-6, abs=1e-8)
    assert ours["b_bar"] == pytest.approx(b_bar, rel=1e-6, abs=1e-8)


def test_logistic_least_squares_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="same shape"):
        bp.logistic_least_squares_signals(1.0, 0.0, np.ones(3), np.ones(2), 0.0)
    with pytest.raises(ValueError, match="x must be finite"):
        bp.logistic_least_squares_signals(1.0, 0.0, np.nan, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"lam, the weight of the regulariser, must lie in \[0, inf\]"):
        bp.logistic_least_squares_signals(1.0, 0.0, 1.0, 0.0, -1.0)
    with pytest.raises(ValueError, match="w must have 0 dimension"):
        bp.logistic_least_squares_signals(np.ones(2), 0.0, 1.0, 0.0, 0.0)


def two_layer_case(rng, d, k, m):
    return {
        "W1": rng.normal(size=(k, d)),
        "b1": rng.normal(size=k),
        "W2": rng.normal(size=(m, k)),
        "b2": rng.normal(size=m),
        "x": rng.normal(size=d),
        "t": rng.normal(size=m),
    }


def two_layer_loss(W1, b1, W2, b2, x, t):
    h = 1 / (1 + np.exp(-(W1 @ x + b1)))
    return 0.5 * np.sum((W2 @ h + b2 - t) ** 2)


@settings(max_examples=40, deadline=None)
@given(d=st.integers(1, 5), k=st.integers(1, 5), m=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_two_layer_backward_matches_torch_central_differences_and_the_elementwise_version(d, k, m, seed):
    case = two_layer_case(np.random.default_rng(seed), d, k, m)
    ours = bp.two_layer_backward(**case)
    elementwise = bp.two_layer_backward_elementwise(**case)
    params = {name: leaf(case[name]) for name in ("W1", "b1", "W2", "b2")}
    h = torch.sigmoid(params["W1"] @ torch.from_numpy(case["x"]) + params["b1"])
    (0.5 * ((params["W2"] @ h + params["b2"] - torch.from_numpy(case["t"])) ** 2).sum()).backward()
    for name, p in params.items():
        np.testing.assert_allclose(ours[name], p.grad.numpy(), **TIGHT)
        np.testing.assert_allclose(elementwise[name], p.grad.numpy(), **TIGHT)

        def loss_of(value, name=name):
            return two_layer_loss(**{**case, name: value})

        np.testing.assert_allclose(ours[name], central_gradient(loss_of, case[name]), rtol=1e-6, atol=1e-8)


def test_two_layer_backward_names_the_mismatched_argument():
    case = two_layer_case(np.random.default_rng(0), 3, 4, 2)
    with pytest.raises(ValueError, match=r"W2 must have shape \(2, 4\)"):
        bp.two_layer_backward(**{**case, "W2": np.ones((2, 3))})
    with pytest.raises(ValueError, match=r"x must have shape \(3,\)"):
        bp.two_layer_backward(**{**case, "x": np.ones(4)})


@settings(max_examples=60, deadline=None)
@given(
    n=st.one_of(st.none(), st.integers(1, 5)),
    K=st.integers(2, 6),
    scale=st.sampled_from([0.5, 3.0, 500.0]),
    soft=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_softmax_cross_entropy_backward_matches_torch_and_central_differences(n, K, scale, soft, seed):
    rng = np.random.default_rng(seed)
    shape = (K,) if n is None else (n, K)
    z = rng.normal(scale=scale, size=shape)
    t = rng.dirichlet(np.ones(K), size=shape[:-1]) if soft else np.eye(K)[rng.integers(K, size=shape[:-1])]
    ours = bp.softmax_cross_entropy_backward(z, t)
    tz = leaf(z)
    (-(torch.from_numpy(t) * torch.log_softmax(tz, -1)).sum()).backward()
    np.testing.assert_allclose(ours, tz.grad.numpy(), **TIGHT)
    if scale < 100:  # differences of huge losses lose every digit: check the slope where it is measurable
        numeric = central_gradient(lambda v: bp.cross_entropy(v, t).sum(), z)
        np.testing.assert_allclose(ours, numeric, rtol=1e-6, atol=1e-8)


def test_softmax_cross_entropy_backward_rejects_targets_that_are_not_distributions():
    with pytest.raises(ValueError, match="probability distribution"):
        bp.softmax_cross_entropy_backward(np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="same shape"):
        bp.softmax_cross_entropy_backward(np.zeros((2, 3)), np.eye(3))


@pytest.mark.parametrize("seed", range(4))
def test_classifier_gradients_match_torch(seed):
    rng = np.random.default_rng(seed)
    params = bp.init_two_layer(6, 5, 4, seed=seed, dtype=np.float64)
    params["b1"] += rng.normal(size=5)
    X, labels = rng.normal(size=(9, 6)), rng.integers(4, size=9)
    loss, grads = bp.classifier_gradients(params, X, np.eye(4)[labels])
    theirs = {name: leaf(p) for name, p in params.items()}
    logits = torch.sigmoid(torch.from_numpy(X) @ theirs["W1"].T + theirs["b1"]) @ theirs["W2"].T + theirs["b2"]
    t_loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels))
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    for name, p in theirs.items():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), **TIGHT)
    np.testing.assert_allclose(bp.predict(params, X), logits.detach().numpy(), **TIGHT)


def test_train_classifier_learns_a_separable_problem():
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=3.0, size=(3, 4))
    labels = rng.integers(3, size=600)
    X = (centers[labels] + rng.normal(size=(600, 4))).astype(np.float32)
    params, losses = bp.train_classifier(X, labels, hidden=8, epochs=5, batch_size=50, lr=0.5, seed=0)
    assert len(losses) == 5 * 12  # one loss per mini-batch
    assert np.mean(losses[-12:]) < 0.5 * np.mean(losses[:12])
    assert params["W1"].dtype == np.float32
    accuracy = (bp.predict(params, X).argmax(1) == labels).mean()
    assert accuracy > 0.9
    with pytest.raises(ValueError, match="labels"):
        bp.train_classifier(X, labels[:10])


# --- paths ------------------------------------------------------------------------------------------------------


def diamond_chain(k):
    """k diamonds in a row: each stage splits in two and merges again, so 2^k paths."""
    graph = {}
    for i in range(k):
        graph[("m", i)] = [("l", i), ("r", i)]
        graph[("l", i)] = [("m", i + 1)]
        graph[("r", i)] = [("m", i + 1)]
    return graph


def grid(rows, cols):
    """The (rows+1) x (cols+1) lattice with edges right and down: C(rows + cols, rows) corner-to-corner paths."""
    return {
        (i, j): [(i + di, j + dj) for di, dj in ((1, 0), (0, 1)) if i + di <= rows and j + dj <= cols]
        for i in range(rows + 1)
        for j in range(cols + 1)
    }


@pytest.mark.parametrize("widths", [(1,), (3, 1), (2, 3, 4, 1), (5, 5, 5, 5, 5, 1), (10,) * 20 + (1,)])
def test_count_paths_on_layered_graphs_is_the_product_of_widths(widths):
    graph = bp.layered_graph(widths)
    assert count_edges(graph) == sum(a * b for a, b in itertools.pairwise(widths))
    assert bp.count_paths(graph) == math.prod(widths)


def count_edges(graph):
    return sum(len(children) for children in graph.values())


@pytest.mark.parametrize("k", [1, 5, 64, 300])
def test_count_paths_on_diamond_chains_is_two_to_the_k(k):
    assert bp.count_paths(diamond_chain(k)) == 2**k  # exact, even beyond float precision


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (2, 5), (7, 7), (30, 12)])
def test_count_paths_on_grids_is_a_binomial_coefficient(rows, cols):
    assert bp.count_paths(grid(rows, cols)) == math.comb(rows + cols, rows)


@pytest.mark.parametrize("length", [0, 1, 50])
def test_count_paths_on_a_chain_is_one(length):
    assert bp.count_paths({i: [i + 1] for i in range(length)} or {0: []}) == 1


@pytest.mark.parametrize("seed", range(10))
def test_count_paths_agrees_with_enumerating_them_on_random_dags(seed):
    rng = np.random.default_rng(seed)
    n = 12
    graph = {i: [j for j in range(i + 1, n) if rng.uniform() < 0.35] for i in range(n - 1)}
    graph[n - 1] = []
    for i in range(n - 1):  # every node reaches the output
        if not graph[i]:
            graph[i].append(n - 1)
    sources = [v for v in graph if all(v not in kids for kids in graph.values())]
    enumerated = sum(len(list(bp.enumerate_paths(graph, s, n - 1))) for s in sources)
    assert bp.count_paths(graph) == enumerated


def test_count_paths_rejects_cycles_and_ambiguous_outputs():
    with pytest.raises(ValueError, match="graph has a cycle"):
        bp.count_paths({0: [1], 1: [2], 2: [0, 3]})
    with pytest.raises(ValueError, match="pass output="):
        bp.count_paths({0: [1, 2]})
    assert bp.count_paths({0: [1, 2]}, output=2) == 1
    with pytest.raises(ValueError, match="not a node"):
        bp.count_paths({0: [1]}, output=5)


@pytest.mark.parametrize("seed", range(5))
def test_path_sum_equals_backpropagation_on_a_small_network(seed):
    """dv_out/dv_in summed over paths (products of local derivatives) equals the engine's error signal."""
    rng = np.random.default_rng(seed)
    widths = (1, 3, 3, 2, 1)
    graph = bp.layered_graph(widths)
    weights = {(u, v): rng.normal() for u, kids in graph.items() for v in kids}
    x = Value(rng.normal())
    values = {(0, 0): x}
    for l in range(1, len(widths)):
        for j in range(widths[l]):
            parents = [(l - 1, i) for i in range(widths[l - 1])]
            values[(l, j)] = sum((values[p] * weights[(p, (l, j))] for p in parents), Value(0.0)).tanh()
    output = (len(widths) - 1, 0)
    values[output].backward()
    local = {(u, v): weights[(u, v)] * (1 - values[v].data ** 2) for (u, v) in weights}  # d tanh(a)/du
    assert bp.path_sum(graph, local, (0, 0), output) == pytest.approx(x.grad, rel=1e-10)
    assert len(list(bp.enumerate_paths(graph, (0, 0), output))) == math.prod(widths)


# --- the package's layout ---------------------------------------------------------------------------------------


def test_every_public_name_is_importable_from_the_package_and_graded_ones_are_registered_there():
    from coursepkg.backprop import classifier, engine, paths
    from coursepkg.grading.registry import EXERCISES

    for module in (engine, paths, classifier):
        for name in module.__all__:
            assert getattr(bp, name) is getattr(module, name) and name in bp.__all__
    graded = {name for module, name in EXERCISES if module == "coursepkg.backprop"}
    assert graded == {
        "logistic_least_squares_signals",
        "two_layer_backward",
        "softmax_cross_entropy_backward",
        "matmul_backward",
    }
    assert all(getattr(bp, name).__module__ == "coursepkg.backprop" for name in graded)


@pytest.mark.parametrize("scale", [0.5, 5.0, 800.0])
@pytest.mark.parametrize("seed", range(3))
def test_cross_entropy_matches_torch_for_soft_targets_and_huge_logits(scale, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=scale, size=(6, 5))
    t = rng.dirichlet(np.ones(5), size=6)
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(z), torch.from_numpy(t), reduction="none")
    np.testing.assert_allclose(bp.cross_entropy(z, t), expected.numpy(), rtol=1e-12)
    assert np.all(np.isfinite(bp.cross_entropy(z, t)))


def test_layered_graph_names_bad_widths():
    with pytest.raises(ValueError, match="widths must be >= 1"):
        bp.layered_graph([3, 0, 1])
    with pytest.raises(TypeError, match="widths must be an integer"):
        bp.layered_graph([3, 2.0, 1])
    with pytest.raises(ValueError, match="at least one layer"):
        bp.layered_graph([])
