"""Checks of exercise set ``ch02_neural_networks`` (the graded functions live in :mod:`coursepkg.nn`).

References are independent of ``coursepkg.nn``: torch's own activations, layers and autograd in float64. Only
the references use torch, and they import it when they run: the sandbox, which runs ``cases`` and ``call`` only,
grades this NumPy chapter without loading torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .. import nn
from .checks import Case, Check, allclose

if TYPE_CHECKING:
    import torch

# The order of the activations in a case's ``activation`` index (cases hold numbers, not strings).
ACTIVATION_NAMES = ("identity", "relu", "softplus", "hard_threshold", "logistic", "tanh")


def torch_activations() -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The activations of ``ACTIVATION_NAMES`` as torch functions (imports torch)."""
    import torch

    return {
        "identity": lambda z: z,
        "relu": torch.relu,
        "softplus": lambda z: torch.logaddexp(torch.zeros_like(z), z),
        "hard_threshold": lambda z: (z > 0).to(z.dtype),
        "logistic": torch.sigmoid,
        "tanh": torch.tanh,
    }


def random_shape(rng: np.random.Generator, max_ndim: int = 3, max_size: int = 5) -> tuple[int, ...]:
    """A random array shape with 1 to ``max_ndim`` axes of sizes 1 to ``max_size``."""
    return tuple(int(s) for s in rng.integers(1, max_size + 1, size=rng.integers(1, max_ndim + 1)))


def random_layers(rng: np.random.Generator, max_layers: int = 3, max_width: int = 5) -> Case:
    """Weights ``W0, b0, W1, b1, ...`` of a random network, stored under their own keys (cases hold arrays)."""
    widths = rng.integers(1, max_width + 1, size=rng.integers(2, max_layers + 2))
    case: Case = {}
    for l, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        case[f"W{l}"] = rng.normal(size=(n_out, n_in))
        case[f"b{l}"] = rng.normal(size=n_out)
    return case


def layers_of(case: Case) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The ``(weights, biases)`` lists of a case drawn by :func:`random_layers`."""
    count = sum(1 for key in case if key.startswith("W"))
    return [case[f"W{l}"] for l in range(count)], [case[f"b{l}"] for l in range(count)]


def _torch_network(case: Case, x: torch.Tensor, activation: str) -> torch.Tensor:
    import torch

    weights, biases = layers_of(case)
    function = torch_activations()[activation]
    h = x
    for l, (W, b) in enumerate(zip(weights, biases, strict=True)):
        h = torch.nn.functional.linear(h, torch.from_numpy(W), torch.from_numpy(b))
        if l < len(weights) - 1:
            h = function(h)
    return h


# --- logistic_derivative -------------------------------------------------------------------------------------------


def _logistic_derivative_cases(rng: np.random.Generator) -> list[Case]:
    cases: list[Case] = [{"z": rng.normal(scale=4.0, size=random_shape(rng))} for _ in range(3)]
    cases.append({"z": float(rng.normal())})  # a plain number
    cases.append({"z": np.array([-800.0, -40.0, -5.0, 0.0, 5.0, 40.0, 800.0])})  # saturated units
    return cases


def _logistic_derivative_expect(case: Case) -> np.ndarray:
    import torch

    z = torch.tensor(case["z"], dtype=torch.float64, requires_grad=True)
    torch.sigmoid(z).sum().backward()
    return z.grad.numpy()


# --- mlp_forward -----------------------------------------------------------------------------------------------------


def _mlp_forward_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for activation in range(len(ACTIVATION_NAMES)):
        case = random_layers(rng)
        d = case["W0"].shape[1]
        batched = bool(rng.integers(2))
        case["x"] = rng.normal(size=(int(rng.integers(1, 6)), d) if batched else d)
        case["activation"] = activation
        cases.append(case)
    return cases


def _mlp_forward_call(candidate, case: Case):
    weights, biases = layers_of(case)
    return candidate(weights, biases, case["x"], ACTIVATION_NAMES[case["activation"]])


def _mlp_forward_expect(case: Case) -> np.ndarray:
    import torch

    x = torch.from_numpy(case["x"])
    return _torch_network(case, x, ACTIVATION_NAMES[case["activation"]]).numpy()


def _mlp_forward_compare(expected, got, case: Case) -> str | None:
    message = allclose(rtol=1e-8, atol=1e-10)(expected, got, case)
    if message is None:
        return None
    return f"with activation={ACTIVATION_NAMES[case['activation']]!r} (identity on the last layer): {message}"


# --- collapse_linear -------------------------------------------------------------------------------------------------


def _collapse_linear_cases(rng: np.random.Generator) -> list[Case]:
    return [random_layers(rng, max_layers=4) for _ in range(3)]


def _collapse_linear_call(candidate, case: Case):
    return candidate(*layers_of(case))


def _collapse_linear_expect(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """W is the Jacobian of the (linear) network, b its value at x = 0."""
    import torch

    d = case["W0"].shape[1]

    def network(x):
        return _torch_network(case, x, "identity")

    origin = torch.zeros(d, dtype=torch.float64)
    W = torch.autograd.functional.jacobian(network, origin)
    return W.numpy(), network(origin).numpy()


# Points by difficulty: 1 for a formula of a line or two, 2 for a few steps or a numerical subtlety, 3 for a
# loop with bookkeeping or a derivation through several layers. Within a function the grader gives credit
# per kind of case and per output (coursepkg.grading.sandbox).
CHECKS = [
    Check(
        function=nn.logistic_derivative,
        points=1,
        cases=_logistic_derivative_cases,
        expect=_logistic_derivative_expect,
        compare=allclose(rtol=1e-8, atol=1e-12),
        description="sigma'(z) against torch.autograd of torch.sigmoid, on random arrays and saturated units",
    ),
    Check(
        function=nn.mlp_forward,
        points=3,
        cases=_mlp_forward_cases,
        call=_mlp_forward_call,
        expect=_mlp_forward_expect,
        compare=_mlp_forward_compare,
        description="the forward pass of random networks, each activation, one input or a batch, against torch",
    ),
    Check(
        function=nn.collapse_linear,
        points=2,
        cases=_collapse_linear_cases,
        call=_collapse_linear_call,
        expect=_collapse_linear_expect,
        compare=allclose(rtol=1e-8, atol=1e-10),
        description="(W, b) against the Jacobian and the value at 0 of the deep linear network (torch)",
    ),
]
