"""Fully connected layers: the one builder behind every autoencoder and VAE of the course, and the encoder-decoder
shape that every autoencoder shares.

A stack with widths (n_0, n_1, ..., n_L) is Linear(n_0, n_1), phi, Linear(n_1, n_2), phi, ..., Linear(n_{L-1}, n_L),
last, where phi is the hidden activation and ``last`` the activation of the final layer (the code layer of an
encoder, the output of a decoder).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "EncoderDecoder", "activation", "mlp"]

ACTIVATIONS = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "identity": nn.Identity,
}


def activation(name: str, argument: str = "activation") -> nn.Module:
    """A fresh activation module called ``name``; the error names ``argument`` and the choices."""
    if name not in ACTIVATIONS:
        raise ValueError(f"{argument} must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]()


def mlp(widths: Sequence[int], hidden: str, last: str, *, last_argument: str = "activation") -> nn.Sequential:
    """The stack Linear, ``hidden``, ..., Linear, ``last`` through ``widths``; ``last_argument`` names the
    argument that chose ``last`` in an error message."""
    layers: list[nn.Module] = []
    for i, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        is_last = i == len(widths) - 2
        layers.append(nn.Linear(width_in, width_out))
        layers.append(activation(last if is_last else hidden, last_argument if is_last else "activation"))
    return nn.Sequential(*layers)


class EncoderDecoder(nn.Module):
    """An autoencoder x~ = g(f(x)): subclasses set ``self.encoder`` (f) and ``self.decoder`` (g).

    ``encode`` and ``decode`` are the two halves; ``forward`` is their composition through ``encode``, so a
    subclass that changes the code (a k-sparse one, say) overrides ``encode`` alone.
    """

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code z = f(x)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The reconstruction g(z)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction x~ = g(f(x))."""
        return self.decode(self.encode(x))
