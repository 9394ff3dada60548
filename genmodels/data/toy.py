"""2-D Gaussian mixtures for mode-collapse studies, after VEEGAN (Srivastava et al. 2017) and
PacGAN (Lin et al. 2018): a ring of 8 modes (sigma 0.01) and a 5x5 grid (sigma 0.05)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


def ring_means(n_modes: int = 8, radius: float = 1.0) -> Tensor:
    """(n_modes, 2) float32 points at angles 2*pi*k/n_modes, k = 0..n_modes-1, on a circle.

    Not ``linspace(0, 2*pi, n_modes)``, whose first and last angles coincide (one mode twice).
    """
    angles = 2 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid_means() -> Tensor:
    """(25, 2) float32 points {-4, -2, 0, 2, 4}^2, ordered with x varying slowest."""
    axis = torch.arange(-4.0, 5.0, 2.0)
    return torch.cartesian_prod(axis, axis)


@dataclass(eq=False)
class GaussianMixture2D:
    """Equal-weight mixture of isotropic Gaussians N(means[k], std^2 I); means (K, 2)."""

    means: Tensor
    std: float

    def __post_init__(self) -> None:
        self.means = torch.as_tensor(self.means, dtype=torch.float32)
        if self.means.dim() != 2 or self.means.shape[1] != 2:
            raise ValueError(f"means must have shape (K, 2), got {tuple(self.means.shape)}")
        if self.std <= 0:
            raise ValueError(f"std must be positive, got {self.std}")

    @classmethod
    def ring(cls, std: float = 0.01, n_modes: int = 8, radius: float = 1.0) -> GaussianMixture2D:
        """The 8-mode unit ring with sigma = 0.01."""
        return cls(ring_means(n_modes, radius), std)

    @classmethod
    def grid(cls, std: float = 0.05) -> GaussianMixture2D:
        """The 25-mode grid {-4, ..., 4}^2 with sigma = 0.05."""
        return cls(grid_means(), std)

    @property
    def n_modes(self) -> int:
        return len(self.means)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``n`` points: (n, 2) float32 and their mode labels (n,) int64, modes drawn uniformly."""
        labels = torch.randint(self.n_modes, (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator)
        return self.means[labels] + self.std * noise, labels

    def nearest_mode(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """Index (n,) int64 of the nearest mean to each of ``points`` (n, 2) and its distance."""
        means = self.means.to(points.device)
        dist = torch.cdist(points.float(), means, compute_mode="donot_use_mm_for_euclid_dist")
        distances, labels = dist.min(dim=1)
        return labels, distances
