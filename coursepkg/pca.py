"""Chapter 4: from PCA to linear autoencoders (and the deep autoencoder compared with PCA).

* :func:`pca_eig` and :class:`PCA`: the principal subspace from the eigendecomposition of the centred covariance,
  ``Sigma = P Lambda P^T`` (eq-ch4-covariance), or from the SVD of the centred data (eq-ch4-svd);
* :func:`hebb_update` and :func:`oja_update`: Hebb's rule, whose weights grow without bound, and Oja's rule
  ``dw = alpha (x y - y^2 w)`` (eq-ch4-oja), which converges to the unit-norm first principal component;
* :func:`principal_angles`: how far apart two subspaces are, accurate for tiny angles too;
* :class:`LinearAutoencoder`, :func:`linear_ae_loss` and :func:`components_from_linear_ae`: a linear autoencoder
  ``x~ = W_d (W_e x + b_e) + b_d`` (eq-ch4-linear-ae) learns the principal subspace, in a basis that is neither
  orthogonal nor ordered; the ordered principal components are recovered from its decoder;
* :class:`LogisticPCA`: logistic PCA (Collins, Dasgupta and Schapire 2001; Schein, Saul and Ungar 2003) in its
  autoencoder form, a linear code decoded through a sigmoid, ``x~ = sigma(W_d (W_e x + b_e) + b_d)``
  (eq-ch4-logistic-pca), trained on the Bernoulli loss :func:`bernoulli_loss`;
* :func:`per_image_squared_error`, :func:`bernoulli_loss` and :func:`squared_error_loss`: the error measure of
  Hinton and Salakhutdinov (2006) and the losses ``coursepkg.train.fit`` minimises. The deep autoencoder is
  ``coursepkg.autoencoders.MLPAutoencoder(HINTON_DIMS)``, initialised by :func:`init_deep_autoencoder_`.

Functions take NumPy arrays or torch tensors. Rows are examples: ``X`` has shape (n, d).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from torch import nn

from . import validation
from .exercise import exercise
from .layers import EncoderDecoder

__all__ = [
    "HINTON_DIMS",
    "PCA",
    "LinearAutoencoder",
    "LogisticPCA",
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


def _matrix(X, name: str, *, min_rows: int = 1) -> np.ndarray:
    """``X`` as a finite float64 matrix (rows are examples) with at least ``min_rows`` rows."""
    X = validation.array(X, name, ndim=2)
    if X.shape[0] < min_rows or X.shape[1] < 1:
        raise ValueError(f"{name} must have at least {min_rows} rows and 1 column, got shape {X.shape}")
    return X


def _check_n_components(k, d: int, n: int) -> int:
    return validation.integer(k, f"n_components (n_samples = {n}, n_features = {d})", minimum=1, maximum=min(n, d))


def _host_array(X):
    """A tensor as a NumPy array on the host (scikit-learn's validation reads arrays); anything else unchanged."""
    return X.detach().cpu().numpy() if torch.is_tensor(X) else X


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
    eigenvalues as rows (the encoder ``U = P_k^T``), largest first; ``variances`` of shape (k,) holds those
    eigenvalues, the variance of the data along each component, in decreasing order. (Each eigenvector's sign is
    arbitrary.)
    """
    X = _matrix(X, "X", min_rows=2)
    k = _check_n_components(k, X.shape[1], X.shape[0])
    Xc = X - X.mean(axis=0)
    covariance = Xc.T @ Xc / (X.shape[0] - 1)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)  # ascending
    order = np.argsort(eigenvalues)[::-1][:k]
    return eigenvectors[:, order].T, eigenvalues[order]


class PCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Principal component analysis, a scikit-learn transformer (it fits in a ``sklearn.pipeline.Pipeline``).

    ``PCA(n_components).fit(X)`` learns ``mean_`` (d,), ``components_`` (k, d) (orthonormal rows, the principal
    directions in decreasing order of variance: the encoder ``U = P_k^T`` of eq-ch4-pca-reconstruction),
    ``explained_variance_`` (k,) (the variances along them, with the ``1/(n-1)`` of the sample covariance),
    ``explained_variance_ratio_`` (k,) (their share of the total variance), ``singular_values_`` (k,) and
    ``n_features_in_``. ``transform`` gives the codes ``z = U (x - mean)``, ``inverse_transform`` the
    reconstructions ``x~ = mean + V z`` with the decoder ``V = P_k = U^T``. ``n_components=None`` keeps
    min(n_samples, n_features) components.

    ``method="eig"`` eigendecomposes the covariance (:func:`pca_eig`, cheap when n >> d); ``method="svd"``
    takes the SVD of the centred data (eq-ch4-svd), which is more accurate for ill-conditioned data.
    ``fit`` accepts what scikit-learn accepts (arrays, lists of rows) and torch tensors; the fitted attributes are
    float64 NumPy arrays; ``transform`` and ``inverse_transform`` return the kind of array they are given (a
    tensor keeps its dtype and device). The sign of each component is fixed so that its entry of largest
    magnitude is positive.
    """

    def __init__(self, n_components: int | None = None, *, method: str = "eig"):
        # scikit-learn's convention: store the parameters as given, check them in fit (so clone and set_params work)
        self.n_components = n_components
        self.method = method

    def fit(self, X, y=None) -> PCA:
        """Learn the mean and the principal directions of ``X`` (n, d); returns ``self``."""
        if self.method not in ("eig", "svd"):
            raise ValueError(f"method must be 'eig' or 'svd', got {self.method!r}")
        X = validate_data(self, _host_array(X), dtype=np.float64, ensure_min_samples=2)
        n, d = X.shape
        k = min(n, d) if self.n_components is None else _check_n_components(self.n_components, d, n)
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
        self.n_components_, self.n_samples_ = k, n
        return self

    @property
    def _n_features_out(self) -> int:
        """The number of codes, for ``get_feature_names_out`` (``pca0``, ``pca1``, ...)."""
        return self.components_.shape[0]

    def _checked_tensor(self, X, name: str, columns: int, message: str):
        """A tensor input checked as ``validate_data`` checks arrays (2-D, ``columns`` wide, finite), kept on its
        device so that a GPU tensor is never copied to the host."""
        if X.ndim != 2:
            raise ValueError(f"Expected 2D array, got a tensor of shape {tuple(X.shape)} instead")
        if X.shape[1] != columns:
            raise ValueError(message.format(got=X.shape[1]))
        X = X.detach() if X.is_floating_point() else X.detach().to(torch.get_default_dtype())
        if not torch.isfinite(X).all():
            raise ValueError(f"Input {name} contains NaN or infinity.")
        return X

    def transform(self, X):
        """The codes ``Z = (X - mean_) @ components_.T`` of shape (n, k): ``z = U (x - mean)`` for each row."""
        check_is_fitted(self)
        if torch.is_tensor(X):
            expected = "X has {got} features, but PCA is expecting " + f"{self.n_features_in_} features as input."
            X = self._checked_tensor(X, "X", self.n_features_in_, expected)
        else:
            X = validate_data(self, X, dtype=np.float64, reset=False)
        return (X - _like(self.mean_, X)) @ _like(self.components_, X).T

    def inverse_transform(self, Z):
        """The reconstructions ``Z @ components_ + mean_`` of shape (n, d): ``x~ = mean + V z`` for each row,
        a point of the principal subspace."""
        check_is_fitted(self)
        expected = "Z has {got} columns, but PCA has " + f"{self.n_components_} components (one column per component)."
        if torch.is_tensor(Z):
            Z = self._checked_tensor(Z, "Z", self.n_components_, expected)
        else:
            Z = check_array(Z, dtype=np.float64, input_name="Z")
            if Z.shape[1] != self.n_components_:
                raise ValueError(expected.format(got=Z.shape[1]))
        return Z @ _like(self.components_, Z) + _like(self.mean_, Z)

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
    validation.positive(lr, "lr")


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
    X = _matrix(X, "X")
    w = validation.array(w0, "w0", ndim=1).copy()
    if w.shape != (X.shape[1],):
        raise ValueError(f"w0 must have shape ({X.shape[1]},) like the rows of X, got {w.shape}")
    epochs = validation.integer(epochs, "epochs", minimum=1)
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
        "Orthonormalise the columns of A and B (np.linalg.qr), with Qa the basis of the larger subspace. The "
        "singular values of M = Qa.T @ Qb are the cosines, those of Qb - Qa @ M the sines (both decreasing): "
        "take arcsin of the sines for angles up to pi/4 (cosine**2 >= 1/2) and arccos of the cosines beyond."
    )
)
def principal_angles(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """The principal angles between the column spaces of ``A`` (d, p) and ``B`` (d, q), in radians, ascending.

    Both matrices have full column rank. With orthonormal bases ``Q_A`` and ``Q_B`` of the two subspaces
    (e.g. from a QR decomposition), the singular values of ``Q_A^T Q_B`` are the cosines of the min(p, q)
    principal angles (eq-ch4-principal-angles). Return the angles as an array of shape (min(p, q),), smallest
    first. Two equal subspaces have all angles 0; orthogonal ones have all angles pi/2.

    A cosine near 1 cannot tell small angles apart (cos(1e-9) rounds to 1), so angles up to pi/4 come from their
    sines instead: with ``Q_A`` the basis of the larger subspace, the singular values of ``Q_B - Q_A Q_A^T Q_B``
    (what is left of ``Q_B`` outside A's subspace) are the sines (Bjorck and Golub, 1973).
    """
    A, B = _matrix(A, "A"), _matrix(B, "B")
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"A and B must have the same number of rows (the dimension d), got {A.shape} and {B.shape}")
    if A.shape[1] < B.shape[1]:
        A, B = B, A  # the angles are symmetric; project the smaller basis onto the larger subspace
    qa, _ = np.linalg.qr(A)
    qb, _ = np.linalg.qr(B)
    overlap = qa.T @ qb
    cosines = np.linalg.svd(overlap, compute_uv=False)  # decreasing: the smallest angle first
    sines = np.linalg.svd(qb - qa @ overlap, compute_uv=False)[::-1]  # increasing: the smallest angle first
    from_sines = np.arcsin(np.clip(sines, 0.0, 1.0))
    from_cosines = np.arccos(np.clip(cosines, 0.0, 1.0))
    return np.where(cosines**2 >= 0.5, from_sines, from_cosines)


