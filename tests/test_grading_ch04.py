"""Chapter 4's graded checks accept the reference functions and reject deliberately wrong ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coursepkg import pca
from coursepkg.grading import checks_for
from coursepkg.grading.checks import run_in_process

CHECKS = {check.name: check for check in checks_for("ch04_pca")}


# What every set must satisfy (one check per graded function, the reference passes, a stub fails) is tested
# for all sets at once in test_grading_sets.py.


def test_the_chapter_grades_at_least_four_functions():
    assert len(CHECKS) >= 4


def _pca_uncentred(X, k):
    values, vectors = np.linalg.eigh(X.T @ X / (X.shape[0] - 1))
    order = np.argsort(values)[::-1][:k]
    return vectors[:, order].T, values[order]


def _pca_columns(X, k):
    components, variances = pca.pca_eig(X, k)
    return components.T, variances


def _pca_ascending(X, k):
    components, variances = pca.pca_eig(X, X.shape[1])
    return components[::-1][:k], variances[::-1][:k]


def _pca_biased(X, k):
    components, variances = pca.pca_eig(X, k)
    return components, variances * (X.shape[0] - 1) / X.shape[0]


def _oja_plus(w, x, lr):
    y = w @ x
    return w + lr * (x * y + y**2 * w)


def _oja_hebb(w, x, lr):
    return w + lr * (w @ x) * x


def _oja_missing_square(w, x, lr):
    y = w @ x
    return w + lr * (x * y - y * w)


def _angles_descending(A, B):
    return pca.principal_angles(A, B)[::-1]


def _angles_not_orthonormalised(A, B):
    cosines = np.linalg.svd(A.T @ B, compute_uv=False)
    return np.arccos(np.clip(cosines, -1.0, 1.0))


def _angles_degrees(A, B):
    return np.degrees(pca.principal_angles(A, B))


def _loss_sum(X, W_e, b_e, W_d, b_d):
    reconstructions = (X @ W_e.T + b_e) @ W_d.T + b_d
    return ((X - reconstructions) ** 2).sum()


def _loss_mean_over_entries(X, W_e, b_e, W_d, b_d):
    reconstructions = (X @ W_e.T + b_e) @ W_d.T + b_d
    return ((X - reconstructions) ** 2).mean()


def _loss_no_encoder_bias(X, W_e, b_e, W_d, b_d):
    reconstructions = (X @ W_e.T) @ W_d.T + b_d
    return ((X - reconstructions) ** 2).sum(1).mean()


def _loss_detached(X, W_e, b_e, W_d, b_d):
    value = pca.linear_ae_loss(X, W_e, b_e, W_d, b_d)
    return torch.tensor(value.detach().item()) if torch.is_tensor(value) else value


def _not_implemented(*args, **kwargs):
    raise NotImplementedError("write this function")


WRONG = {
    "pca_eig": [_pca_uncentred, _pca_columns, _pca_ascending, _pca_biased],
    "oja_update": [_oja_plus, _oja_hebb, _oja_missing_square],
    "principal_angles": [_angles_descending, _angles_not_orthonormalised, _angles_degrees],
    "linear_ae_loss": [_loss_sum, _loss_mean_over_entries, _loss_no_encoder_bias, _loss_detached],
}


@pytest.mark.parametrize(
    ("name", "wrong"),
    [(name, wrong) for name, wrongs in WRONG.items() for wrong in wrongs],
    ids=[wrong.__name__.lstrip("_") for wrongs in WRONG.values() for wrong in wrongs],
)
def test_wrong_functions_fail(name, wrong):
    failures = run_in_process(CHECKS[name], wrong)
    assert failures, f"{wrong} passed the check of {name}"
    assert "case" in failures[0]


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_stub_is_reported_as_not_implemented(name):
    failures = run_in_process(CHECKS[name], _not_implemented)
    assert len(failures) == 1 and "not implemented" in failures[0]


def test_failure_messages_name_what_went_wrong():
    (message,) = run_in_process(CHECKS["pca_eig"], _pca_columns)
    assert "shape" in message and "transpose" in message
    (message,) = run_in_process(CHECKS["linear_ae_loss"], _loss_detached)
    assert "differentiable" in message


def test_cases_contain_only_arrays_and_scalars():
    for check in CHECKS.values():
        for case in check.draw_cases():
            for value in case.values():
                assert isinstance(value, (np.ndarray, int, float)), (check.name, type(value))
