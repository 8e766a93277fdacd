"""Walking in the latent space: decode the points on the segment between the codes of two examples."""

from __future__ import annotations

import torch

from .. import validation

__all__ = ["interpolate"]


@torch.no_grad()
def interpolate(model, x0: torch.Tensor, x1: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """Decode ``steps`` points on the segment between the codes of x0 and x1, shape (steps, x_dim).

    The codes are the encoder means mu(x0), mu(x1); the points are (1 - t) mu(x0) + t mu(x1) for t evenly
    spaced in [0, 1] (both ends included), decoded to the mean of p_theta(x | z). x0 and x1 have shape (x_dim,)
    or (1, x_dim). ``model`` needs ``encode(x) -> (mu, logvar)`` and ``decoder_mean(z)``.
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
