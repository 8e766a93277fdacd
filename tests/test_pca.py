"""coursepkg.pca against independent references: scikit-learn, SciPy, torch.distributions, closed forms."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import sklearn.datasets
import sklearn.decomposition
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from coursepkg import data, pca, train
from coursepkg.autoencoders import MLPAutoencoder


def _spectrum_data(seed: int, n: int = 300, d: int = 8, variances=None) -> tuple[np.ndarray, np.ndarray]:
    """Data with known variances along the columns of a random rotation Q (returned), plus a mean."""
    rng = np.random.default_rng(seed)
    variances = np.asarray(variances if variances is not None else 2.0 * 0.6 ** np.arange(d))
    rotation, _ = np.linalg.qr(rng.normal(size=(len(variances), len(variances))))
    X = rng.normal(size=(n, len(variances))) * np.sqrt(variances) @ rotation.T + rng.normal(size=len(variances))
    return X, rotation


def _assert_matches_sklearn(X: np.ndarray, k: int, method: str, atol: float = 1e-8) -> None:
    ours = pca.PCA(k, method=method).fit(X)
    theirs = sklearn.decomposition.PCA(k, svd_solver="full").fit(X)
    angles = scipy.linalg.subspace_angles(ours.components_.T, theirs.components_.T)
    assert np.max(angles) < 1e-6
    # Each direction agrees up to sign; the codes agree up to the same signs.
    signs = np.sign(np.sum(ours.components_ * theirs.components_, axis=1))
    np.testing.assert_allclose(ours.components_, signs[:, None] * theirs.components_, atol=1e-6)
    np.testing.assert_allclose(ours.explained_variance_, theirs.explained_variance_, rtol=1e-7, atol=atol)
    np.testing.assert_allclose(ours.explained_variance_ratio_, theirs.explained_variance_ratio_, rtol=1e-7, atol=atol)
    np.testing.assert_allclose(ours.singular_values_, theirs.singular_values_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours.mean_, theirs.mean_, atol=1e-10)
    np.testing.assert_allclose(ours.transform(X), theirs.transform(X) * signs, atol=1e-6)
    np.testing.assert_allclose(ours.reconstruct(X), theirs.inverse_transform(theirs.transform(X)), atol=1e-6)
    np.testing.assert_allclose(ours.components_ @ ours.components_.T, np.eye(k), atol=1e-10)


@pytest.mark.parametrize("method", ["eig", "svd"])
@pytest.mark.parametrize("seed", range(4))
def test_pca_matches_sklearn_on_random_data(seed, method):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 12))
    X, _ = _spectrum_data(seed, n=int(rng.integers(d + 5, 200)), d=d)
    _assert_matches_sklearn(X, int(rng.integers(1, d + 1)), method)


@pytest.mark.parametrize("method", ["eig", "svd"])
def test_pca_matches_sklearn_on_digits(method):
    X = sklearn.datasets.load_digits().data  # 1797 real 8x8 images, shipped with scikit-learn
    _assert_matches_sklearn(X, 10, method, atol=1e-6)


def test_pca_matches_sklearn_on_mnist():
    images = data.load_mnist("test").images[:1000]
    _assert_matches_sklearn(images.double().numpy(), 20, "eig", atol=1e-9)


def test_pca_mnist_reconstruction_error_is_the_paper_order_of_magnitude():
    """30-d PCA of 5,000 training digits reconstructs other digits with an error near the paper's 13.87."""
    train_images = data.load_mnist("train").images[:5000]
    test_images = data.load_mnist("test").images[:2000]
    model = pca.PCA(30).fit(train_images)
    error = pca.per_image_squared_error(test_images, model.reconstruct(test_images)).mean().item()
    assert 13.0 < error < 15.5


def test_pca_accepts_tensors_and_returns_their_kind():
    X, _ = _spectrum_data(0, n=100, d=5)
    from_array = pca.PCA(3).fit(X)
    from_tensor = pca.PCA(3).fit(torch.tensor(X, dtype=torch.float32))
    np.testing.assert_allclose(from_tensor.components_, from_array.components_, atol=1e-5)
    assert isinstance(from_tensor.components_, np.ndarray) and from_tensor.components_.dtype == np.float64
    codes = from_array.transform(torch.tensor(X, dtype=torch.float32))
    assert torch.is_tensor(codes) and codes.dtype == torch.float32 and codes.shape == (100, 3)
    np.testing.assert_allclose(codes.numpy(), from_array.transform(X), atol=1e-4)
    back = from_array.inverse_transform(codes)
    assert torch.is_tensor(back) and back.shape == (100, 5)
    np.testing.assert_allclose(from_array.fit_transform(X), from_array.transform(X))


