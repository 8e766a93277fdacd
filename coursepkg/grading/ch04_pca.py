"""Checks of chapter 4's exercises: PCA by eigendecomposition, Oja's rule, principal angles, the linear AE loss.

Every reference is independent of ``coursepkg.pca``: PCA through the SVD of the centred data, Oja's rule and the
linear autoencoder's loss written in torch in another form, principal angles by ``scipy.linalg.subspace_angles``.
Principal directions are compared up to sign, row by row.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from .. import pca
from .checks import Case, Check, Outputs, allclose, call_with_tensors


def _data_with_spectrum(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Data (n, d) with well separated variances along random orthogonal directions, and a non-zero mean."""
    scales = 3.0 * 0.7 ** np.arange(d) * rng.uniform(0.95, 1.05, size=d)
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return rng.normal(size=(n, d)) * scales @ rotation.T + rng.normal(size=d)


# ----------------------------------------------------------------------------------------------------------------
# pca_eig


def _pca_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(2):
        n, d = int(rng.integers(40, 120)), int(rng.integers(2, 9))
        k = int(rng.integers(1, d + 1))
        cases.append({"X": _data_with_spectrum(rng, n, d), "k": k})
    return cases


def _pca_expect(case: Case) -> tuple[np.ndarray, np.ndarray]:
    X, k = case["X"], case["k"]
    _, singular_values, vt = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
    return vt[:k], singular_values[:k] ** 2 / (X.shape[0] - 1)


def _compare_up_to_sign(expected: Outputs, got: Outputs, case: Case) -> str | None:
    """Outputs ``0`` (components as rows, each up to sign) and ``1`` (variances) close to the reference."""
    if set(got) != {"0", "1"}:
        return f"expected a tuple (components, variances), got outputs {sorted(got)}"
    components, want = got["0"].astype(np.float64), expected["0"]
    if components.shape != want.shape:
        hint = " (components are rows: transpose?)" if components.shape == want.shape[::-1] else ""
        return f"components has shape {components.shape}, expected {want.shape}{hint}"
    for row, (have_row, want_row) in enumerate(zip(components, want, strict=True)):
        sign = 1.0 if have_row @ want_row >= 0 else -1.0
        if not np.allclose(sign * have_row, want_row, rtol=1e-6, atol=1e-6):
            return (
                f"component {row} (row {row}) is {np.round(have_row, 4).tolist()}, expected "
                f"{np.round(want_row, 4).tolist()} up to sign (largest variance first; centre the data first)"
            )
    return allclose(rtol=1e-6, atol=1e-9)({"value": expected["1"]}, {"value": got["1"]}, case)


# ----------------------------------------------------------------------------------------------------------------
# oja_update


def _oja_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(3):
        d = int(rng.integers(1, 9))
        cases.append({"w": rng.normal(size=d), "x": rng.normal(size=d) * 2, "lr": float(rng.uniform(0.001, 0.5))})
    return cases


def _oja_expect(case: Case) -> np.ndarray:
    w, x = torch.tensor(case["w"]), torch.tensor(case["x"])
    y = torch.dot(w, x)
    # Hebb's step lr * y * x, minus the decay lr * y^2 * w.
    return (w * (1 - case["lr"] * y * y) + case["lr"] * y * x).numpy()


# ----------------------------------------------------------------------------------------------------------------
# principal_angles


def _angle_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for kind in ("random", "near", "shared"):
        d = int(rng.integers(3, 10))
        p, q = int(rng.integers(1, d)), int(rng.integers(1, d))
        A = rng.normal(size=(d, p))
        if kind == "random":
            B = rng.normal(size=(d, q))
        elif kind == "near":  # a slightly tilted copy of A's subspace in another basis
            B = A @ rng.normal(size=(p, p)) + 0.05 * rng.normal(size=(d, p))
        else:  # one direction in common, the rest random
            B = np.column_stack([A[:, :1] * 2.0, rng.normal(size=(d, q - 1))]) if q > 1 else A[:, :1] * -3.0
        cases.append({"A": A, "B": B})
    return cases


