"""The variational autoencoder: an encoder q_phi(z | x) = N(mu, diag(sigma^2)) and a decoder p_theta(x | z).

The generative model is z ~ p(z) = N(0, I), x ~ p_theta(x | z). :class:`VAE` is fully connected; it has the
interface every function of ``coursepkg.vae`` relies on: ``encode(x) -> (mu, logvar)``, ``decode(z)``,
``decoder_mean(z)`` and ``log_likelihood(x, decoded)`` (per example). This module also holds the two helpers the
models share: the shape check of a batch and the log-density of an isotropic Gaussian.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .. import layers, runtime, validation

__all__ = ["VAE"]

LIKELIHOODS = ("bernoulli", "gaussian")
LOG_2PI = math.log(2 * math.pi)


def check_batch(x, width: int, name: str = "x") -> torch.Tensor:
    """``x`` must be a floating tensor of shape (N, width)."""
    x = validation.tensor(x, name)
    if x.ndim != 2 or x.shape[1] != width:
        raise ValueError(f"{name} must have shape (N, {width}), got {tuple(x.shape)}")
    return x


def isotropic_gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, log_sigma) -> torch.Tensor:
    """log N(x; mean, sigma^2 I) summed over the last dimension, sigma = exp(``log_sigma``) (a number or a scalar
    tensor): -1/2 ||x - mean||^2 / sigma^2 - D (log sigma + 1/2 log 2 pi). ``x`` and ``mean`` broadcast."""
    log_sigma = torch.as_tensor(log_sigma, dtype=mean.dtype, device=mean.device)
    squared = ((x - mean) * torch.exp(-log_sigma)).pow(2).sum(-1)
    return -0.5 * squared - mean.shape[-1] * (log_sigma + 0.5 * LOG_2PI)


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
        h = self.encoder(check_batch(x, self.x_dim))
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
        return isotropic_gaussian_log_density(x, decoded, self.log_sigma)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """(decoded, mu, logvar): the decoder's output for one reparameterized sample z ~ q_phi(z | x)."""
        from . import reparameterize  # a graded exercise: it lives in the package's __init__

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