def test_pca_of_full_rank_keeps_everything():
    X, _ = _spectrum_data(1, n=50, d=4)
    model = pca.PCA(4).fit(X)
    np.testing.assert_allclose(model.reconstruct(X), X, atol=1e-10)
    np.testing.assert_allclose(model.explained_variance_ratio_.sum(), 1.0)
    np.testing.assert_allclose(model.explained_variance_.sum(), np.var(X, axis=0, ddof=1).sum())


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda: pca.PCA(0).fit(np.ones((10, 5))), ValueError, "n_components"),
        (lambda: pca.PCA(2.5).fit(np.ones((10, 5))), TypeError, "n_components"),
        (lambda: pca.PCA(2, method="qr").fit(np.eye(3)), ValueError, "method"),
        (lambda: pca.PCA(2).fit(np.ones(5)), ValueError, "Expected 2D array, got 1D array"),
        (lambda: pca.PCA(2).fit(np.ones((1, 5))), ValueError, "1 sample(s) (shape=(1, 5)) while a minimum of 2"),
        (lambda: pca.PCA(6).fit(np.ones((10, 5))), ValueError, "n_components (n_samples = 10, n_features = 5)"),
        (lambda: pca.PCA(2).fit(np.array([[1.0, np.nan], [0.0, 1.0], [2.0, 3.0]])), ValueError, "contains NaN"),
        (lambda: pca.PCA(2).fit(np.array([[1.0, np.inf], [0.0, 1.0], [2.0, 3.0]])), ValueError, "infinity"),
        (lambda: pca.PCA(2).fit("data"), ValueError, "could not convert string to float"),
        (lambda: pca.PCA(2).transform(np.ones((3, 5))), NotFittedError, "not fitted"),
        (lambda: pca.PCA(2).fit(np.eye(5)).transform(np.ones((3, 4))), ValueError, "expecting 5 features"),
        (lambda: pca.PCA(2).fit(np.eye(5)).transform(torch.ones(3, 4)), ValueError, "expecting 5 features"),
        (lambda: pca.PCA(2).fit(np.eye(5)).transform(torch.ones(5)), ValueError, "Expected 2D array"),
        (lambda: pca.PCA(2).fit(np.eye(5)).transform(torch.full((2, 5), torch.nan)), ValueError, "X contains NaN"),
        (lambda: pca.PCA(2).fit(np.eye(5)).inverse_transform(torch.ones(3, 3)), ValueError, "2 components"),
        (lambda: pca.PCA(2).fit(np.eye(5)).inverse_transform(np.ones((3, 3))), ValueError, "2 components"),
        (lambda: pca.pca_eig(np.eye(4), 5), ValueError, "n_components"),
    ],
)
def test_pca_rejects_bad_input(make, error, words):
    with pytest.raises(error, match=re.escape(words)):
        make()


@parametrize_with_checks([pca.PCA(2), pca.PCA(2, method="svd"), pca.PCA()])
def test_pca_passes_every_check_of_scikit_learn(estimator, check):
    """scikit-learn's own estimator checks (``check_estimator``), one test per check."""
    check(estimator)


def test_pca_passes_every_check_with_none_skipped():
    """The one check that the test above skips (array API dispatch with NumPy inputs) needs SciPy's array API mode,
    which is read when SciPy is first imported: run check_estimator in a fresh process that sets it."""
    script = (
        "from sklearn.utils.estimator_checks import check_estimator\n"
        "from coursepkg.pca import PCA\n"
        "results = check_estimator(PCA(2), on_fail=None)\n"
        "print(len(results), sorted({r['check_name'] for r in results if r['status'] != 'passed'}))\n"
    )
    environment = {**os.environ, "SCIPY_ARRAY_API": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True)
    count, not_passed = done.stdout.strip().splitlines()[-1].split(" ", 1)
    assert int(count) >= 40 and not_passed == "[]", done.stdout