# ----------------------------------------------------------------------------------------------------------------
# Linear autoencoders


class LinearAutoencoder(EncoderDecoder):
    """The linear autoencoder ``x~ = W_d (W_e x + b_e) + b_d`` (eq-ch4-linear-ae) with a code of size ``k``.

    ``encoder`` is ``nn.Linear(d, k)`` (weight ``W_e`` of shape (k, d), bias ``b_e``) and ``decoder`` is
    ``nn.Linear(k, d)`` (weight ``W_d`` of shape (d, k), bias ``b_d``). Trained on the squared error it learns
    the principal subspace of its data, in a basis (the columns of ``W_d``) that is neither orthogonal nor
    ordered. ``encode`` is the code ``z = W_e x + b_e``, ``decode`` the reconstruction ``W_d z + b_d``.
    """

    def __init__(self, d: int, k: int):
        super().__init__()
        d, k = validation.integer(d, "d", minimum=1), validation.integer(k, "k", minimum=1)
        if k > d:
            raise ValueError(f"the code size k must not exceed the input size d, got k={k} > d={d}")
        self.d, self.k = int(d), int(k)
        self.encoder = nn.Linear(self.d, self.k)
        self.decoder = nn.Linear(self.k, self.d)


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
    X = _matrix(X, "X", min_rows=2)
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


