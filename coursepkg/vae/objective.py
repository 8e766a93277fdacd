"""The ELBO as a training objective: its two terms, its one-sample estimate and the loss ``train.fit`` minimizes.

    L(x) = E_q[log p_theta(x | z)] - KL(q_phi(z | x) || p(z))  <=  log p_theta(x)          (eq-ch6-elbo)

The expectation is estimated with one reparameterized sample z = mu + sigma * eps (eq-ch6-reparam), the KL term
is the closed form of two Gaussians (eq-ch6-kl-diag). The functions work with any model that has
``encode(x) -> (mu, logvar)``, ``decode(z)`` and ``log_likelihood(x, decoded)``.
"""

from __future__ import annotations

import torch

from .. import data

__all__ = ["elbo", "elbo_loss", "elbo_terms"]


def elbo_terms(model, x: torch.Tensor, generator: torch.Generator | None = None):
    """The two terms of the ELBO of each example: (log p_theta(x | z) at one z ~ q_phi(z | x), KL(q || p(z))).

    Each has shape (N,); the ELBO is their difference (eq-ch6-elbo).
    """
    from . import gaussian_kl, reparameterize  # graded exercises: they live in the package's __init__

    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar, generator)
    return model.log_likelihood(x, model.decode(z)), gaussian_kl(mu, logvar)


def elbo(model, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The one-sample Monte Carlo estimate of the ELBO of each example, shape (N,) (eq-ch6-elbo)."""
    reconstruction, kl = elbo_terms(model, x, generator)
    return reconstruction - kl


def elbo_loss(model, x: torch.Tensor, *labels, binarize: bool = True) -> torch.Tensor:
    """The loss for ``train.fit``: the negative ELBO averaged over the batch (labels, if passed, are ignored).

    For a Bernoulli decoder each batch is freshly binarized (``coursepkg.data.binarize``): "dynamic
    binarization", a new binary image drawn from the intensities every time an image is seen. Already binary
    data (a test set binarized once) passes through unchanged.
    """
    if binarize and getattr(model, "likelihood", None) == "bernoulli":
        x = data.binarize(x)
    return -elbo(model, x).mean()