def test_pca_in_a_pipeline_matches_scikit_learn_in_the_same_pipeline():
    X, _ = _spectrum_data(3, n=200, d=6)
    labels = (X[:, 0] > np.median(X[:, 0])).astype(int)
    ours = Pipeline([("scale", StandardScaler()), ("pca", pca.PCA(3)), ("classify", LogisticRegression())])
    theirs = Pipeline(
        [("scale", StandardScaler()), ("pca", sklearn.decomposition.PCA(3)), ("classify", LogisticRegression())]
    )
    ours.fit(X, labels)
    theirs.fit(X, labels)
    codes, their_codes = ours[:-1].transform(X), theirs[:-1].transform(X)
    signs = np.sign(np.sum(codes * their_codes, axis=0))  # each code agrees up to the sign of its component
    np.testing.assert_allclose(codes, their_codes * signs, atol=1e-8)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)
    assert list(ours[:-1].get_feature_names_out()) == ["pca0", "pca1", "pca2"]
    copy = clone(ours).set_params(pca__n_components=2, pca__method="svd")
    assert copy.get_params()["pca__n_components"] == 2 and ours.get_params()["pca__n_components"] == 3
    assert copy.fit(X, labels)[:-1].transform(X).shape == (200, 2)


def test_pca_without_n_components_keeps_every_direction():
    X, _ = _spectrum_data(4, n=30, d=5)
    model = pca.PCA().fit(X)
    assert model.n_components_ == 5 and model.n_features_in_ == 5
    np.testing.assert_allclose(model.explained_variance_, np.sort(np.linalg.eigvalsh(np.cov(X.T)))[::-1], rtol=1e-10)


# ----------------------------------------------------------------------------------------------------------------
# Hebb and Oja


@pytest.mark.parametrize("seed", range(3))
def test_mean_updates_follow_the_closed_forms(seed):
    """Averaged over a data set, Hebb's step is lr C w and Oja's is lr (C w - (w^T C w) w), C = E[x x^T]."""
    rng = np.random.default_rng(seed)
    X, w, lr = rng.normal(size=(50, 4)), rng.normal(size=4), 0.01
    C = X.T @ X / len(X)
    hebb = np.mean([pca.hebb_update(w, x, lr) - w for x in X], axis=0)
    oja = np.mean([pca.oja_update(w, x, lr) - w for x in X], axis=0)
    np.testing.assert_allclose(hebb, lr * C @ w, rtol=1e-10)
    np.testing.assert_allclose(oja, lr * (C @ w - (w @ C @ w) * w), rtol=1e-10, atol=1e-14)


def test_oja_fixed_point_is_a_unit_eigenvector():
    X, rotation = _spectrum_data(0, n=500, d=5)
    X = X - X.mean(axis=0)
    C = X.T @ X / len(X)
    top = np.linalg.eigh(C)[1][:, -1]
    drift = np.mean([pca.oja_update(top, x, 0.1) - top for x in X], axis=0)
    np.testing.assert_allclose(drift, 0.0, atol=1e-12)


def test_rules_work_on_tensors():
    rng = np.random.default_rng(0)
    w, x = rng.normal(size=6), rng.normal(size=6)
    for rule in (pca.hebb_update, pca.oja_update):
        np.testing.assert_allclose(rule(torch.tensor(w), torch.tensor(x), 0.1).numpy(), rule(w, x, 0.1))


@pytest.mark.parametrize("seed", range(3))
def test_oja_converges_to_the_first_principal_component(seed):
    variances = [4.0, 1.0, 0.5, 0.25, 0.1]
    X, rotation = _spectrum_data(seed, n=2000, variances=variances)
    X = X - X.mean(axis=0)
    w0 = np.random.default_rng(seed + 100).normal(size=5) * 0.1
    w = pca.iterate_rule(pca.oja_update, w0, X, 5e-4, epochs=3, seed=seed)[-1]
    assert abs(w @ rotation[:, 0]) / np.linalg.norm(w) > 0.999
    assert abs(np.linalg.norm(w) - 1.0) < 1e-3


def test_hebb_diverges():
    X, rotation = _spectrum_data(0, n=2000, variances=[4.0, 1.0, 0.5, 0.25, 0.1])
    X = X - X.mean(axis=0)
    trajectory = pca.iterate_rule(pca.hebb_update, np.full(5, 0.1), X, 1e-3, epochs=3)
    norms = np.linalg.norm(trajectory, axis=1)
    assert norms[-1] > 1e6
    assert np.all(np.diff(norms[::500]) > 0)  # it keeps growing
    w = trajectory[-1]
    assert abs(w @ rotation[:, 0]) / np.linalg.norm(w) > 0.99  # while turning towards PC1


def test_iterate_rule_overflows_quietly():
    X = np.full((200, 2), 100.0)
    with np.errstate(all="raise"):
        trajectory = pca.iterate_rule(pca.hebb_update, np.ones(2), X, 1.0)
    assert not np.all(np.isfinite(trajectory[-1]))


