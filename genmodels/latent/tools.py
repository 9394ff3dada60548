"""Latent-space tools for any model with ``encode``/``decode`` (the VAE family): encode a
dataset, interpolate, traverse, map a 2-D slice, scatter codes, and class arithmetic.
Functions return tensors; the ``*_figure`` helpers in :mod:`genmodels.latent.figures` draw them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


@torch.no_grad()
def encode_dataset(model, images: Tensor, batch_size: int = 1000, sample: bool = False,
                   generator: torch.Generator | None = None) -> Tensor:
    """Codes (N, D) of images (N, C, 28, 28): posterior means, or one posterior draw each."""
    codes = []
    for start in range(0, len(images), batch_size):
        q = model.encode(images[start:start + batch_size])
        if sample:
            eps = torch.randn(q.mean.shape, generator=generator, device=q.mean.device)
            codes.append(q.mean + q.variance.sqrt() * eps)
        else:
            codes.append(q.mean)
    return torch.cat(codes)


def lerp(z0: Tensor, z1: Tensor, steps: int) -> Tensor:
    """(steps, D) points on the segment from z0 to z1 (both (D,)), ends included."""
    t = torch.linspace(0, 1, steps, device=z0.device)[:, None]
    return (1 - t) * z0 + t * z1


def slerp(z0: Tensor, z1: Tensor, steps: int) -> Tensor:
    """(steps, D) spherical interpolation (Shoemake 1985): along the great circle between the
    directions of z0 and z1 with linearly interpolated norm, which keeps Gaussian codes at a
    typical radius (White 2016, "Sampling generative networks"). Falls back to lerp for
    (anti-)parallel codes."""
    t = torch.linspace(0, 1, steps, device=z0.device)[:, None]
    n0, n1 = z0.norm(), z1.norm()
    cos = torch.dot(z0 / n0, z1 / n1).clamp(-1, 1)
    omega = torch.arccos(cos)
    if omega < 1e-4 or math.pi - omega < 1e-4:
        return lerp(z0, z1, steps)
    u0, u1 = z0 / n0, z1 / n1
    direction = (torch.sin((1 - t) * omega) * u0 + torch.sin(t * omega) * u1) / torch.sin(omega)
    return direction * ((1 - t) * n0 + t * n1)


INTERPOLATIONS = {"lerp": lerp, "slerp": slerp}
TRAVERSE_SPAN = 3.0  # traverse(): each coordinate over ±span prior standard deviations
MAP_SPAN = 2.5  # latent_map(): the grid over ±span (standard deviations of the plane)


@torch.no_grad()
def interpolate(model, x0: Tensor, x1: Tensor, steps: int = 10, method: str = "slerp") -> Tensor:
    """(steps, C, 28, 28) decodings along the path between the codes of images x0 and x1
    (each (C, 28, 28))."""
    if method not in INTERPOLATIONS:
        raise ValueError(f"method = {method!r}; choose lerp or slerp")
    z = model.encode(torch.stack([x0, x1])).mean
    return model.decode(INTERPOLATIONS[method](z[0], z[1], steps)).mean


@torch.no_grad()
def traverse(model, z: Tensor, dims: Sequence[int] | None = None, span: float = TRAVERSE_SPAN,
             steps: int = 9) -> Tensor:
    """(len(dims), steps, C, 28, 28): vary one latent coordinate of z (D,) at a time over
    [-span, span] (prior standard deviations), the others fixed."""
    dims = list(range(len(z))) if dims is None else list(dims)
    values = torch.linspace(-span, span, steps, device=z.device)
    codes = z.repeat(len(dims), steps, 1)
    for row, d in enumerate(dims):
        codes[row, :, d] = values
    return model.decode(codes).mean


def principal_directions(codes: Tensor, k: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    """Mean (D,), the k leading principal directions (k, D) and their standard deviations (k,)
    of codes (N, D)."""
    mean = codes.mean(0)
    _, s, v = torch.linalg.svd(codes - mean, full_matrices=False)
    return mean, v[:k], s[:k] / math.sqrt(max(len(codes) - 1, 1))


@torch.no_grad()
def latent_map(model, codes: Tensor | None = None, grid: int = 15,
               span: float = MAP_SPAN) -> Tensor:
    """(grid, grid, C, 28, 28) decodings of a 2-D grid of codes. For a 2-D latent the grid
    spans [-span, span]²; otherwise it spans ±span standard deviations along the two leading
    principal directions of ``codes`` (N, D) around their mean."""
    device = next(model.parameters()).device
    values = torch.linspace(-span, span, grid, device=device)
    a, b = torch.meshgrid(values, -values, indexing="xy")  # rows go from +span down to -span
    plane = torch.stack([a, b], dim=-1)  # (grid, grid, 2)
    if model.latent_dim == 2:
        z = plane
    else:
        if codes is None:
            raise ValueError(f"a {model.latent_dim}-d latent needs codes for its principal plane")
        mean, directions, stds = principal_directions(codes.to(device))
        z = mean + (plane * stds) @ directions
    return model.decode(z).mean


def class_means(codes: Tensor, labels: Tensor, num_classes: int = 10) -> Tensor:
    """(num_classes, D) mean code of each class."""
    if (torch.bincount(labels, minlength=num_classes) == 0).any():
        raise ValueError("every class needs at least one code")
    sums = torch.zeros(num_classes, codes.shape[1], device=codes.device)
    sums.index_add_(0, labels, codes)
    return sums / torch.bincount(labels, minlength=num_classes)[:, None]


@torch.no_grad()
def class_arithmetic(model, x: Tensor, means: Tensor, source: int, target: int,
                     strength: float = 1.0) -> Tensor:
    """Decode z(x) + strength · (mean_target − mean_source) for images x (N, C, 28, 28):
    e.g. move a 3 towards an 8 while keeping its style."""
    z = model.encode(x).mean + strength * (means[target] - means[source])
    return model.decode(z).mean
