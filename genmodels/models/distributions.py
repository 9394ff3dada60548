"""Small ``torch.distributions`` additions used by the auto-encoders."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Bernoulli, Distribution, Independent, Normal, constraints


class PointMass(Distribution):
    """A deterministic code δ(z - loc) over vectors (..., D): the posterior of a deterministic
    encoder (WAE, Radon-Sobolev AE). It samples ``loc``; it has no density."""

    arg_constraints = {"loc": constraints.real_vector}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc: Tensor) -> None:
        self.loc = loc
        super().__init__(loc.shape[:-1], loc.shape[-1:], validate_args=False)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return torch.zeros_like(self.loc)

    def rsample(self, sample_shape: tuple[int, ...] = ()) -> Tensor:
        return self.loc.expand(torch.Size(sample_shape) + self.loc.shape)


def bernoulli_images(logits: Tensor) -> Independent:
    """Pixel-wise Bernoulli over (..., C, H, W). ``log_prob`` also accepts grey levels in
    [0, 1], where it is minus the binary cross-entropy (not a normalised density)."""
    return Independent(Bernoulli(logits=logits, validate_args=False), 3)


def gaussian_images(mean: Tensor, std: Tensor | float) -> Independent:
    """Pixel-wise Normal(mean, std²) over (..., C, H, W)."""
    std = torch.as_tensor(std, dtype=mean.dtype, device=mean.device).expand_as(mean)
    return Independent(Normal(mean, std, validate_args=False), 3)


def standard_normal(dim: int, device: torch.device | None = None) -> Independent:
    """The prior N(0, I_dim)."""
    zeros = torch.zeros(dim, device=device)
    return Independent(Normal(zeros, torch.ones_like(zeros)), 1)