class LogisticPCA(LinearAutoencoder):
    """Logistic PCA with a linear code: ``z = W_e x + b_e``, logits ``a = W_d z + b_d`` and the reconstruction
    ``x~ = sigma(a)`` (eq-ch4-logistic-pca).

    The exponential-family PCA of Collins, Dasgupta and Schapire (2001) for Bernoulli data (Schein, Saul and
    Ungar 2003): the *natural parameters* (the logits) of the pixels, not the pixels themselves, lie on a
    k-dimensional affine subspace, and the fit minimises the Bernoulli cross-entropy (eq-ch4-bernoulli) instead
    of the squared error. Here the code is the output of a linear encoder (a linear autoencoder whose decoder
    has a logistic output), so a new image is encoded by one matrix product; the papers instead optimise a free
    code for every image. ``encoder`` is ``nn.Linear(d, k)`` (``W_e``, ``b_e``) and ``decoder``
    ``nn.Linear(k, d)`` (``W_d``, ``b_d``), as in :class:`LinearAutoencoder`; ``forward`` returns the logits
    ``a``, what :func:`bernoulli_loss` expects, and :meth:`reconstruct` the Bernoulli means ``sigma(a)``.
    :meth:`init_output_mean_` starts the model at the mean image. (It is the linear autoencoder whose output is
    read as logits: the same layers, another loss.)
    """

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The Bernoulli means ``x~ = sigma(a)``, intensities in (0, 1): shape (n, d)."""
        return torch.sigmoid(self(x))

    def init_output_mean_(self, mean) -> LogisticPCA:
        """Set ``b_d = logit(mean)`` (``mean`` of shape (d,), clipped to [1e-4, 1 - 1e-4]) so that a zero code
        decodes to the mean image; returns ``self``."""
        mean = torch.as_tensor(mean, dtype=self.decoder.bias.dtype, device=self.decoder.bias.device).reshape(-1)
        if mean.shape != (self.d,) or not torch.isfinite(mean).all():
            raise ValueError(f"mean must be a finite vector of shape ({self.d},), got shape {tuple(mean.shape)}")
        mean = mean.clamp(1e-4, 1 - 1e-4)
        with torch.no_grad():
            self.decoder.bias.copy_(torch.log(mean) - torch.log1p(-mean))
        return self


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
    """``train.fit`` loss: the cross-entropy of eq-ch4-bernoulli, summed over pixels and averaged over the batch.

    ``model(x)`` returns *logits* a (no output sigmoid): the Bernoulli means are x~ = sigma(a), and the loss per
    pixel, ``-x log sigma(a) - (1 - x) log(1 - sigma(a)) = softplus(a) - x a``, is computed from the logits
    in one stable step. Under CUDA autocast (``fit(..., precision="bfloat16")``) PyTorch runs it in float32;
    the cross-entropy of probabilities would be refused there. The reconstruction is ``torch.sigmoid(model(x))``.
    """
    if isinstance(list(model.modules())[-1], nn.Sigmoid):
        raise ValueError("bernoulli_loss needs a model that outputs logits: drop its final sigmoid")
    return nn.functional.binary_cross_entropy_with_logits(model(x), x, reduction="sum") / x.shape[0]


def init_deep_autoencoder_(model: nn.Module, output_mean=None, *, logits: bool = False) -> nn.Module:
    """Initialise a deep ReLU autoencoder so that plain backpropagation trains it quickly; returns ``model``.

    Every ``nn.Linear`` gets He-normal weights (variance ``2 / fan_in``, He et al. 2015) and a zero bias, so the
    signal neither vanishes nor explodes through the ReLU layers (PyTorch's default, variance ``1 / (3 fan_in)``,
    shrinks it at every layer: the untrained network's output hardly depends on its input). With
    ``output_mean`` (the mean training image, shape (d,)), the last layer's bias is set so that the untrained
    model outputs that mean: ``logit(mean)`` when the model ends in a sigmoid or, with ``logits=True``, outputs
    the logits of its Bernoulli means (for :func:`bernoulli_loss`); the mean itself otherwise.
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
            if logits or isinstance(list(model.modules())[-1], nn.Sigmoid):
                mean = mean.clamp(1e-4, 1 - 1e-4)
                mean = torch.log(mean) - torch.log1p(-mean)
            last.bias.copy_(mean)
    return model
