"""Chapter 4: from PCA to linear autoencoders (and the deep autoencoder compared with PCA).

* :func:`pca_eig` and :class:`PCA`: the principal subspace from the eigendecomposition of the centred covariance,
  ``Sigma = P Lambda P^T`` (eq-ch4-covariance), or from the SVD of the centred data (eq-ch4-svd);
* :func:`hebb_update` and :func:`oja_update`: Hebb's rule, whose weights grow without bound, and Oja's rule
  ``dw = alpha (x y - y^2 w)`` (eq-ch4-oja), which converges to the unit-norm first principal component;
* :func:`principal_angles`: how far apart two subspaces are;
* :class:`LinearAutoencoder`, :func:`linear_ae_loss` and :func:`components_from_linear_ae`: a linear autoencoder
  ``x~ = W_d (W_e x + b_e) + b_d`` (eq-ch4-linear-ae) learns the principal subspace, in a basis that is neither
  orthogonal nor ordered; the ordered principal components are recovered from its decoder;
* :func:`per_image_squared_error`, :func:`bernoulli_loss` and :func:`squared_error_loss`: the error measure of
  Hinton and Salakhutdinov (2006) and the losses ``coursepkg.train.fit`` minimises. The deep autoencoder is
  ``coursepkg.autoencoders.MLPAutoencoder(HINTON_DIMS)``, initialised by :func:`init_deep_autoencoder_`.

Functions take NumPy arrays or torch tensors. Rows are examples: ``X`` has shape (n, d).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .exercise import exercise

__all__ = [
    "HINTON_DIMS",
    "PCA",
    "LinearAutoencoder",
    "bernoulli_loss",
    "components_from_linear_ae",
    "hebb_update",
    "init_deep_autoencoder_",
    "iterate_rule",
    "linear_ae_loss",
    "oja_update",
    "pca_eig",
    "per_image_squared_error",
    "principal_angles",
    "squared_error_loss",
]

# The deep autoencoder of Hinton and Salakhutdinov (2006) for MNIST: 784-1000-500-250-30, linear code layer.
HINTON_DIMS = (784, 1000, 500, 250, 30)


# ----------------------------------------------------------------------------------------------------------------
# Input validation (not graded)


def _to_numpy(X, name: str) -> np.ndarray:
    """``X`` as a float64 NumPy array; tensors are detached and moved to the CPU."""
    if torch.is_tensor(X):
        X = X.detach().cpu().double().numpy()
    elif isinstance(X, (list, tuple)):
        X = np.asarray(X)
    if not isinstance(X, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array or a torch tensor, got {type(X).__name__}")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_) or np.iscomplexobj(X):
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    return X.astype(np.float64, copy=False)


def _check_matrix(X, name: str, *, min_rows: int = 1, min_cols: int = 1) -> np.ndarray:
    """``X`` as a finite float64 matrix of shape (rows >= min_rows, cols >= min_cols)."""
    X = _to_numpy(X, name)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix (rows are examples), got shape {X.shape}")
    if X.shape[0] < min_rows or X.shape[1] < min_cols:
        raise ValueError(f"{name} must have at least {min_rows} rows and {min_cols} columns, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(X))[0])
        raise ValueError(f"{name} has a non-finite entry {X[index]} at index {list(index)}")
    return X


def _check_n_components(k, d: int, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"n_components must be an int, got {type(k).__name__}")
    if not 1 <= k <= min(n, d):
        raise ValueError(f"n_components must be in [1, min(n_samples, n_features)] = [1, {min(n, d)}], got {k}")
    return int(k)


def _like(values: np.ndarray, template):
    """``values`` as the same kind of array as ``template``: a tensor of its dtype and device, or NumPy."""
    if torch.is_tensor(template):
        dtype = template.dtype if template.is_floating_point() else torch.get_default_dtype()
        return torch.as_tensor(values, dtype=dtype, device=template.device)
    return values


def _fix_signs(components: np.ndarray) -> np.ndarray:
    """Flip each row so that its entry of largest magnitude is positive (a deterministic sign)."""
    largest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(components.shape[0]), largest])
    signs[signs == 0] = 1.0
    return components * signs[:, None]


# ----------------------------------------------------------------------------------------------------------------
# PCA


@exercise(
    hint=(
        "Centre X with its column means, form the covariance C = Xc.T @ Xc / (n - 1), take np.linalg.eigh(C) "
        "(ascending eigenvalues) and return the last k eigenvectors as rows, largest eigenvalue first, with "
        "their eigenvalues."
    )
)
def pca_eig(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA by eigendecomposition of the centred covariance (eq-ch4-covariance).

    ``X`` is a NumPy array of shape (n, d), one example per row. Centre it, ``Xc = X - mean``, form the sample
    covariance ``Sigma = Xc^T Xc / (n - 1)`` of shape (d, d), decompose ``Sigma = P Lambda P^T`` and return
    ``(components, variances)``: ``components`` of shape (k, d) holds the k eigenvectors of the largest
    eigenvalues as rows (``U^T = P_k^T``), largest first; ``variances`` of shape (k,) holds those eigenvalues,
    the variance of the data along each component, in decreasing order. (Each eigenvector's sign is arbitrary.)
    """
    X = _check_matrix(X, "X", min_rows=2)
    k = _check_n_components(k, X.shape[1], X.shape[0])
    Xc = X - X.mean(axis=0)
    covariance = Xc.T @ Xc / (X.shape[0] - 1)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)  # ascending
    order = np.argsort(eigenvalues)[::-1][:k]
    return eigenvectors[:, order].T, eigenvalues[order]