@pytest.mark.parametrize(
    ("args", "error", "words"),
    [
        ((np.ones(3), np.ones(4), 0.1), ValueError, "same length"),
        ((np.ones((3, 1)), np.ones(3), 0.1), ValueError, "vector"),
        ((np.ones(3), np.ones(3), 0.0), ValueError, "lr"),
        ((np.ones(3), [1.0, 2.0, 3.0], 0.1), TypeError, "x must"),
    ],
)
def test_rules_reject_bad_input(args, error, words):
    for rule in (pca.hebb_update, pca.oja_update):
        with pytest.raises(error, match=words):
            rule(*args)


# ----------------------------------------------------------------------------------------------------------------
# Principal angles


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    d=st.integers(2, 12),
    p=st.integers(1, 12),
    q=st.integers(1, 12),
)
def test_principal_angles_match_scipy(seed, d, p, q):
    rng = np.random.default_rng(seed)
    A, B = rng.normal(size=(d, min(p, d))), rng.normal(size=(d, min(q, d)))
    ours = pca.principal_angles(A, B)
    # Where the subspaces intersect (p + q > d) the exact angles are 0 and SciPy returns up to about 2e-8 for them
    # (seed 0, d=4, p=q=3: 2.1e-8 where ours is 5.7e-16), so its values are a reference to 1e-7 there.
    np.testing.assert_allclose(ours, np.sort(scipy.linalg.subspace_angles(A, B)), rtol=1e-9, atol=1e-7)
    assert np.all(np.diff(ours) >= 0)


def _subspaces_at_angles(seed: int, angles, d: int = 9, extra: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Bases A (d, p + extra) and B (d, p) whose subspaces meet at exactly ``angles`` (p of them), and at pi/2 in
    no direction: B's i-th direction is cos(t_i) e_i + sin(t_i) e_(p+extra+i); then both are rotated by one random
    orthogonal matrix and their bases mixed by random invertible matrices, which changes no angle."""
    rng = np.random.default_rng(seed)
    p, E = len(angles), np.eye(d)
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    A = E[:, : p + extra]
    B = np.stack([np.cos(t) * E[:, i] + np.sin(t) * E[:, p + extra + i] for i, t in enumerate(angles)], axis=1)
    return rotation @ A @ rng.normal(size=(p + extra, p + extra)), rotation @ B @ rng.normal(size=(p, p))


@pytest.mark.parametrize("seed", range(6))
def test_principal_angles_resolve_tiny_angles_built_in(seed):
    """Angles from 1e-12 to 1e-3 rad come back to a relative 1e-3 (the arccos of a cosine would return 0 or at
    least 1.5e-8 for all of them), in both argument orders, and agree with SciPy's sine-based subspace_angles."""
    angles = np.sort(10.0 ** np.random.default_rng(seed).uniform(-12, -3, size=3))
    A, B = _subspaces_at_angles(seed, angles)
    ours = pca.principal_angles(A, B)
    np.testing.assert_allclose(ours, angles, rtol=1e-3, atol=1e-15)
    np.testing.assert_allclose(pca.principal_angles(B, A), angles, rtol=1e-3, atol=1e-15)
    np.testing.assert_allclose(ours, np.sort(scipy.linalg.subspace_angles(A, B)), rtol=1e-3, atol=1e-15)
    cosines = np.linalg.svd(np.linalg.qr(A)[0].T @ np.linalg.qr(B)[0], compute_uv=False)
    by_arccos = np.sort(np.arccos(np.clip(cosines, -1.0, 1.0)))
    assert not np.allclose(by_arccos, angles, rtol=1e-3, atol=1e-15)  # what the cosines alone could not do


@pytest.mark.parametrize("angle", [1e-12, 1e-10, 1e-8, 1e-6, 1e-3, 0.5, np.pi / 4, 1.2, np.pi / 2])
def test_principal_angles_across_the_range_match_the_angle_built_in(angle):
    """One angle at a time, on both sides of pi/4 where the formula switches from sines to cosines."""
    A, B = _subspaces_at_angles(7, [angle], d=5, extra=0)
    np.testing.assert_allclose(pca.principal_angles(A, B), [angle], rtol=1e-6, atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), d=st.integers(2, 12), p=st.integers(1, 12), q=st.integers(1, 12))
