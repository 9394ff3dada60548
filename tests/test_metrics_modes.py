"""Mode and bin counts on real data: NDB on MNIST, class histograms with the shipped CNN, the
PacGAN protocol on exact mixture samples, Stacked MNIST modes on real stacked images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from genmodels.data import GaussianMixture2D, load_images, mode_index, stacked_mnist, to_unit
from genmodels.metrics import (
    class_histogram,
    label_histogram,
    mixture_modes,
    ndb,
    pixel_features,
    stacked_mnist_channel_kl,
    stacked_mnist_modes,
)


@pytest.fixture(scope="module")
def mnist_train(data_root):
    return load_images("mnist", "train", data_root)


@pytest.fixture(scope="module")
def mnist_test(data_root):
    return load_images("mnist", "test", data_root)


def pacgan_counts(samples: np.ndarray, means: np.ndarray, sigma: float) -> np.ndarray:
    """High-quality samples per mode, the loop of PacGAN's ``MetricLogger``: nearest mean in
    standardised distance, kept if below 3."""
    counts = np.zeros(len(means))
    for x in samples:
        distances = [math.sqrt(np.sum((x - m) ** 2 / sigma**2)) for m in means]
        if min(distances) < 3:
            counts[int(np.argmin(distances))] += 1
    return counts


class OracleDigits(nn.Module):
    """A perfect classifier of the images of ``pool``: one-hot logits of the label of the pool
    image each input equals."""

    def __init__(self, pool: torch.Tensor, labels: torch.Tensor) -> None:
        super().__init__()
        self.pool, self.labels = pool.flatten(1), labels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        sq = flat.square().sum(1, keepdim=True) + self.pool.square().sum(1) - 2 * flat @ self.pool.T
        return nn.functional.one_hot(self.labels[sq.argmin(1)], 10).float()


# --- NDB ------------------------------------------------------------------------------------

def test_ndb_on_mnist_held_out_and_without_a_class(mnist_train):
    perm = torch.randperm(len(mnist_train), generator=torch.Generator().manual_seed(0))
    reference = pixel_features(mnist_train.images[perm[:4000]])
    held_out = perm[4000:8000]
    same = ndb(reference, pixel_features(mnist_train.images[held_out]), bins=50)
    # the same law: about alpha * bins = 2.5 false positives
    assert same.different_bins <= 5 and same.n_samples == 4000
    without_nines = held_out[mnist_train.labels[held_out] != 9]
    dropped = ndb(reference, pixel_features(mnist_train.images[without_nines]), bins=50)
    assert dropped.different_bins >= same.different_bins + 4
    assert dropped.js_divergence > 3 * same.js_divergence
    # the different bins are the ones the samples left empty-handed: proportions fell
    fell = np.array(dropped.sample_proportions) < np.array(dropped.reference_proportions)
    significant = np.array(dropped.p_values) < dropped.alpha
    assert fell[significant].mean() > 0.5


# --- class histograms -----------------------------------------------------------------------

def test_label_histogram_closed_form():
    result = label_histogram(torch.tensor([0, 0, 1, 3]), 4)
    assert result.counts == (2, 1, 0, 1) and result.modes_covered == 3 and result.n == 4
    # KL(p || uniform) = sum p log(4 p) = 0.5 log 2
    assert result.kl_to_uniform == pytest.approx(0.5 * math.log(2), rel=1e-12)
    assert label_histogram(torch.arange(5).repeat(3), 5).kl_to_uniform == pytest.approx(0.0)
    assert label_histogram(torch.tensor([0, 0, 1]), 3, min_count=2).modes_covered == 1
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        label_histogram(torch.tensor([0, 4]), 4)


def test_class_histogram_with_the_shipped_classifier(mnist_test):
    index = torch.randperm(len(mnist_test), generator=torch.Generator().manual_seed(0))[:400]
    images, labels = mnist_test.images[index], mnist_test.labels[index]
    result = class_histogram(images)  # uint8 accepted
    truth = label_histogram(labels, 10)
    assert result.modes_covered == 10 and result.n == 400
    # 99.6% accuracy: a few images change bins at most
    assert np.abs(np.array(result.counts) - np.array(truth.counts)).sum() <= 8
    assert result.kl_to_uniform == pytest.approx(truth.kl_to_uniform, abs=0.01)
    ones = mnist_test.images[mnist_test.labels == 1][:200]
    collapsed = class_histogram(to_unit(ones), min_count=5)
    assert collapsed.modes_covered == 1 and collapsed.counts[1] >= 198
    assert collapsed.kl_to_uniform > 0.95 * math.log(10)


# --- Gaussian mixtures (PacGAN protocol) ----------------------------------------------------

@pytest.mark.parametrize("mixture", [GaussianMixture2D.grid(), GaussianMixture2D.ring()],
                         ids=["grid", "ring"])
def test_mixture_modes_on_exact_and_collapsed_samples(mixture):
    generator = torch.Generator().manual_seed(0)
    samples, _ = mixture.sample(2500, generator=generator)
    result = mixture_modes(samples, mixture.means, mixture.std)
    expected = pacgan_counts(samples.numpy(), mixture.means.numpy(), mixture.std)
    np.testing.assert_array_equal(result.counts, expected)
    assert result.modes_captured == mixture.n_modes
    # |x - mu| / sigma is chi with 2 degrees of freedom: P(< 3) = 1 - exp(-9/2)
    inside = 1 - math.exp(-4.5)
    assert abs(result.high_quality_fraction - inside) < 4 * math.sqrt(inside * (1 - inside) / 2500)
    assert result.reverse_kl < 0.02
    kept = mixture.means[:4]  # a generator that collapsed onto 4 modes
    collapsed = kept[torch.randint(4, (1000,), generator=generator)]
    collapsed = collapsed + mixture.std * torch.randn(1000, 2, generator=generator)
    result = mixture_modes(collapsed, mixture.means, mixture.std)
    assert result.modes_captured == 4
    assert result.reverse_kl == pytest.approx(math.log(mixture.n_modes / 4), abs=0.02)
    assert mixture_modes(samples, mixture.means, mixture.std, min_count=10**4).modes_captured == 0
    blurred = mixture_modes(samples, mixture.means, 0.2 * mixture.std)  # 3 sigma = 0.6 std
    assert blurred.high_quality_fraction < 0.2


# --- Stacked MNIST --------------------------------------------------------------------------

def test_stacked_mnist_modes_with_the_shipped_classifier(mnist_test):
    images, triples = stacked_mnist(mnist_test.images, mnist_test.labels, 150, seed=0)
    result = stacked_mnist_modes(images, n=None)
    truth = label_histogram(mode_index(triples), 1000)
    # each misread digit moves one sample between two modes
    assert np.abs(np.array(result.counts) - np.array(truth.counts)).sum() <= 6
    with pytest.raises(ValueError, match="uses n=26000 samples"):
        stacked_mnist_modes(images)


def test_stacked_mnist_covers_all_modes_with_26000_real_samples(mnist_test):
    pool = torch.randperm(len(mnist_test), generator=torch.Generator().manual_seed(1))[:300]
    images, labels = mnist_test.images[pool], mnist_test.labels[pool]
    oracle = OracleDigits(to_unit(images), labels)
    stacked, triples = stacked_mnist(images, labels, 26_000, seed=0)
    result = stacked_mnist_modes(stacked, oracle)
    assert result.counts == label_histogram(mode_index(triples), 1000).counts
    # 26 samples a mode: every mode is hit (P(miss) = e^-26). The law of the triples is the
    # product of the pool's digit frequencies, KL = 3 KL(digits || uniform), and sampling adds
    # (K - 1) / (2 n) = 0.019 on average
    assert result.modes_covered == 1000 and result.n == 26_000
    expected = 3 * label_histogram(labels, 10).kl_to_uniform + 999 / (2 * 26_000)
    assert result.kl_to_uniform == pytest.approx(expected, abs=0.01)
    single = stacked[triples[:, 0] == 1][:2000]  # first digit always 1: 100 modes
    collapsed = stacked_mnist_modes(single, oracle, n=None)
    assert collapsed.modes_covered == 100
    assert collapsed.kl_to_uniform == pytest.approx(math.log(10), abs=0.05)


def test_channel_kls_split_the_triple_kl():
    rng = np.random.default_rng(0)
    marginals = [rng.integers(1, 20, size=10) for _ in range(3)]
    # independent channels: counts are the outer product, total correlation 0, so the
    # channel KLs (SciPy's relative entropy to uniform) add up to the triple KL
    counts = np.einsum("a,b,c->abc", *marginals).reshape(-1)
    independent = label_histogram(torch.from_numpy(np.repeat(np.arange(1000), counts)), 1000)
    channels = stacked_mnist_channel_kl(independent)
    for kl, marginal in zip(channels, marginals, strict=True):
        assert kl == pytest.approx(scipy.stats.entropy(marginal, np.ones(10)), rel=1e-9)
    assert sum(channels) == pytest.approx(independent.kl_to_uniform, rel=1e-9)
    # three equal digits (modes 000, 111, ..., 999): balanced channels, and all of the
    # triple KL log(1000 / 10) is dependence between them
    tied = label_histogram(torch.arange(10).repeat(50) * 111, 1000)
    assert stacked_mnist_channel_kl(tied) == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)
    assert tied.kl_to_uniform == pytest.approx(math.log(100))
    with pytest.raises(ValueError, match="has 1000 modes"):
        stacked_mnist_channel_kl(label_histogram(torch.arange(10), 10))
