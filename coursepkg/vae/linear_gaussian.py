"""The linear-Gaussian latent variable model (probabilistic PCA), whose log p(x) and posterior are exact.

It has the interface of :class:`~coursepkg.vae.VAE` (``encode``, ``decode``, ``decoder_mean``,
``log_likelihood``), so the ELBO and the importance-weighted bound run on it unchanged and can be compared
with the true log p(x).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import validation
from .model import LOG_2PI, check_batch, isotropic_gaussian_log_density

__all__ = ["LinearGaussian"]


class LinearGaussian(nn.Module):
    """The linear-Gaussian latent variable model, whose log p(x) and posterior are known in closed form.

    p(z) = N(0, I_d), p(x | z) = N(W z + b, sigma^2 I_D), so p(x) = N(b, W W^T + sigma^2 I) and
    p(z | x) = N(Sigma W^T (x - b) / sigma^2, Sigma) with Sigma = (I + W^T W / sigma^2)^-1 (probabilistic PCA).

    Its "encoder" is the best factorized Gaussian q(z | x) = N(m, diag(s^2)) for KL(q || p(z | x)): the exact
    posterior mean and s_j^2 = 1 / (Sigma^-1)_jj, times ``variance_scale`` (1 by default; other values make a
    worse encoder). Since Sigma is not diagonal, q is not the posterior and the ELBO stays below log p(x):
    the gap is KL(q || p(z | x)). ``W`` (D, d) and ``b`` (D,) are drawn from N(0, 1) with ``seed`` unless given.
    """

    likelihood = "gaussian"

    def __init__(
        self,
        x_dim: int,
        z_dim: int,
        *,
        sigma: float = 0.5,
        variance_scale: float = 1.0,
        seed: int = 0,
        W: torch.Tensor | None = None,
        b: torch.Tensor | None = None,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        x_dim, z_dim = validation.integer(x_dim, "x_dim", minimum=1), validation.integer(z_dim, "z_dim", minimum=1)
        sigma = validation.positive(sigma, "sigma")
        variance_scale = validation.positive(variance_scale, "variance_scale")
        generator = torch.Generator().manual_seed(seed)
        W = torch.randn(x_dim, z_dim, generator=generator, dtype=dtype) if W is None else validation.tensor(W, "W")
        b = torch.randn(x_dim, generator=generator, dtype=dtype) if b is None else validation.tensor(b, "b")
        if W.shape != (x_dim, z_dim) or b.shape != (x_dim,):
            raise ValueError(
                f"W must have shape {(x_dim, z_dim)} and b shape {(x_dim,)}, got {tuple(W.shape)}, {tuple(b.shape)}"
            )
        self.x_dim, self.z_dim, self.sigma, self.variance_scale = x_dim, z_dim, float(sigma), float(variance_scale)
        self.register_buffer("W", W.to(dtype))
        self.register_buffer("b", b.to(dtype))

    def marginal(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (D,) and covariance (D, D) of p(x) = N(b, W W^T + sigma^2 I)."""
        eye = torch.eye(self.x_dim, dtype=self.W.dtype, device=self.W.device)
        return self.b, self.W @ self.W.T + self.sigma**2 * eye

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """The exact log p(x) of each example, shape (N,)."""
        x = check_batch(x, self.x_dim)
        mean, cov = self.marginal()
        factor = torch.linalg.cholesky(cov)
        white = torch.linalg.solve_triangular(factor, (x - mean).T, upper=False)  # L^-1 (x - b), (D, N)
        log_det = 2.0 * torch.log(torch.diagonal(factor)).sum()
        return -0.5 * (white.pow(2).sum(0) + log_det + self.x_dim * LOG_2PI)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (N, d) and covariance (d, d) of the exact posterior p(z | x)."""
        x = check_batch(x, self.x_dim)
        eye = torch.eye(self.z_dim, dtype=self.W.dtype, device=self.W.device)
        precision = eye + self.W.T @ self.W / self.sigma**2
        cov = torch.linalg.inv(precision)
        return (x - self.b) @ self.W @ cov / self.sigma**2, cov

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of the factorized q(z | x) described in the class docstring."""
        mean, cov = self.posterior(x)
        precision_diagonal = torch.diagonal(torch.linalg.inv(cov))
        logvar = math.log(self.variance_scale) - torch.log(precision_diagonal)
        return mean, logvar.expand_as(mean)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean W z + b of p(x | z)."""
        return z @ self.W.T + self.b

    decoder_mean = decode

    def log_likelihood(self, x: torch.Tensor, decoded: torch.Tensor) -> torch.Tensor:
        """log N(x; decoded, sigma^2 I), summed over the D coordinates."""
        return isotropic_gaussian_log_density(x, decoded, math.log(self.sigma))