def test_principal_angles_match_scipy_tightly_on_nearby_subspaces(seed, d, p, q):
    """B spans A's subspace tilted by a small random perturbation: small angles, compared to a relative 1e-6."""
    rng = np.random.default_rng(seed)
    p, q = min(p, d), min(q, d)
    A = rng.normal(size=(d, p))
    B = A[:, : min(p, q)] @ rng.normal(size=(min(p, q), min(p, q))) + 10.0 ** rng.uniform(-9, -2) * rng.normal(
        size=(d, min(p, q))
    )
    expected = np.sort(scipy.linalg.subspace_angles(A, B))
    np.testing.assert_allclose(pca.principal_angles(A, B), expected, rtol=1e-6, atol=1e-14)


def test_principal_angles_of_special_subspaces():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 3))
    np.testing.assert_allclose(pca.principal_angles(A, A @ rng.normal(size=(3, 3))), 0.0, atol=1e-6)
    np.testing.assert_allclose(pca.principal_angles(np.eye(4)[:, :2], np.eye(4)[:, 2:]), np.pi / 2)
    tilted = np.array([[1.0, 0.0], [0.0, np.cos(0.3)], [0.0, np.sin(0.3)]])
    np.testing.assert_allclose(pca.principal_angles(np.eye(3)[:, :2], tilted), [0.0, 0.3], atol=1e-7)
    angles = pca.principal_angles(torch.tensor(A), torch.tensor(A[:, :1]))
    assert angles.shape == (1,) and angles[0] < 1e-6
    with pytest.raises(ValueError, match="same number of rows"):
        pca.principal_angles(np.ones((3, 1)), np.ones((4, 1)))


# ----------------------------------------------------------------------------------------------------------------
# Linear autoencoders


def test_linear_autoencoder_is_the_affine_map_of_the_book():
    torch.manual_seed(0)
    model = pca.LinearAutoencoder(7, 3).double()
    x = torch.randn(5, 7, dtype=torch.float64)
    W_e, b_e = model.encoder.weight, model.encoder.bias
    W_d, b_d = model.decoder.weight, model.decoder.bias
    assert W_e.shape == (3, 7) and W_d.shape == (7, 3)
    expected = torch.stack([W_d @ (W_e @ row + b_e) + b_d for row in x])
    torch.testing.assert_close(model(x), expected)
    torch.testing.assert_close(model.decode(model.encode(x)), expected)
    loss = pca.linear_ae_loss(x, W_e, b_e, W_d, b_d)
    torch.testing.assert_close(loss, torch.nn.functional.mse_loss(model(x), x, reduction="sum") / 5)
    torch.testing.assert_close(pca.squared_error_loss(model, x), loss)
    assert loss.requires_grad
    numpy_loss = pca.linear_ae_loss(x.numpy(), *(p.detach().numpy() for p in (W_e, b_e, W_d, b_d)))
    np.testing.assert_allclose(numpy_loss, loss.item())


@pytest.mark.parametrize(
    ("d", "k", "error", "words"),
    [(0, 1, ValueError, "d must be >= 1"), (3, 0, ValueError, "k must be >= 1"), (3, 4, ValueError, "k=4 > d=3")]
    + [(2.0, 1, TypeError, "d must be an integer")],
)
def test_linear_autoencoder_rejects_bad_sizes(d, k, error, words):
    with pytest.raises(error, match=words):
        pca.LinearAutoencoder(d, k)


@pytest.mark.parametrize("seed", range(3))
def test_components_recovered_from_any_basis_of_the_principal_subspace(seed):
    X, _ = _spectrum_data(seed, n=400, d=8)
    reference = pca.PCA(3).fit(X)
    model = pca.LinearAutoencoder(8, 3).double()
    mixing = np.random.default_rng(seed).normal(size=(3, 3))  # a non-orthogonal, unordered basis
    with torch.no_grad():
        model.decoder.weight.copy_(torch.from_numpy(reference.components_.T @ mixing))
    components, variances = pca.components_from_linear_ae(model, X)
    signs = np.sign(np.sum(components * reference.components_, axis=1))
    np.testing.assert_allclose(components, signs[:, None] * reference.components_, atol=1e-8)
    np.testing.assert_allclose(variances, reference.explained_variance_, rtol=1e-8)


