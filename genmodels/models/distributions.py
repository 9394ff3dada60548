"""Small ``torch.distributions`` additions used by the auto-encoders."""

from __future__ import annotations

import math

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


class DiagonalGaussianMixture(Distribution):
    """(1/K) Σ_k N(z; loc_k, diag(scale_k²)) over vectors (..., D), with ``loc``, ``scale``
    (K, D): an equal-weight mixture such as the VampPrior. ``log_prob`` expands the squares
    into two matrix products in float64, so it never holds a (..., K, D) tensor: memory
    (..., K) whatever D."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real_vector

    def __init__(self, loc: Tensor, scale: Tensor) -> None:
        self.loc, self.scale = loc, scale
        super().__init__(torch.Size(), loc.shape[-1:], validate_args=False)

    @property
    def mean(self) -> Tensor:
        return self.loc.mean(0)

    @property
    def variance(self) -> Tensor:
        return (self.scale.pow(2) + self.loc.pow(2)).mean(0) - self.mean.pow(2)

    def log_prob(self, z: Tensor) -> Tensor:
        precision = self.scale.double().pow(-2)  # (K, D)
        loc = self.loc.double()
        flat = z.reshape(-1, z.shape[-1]).double()  # (M, D)
        squares = (flat.pow(2) @ precision.T - 2 * flat @ (loc * precision).T
                   + (loc.pow(2) * precision).sum(1))  # (M, K): Σ_d (z_d - loc_kd)² / scale_kd²
        log_norm = -self.scale.double().log().sum(1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)
        log_k = torch.logsumexp(log_norm - 0.5 * squares, dim=1) - math.log(len(loc))
        return log_k.to(z.dtype).view(z.shape[:-1])

    def sample(self, sample_shape: tuple[int, ...] = (),
               generator: torch.Generator | None = None) -> Tensor:
        """Draws (*sample_shape, D): a component uniformly, then its Gaussian."""
        with torch.no_grad():
            return self.rsample(sample_shape, generator)

    def rsample(self, sample_shape: tuple[int, ...] = (),
                generator: torch.Generator | None = None) -> Tensor:
        shape = torch.Size(sample_shape)
        k = torch.randint(len(self.loc), shape, generator=generator, device=self.loc.device)
        eps = torch.randn((*shape, self.loc.shape[-1]), generator=generator,
                          device=self.loc.device, dtype=self.loc.dtype)
        return self.loc[k] + self.scale[k] * eps


def to_device(distribution: Distribution, device: torch.device | str) -> Distribution:
    """The same latent law (a diagonal Gaussian or a :class:`DiagonalGaussianMixture`) with its
    parameters on ``device``, detached."""
    if isinstance(distribution, DiagonalGaussianMixture):
        return DiagonalGaussianMixture(distribution.loc.detach().to(device),
                                       distribution.scale.detach().to(device))
    base = distribution.base_dist
    return Independent(Normal(base.loc.detach().to(device), base.scale.detach().to(device)), 1)


def draw(distribution: Distribution, n: int, generator: torch.Generator | None = None) -> Tensor:
    """n draws (n, D) from a latent law, with ``generator``: a diagonal Gaussian
    (``Independent(Normal)``, the standard prior) or a :class:`DiagonalGaussianMixture`."""
    if isinstance(distribution, DiagonalGaussianMixture):
        return distribution.sample((n,), generator)
    if isinstance(distribution, Independent) and isinstance(distribution.base_dist, Normal):
        loc, scale = distribution.base_dist.loc, distribution.base_dist.scale
        eps = torch.randn((n, *loc.shape[-1:]), generator=generator, device=loc.device,
                          dtype=loc.dtype)
        return loc + scale * eps
    raise TypeError(f"cannot draw from a {type(distribution).__name__} with a generator; "
                    "use a diagonal Gaussian or a DiagonalGaussianMixture")
