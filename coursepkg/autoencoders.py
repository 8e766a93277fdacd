"""Chapter 5: regularized autoencoders (and the multilayer autoencoder every later chapter reuses).

The deep autoencoder of chapter 4 (784-1000-500-250-30, after Hinton and Salakhutdinov 2006) is an
:class:`MLPAutoencoder` too: one class for every fully connected autoencoder of the course.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MLPAutoencoder"]

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "identity": nn.Identity,
}


def _activation(name: str, argument: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"{argument} must be one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]()


class MLPAutoencoder(nn.Module):
    """A fully connected autoencoder with layer widths ``dims`` from the input to the code.

    ``MLPAutoencoder((784, 1000, 500, 250, 30))`` has the encoder 784-1000-500-250-30 and the mirrored
    decoder 30-250-500-1000-784. Hidden layers use ``activation``; the code layer uses ``code_activation``
    (linear by default, as in Hinton and Salakhutdinov's code layer); the output uses ``output_activation``
    (``"sigmoid"`` for pixel intensities in [0, 1], ``"identity"`` for real-valued data).
    """

    def __init__(
        self,
        dims: Sequence[int],
        *,
        activation: str = "relu",
        code_activation: str = "identity",
        output_activation: str = "sigmoid",
    ):
        super().__init__()
        dims = tuple(dims)
        if len(dims) < 2 or not all(isinstance(d, int) and d > 0 for d in dims):
            raise ValueError(f"dims must be at least two positive ints (input, ..., code), got {dims!r}")
        self.dims = dims
        self.encoder = self._stack(dims, activation, code_activation)
        self.decoder = self._stack(dims[::-1], activation, output_activation)

    @staticmethod
    def _stack(dims: Sequence[int], hidden: str, last: str) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i, (width_in, width_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            layers.append(nn.Linear(width_in, width_out))
            is_last = i == len(dims) - 2
            layers.append(_activation(last if is_last else hidden, "output_activation" if is_last else "activation"))
        return nn.Sequential(*layers)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code z = f_phi(x)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The reconstruction g_theta(z)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction x~ = g_theta(f_phi(x))."""
        return self.decoder(self.encoder(x))