@pytest.mark.parametrize("seed", range(2))
def test_trained_linear_autoencoder_finds_the_principal_subspace(seed):
    X, _ = _spectrum_data(seed, n=500, d=6, variances=[3.0, 2.0, 1.0, 0.1, 0.05, 0.02])
    inputs = torch.tensor(X, dtype=torch.float32)
    torch.manual_seed(seed)
    model = pca.LinearAutoencoder(6, 3)
    train.fit(
        model,
        pca.squared_error_loss,
        inputs,
        epochs=500,
        batch_size=500,
        lr=0.02,
        progress=False,
        device="cpu",
        seed=seed,
    )
    reference = pca.PCA(3).fit(X)
    W_d = model.decoder.weight.detach().double().numpy()
    assert np.max(pca.principal_angles(W_d, reference.components_.T)) < 0.01
    components, variances = pca.components_from_linear_ae(model, X)
    signs = np.sign(np.sum(components * reference.components_, axis=1))
    np.testing.assert_allclose(components, signs[:, None] * reference.components_, atol=0.02)
    np.testing.assert_allclose(variances, reference.explained_variance_, rtol=0.01)
    ae_error = pca.per_image_squared_error(inputs, model(inputs).detach()).mean().item()
    pca_error = pca.per_image_squared_error(X, reference.reconstruct(X)).mean()
    assert ae_error == pytest.approx(pca_error, rel=0.01)


