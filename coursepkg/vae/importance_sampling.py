"""Estimates of log p_theta(x) by importance sampling: the IWAE bound and the naive estimate from the prior.

With k samples z_i from a proposal r(z) and the weights w_i = p_theta(x, z_i) / r(z_i), log (1/k) sum_i w_i
estimates log p(x). With the encoder as proposal it is the importance-weighted bound (eq-ch6-iwae), a lower
bound that tightens towards log p(x) as k grows; with the prior as proposal it is the naive estimate. The k
samples are drawn in chunks and combined by a log-sum-exp accumulated in float64, so that k = 5000 fits in
memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from .. import runtime, validation

__all__ = ["iwae_bound", "log_importance_weights", "naive_log_likelihood"]


def _check_sample_count(k) -> int:
    return validation.integer(k, "k (the number of importance samples)", minimum=1)


def _chunk_size(k: int, n: int, width: int, max_elements: int) -> int:
    return max(1, min(k, max_elements // max(1, n * width)))


def _log_weight_chunks(
    model, x: torch.Tensor, k: int, generator, max_elements: int, proposal: str
) -> Iterator[torch.Tensor]:
    """Log importance weights log p(x, z_i) - log r(z_i) in chunks of shape (c, N), c * N * x_dim <= max_elements.

    ``proposal="posterior"``: z_i ~ q_phi(z | x) (the encoder); ``"prior"``: z_i ~ p(z) = N(0, I), where the
    weight is p(x | z_i).
    """
    mu, logvar = model.encode(x)
    n, width = x.shape[0], max(x.shape[1], mu.shape[1])
    chunk = _chunk_size(k, n, width, max_elements)
    for start in range(0, k, chunk):
        size = min(chunk, k - start)
        eps = runtime.randn((size, *mu.shape), mu, generator)
        if proposal == "prior":
            yield model.log_likelihood(x, model.decode(eps))
            continue
        z = mu + torch.exp(0.5 * logvar) * eps
        # log p(z) - log q(z | x); the -1/2 log(2 pi) of each coordinate cancels.
        log_prior_over_q = -0.5 * z.pow(2).sum(-1) + 0.5 * (eps.pow(2) + logvar).sum(-1)
        yield model.log_likelihood(x, model.decode(z)) + log_prior_over_q


def _log_mean_exp_streaming(chunks: Iterator[torch.Tensor], k: int) -> torch.Tensor:
    """log (1/k) sum_i exp(a_i) over all chunks (c, N) of log-weights, accumulated in float64."""
    total = None
    for log_w in chunks:
        part = torch.logsumexp(log_w.double(), dim=0)
        total = part if total is None else torch.logaddexp(total, part)
    return total - math.log(k)


def _checked_input(x, k, max_elements) -> tuple[torch.Tensor, int, int]:
    k = _check_sample_count(k)
    x = validation.tensor(x, "x")
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, x_dim), got {tuple(x.shape)}")
    validation.finite(x, "x")
    if max_elements is None:  # small chunks stay in the CPU's caches; a GPU wants large ones
        max_elements = 2**20 if x.device.type == "cpu" else 2**24
    max_elements = validation.integer(max_elements, "max_elements", minimum=1)
    return x, k, max_elements


def log_importance_weights(
    model,
    x: torch.Tensor,
    k: int,
    *,
    proposal: str = "posterior",
    generator: torch.Generator | None = None,
    max_elements: int | None = None,
) -> torch.Tensor:
    """All k log importance weights of each example, shape (N, k) (eq-ch6-iwae).

    ``proposal="posterior"``: log w_i = log p_theta(x, z_i) - log q_phi(z_i | x) with z_i ~ q_phi(z | x);
    ``proposal="prior"``: log w_i = log p_theta(x | z_i) with z_i ~ p(z). Keeps all N * k weights in memory;
    :func:`iwae_bound` only keeps a running sum.
    """
    if proposal not in ("posterior", "prior"):
        raise ValueError(f"proposal must be 'posterior' or 'prior', got {proposal!r}")
    x, k, max_elements = _checked_input(x, k, max_elements)
    return torch.cat(list(_log_weight_chunks(model, x, k, generator, max_elements, proposal)), dim=0).T


def _importance_estimate(model, x, k, generator, max_elements, proposal) -> torch.Tensor:
    x, k, max_elements = _checked_input(x, k, max_elements)
    chunks = _log_weight_chunks(model, x, k, generator, max_elements, proposal)
    return _log_mean_exp_streaming(chunks, k).to(x.dtype)


def iwae_bound(
    model,
    x: torch.Tensor,
    k: int,
    *,
    generator: torch.Generator | None = None,
    max_elements: int | None = None,
) -> torch.Tensor:
    """The importance-weighted lower bound on log p_theta(x) of each example, shape (N,) (eq-ch6-iwae):

        log (1/k) sum_{i=1}^k p_theta(x | z_i) p(z_i) / q_phi(z_i | x),   z_i ~ q_phi(z | x).

    k = 1 is the one-sample ELBO; the bound rises with k towards log p(x) (Burda et al. 2016). The k samples
    are processed in chunks of at most ``max_elements`` decoder outputs (default 2**20 on the CPU, 2**24 on a
    GPU), so that k = 5000 fits in memory, and combined with a log-sum-exp accumulated in float64. For
    evaluation, call it under ``torch.inference_mode()``.
    """
    return _importance_estimate(model, x, k, generator, max_elements, "posterior")


def naive_log_likelihood(
    model, x: torch.Tensor, k: int, *, generator: torch.Generator | None = None, max_elements: int | None = None
) -> torch.Tensor:
    """The naive Monte Carlo estimate log (1/k) sum_i p_theta(x | z_i), z_i ~ p(z), of each example (N,).

    Unbiased for p(x) but useless in practice: almost every z drawn from the prior explains x terribly, so
    the estimate is dominated by the rare lucky sample and is far below log p(x) for any affordable k.
    """
    return _importance_estimate(model, x, k, generator, max_elements, "prior")