class PCA:
    """Principal component analysis with scikit-learn's interface.

    ``PCA(n_components).fit(X)`` learns ``mean_`` (d,), ``components_`` (k, d) (orthonormal rows, the principal
    directions in decreasing order of variance), ``explained_variance_`` (k,) (the variances along them, with the
    ``1/(n-1)`` of the sample covariance), ``explained_variance_ratio_`` (k,) (their share of the total
    variance) and ``singular_values_`` (k,). ``transform`` gives the codes ``z = U^T (x - mean)``,
    ``inverse_transform`` the reconstructions ``x~ = U z + mean`` (eq-ch4-pca-reconstruction).

    ``method="eig"`` eigendecomposes the covariance (:func:`pca_eig`, cheap when n >> d); ``method="svd"``
    takes the SVD of the centred data (eq-ch4-svd), which is more accurate for ill-conditioned data.
    ``fit`` accepts NumPy arrays or torch tensors; the fitted attributes are float64 NumPy arrays; ``transform``
    and ``inverse_transform`` return the kind of array they are given (a tensor keeps its dtype and device).
    The sign of each component is fixed so that its entry of largest magnitude is positive.
    """

    def __init__(self, n_components: int, *, method: str = "eig"):
        if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)):
            raise TypeError(f"n_components must be an int, got {type(n_components).__name__}")
        if n_components < 1:
            raise ValueError(f"n_components must be at least 1, got {n_components}")
        if method not in ("eig", "svd"):
            raise ValueError(f"method must be 'eig' or 'svd', got {method!r}")
        self.n_components = int(n_components)
        self.method = method

    def __repr__(self) -> str:
        return f"PCA(n_components={self.n_components}, method={self.method!r})"

    def fit(self, X, y=None) -> PCA:
        """Learn the mean and the principal directions of ``X`` (n, d); returns ``self``."""
        X = _check_matrix(X, "X", min_rows=2)
        n, d = X.shape
        k = _check_n_components(self.n_components, d, n)
        mean = X.mean(axis=0)
        Xc = X - mean
        if self.method == "eig":
            components, variances = pca_eig(X, k)
            total = np.einsum("ij,ij->", Xc, Xc) / (n - 1)
        else:
            _, singular_values, vt = np.linalg.svd(Xc, full_matrices=False)
            components, variances = vt[:k], singular_values[:k] ** 2 / (n - 1)
            total = np.sum(singular_values**2) / (n - 1)
        variances = np.clip(variances, 0.0, None)  # round-off can make a zero eigenvalue slightly negative
        self.mean_ = mean
        self.components_ = _fix_signs(np.ascontiguousarray(components))
        self.explained_variance_ = variances
        self.explained_variance_ratio_ = variances / total if total > 0 else np.zeros_like(variances)
        self.singular_values_ = np.sqrt(variances * (n - 1))
        self.n_components_, self.n_features_in_, self.n_samples_ = k, d, n
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise RuntimeError("this PCA is not fitted yet: call fit(X) first")

    def _input(self, X, name: str, width: int, what: str):
        """``X`` checked (2-D, ``width`` columns, finite) and kept as a tensor or made a float64 array."""
        if torch.is_tensor(X):
            if X.ndim != 2 or X.shape[1] != width:
                raise ValueError(f"{name} must have shape (n, {width}) ({what}), got {tuple(X.shape)}")
            if not torch.isfinite(X).all():
                raise ValueError(f"{name} has non-finite entries")
            return X.detach() if X.is_floating_point() else X.detach().to(torch.get_default_dtype())
        X = _check_matrix(X, name)
        if X.shape[1] != width:
            raise ValueError(f"{name} must have shape (n, {width}) ({what}), got {X.shape}")
        return X

    def transform(self, X):
        """The codes ``Z = (X - mean_) @ components_.T`` of shape (n, k)."""
        self._check_fitted()
        X = self._input(X, "X", self.n_features_in_, "as many features as the data PCA was fitted on")
        return (X - _like(self.mean_, X)) @ _like(self.components_, X).T

    def inverse_transform(self, Z):
        """The reconstructions ``Z @ components_ + mean_`` of shape (n, d): points of the principal subspace."""
        self._check_fitted()
        Z = self._input(Z, "Z", self.n_components_, "one column per principal component")
        return Z @ _like(self.components_, Z) + _like(self.mean_, Z)

    def fit_transform(self, X, y=None):
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def reconstruct(self, X):
        """``inverse_transform(transform(X))``: the orthogonal projection of ``X`` onto the principal subspace."""
        return self.inverse_transform(self.transform(X))


