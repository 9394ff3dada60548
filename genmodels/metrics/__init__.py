"""Metrics between samples and distributions. See docs/metrics.md."""

from genmodels.metrics.distances import (
    energy_distance,
    mmd,
    radon_sobolev_to_normal,
    sliced_wasserstein,
)
from genmodels.metrics.diversity import (
    BirthdayResult,
    NDBResult,
    birthday_test,
    kmeans,
    ndb,
    vendi_score,
)
from genmodels.metrics.features import (
    image_features,
    mnist_features,
    mnist_features_and_labels,
    module_features,
    pixel_features,
)
from genmodels.metrics.fidelity import density_coverage, prdc, precision_recall
from genmodels.metrics.frechet import (
    FrechetResult,
    KIDResult,
    fid,
    frechet_distance,
    kid,
    polynomial_mmd,
    psd_sqrt,
)
from genmodels.metrics.kernels import median_distance, pairwise_sum
from genmodels.metrics.modes import (
    MixtureModes,
    ModeHistogram,
    class_histogram,
    label_histogram,
    mixture_modes,
    stacked_mnist_channel_kl,
    stacked_mnist_modes,
)
from genmodels.metrics.radon_sobolev import expected_norm_gaussian, xi_exact, xi_smooth
from genmodels.metrics.transport import bures_wasserstein, sinkhorn, wasserstein

__all__ = [
    "BirthdayResult",
    "FrechetResult",
    "KIDResult",
    "MixtureModes",
    "ModeHistogram",
    "NDBResult",
    "birthday_test",
    "bures_wasserstein",
    "class_histogram",
    "density_coverage",
    "energy_distance",
    "expected_norm_gaussian",
    "fid",
    "frechet_distance",
    "image_features",
    "kid",
    "kmeans",
    "label_histogram",
    "median_distance",
    "mixture_modes",
    "mmd",
    "mnist_features",
    "mnist_features_and_labels",
    "module_features",
    "ndb",
    "pairwise_sum",
    "pixel_features",
    "polynomial_mmd",
    "prdc",
    "precision_recall",
    "psd_sqrt",
    "radon_sobolev_to_normal",
    "sinkhorn",
    "sliced_wasserstein",
    "stacked_mnist_channel_kl",
    "stacked_mnist_modes",
    "vendi_score",
    "wasserstein",
    "xi_exact",
    "xi_smooth",
]
