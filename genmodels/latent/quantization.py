"""Diverse sampling by quantising the latent law with the Huber-energy distance.

Turinici, "Huber-energy measure quantization" (arXiv 2212.08162) and "diversity by latent
quantization" (arXiv 2202.09573): choose K latent points Y = (y_1..y_K) minimising the
energy distance, with kernel h(r) = sqrt(r² + ε), between their empirical law and a target law
(the prior N(0, I), or the aggregate posterior), then decode them. Compared with K i.i.d.
draws, the K points spread over the target, so their decodings cover more classes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Distribution

from genmodels.metrics.kernels import pairwise_sum
from genmodels.models.distributions import DiagonalGaussianMixture, draw, to_device


def huber_energy_to_target(points: Tensor, target: Tensor, eps: float = 1e-4) -> Tensor:
    """0-d loss (2/(K J)) Σ h(|y_k − x_j|) − (1/K²) Σ h(|y_k − y_l|) with h(r) = sqrt(r² + ε):
    the Huber-energy distance² between points (K, D) and a target sample (J, D), minus the
    target's own term, which does not depend on the points."""
    def huber(squared: Tensor) -> Tensor:
        return (squared + eps).sqrt()

    k, j = len(points), len(target)
    return (2 * pairwise_sum(points, target, huber) / (k * j)
            - pairwise_sum(points, None, huber) / k**2)


JITTER = 0.01  # std of the noise added to the starting points (latent units)


def quantize(target_sampler: Callable[[int, torch.Generator], Tensor], k: int, dim: int,
             steps: int = 500, batch: int = 1000, lr: float = 0.05, eps: float = 1e-4,
             seed: int = 0) -> Tensor:
    """(k, dim) quantization points fitted with Adam against fresh batches of ``batch``
    target samples, ``target_sampler(n, generator) -> (n, dim)``, drawn each step; they start
    at k target samples plus N(0, ``JITTER``²) noise."""
    if k <= 0 or steps <= 0 or batch <= 0:
        raise ValueError(f"k, steps and batch must be positive, got {k}, {steps}, {batch}")
    generator = torch.Generator().manual_seed(seed)
    start = target_sampler(k, generator).detach()
    # The repulsion h'(r) = r / sqrt(r² + ε) vanishes at r = 0, so two points that start on the
    # same code (likely on a discrete target, e.g. encoder means) would never part: jitter them.
    start = start + JITTER * torch.randn(start.shape, generator=generator)
    points = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([points], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        huber_energy_to_target(points, target_sampler(batch, generator), eps).backward()
        optimizer.step()
    return points.detach()


def law_sampler(law: Distribution) -> Callable[[int, torch.Generator], Tensor]:
    """Draws (n, D) on the CPU from a latent law: the model's prior, or an aggregate posterior
    (1/N) Σ_i N(mean_i, diag std_i²) (a :class:`DiagonalGaussianMixture`)."""
    law = to_device(law, "cpu")
    return lambda n, generator: draw(law, n, generator)


TARGET_LAWS = ("prior", "posterior", "posterior_means")


@torch.no_grad()
def diverse_samples(model, k: int, target: str = "prior", images: Tensor | None = None,
                    seed: int = 0, **options) -> Tensor:
    """(k, C, H, W) decodings of k quantization points of a target law (``TARGET_LAWS``):
    the model's prior; the aggregate posterior (1/N) Σ_i q(z | x_i) of ``images`` (N, C, H, W); or
    ``"posterior_means"``, the empirical law of their encoder means (1/N) Σ_i δ(μ(x_i)), the
    aggregate posterior without the encoder's noise (what a deterministic encoder, as in a WAE,
    gives). ``options`` go to :func:`quantize`."""
    if target not in TARGET_LAWS:
        raise ValueError(f"target = {target!r}; choose one of: {', '.join(TARGET_LAWS)}")
    if target == "prior":
        sampler = law_sampler(model.prior())
    else:
        if images is None:
            raise ValueError(f"target={target!r} needs the images whose codes define it")
        q = model.encode(images)
        stds = q.variance.sqrt() if target == "posterior" else torch.zeros_like(q.mean)
        sampler = law_sampler(DiagonalGaussianMixture(q.mean, stds))
    with torch.enable_grad():
        points = quantize(sampler, k, model.latent_dim, seed=seed, **options)
    device = next(model.parameters()).device
    return model.decode(points.to(device)).mean