# ----------------------------------------------------------------------------------------------------------------
# Hebb's and Oja's rules


def _check_rule_inputs(w, x, lr) -> None:
    for name, value in (("w", w), ("x", x)):
        if not (torch.is_tensor(value) or isinstance(value, np.ndarray)):
            raise TypeError(f"{name} must be a NumPy array or a torch tensor, got {type(value).__name__}")
        if value.ndim != 1:
            raise ValueError(f"{name} must be a vector of shape (d,), got shape {tuple(value.shape)}")
    if w.shape[0] != x.shape[0]:
        raise ValueError(f"w and x must have the same length, got {w.shape[0]} and {x.shape[0]}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating, np.integer)) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")


def hebb_update(w, x, lr: float):
    """One step of Hebb's rule (eq-ch4-hebb): ``w + lr * y * x`` with the output ``y = w^T x``.

    ``w`` and ``x`` are vectors of shape (d,) (NumPy or torch). The expected update is ``lr * C w``: ``w`` turns
    towards the first principal component, but its norm grows without bound.
    """
    _check_rule_inputs(w, x, lr)
    y = w @ x
    return w + lr * y * x


@exercise(hint="Compute the output y = w @ x, then return w + lr * (x * y - y**2 * w).")
def oja_update(w, x, lr: float):
    """One step of Oja's rule (eq-ch4-oja): ``w + lr * (x y - y^2 w)`` with the output ``y = w^T x``.

    ``w`` and ``x`` are vectors of shape (d,) and ``lr`` the learning rate alpha > 0. Return the new weight
    vector, of shape (d,). The term ``- y^2 w`` is Hebb's rule plus a decay that keeps ``||w||`` near 1; for a
    small ``lr``, ``w`` converges to the unit-norm first principal component (up to sign).
    """
    _check_rule_inputs(w, x, lr)
    y = w @ x
    return w + lr * (x * y - y**2 * w)


def iterate_rule(update, w0, X, lr: float, *, epochs: int = 1, seed: int = 0) -> np.ndarray:
    """Apply ``update(w, x, lr)`` to the rows of ``X`` in a random order, ``epochs`` times.

    Returns the trajectory, a float64 array of shape (epochs * n + 1, d) whose row 0 is ``w0``. A trajectory
    that overflows (Hebb's rule) ends with rows of ``inf``/``nan``: NumPy's overflow warnings are silenced.
    """
    X = _check_matrix(X, "X")
    w = _to_numpy(w0, "w0").copy()
    if w.shape != (X.shape[1],):
        raise ValueError(f"w0 must have shape ({X.shape[1]},) like the rows of X, got {w.shape}")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    rng = np.random.default_rng(seed)
    trajectory = np.empty((epochs * X.shape[0] + 1, X.shape[1]))
    trajectory[0] = w
    step = 1
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(epochs):
            for i in rng.permutation(X.shape[0]):
                w = update(w, X[i], lr)
                trajectory[step] = w
                step += 1
    return trajectory


# ----------------------------------------------------------------------------------------------------------------
# Principal angles


