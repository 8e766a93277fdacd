"""Chapter 6: variational autoencoders and the evidence lower bound (ELBO).

The generative model is z ~ p(z) = N(0, I), x ~ p_theta(x | z); the encoder q_phi(z | x) = N(mu, diag(sigma^2))
is trained together with the decoder by maximizing, for every training example, the ELBO

    L(x) = E_q[log p_theta(x | z)] - KL(q_phi(z | x) || p(z))  <=  log p_theta(x)          (eq-ch6-elbo)

estimated with one reparameterized sample z = mu + sigma * eps (eq-ch6-reparam). The importance-weighted bound
log (1/k) sum_i p(x, z_i) / q(z_i | x) (eq-ch6-iwae) is tighter and tends to log p(x) as k grows.

The package has one module per idea; every public name is importable from ``coursepkg.vae``:

* this file: the graded exercises, the chapter's formulas in closed form: the reparameterized sample, the KL
  divergence of Gaussians (against N(0, I) and between two full-covariance Gaussians), the one-sample ELBO of a
  Bernoulli decoder and the importance-weighted bound from log-weights;
* :mod:`~coursepkg.vae.model`: the :class:`VAE`, a fully connected encoder and decoder;
* :mod:`~coursepkg.vae.objective`: the ELBO of a model, :func:`elbo_terms`, :func:`elbo`, and the training loss
  :func:`elbo_loss`;
* :mod:`~coursepkg.vae.importance_sampling`: estimates of log p(x), :func:`iwae_bound`,
  :func:`naive_log_likelihood` and :func:`log_importance_weights`;
* :mod:`~coursepkg.vae.interpolation`: :func:`interpolate`, a walk between two codes;
* :mod:`~coursepkg.vae.linear_gaussian`: the :class:`LinearGaussian` model, whose log p(x) is known exactly;
* :mod:`~coursepkg.vae.gradient_estimators`: :func:`gradient_estimates`, reparameterization against the score
  function.

:func:`elbo`, :func:`iwae_bound`, :func:`naive_log_likelihood` and :func:`interpolate` work with any model that
has ``encode(x) -> (mu, logvar)``, ``decode(z)`` and ``log_likelihood(x, decoded)`` (per example) and, for
interpolation, ``decoder_mean(z)``: the :class:`VAE` and the :class:`LinearGaussian` model both do. Equation
labels such as (eq-ch6-elbo) refer to book/06_vae.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import runtime, validation
from ..exercise import exercise
from .gradient_estimators import gradient_estimates
from .importance_sampling import iwae_bound, log_importance_weights, naive_log_likelihood
from .interpolation import interpolate
from .linear_gaussian import LinearGaussian
from .model import VAE
from .objective import elbo, elbo_loss, elbo_terms

__all__ = [
    "VAE",
    "LinearGaussian",
    "bernoulli_elbo",
    "elbo",
    "elbo_loss",
    "elbo_terms",
    "gaussian_kl",
    "gradient_estimates",
    "interpolate",
    "iwae_bound",
    "iwae_from_log_weights",
    "kl_mvn",
    "log_importance_weights",
    "naive_log_likelihood",
    "reparameterize",
]

# --- the Gaussians: a reparameterized sample and KL divergences --------------------------------------------------


@exercise(
    hint="Draw eps with torch.randn(mu.shape, generator=generator, dtype=mu.dtype) and return "
    "mu + exp(logvar / 2) * eps: the noise is an input, so gradients reach mu and logvar."
)
def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A sample z ~ N(mu, diag(exp(logvar))) written as z = mu + sigma * eps, eps ~ N(0, I) (eq-ch6-reparam).

    ``mu`` and ``logvar`` have the same shape, e.g. (N, d); ``logvar`` is log sigma^2. Draw eps from
    ``generator`` when one is given (so the same seed gives the same z). Because eps does not depend on mu or
    logvar, z is a differentiable function of both: gradients flow back to the encoder.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    eps = runtime.randn(mu.shape, mu, generator)
    return mu + torch.exp(0.5 * logvar) * eps


@exercise(
    hint="Sum 0.5 * (exp(logvar) + mu**2 - 1 - logvar) over the last dimension: that is KL(N(mu, sigma^2) || N(0, 1)) "
    "for each latent coordinate, added up."
)
def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(sigma^2)) || N(0, I)) = 1/2 sum_j (sigma_j^2 + mu_j^2 - 1 - log sigma_j^2) (eq-ch6-kl-diag).

    ``mu`` and ``logvar`` (= log sigma^2) have shape (N, d); the result has shape (N,), one KL per example
    (the sum runs over the last dimension).
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    return 0.5 * (torch.exp(logvar) + mu**2 - 1.0 - logvar).sum(dim=-1)


def _cholesky(cov: torch.Tensor, name: str) -> torch.Tensor:
    """The lower Cholesky factor of ``cov``, or a ValueError naming ``name`` if it is not positive definite."""
    if cov.ndim < 2 or cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"{name} must be a square matrix (..., d, d), got shape {tuple(cov.shape)}")
    validation.finite(cov, name)
    scale = cov.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(cov.dtype).tiny)
    if not torch.allclose(cov / scale, cov.mT / scale, rtol=0.0, atol=1e-6):
        raise ValueError(f"{name} must be symmetric (a covariance matrix)")
    factor, info = torch.linalg.cholesky_ex(cov)
    if (info != 0).any():
        raise ValueError(f"{name} must be positive definite (a covariance matrix); its Cholesky factorization failed")
    return factor


@exercise(
    hint="KL = 1/2 [tr(S1^-1 S0) + (m1 - m0)^T S1^-1 (m1 - m0) - d + log det S1 - log det S0]; use "
    "torch.linalg.cholesky for the log-determinants (2 * sum(log(diag(L)))) and torch.linalg.solve for S1^-1."
)
def kl_mvn(mu0: torch.Tensor, cov0: torch.Tensor, mu1: torch.Tensor, cov1: torch.Tensor) -> torch.Tensor:
    """KL(N(mu0, cov0) || N(mu1, cov1)) for d-dimensional Gaussians (eq-ch6-kl-mvn):

        1/2 [ tr(cov1^-1 cov0) + (mu1 - mu0)^T cov1^-1 (mu1 - mu0) - d + log det cov1 - log det cov0 ].

    ``mu0``, ``mu1`` have shape (d,) and ``cov0``, ``cov1`` shape (d, d); leading batch dimensions (..., d) and
    (..., d, d) are allowed and give one KL per batch entry. A covariance that is not symmetric positive
    definite raises ValueError.
    """
    d = mu0.shape[-1]
    if mu1.shape[-1] != d or cov0.shape[-2:] != (d, d) or cov1.shape[-2:] != (d, d):
        raise ValueError(
            f"expected mu0, mu1 of shape (..., d) and cov0, cov1 of shape (..., d, d) with the same d, got "
            f"{tuple(mu0.shape)}, {tuple(cov0.shape)}, {tuple(mu1.shape)}, {tuple(cov1.shape)}"
        )
    chol0, chol1 = _cholesky(cov0, "cov0"), _cholesky(cov1, "cov1")
    # tr(cov1^-1 cov0) = ||L1^-1 L0||_F^2 and the Mahalanobis term = ||L1^-1 (mu1 - mu0)||^2.
    l1_inv_l0 = torch.linalg.solve_triangular(chol1, chol0, upper=False)
    l1_inv_diff = torch.linalg.solve_triangular(chol1, (mu1 - mu0).unsqueeze(-1), upper=False)
    trace = l1_inv_l0.pow(2).sum(dim=(-2, -1))
    mahalanobis = l1_inv_diff.pow(2).sum(dim=(-2, -1))
    logdet0 = 2.0 * torch.log(torch.diagonal(chol0, dim1=-2, dim2=-1)).sum(-1)
    logdet1 = 2.0 * torch.log(torch.diagonal(chol1, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * (trace + mahalanobis - d + logdet1 - logdet0)


# --- the ELBO of a Bernoulli decoder ------------------------------------------------------------------------------


@exercise(
    hint="log p(x|z) = sum over pixels of x * logits - softplus(logits) (a stable form of x log p + (1-x) log(1-p) "
    "with p = sigmoid(logits)); subtract the Gaussian KL 0.5 * sum(exp(logvar) + mu**2 - 1 - logvar)."
)
def bernoulli_elbo(x: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The one-sample ELBO of each example with a Bernoulli decoder (eq-ch6-elbo):

        log p_theta(x | z) - KL(N(mu, diag(sigma^2)) || N(0, I)),   log p_theta(x | z) = sum_i [x_i log p_i +
        (1 - x_i) log(1 - p_i)],  p = sigmoid(logits).

    ``x`` (pixels in [0, 1]) and ``logits`` (the decoder's output at a sample z) have shape (N, D); ``mu`` and
    ``logvar`` shape (N, d). Returns shape (N,). Compute log p from the logits stably: logits can be large.
    """
    if x.shape != logits.shape or mu.shape != logvar.shape or x.shape[:-1] != mu.shape[:-1]:
        raise ValueError(
            f"expected x, logits of shape (N, D) and mu, logvar of shape (N, d), got {tuple(x.shape)}, "
            f"{tuple(logits.shape)}, {tuple(mu.shape)}, {tuple(logvar.shape)}"
        )
    log_likelihood = (x * logits - F.softplus(logits)).sum(dim=-1)
    return log_likelihood - gaussian_kl(mu, logvar)


# --- the importance-weighted bound -------------------------------------------------------------------------------


@exercise(
    hint="Subtract the largest log-weight m of each row, average exp(log_weights - m) over the k samples, "
    "take the log and add m back (or use torch.logsumexp(log_weights, dim=1) - log(k))."
)
def iwae_from_log_weights(log_weights: torch.Tensor) -> torch.Tensor:
    """The importance-weighted bound log (1/k) sum_i w_i of each example from its log-weights (eq-ch6-iwae).

    ``log_weights`` has shape (N, k): log w_i = log p(x, z_i) - log q(z_i | x) for k samples z_i ~ q(z | x).
    Returns shape (N,). Log-weights are often around -100 or below, so exp() underflows to 0: factor out the
    largest weight first (the log-sum-exp trick).
    """
    if log_weights.ndim != 2 or log_weights.shape[1] < 1:
        raise ValueError(f"log_weights must have shape (N, k) with k >= 1, got {tuple(log_weights.shape)}")
    largest = log_weights.max(dim=1, keepdim=True).values
    mean_weight = torch.exp(log_weights - largest).mean(dim=1)
    return largest.squeeze(1) + torch.log(mean_weight)
