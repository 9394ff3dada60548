"""Stacked MNIST (Metz et al. 2017, Unrolled GANs; Lin et al. 2018, PacGAN): three independent
MNIST digits as the R, G, B channels, giving 10^3 = 1000 modes."""

from __future__ import annotations

import torch
from torch import Tensor


def stacked_mnist(images: Tensor, labels: Tensor, n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Draw ``n`` stacked images from uint8 ``images`` (N, 1, 28, 28) with ``labels`` (N,).

    Each channel is an independent uniform draw (with replacement) from the N images, using a
    generator seeded with ``seed`` (the global RNG is untouched). Returns uint8 (n, 3, 28, 28)
    and the digit triples (n, 3) int64, channel 0 first.
    """
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"images must have shape (N, 1, H, W), got {tuple(images.shape)}")
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(images), (n, 3), generator=generator).to(images.device)
    return images[idx].squeeze(2), labels.to(images.device)[idx].long()


def mode_index(triples: Tensor) -> Tensor:
    """Mode id ``100 * a + 10 * b + c`` in [0, 1000) of digit triples (n, 3) ``(a, b, c)``."""
    return triples[:, 0] * 100 + triples[:, 1] * 10 + triples[:, 2]