@exercise(
    hint=(
        "Orthonormalise the columns of A and B (np.linalg.qr), take the singular values s of Qa.T @ Qb, clip "
        "them to [-1, 1] and return np.arccos(s): arccos of decreasing cosines is increasing."
    )
)
def principal_angles(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """The principal angles between the column spaces of ``A`` (d, p) and ``B`` (d, q), in radians, ascending.

    Both matrices have full column rank. With orthonormal bases ``Q_A`` and ``Q_B`` of the two subspaces
    (e.g. from a QR decomposition), the singular values of ``Q_A^T Q_B`` are the cosines of the min(p, q)
    principal angles (eq-ch4-principal-angles). Return the angles as an array of shape (min(p, q),), smallest
    first. Two equal subspaces have all angles 0; orthogonal ones have all angles pi/2.
    """
    A, B = _check_matrix(A, "A"), _check_matrix(B, "B")
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"A and B must have the same number of rows (the dimension d), got {A.shape} and {B.shape}")
    qa, _ = np.linalg.qr(A)
    qb, _ = np.linalg.qr(B)
    cosines = np.linalg.svd(qa.T @ qb, compute_uv=False)  # decreasing
    return np.arccos(np.clip(cosines, -1.0, 1.0))


# ----------------------------------------------------------------------------------------------------------------
# Linear autoencoders