def test_components_from_linear_ae_rejects_bad_input():
    model = pca.LinearAutoencoder(4, 2)
    with pytest.raises(TypeError, match="LinearAutoencoder"):
        pca.components_from_linear_ae(torch.nn.Linear(4, 2), np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        pca.components_from_linear_ae(model, np.ones((5, 3)))
    with torch.no_grad():
        model.decoder.weight.zero_()
    with pytest.raises(ValueError, match="linearly dependent"):
        pca.components_from_linear_ae(model, np.random.default_rng(0).normal(size=(5, 4)))


# ----------------------------------------------------------------------------------------------------------------
# Error measure and losses


def test_per_image_squared_error_and_losses():
    torch.manual_seed(0)
    x = torch.rand(6, 10, dtype=torch.float64)
    x_hat = torch.rand(6, 10, dtype=torch.float64)
    expected = torch.nn.functional.mse_loss(x_hat, x, reduction="none").sum(dim=1)
    torch.testing.assert_close(pca.per_image_squared_error(x, x_hat), expected)
    np.testing.assert_allclose(pca.per_image_squared_error(x.numpy(), x_hat.numpy()), expected.numpy())
    with pytest.raises(ValueError, match="same shape"):
        pca.per_image_squared_error(x, x_hat[:, :5])
    with pytest.raises(TypeError, match="both"):
        pca.per_image_squared_error(x, x_hat.numpy())

    model = torch.nn.Linear(10, 10).double()  # outputs logits
    bernoulli = torch.distributions.Bernoulli(logits=model(x), validate_args=False)  # grey levels as targets
    log_likelihood = bernoulli.log_prob(x).sum(dim=1)
    torch.testing.assert_close(pca.bernoulli_loss(model, x), -log_likelihood.mean())


@pytest.mark.parametrize("seed", range(3))
def test_bernoulli_loss_is_the_closed_form_cross_entropy_of_the_logits(seed):
    """mean_n sum_j softplus(a_nj) - x_nj a_nj, computed in NumPy, for logits large enough that sigmoid saturates."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(8, 12, generator=generator, dtype=torch.float64)
    x[:, :3] = x[:, :3].round()  # binary pixels too
    logits = 30.0 * torch.randn(8, 12, generator=generator, dtype=torch.float64)
    a, target = logits.numpy(), x.numpy()
    expected = np.mean(np.sum(np.logaddexp(0.0, a) - target * a, axis=1))
    loss = pca.bernoulli_loss(FixedOutput(logits), x)
    assert torch.isfinite(loss)
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-12)
    probabilities = torch.sigmoid(logits).clamp(1e-12, 1 - 1e-12)  # the formula of probabilities, where it is finite
    moderate = logits.abs() < 20
    direct = -(x * probabilities.log() + (1 - x) * (1 - probabilities).log())
    np.testing.assert_allclose(
        direct[moderate].numpy(), (np.logaddexp(0.0, a) - target * a)[moderate.numpy()], rtol=1e-9, atol=1e-12
    )


class FixedOutput(torch.nn.Module):
    """A model that outputs the same tensor whatever its input (to test a loss on chosen logits)."""

    def __init__(self, output: torch.Tensor):
        super().__init__()
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output


def test_bernoulli_loss_runs_under_bfloat16_autocast_and_agrees_with_float32():
    torch.manual_seed(0)
    model = MLPAutoencoder((64, 32, 8), output_activation="identity")
    x = torch.rand(16, 64)
    reference = pca.bernoulli_loss(model, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = pca.bernoulli_loss(model, x)
    assert torch.isfinite(mixed) and mixed.dtype == torch.float32  # PyTorch computes this loss in float32
    torch.testing.assert_close(mixed, reference, rtol=2e-2, atol=0.0)  # bfloat16 keeps 8 bits of the mantissa
    mixed.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_bernoulli_loss_refuses_a_model_that_outputs_probabilities():
    with pytest.raises(ValueError, match="logits"):
        pca.bernoulli_loss(MLPAutoencoder((10, 3)), torch.rand(2, 10))


def test_init_deep_autoencoder_scales_weights_for_relu_and_outputs_the_mean():
    torch.manual_seed(0)
    model = MLPAutoencoder((784, 400, 30))
    mean = torch.rand(784) * 0.8 + 0.1
    assert pca.init_deep_autoencoder_(model, mean) is model
    for layer in (module for module in model.modules() if isinstance(module, torch.nn.Linear)):
        expected_std = (2.0 / layer.in_features) ** 0.5
        assert abs(layer.weight.std().item() / expected_std - 1) < 0.1
    torch.testing.assert_close(model(torch.zeros(1, 784))[0], mean)  # sigmoid(logit(mean)) at a zero code
    assert all(torch.all(m.bias == 0) for m in model.encoder.modules() if isinstance(m, torch.nn.Linear))

    linear_output = MLPAutoencoder((784, 30), output_activation="identity")
    pca.init_deep_autoencoder_(linear_output, mean)
    torch.testing.assert_close(linear_output(torch.zeros(1, 784))[0], mean)
    logit_output = MLPAutoencoder((784, 30), output_activation="identity")
    pca.init_deep_autoencoder_(logit_output, mean, logits=True)
    torch.testing.assert_close(torch.sigmoid(logit_output(torch.zeros(1, 784))[0]), mean)
    with pytest.raises(ValueError, match="shape"):
        pca.init_deep_autoencoder_(model, torch.ones(10))
    with pytest.raises(ValueError, match="no nn.Linear"):
        pca.init_deep_autoencoder_(torch.nn.ReLU())


def test_fit_in_bfloat16_with_the_bernoulli_loss_trains_like_float32():
    """``train.fit(precision="bfloat16")`` runs chapter 4's loss under autocast (here on the CPU) and lowers it as
    float32 training does, to bfloat16's precision."""
    images = data.load_mnist("train").images[:512]
    histories = {}
    for precision in ("float32", "bfloat16"):
        torch.manual_seed(0)
        model = MLPAutoencoder((784, 64, 16), output_activation="identity")
        pca.init_deep_autoencoder_(model, output_mean=images.mean(dim=0), logits=True)
        before = pca.bernoulli_loss(model, images).item()
        train.fit(
            model,
            pca.bernoulli_loss,
            images,
            epochs=2,
            batch_size=128,
            lr=1e-3,
            seed=0,
            progress=False,
            device="cpu",
            precision=precision,
        )
        with torch.no_grad():
            histories[precision] = (before, pca.bernoulli_loss(model, images).item())
    for before, after in histories.values():
        assert np.isfinite(after) and after < 0.95 * before
    assert histories["bfloat16"][1] == pytest.approx(histories["float32"][1], rel=0.03), histories


# ----------------------------------------------------------------------------------------------------------------
# Logistic PCA


def _logistic_low_rank_data(seed: int, n: int = 1500, d: int = 16, k: int = 2) -> np.ndarray:
    """Binary data from a known logistic low-rank model: x ~ Bernoulli(sigmoid(W z + b)), z ~ N(0, 9 I_k)."""
    rng = np.random.default_rng(seed)
    codes = 3.0 * rng.normal(size=(n, k))
    loadings, offsets = rng.normal(size=(d, k)), rng.normal(size=d)
    probabilities = 1.0 / (1.0 + np.exp(-(codes @ loadings.T + offsets)))
    return (rng.random((n, d)) < probabilities).astype(np.float64)


def _numpy_bernoulli_loss(X: np.ndarray, logits: np.ndarray) -> float:
    """mean_n sum_j [log(1 + e^a) - x a], written with NumPy's logaddexp."""
    return float(np.mean(np.sum(np.logaddexp(0.0, logits) - X * logits, axis=1)))


@pytest.mark.parametrize("seed", range(3))
def test_logistic_pca_is_a_linear_code_decoded_through_a_sigmoid(seed):
    """The logits are W_d (W_e x + b_e) + b_d, computed in NumPy from the weights; the loss is the closed-form
    cross-entropy and torch's binary_cross_entropy_with_logits; the reconstruction is the logistic of the logits."""
    torch.manual_seed(seed)
    model = pca.LogisticPCA(12, 3).double()
    X = _logistic_low_rank_data(seed, n=40, d=12, k=3)
    W_e, b_e = (t.detach().numpy() for t in (model.encoder.weight, model.encoder.bias))
    W_d, b_d = (t.detach().numpy() for t in (model.decoder.weight, model.decoder.bias))
    assert W_e.shape == (3, 12) and W_d.shape == (12, 3)
    logits = (X @ W_e.T + b_e) @ W_d.T + b_d
    x = torch.from_numpy(X)
    np.testing.assert_allclose(model(x).detach().numpy(), logits, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.encode(x).detach().numpy(), X @ W_e.T + b_e, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.reconstruct(x).detach().numpy(), 1 / (1 + np.exp(-logits)), rtol=1e-12)
    loss = pca.bernoulli_loss(model, x).item()
    np.testing.assert_allclose(loss, _numpy_bernoulli_loss(X, logits), rtol=1e-12)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(model(x), x, reduction="sum").item() / len(X)
    np.testing.assert_allclose(loss, bce, rtol=1e-12)


def _reference_logistic_pca_loss(X: np.ndarray, k: int, seed: int) -> float:
    """The same objective, minimised by SciPy's L-BFGS with a gradient written out by hand in NumPy:
    dL/da = sigmoid(a) - x, then the chain rule through a = (X W_e^T + b_e) W_d^T + b_d."""
    import scipy.optimize

    n, d = X.shape
    shapes = [(k, d), (k,), (d, k), (d,)]
    sizes = [int(np.prod(s)) for s in shapes]

    def unpack(theta):
        parts, start = [], 0
        for shape, size in zip(shapes, sizes, strict=True):
            parts.append(theta[start : start + size].reshape(shape))
            start += size
        return parts

    def objective(theta):
        W_e, b_e, W_d, b_d = unpack(theta)
        Z = X @ W_e.T + b_e
        A = Z @ W_d.T + b_d
        signal = (1 / (1 + np.exp(-A)) - X) / n  # dL/dA
        dZ = signal @ W_d
        gradient = [dZ.T @ X, dZ.sum(0), signal.T @ Z, signal.sum(0)]
        return _numpy_bernoulli_loss(X, A), np.concatenate([g.ravel() for g in gradient])

    theta0 = 0.1 * np.random.default_rng(seed).normal(size=sum(sizes))
    result = scipy.optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 5000})
    return float(result.fun)


