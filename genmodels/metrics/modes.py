"""Mode counts: classes of generated digits, the 1000 modes of Stacked MNIST (Metz et al. 2017;
Srivastava et al. 2017, VEEGAN; Lin et al. 2018, PacGAN) and the modes of 2-D Gaussian mixtures.

KL divergences are in nats and "reverse": KL(p_model || uniform) = sum_k p_k log(K p_k), which
is 0 for a uniform histogram and log(K / K') when the samples spread evenly over K' of the K
modes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from genmodels.data import mode_index
from genmodels.metrics._checks import check_positive_int, check_samples
from genmodels.metrics.features import (
    apply_in_batches,
    check_image_batch,
    module_device,
    shipped_cnn,
)
from genmodels.nets.classifier import INFERENCE_BATCH

STACKED_MNIST_MODES = 1000
STACKED_MNIST_SAMPLES = 26_000  # as VEEGAN and PacGAN


def _kl_to_uniform(counts: Tensor) -> float:
    """KL(counts / sum(counts) || uniform over len(counts)) in nats; inf for no counts."""
    total = counts.sum()
    if total == 0:
        return math.inf
    p = counts[counts > 0].double() / total
    return (p * (p * len(counts)).log()).sum().item()


@dataclass(frozen=True)
class ModeHistogram:
    """``counts`` per mode (K of them) over ``n`` samples; ``modes_covered``, the modes with at
    least ``min_count`` samples; ``kl_to_uniform`` = KL(counts / n || uniform over K), nats."""

    counts: tuple[int, ...]
    n: int
    min_count: int
    modes_covered: int
    kl_to_uniform: float


def label_histogram(labels: Tensor, num_modes: int, min_count: int = 1) -> ModeHistogram:
    """``ModeHistogram`` of integer labels (n,) in [0, num_modes)."""
    labels = torch.as_tensor(labels)
    check_positive_int(num_modes, "num_modes")
    check_positive_int(min_count, "min_count")
    if labels.dim() != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty (n,) tensor, got {tuple(labels.shape)}")
    if labels.min() < 0 or labels.max() >= num_modes:
        raise ValueError(f"labels must lie in [0, {num_modes}), got [{int(labels.min())}, "
                         f"{int(labels.max())}]")
    counts = torch.bincount(labels.long().cpu(), minlength=num_modes)
    return ModeHistogram(tuple(counts.tolist()), len(labels), min_count,
                         int((counts >= min_count).sum()), _kl_to_uniform(counts))


def _predict(images: Tensor, classifier: nn.Module | None, batch_size: int) -> Tensor:
    """argmax labels (n,) of ``classifier`` logits over batches of single-channel images."""
    check_image_batch(images)
    if classifier is None:
        classifier = shipped_cnn(images.device)
    device = module_device(classifier, images.device)
    labels = apply_in_batches(lambda batch: classifier(batch).argmax(1), images, batch_size, device)
    return torch.cat(labels).cpu()


def class_histogram(samples: Tensor, classifier: nn.Module | None = None, num_classes: int = 10,
                    min_count: int = 1, batch_size: int = INFERENCE_BATCH) -> ModeHistogram:
    """Histogram of the classes predicted for images (N, 1, H, W) in [0, 1] (or uint8).

    ``classifier`` maps a batch to logits (batch, num_classes); by default the shipped MNIST
    CNN (``genmodels.classifier()``). Returns the counts, the classes predicted at least
    ``min_count`` times (modes covered) and KL(p || uniform) in nats (module docstring).
    """
    return label_histogram(_predict(samples, classifier, batch_size), num_classes, min_count)


def stacked_mnist_modes(samples: Tensor, classifier: nn.Module | None = None,
                        n: int | None = STACKED_MNIST_SAMPLES, min_count: int = 1,
                        batch_size: int = INFERENCE_BATCH) -> ModeHistogram:
    """Modes of Stacked MNIST samples (N, 3, 28, 28): 1000 = 10^3 digit triples.

    Each channel is classified separately (``classifier``: logits for single-channel images;
    default the shipped MNIST CNN), and a sample's mode is 100 a + 10 b + c for the digits
    (a, b, c) of channels 0, 1, 2 (``genmodels.data.mode_index``). As VEEGAN and PacGAN, the
    first ``n`` = 26,000 samples are used (ValueError if fewer are given; ``n=None``: all),
    and the result gives the modes covered (at least ``min_count`` samples) out of 1000 and
    KL(p_model || uniform) in nats.
    """
    if not torch.is_tensor(samples) or samples.dim() != 4 or samples.shape[1] != 3:
        shape = tuple(samples.shape) if torch.is_tensor(samples) else type(samples).__name__
        raise ValueError(f"samples must have shape (N, 3, 28, 28), got {shape}")
    if n is not None:
        check_positive_int(n, "n")
        if len(samples) < n:
            raise ValueError(f"stacked_mnist_modes uses n={n} samples (the protocol of VEEGAN "
                             f"and PacGAN), got {len(samples)}; pass n=None to use them all")
        samples = samples[:n]
    digits = _predict(samples.flatten(0, 1).unsqueeze(1), classifier, batch_size)
    return label_histogram(mode_index(digits.reshape(-1, 3)), STACKED_MNIST_MODES, min_count)


def stacked_mnist_channel_kl(histogram: ModeHistogram) -> tuple[float, float, float]:
    """KL (nats) to uniform of each channel's digit histogram, the marginals of a Stacked MNIST
    triple histogram (from :func:`stacked_mnist_modes`), for channels 0, 1, 2.

    The triple KL splits exactly as KL(p || U_1000) = Σ_c KL(p_c || U_10) + TC(p), where the
    total correlation TC ≥ 0 is the dependence between the channels: this tells a generator
    that unbalances the digits of a channel from one that ties the channels together. With few
    samples the channel KLs are also far less noisy (10 cells each against 1000).
    """
    if len(histogram.counts) != STACKED_MNIST_MODES:
        raise ValueError(f"a Stacked MNIST histogram has {STACKED_MNIST_MODES} modes (digit "
                         f"triples), got {len(histogram.counts)}")
    counts = torch.tensor(histogram.counts).view(10, 10, 10)  # [a, b, c] = mode 100a + 10b + c
    return tuple(_kl_to_uniform(counts.sum(dims)) for dims in ((1, 2), (0, 2), (0, 1)))


@dataclass(frozen=True)
class MixtureModes:
    """Mode statistics of samples from a Gaussian mixture (PacGAN protocol): ``counts`` of
    high-quality samples per mode, ``modes_captured`` (modes with at least ``min_count`` of
    them), ``high_quality_fraction`` of the n samples, and ``reverse_kl`` =
    KL(counts / sum(counts) || uniform) in nats (inf when no sample is of high quality)."""

    counts: tuple[int, ...]
    n: int
    min_count: int
    modes_captured: int
    high_quality_fraction: float
    reverse_kl: float


def mixture_modes(samples: Tensor | np.ndarray, means: Tensor | np.ndarray, sigma: float,
                  threshold: float = 3.0, min_count: int = 1) -> MixtureModes:
    """Modes captured by samples (n, d) of a mixture of N(means[k], sigma^2 I), means (K, d).

    The protocol of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018; their
    ``MetricLogger``): each sample goes to its nearest mean and is of high quality if closer
    than ``threshold`` (3) standard deviations, |x - mu_k| < 3 sigma; a mode is captured if
    at least ``min_count`` high-quality samples reach it (PacGAN counts a mode with any, 1);
    the reverse KL compares the histogram of high-quality samples over modes with the uniform
    law. Ring: 8 modes, sigma 0.01; grid: 25 modes, sigma 0.05 (``GaussianMixture2D``).
    """
    x, centres = check_samples(samples, means, "samples", "means")
    if not sigma > 0 or not threshold > 0:
        raise ValueError(f"sigma and threshold must be positive, got {sigma}, {threshold}")
    check_positive_int(min_count, "min_count")
    with torch.no_grad():
        distances = torch.cdist(x, centres, compute_mode="donot_use_mm_for_euclid_dist")
        nearest, labels = distances.min(1)
        good = nearest < threshold * sigma
        counts = torch.bincount(labels[good].cpu(), minlength=len(centres))
    return MixtureModes(tuple(counts.tolist()), len(x), min_count,
                        int((counts >= min_count).sum()), int(counts.sum()) / len(x),
                        _kl_to_uniform(counts))
