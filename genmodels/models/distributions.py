"""Small ``torch.distributions`` additions used by the auto-encoders."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
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


SOFTPLUS_FLOOR = -30.0  # softplus(l) < 1e-13 below it: dropped
SOFTPLUS_CEILING = 80.0  # e^l overflows float32 above 88.7


def softplus_sum(logits: Tensor, dims: tuple[int, ...]) -> Tensor:
    """Σ softplus(l) = Σ log(1 + e^l) over ``dims``, within 6e-8 of the exact value per element.
    On the CPU it is 4-5x faster than ``F.softplus`` on decoder logits, most of which lie far
    below zero, where e^l would be denormal and log1p of tiny numbers takes a slow path: l is
    raised to -30 and log(1 + e^l) taken with a plain log (1 + e^l rounds to 1 below
    e^l ≈ 6e-8, the error bound); logits above 80, where e^l would overflow, take the stable
    form l⁺ + log(1 + e^-|l|). The gradient is σ(l) to the same accuracy. On other devices,
    ``F.softplus`` (fast there, and no host synchronisation)."""
    if logits.device.type != "cpu":
        return F.softplus(logits).sum(dims)
    if logits.numel() and float(logits.detach().max()) > SOFTPLUS_CEILING:
        return (torch.log(torch.exp(-logits.abs()) + 1).sum(dims)
                + logits.clamp(min=0).sum(dims))
    raised = logits.clamp(min=SOFTPLUS_FLOOR)
    if not (torch.is_grad_enabled() and logits.requires_grad):  # in place: no new buffers
        return raised.exp_().add_(1).log_().sum(dims)
    return torch.log(torch.exp(raised) + 1).sum(dims)


class BernoulliImages(Independent):
    """Pixel-wise Bernoulli over (..., C, H, W) from logits l. ``log_prob(x)`` is
    Σ_pixels x·l − softplus(l), the Bernoulli's −BCE(l, x) computed without torch's kernel:
    :func:`softplus_sum` makes it about 4x faster, and it dominates the importance-sampled
    likelihood after the decoder's matrix products. It also accepts grey levels in [0, 1],
    where it is minus the binary cross-entropy (not a normalised density)."""

    def __init__(self, logits: Tensor) -> None:
        super().__init__(Bernoulli(logits=logits, validate_args=False), 3, validate_args=False)

    def log_prob(self, value: Tensor) -> Tensor:
        logits, dims = self.base_dist.logits, (-3, -2, -1)
        return (logits * value).sum(dims) - softplus_sum(logits, dims)


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
               generator: torch.Generator | None = None, temperature: float = 1.0) -> Tensor:
        """Draws (*sample_shape, D): a component uniformly, then its Gaussian (its standard
        deviation times ``temperature``)."""
        with torch.no_grad():
            return self.rsample(sample_shape, generator, temperature)

    def rsample(self, sample_shape: tuple[int, ...] = (),
                generator: torch.Generator | None = None, temperature: float = 1.0) -> Tensor:
        """Draws (*sample_shape, D); ``temperature`` τ scales each component's standard
        deviation (loc_k + τ scale_k ε)."""
        shape = torch.Size(sample_shape)
        k = torch.randint(len(self.loc), shape, generator=generator, device=self.loc.device)
        eps = torch.randn((*shape, self.loc.shape[-1]), generator=generator,
                          device=self.loc.device, dtype=self.loc.dtype)
        return self.loc[k] + temperature * self.scale[k] * eps


def to_device(distribution: Distribution, device: torch.device | str) -> Distribution:
    """The same latent law (a diagonal Gaussian or a :class:`DiagonalGaussianMixture`) with its
    parameters on ``device``, detached."""
    if isinstance(distribution, DiagonalGaussianMixture):
        return DiagonalGaussianMixture(distribution.loc.detach().to(device),
                                       distribution.scale.detach().to(device))
    base = distribution.base_dist
    return Independent(Normal(base.loc.detach().to(device), base.scale.detach().to(device)), 1)


def draw(distribution: Distribution, n: int, generator: torch.Generator | None = None,
         temperature: float = 1.0) -> Tensor:
    """n draws (n, D) from a latent law, with ``generator``: a diagonal Gaussian
    (``Independent(Normal)``, the standard prior) or a :class:`DiagonalGaussianMixture`.
    ``temperature`` τ scales the standard deviations (μ + τ σ ε; reduced-temperature sampling,
    Kingma & Dhariwal 2018); τ = 1 draws the law itself."""
    if isinstance(distribution, DiagonalGaussianMixture):
        return distribution.sample((n,), generator, temperature)
    if isinstance(distribution, Independent) and isinstance(distribution.base_dist, Normal):
        loc, scale = distribution.base_dist.loc, distribution.base_dist.scale
        eps = torch.randn((n, *loc.shape[-1:]), generator=generator, device=loc.device,
                          dtype=loc.dtype)
        return loc + temperature * scale * eps
    raise TypeError(f"cannot draw from a {type(distribution).__name__} with a generator; "
                    "use a diagonal Gaussian or a DiagonalGaussianMixture")
