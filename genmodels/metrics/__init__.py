"""Metrics between samples and distributions. See docs/metrics.md."""

from genmodels.metrics.distances import (
    energy_distance,
    mmd,
    radon_sobolev_to_normal,
    sliced_wasserstein,
)
from genmodels.metrics.kernels import median_distance, pairwise_sum
from genmodels.metrics.radon_sobolev import expected_norm_gaussian, xi_exact, xi_smooth

__all__ = [
    "energy_distance",
    "expected_norm_gaussian",
    "median_distance",
    "mmd",
    "pairwise_sum",
    "radon_sobolev_to_normal",
    "sliced_wasserstein",
    "xi_exact",
    "xi_smooth",
]