@pytest.mark.parametrize("seed", range(3))
def test_fitted_logistic_pca_reaches_the_reference_optimum_and_beats_pca(seed):
    """On binary data from a logistic rank-2 model, logistic PCA trained with train.fit reaches the optimum SciPy's
    L-BFGS finds for the same objective (within 1%), and its Bernoulli loss is below that of PCA's projection,
    clipped into (0, 1) at the threshold best for PCA."""
    k = 2
    X = _logistic_low_rank_data(seed, k=k)
    x = torch.from_numpy(X).float()
    torch.manual_seed(seed)
    model = pca.LogisticPCA(X.shape[1], k).init_output_mean_(x.mean(0))
    train.fit(model, pca.bernoulli_loss, x, epochs=150, batch_size=250, lr=1e-2, progress=False, seed=seed)
    fitted = pca.bernoulli_loss(model, x).item()

    reference = _reference_logistic_pca_loss(X, k, seed)
    assert abs(fitted - reference) < 0.01 * reference, (fitted, reference)

    projection = pca.PCA(k).fit(X).reconstruct(X)
    pca_losses = []
    for eps in 10.0 ** -np.arange(1, 7):
        p = np.clip(projection, eps, 1 - eps)
        pca_losses.append(float(np.mean(np.sum(-(X * np.log(p) + (1 - X) * np.log(1 - p)), axis=1))))
    assert fitted < 0.95 * min(pca_losses), (fitted, pca_losses)


def test_logistic_pca_starts_at_the_mean_image_and_rejects_bad_sizes():
    mean = torch.rand(10) * 0.8 + 0.1
    model = pca.LogisticPCA(10, 4).init_output_mean_(mean)
    torch.testing.assert_close(torch.sigmoid(model.decode(torch.zeros(1, 4)))[0], mean)
    with pytest.raises(ValueError, match="shape"):
        model.init_output_mean_(torch.ones(3))
    with pytest.raises(ValueError, match="must not exceed"):
        pca.LogisticPCA(3, 4)
    with pytest.raises(ValueError):
        pca.LogisticPCA(0, 1)
