"""Chapter 6: variational autoencoders and the evidence lower bound (ELBO).

The generative model is z ~ p(z) = N(0, I), x ~ p_theta(x | z); the encoder q_phi(z | x) = N(mu, diag(sigma^2))
is trained together with the decoder by maximizing, for every training example, the ELBO

    L(x) = E_q[log p_theta(x | z)] - KL(q_phi(z | x) || p(z))  <=  log p_theta(x)          (eq-ch6-elbo)

estimated with one reparameterized sample z = mu + sigma * eps (eq-ch6-reparam). The importance-weighted bound
log (1/k) sum_i p(x, z_i) / q(z_i | x) (eq-ch6-iwae) is tighter and tends to log p(x) as k grows.

:func:`elbo`, :func:`iwae_bound`, :func:`naive_log_likelihood` and :func:`interpolate` work with any model that
has ``encode(x) -> (mu, logvar)``, ``decode(z)`` and ``log_likelihood(x, decoded)`` (per example) and, for
interpolation, ``decoder_mean(z)``: the :class:`VAE` and the :class:`LinearGaussian` model, whose log p(x) is
known exactly, both do. Equation labels such as (eq-ch6-elbo) refer to book/06_vae.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import data, layers, runtime, validation
from .exercise import exercise

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

LIKELIHOODS = ("bernoulli", "gaussian")
LOG_2PI = math.log(2 * math.pi)


def _isotropic_gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, log_sigma) -> torch.Tensor:
    """log N(x; mean, sigma^2 I) summed over the last dimension, sigma = exp(``log_sigma``) (a number or a scalar
    tensor): -1/2 ||x - mean||^2 / sigma^2 - D (log sigma + 1/2 log 2 pi). ``x`` and ``mean`` broadcast."""
    log_sigma = torch.as_tensor(log_sigma, dtype=mean.dtype, device=mean.device)
    squared = ((x - mean) * torch.exp(-log_sigma)).pow(2).sum(-1)
    return -0.5 * squared - mean.shape[-1] * (log_sigma + 0.5 * LOG_2PI)


# ------------------------------------------------------------------------------------------------ checks


def _check_batch(x, width: int, name: str = "x") -> torch.Tensor:
    """``x`` must be a floating tensor of shape (N, width)."""
    x = validation.tensor(x, name)
    if x.ndim != 2 or x.shape[1] != width:
        raise ValueError(f"{name} must have shape (N, {width}), got {tuple(x.shape)}")
    return x


def _check_sample_count(k) -> int:
    return validation.integer(k, "k (the number of importance samples)", minimum=1)


# ---------------------------------------------------------------------------------------- the Gaussians


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


# ------------------------------------------------------------------------------------------ the model


class VAE(nn.Module):
    """A variational autoencoder with a fully connected encoder and decoder.

    * ``VAE(784, 400, 20, "bernoulli")`` is the VAE of the PyTorch examples (784-400-20, ReLU);
    * ``VAE(784, (200, 200), 50, "bernoulli")`` is the one-stochastic-layer model of Burda et al. (2016).

    The encoder maps x through the ``hidden`` layers to mu and logvar = log sigma^2 of q_phi(z | x) =
    N(mu, diag(sigma^2)) (two linear heads); the decoder mirrors the hidden layers from z back to x_dim outputs.
    With ``likelihood="bernoulli"`` (binary pixels) the decoder outputs the logits of p_theta(x | z); with
    ``likelihood="gaussian"`` it outputs the mean f(z) of p_theta(x | z) = N(f(z), sigma_x^2 I), where sigma_x
    is fixed to ``sigma`` when a number is given and otherwise learned (one scalar shared by every pixel,
    stored as ``log_sigma`` and initialized at sigma_x = 1).
    """

    def __init__(
        self,
        x_dim: int,
        hidden: int | Sequence[int],
        z_dim: int,
        likelihood: str = "bernoulli",
        *,
        activation: str = "relu",
        sigma: float | None = None,
    ):
        super().__init__()
        hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
        x_dim, z_dim = validation.integer(x_dim, "x_dim", minimum=1), validation.integer(z_dim, "z_dim", minimum=1)
        hidden = tuple(validation.integer(h, f"hidden[{i}]", minimum=1) for i, h in enumerate(hidden))
        if not hidden:
            raise ValueError("hidden must name at least one hidden layer width")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        if sigma is not None:
            if likelihood != "gaussian":
                raise ValueError(f"sigma (a fixed decoder noise) only goes with likelihood='gaussian', got {sigma!r}")
            sigma = validation.positive(sigma, "sigma")
        layers.activation(activation)  # fails early on an unknown name
        self.x_dim, self.hidden, self.z_dim, self.likelihood = x_dim, hidden, z_dim, likelihood
        self.encoder = layers.mlp((x_dim, *hidden), activation, activation)
        self.mu_head = nn.Linear(hidden[-1], z_dim)
        self.logvar_head = nn.Linear(hidden[-1], z_dim)
        self.decoder = layers.mlp((z_dim, *hidden[::-1], x_dim), activation, "identity")
        if likelihood == "gaussian":
            log_sigma = torch.tensor(0.0 if sigma is None else math.log(sigma))
            if sigma is None:
                self.log_sigma = nn.Parameter(log_sigma)
            else:
                self.register_buffer("log_sigma", log_sigma)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q_phi(z | x), each of shape (N, z_dim), for x of shape (N, x_dim)."""
        h = self.encoder(_check_batch(x, self.x_dim))
        return self.mu_head(h), self.logvar_head(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's output for z of shape (..., z_dim): logits (Bernoulli) or the mean (Gaussian)."""
        z = validation.tensor(z, "z")
        if z.shape[-1] != self.z_dim:
            raise ValueError(f"z must have shape (..., {self.z_dim}), got {tuple(z.shape)}")
        return self.decoder(z)

    def decoder_mean(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of p_theta(x | z): sigmoid(logits) for Bernoulli pixels, f(z) for the Gaussian decoder."""
        out = self.decode(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def log_likelihood(self, x: torch.Tensor, decoded: torch.Tensor) -> torch.Tensor:
        """log p_theta(x | z) summed over the x_dim coordinates, given ``decoded = decode(z)`` (shape (..., x_dim)).

        ``x`` broadcasts against ``decoded`` (e.g. x of shape (N, x_dim) and decoded of shape (k, N, x_dim)).
        """
        x = x.expand_as(decoded)
        if self.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(decoded, x, reduction="none").sum(-1)
        return _isotropic_gaussian_log_density(x, decoded, self.log_sigma)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """(decoded, mu, logvar): the decoder's output for one reparameterized sample z ~ q_phi(z | x)."""
        mu, logvar = self.encode(x)
        return self.decode(reparameterize(mu, logvar, generator)), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, *, draw: bool = False) -> torch.Tensor:
        """``n`` new data points: z ~ N(0, I), then the mean of p_theta(x | z) (shape (n, x_dim)).

        With ``draw=True`` x itself is drawn from p_theta(x | z) (binary pixels for the Bernoulli decoder).
        """
        n = validation.integer(n, "n (the number of samples)", minimum=1)
        reference = next(self.parameters())
        z = runtime.randn((n, self.z_dim), reference, generator)
        mean = self.decoder_mean(z)
        if not draw:
            return mean
        if self.likelihood == "bernoulli":
            return (runtime.rand(mean.shape, mean, generator) < mean).to(mean.dtype)
        return mean + torch.exp(self.log_sigma) * runtime.randn(mean.shape, mean, generator)


# -------------------------------------------------------------------------------------------- the ELBO


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


def elbo_terms(model, x: torch.Tensor, generator: torch.Generator | None = None):
    """The two terms of the ELBO of each example: (log p_theta(x | z) at one z ~ q_phi(z | x), KL(q || p(z))).

    Each has shape (N,); the ELBO is their difference (eq-ch6-elbo).
    """
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


# ------------------------------------------------------------------------------- importance weighting


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


@torch.no_grad()
def interpolate(model, x0: torch.Tensor, x1: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """Decode ``steps`` points on the segment between the codes of x0 and x1, shape (steps, x_dim).

    The codes are the encoder means mu(x0), mu(x1); the points are (1 - t) mu(x0) + t mu(x1) for t evenly
    spaced in [0, 1] (both ends included), decoded to the mean of p_theta(x | z). x0 and x1 have shape (x_dim,)
    or (1, x_dim).
    """
    steps = validation.integer(steps, "steps (the two endpoints included)", minimum=2)
    ends = []
    for name, point in (("x0", x0), ("x1", x1)):
        point = validation.tensor(point, name)
        point = point.reshape(1, -1) if point.ndim == 1 or (point.ndim == 2 and point.shape[0] == 1) else None
        if point is None:
            raise ValueError(f"{name} must be one example of shape (x_dim,) or (1, x_dim)")
        validation.finite(point, name)
        ends.append(model.encode(point)[0])
    t = torch.linspace(0.0, 1.0, steps, dtype=ends[0].dtype, device=ends[0].device).unsqueeze(1)
    return model.decoder_mean((1 - t) * ends[0] + t * ends[1])


# ------------------------------------------------------------------------- the linear-Gaussian model


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
        x = _check_batch(x, self.x_dim)
        mean, cov = self.marginal()
        factor = torch.linalg.cholesky(cov)
        white = torch.linalg.solve_triangular(factor, (x - mean).T, upper=False)  # L^-1 (x - b), (D, N)
        log_det = 2.0 * torch.log(torch.diagonal(factor)).sum()
        return -0.5 * (white.pow(2).sum(0) + log_det + self.x_dim * LOG_2PI)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (N, d) and covariance (d, d) of the exact posterior p(z | x)."""
        x = _check_batch(x, self.x_dim)
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
        return _isotropic_gaussian_log_density(x, decoded, math.log(self.sigma))


# ---------------------------------------------------------------------------- gradient estimators


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