class LinearAutoencoder(nn.Module):
    """The linear autoencoder ``x~ = W_d (W_e x + b_e) + b_d`` (eq-ch4-linear-ae) with a code of size ``k``.

    ``encoder`` is ``nn.Linear(d, k)`` (weight ``W_e`` of shape (k, d), bias ``b_e``) and ``decoder`` is
    ``nn.Linear(k, d)`` (weight ``W_d`` of shape (d, k), bias ``b_d``). Trained on the squared error it learns
    the principal subspace of its data, in a basis (the columns of ``W_d``) that is neither orthogonal nor
    ordered.
    """

    def __init__(self, d: int, k: int):
        super().__init__()
        for name, value in (("d", d), ("k", k)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if k > d:
            raise ValueError(f"the code size k must not exceed the input size d, got k={k} > d={d}")
        self.d, self.k = int(d), int(k)
        self.encoder = nn.Linear(self.d, self.k)
        self.decoder = nn.Linear(self.k, self.d)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code ``z = W_e x + b_e``."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``W_d z + b_d``."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``x~ = W_d (W_e x + b_e) + b_d``."""
        return self.decoder(self.encoder(x))


@exercise(
    hint=(
        "Rows are examples: codes Z = X @ W_e.T + b_e, reconstructions R = Z @ W_d.T + b_d; return the mean over "
        "rows of the squared error summed over columns, ((X - R) ** 2).sum(1).mean()."
    )
)
def linear_ae_loss(X, W_e, b_e, W_d, b_d):
    """The reconstruction loss of a linear autoencoder (eq-ch4-linear-ae-loss).

    ``X`` (n, d) holds one example per row; ``W_e`` (k, d) and ``b_e`` (k,) are the encoder's weights and bias,
    ``W_d`` (d, k) and ``b_d`` (d,) the decoder's. Each row is reconstructed as ``x~ = W_d (W_e x + b_e) + b_d``.
    Return the mean over the n examples of the squared error summed over the d features,
    ``(1/n) sum_n ||x_n - x~_n||^2`` (a scalar). It must work for NumPy arrays and for torch tensors (then it is
    differentiable, so ``coursepkg.train.fit`` can minimise it).
    """
    reconstructions = (X @ W_e.T + b_e) @ W_d.T + b_d
    return ((X - reconstructions) ** 2).sum(1).mean()


def components_from_linear_ae(model: LinearAutoencoder, X) -> tuple[np.ndarray, np.ndarray]:
    """The ordered principal components recovered from a trained linear autoencoder (eq-ch4-recover).

    The decoder's columns span (approximately) the principal subspace, but in an arbitrary basis. Take an
    orthonormal basis ``Q`` (d, k) of that column space from the SVD of ``W_d``, project the centred data onto
    it, and eigendecompose the k x k covariance of the projections, ``Q^T Sigma Q = R Lambda R^T``: the rows of
    ``(Q R)^T`` are the principal directions inside the learned subspace, in decreasing order of variance.

    Returns ``(components, variances)``: float64 NumPy arrays of shapes (k, d) and (k,), with the sign fixed as
    in :class:`PCA` (so that, when the subspace is the principal one, they agree with ``PCA.components_``).
    """
    if not isinstance(model, LinearAutoencoder):
        raise TypeError(f"model must be a LinearAutoencoder, got {type(model).__name__}")
    X = _check_matrix(X, "X", min_rows=2)
    if X.shape[1] != model.d:
        raise ValueError(f"X must have shape (n, {model.d}) like the model's input, got {X.shape}")
    W_d = model.decoder.weight.detach().cpu().double().numpy()  # (d, k)
    if not np.all(np.isfinite(W_d)):
        raise ValueError("the model's decoder weights are not finite: did training diverge?")
    basis, singular_values, _ = np.linalg.svd(W_d, full_matrices=False)
    if singular_values[-1] <= 1e-10 * singular_values[0]:
        raise ValueError("the decoder's columns are linearly dependent: the model spans fewer than k dimensions")
    projections = (X - X.mean(axis=0)) @ basis  # (n, k)
    covariance = projections.T @ projections / (X.shape[0] - 1)
    eigenvalues, rotation = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    components = (basis @ rotation[:, order]).T
    return _fix_signs(components), np.clip(eigenvalues[order], 0.0, None)


# ----------------------------------------------------------------------------------------------------------------
# The error measure of Hinton and Salakhutdinov (2006) and training losses


def per_image_squared_error(x, x_hat):
    """The squared error of each image summed over its pixels, ``sum_j (x_j - x~_j)^2``: shape (n,).

    The mean of this over the MNIST test images is the number Hinton and Salakhutdinov (2006) report (13.87 for
    30-d PCA, 3.00 for their deep autoencoder). Takes two (n, d) NumPy arrays or two tensors.
    """
    if torch.is_tensor(x) != torch.is_tensor(x_hat):
        raise TypeError("x and x_hat must both be tensors or both be NumPy arrays")
    if tuple(x.shape) != tuple(x_hat.shape) or x.ndim != 2:
        raise ValueError(
            f"x and x_hat must be (n, d) matrices of the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}"
        )
    return ((x - x_hat) ** 2).sum(1)


def squared_error_loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``train.fit`` loss: the mean over the batch of the per-image squared error (a Gaussian likelihood)."""
    return ((model(x) - x) ** 2).sum(1).mean()


def bernoulli_loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``train.fit`` loss: the mean over the batch of the cross-entropy summed over pixels (a Bernoulli
    likelihood with means ``model(x)`` in (0, 1), i.e. a model whose output activation is a sigmoid)."""
    reconstruction = model(x)
    return nn.functional.binary_cross_entropy(reconstruction, x, reduction="sum") / x.shape[0]


def init_deep_autoencoder_(model: nn.Module, output_mean=None) -> nn.Module:
    """Initialise a deep ReLU autoencoder so that plain backpropagation trains it quickly; returns ``model``.

    Every ``nn.Linear`` gets He-normal weights (variance ``2 / fan_in``, He et al. 2015) and a zero bias, so the
    signal neither vanishes nor explodes through the ReLU layers (PyTorch's default, variance ``1 / (3 fan_in)``,
    shrinks it at every layer: the untrained network's output hardly depends on its input). With
    ``output_mean`` (the mean training image, shape (d,)), the last layer's bias is set so that the untrained
    model outputs that mean: ``logit(mean)`` when the model ends in a sigmoid, the mean itself otherwise.
    Hinton and Salakhutdinov (2006) solved the same problem with layer-wise RBM pretraining.
    """
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError(f"model has no nn.Linear layers to initialise: {type(model).__name__}")
    with torch.no_grad():
        for layer in linears:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)
        if output_mean is not None:
            last = linears[-1]
            mean = torch.as_tensor(output_mean, dtype=last.bias.dtype, device=last.bias.device).reshape(-1)
            if mean.shape != last.bias.shape or not torch.isfinite(mean).all():
                raise ValueError(
                    f"output_mean must be a finite vector of shape {tuple(last.bias.shape)} (one value per output), "
                    f"got shape {tuple(mean.shape)}"
                )
            modules = list(model.modules())
            if isinstance(modules[-1], nn.Sigmoid):
                mean = mean.clamp(1e-4, 1 - 1e-4)
                mean = torch.log(mean) - torch.log1p(-mean)
            last.bias.copy_(mean)
    return model
