"""Two unbiased estimators of the gradient of an expectation over a Gaussian: reparameterization and score.

The chapter compares their variances to show why the VAE differentiates through the sample z = mu + sigma * eps
(eq-ch6-reparam) rather than through the density (REINFORCE).
"""

from __future__ import annotations

import torch

from .. import runtime, validation

__all__ = ["gradient_estimates"]


def gradient_estimates(f, mu: torch.Tensor, logvar: torch.Tensor, n: int, estimator: str, generator=None):
    """``n`` single-sample estimates of the gradient of E_{z ~ N(mu, diag(sigma^2))}[f(z)] with respect to mu.

    ``f`` maps samples (n, d) to values (n,); ``mu`` and ``logvar`` have shape (d,). Returns (n, d).

    * ``"reparameterization"``: grad_mu f(mu + sigma * eps) = f'(z), differentiated by autograd;
    * ``"score"`` (REINFORCE, Williams 1992): f(z) grad_mu log q(z) = f(z) (z - mu) / sigma^2.

    Both are unbiased; their variances differ, which is what the chapter plots.
    """
    if estimator not in ("reparameterization", "score"):
        raise ValueError(f"estimator must be 'reparameterization' or 'score', got {estimator!r}")
    mu, logvar = validation.tensor(mu, "mu"), validation.tensor(logvar, "logvar")
    validation.same_shape(mu, logvar, ("mu", "logvar"))
    if mu.ndim != 1:
        raise ValueError(f"mu must have shape (d,), got {tuple(mu.shape)}")
    n = validation.integer(n, "n (the number of estimates)", minimum=1)
    sigma = torch.exp(0.5 * logvar.detach())
    eps = runtime.randn((n, mu.shape[0]), mu, generator)
    if estimator == "score":
        with torch.no_grad():
            z = mu.detach() + sigma * eps
            return f(z).unsqueeze(1) * (z - mu.detach()) / sigma**2
    centre = mu.detach().expand(n, -1).clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(centre + sigma * eps).sum(), centre)
    return grad