def _angle_expect(case: Case) -> np.ndarray:
    return np.sort(scipy.linalg.subspace_angles(case["A"], case["B"]))


# ----------------------------------------------------------------------------------------------------------------
# linear_ae_loss


def _loss_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(2):
        n, d = int(rng.integers(1, 30)), int(rng.integers(2, 12))
        k = int(rng.integers(1, d + 1))
        cases.append(
            {
                "X": rng.normal(size=(n, d)),
                "W_e": rng.normal(size=(k, d)),
                "b_e": rng.normal(size=k),
                "W_d": rng.normal(size=(d, k)),
                "b_d": rng.normal(size=d),
            }
        )
    return cases


def _loss_expect(case: Case) -> float:
    X, W_e, b_e, W_d, b_d = (torch.tensor(case[name]) for name in ("X", "W_e", "b_e", "W_d", "b_d"))
    codes = torch.einsum("kd,nd->nk", W_e, X) + b_e
    reconstructions = torch.einsum("dk,nk->nd", W_d, codes) + b_d
    return (torch.nn.functional.mse_loss(reconstructions, X, reduction="sum") / X.shape[0]).item()


def _call_loss_with_tensors_and_arrays(candidate, case: Case):
    """The loss on tensors (it must be differentiable) and on NumPy arrays; both must agree."""
    weights = {name: torch.tensor(case[name], requires_grad=True) for name in ("W_e", "b_e", "W_d", "b_d")}
    on_tensors = candidate(X=torch.tensor(case["X"]), **weights)
    if not torch.is_tensor(on_tensors) or on_tensors.numel() != 1:
        return on_tensors  # the comparison reports the wrong type or shape
    if not on_tensors.requires_grad:
        raise ValueError("the loss of torch tensors must be differentiable (no .item(), .numpy() or NumPy calls)")
    return {"tensors": on_tensors.reshape(()), "arrays": candidate(**case)}


def _loss_compare(expected: Outputs, got: Outputs, case: Case) -> str | None:
    if set(got) != {"tensors", "arrays"}:
        return "the loss must be one number (a 0-d tensor for tensors), the mean over examples of a sum over features"
    compare = allclose(rtol=1e-7, atol=1e-9)
    for key, kind in (("tensors", "torch tensors"), ("arrays", "NumPy arrays")):
        message = compare({"value": expected["value"]}, {"value": got[key].reshape(())}, case)
        if message is not None:
            return f"with {kind}: {message}"
    return None


# Points by difficulty: 1 for a formula of a line or two, 2 for a few steps or a numerical subtlety, 3 for a
# loop with bookkeeping or a derivation through several layers. Within a function the grader gives credit
# per kind of case and per output (coursepkg.grading.sandbox).
CHECKS = [
    Check(
        function=pca.pca_eig,
        points=2,
        cases=_pca_cases,
        expect=_pca_expect,
        compare=_compare_up_to_sign,
        description="top-k principal directions (rows, up to sign) and their variances, against numpy.linalg.svd",
    ),
    Check(
        function=pca.oja_update,
        points=1,
        cases=_oja_cases,
        expect=_oja_expect,
        call=call_with_tensors(torch.float64),
        compare=allclose(rtol=1e-9, atol=1e-12),
        description="one step of Oja's rule on torch tensors",
    ),
    Check(
        function=pca.principal_angles,
        points=2,
        cases=_angle_cases,
        expect=_angle_expect,
        compare=allclose(rtol=1e-6, atol=1e-6),
        description="principal angles, ascending, against scipy.linalg.subspace_angles",
    ),
    Check(
        function=pca.linear_ae_loss,
        points=1,
        cases=_loss_cases,
        expect=_loss_expect,
        call=_call_loss_with_tensors_and_arrays,
        compare=_loss_compare,
        description="the linear autoencoder's mean summed squared error, on tensors (differentiable) and arrays",
    ),
]
