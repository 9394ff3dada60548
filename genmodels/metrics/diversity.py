"""Diversity of a sample: the Vendi score (Friedman & Dieng 2023), the number of statistically
different bins (NDB, Richardson & Weiss 2018) and the birthday-paradox test (Arora & Zhang 2017).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from genmodels.metrics._checks import check_positive_int, check_samples
from genmodels.metrics.kernels import median_bandwidth, squared_distances

Samples = Tensor | np.ndarray
VENDI_KERNELS = ("cosine", "rbf")


def _entropy_exponential(p: Tensor, q: float) -> float:
    """exp of the Renyi entropy of order q of the weights p > 0 (summing to 1), in nats."""
    if q == 1:
        return math.exp(-(p * p.log()).sum().item())
    if math.isinf(q):
        return 1 / p.max().item()
    return math.exp(math.log(p.pow(q).sum().item()) / (1 - q))


def vendi_score(x: Samples, kernel: str = "cosine", q: float = 1.0,
                bandwidth: float | None = None) -> float:
    """Vendi score VS_q = exp(H_q(lambda)) of samples x (n, d) (Friedman & Dieng 2023).

    lambda are the eigenvalues of K / n, K_ij = k(x_i, x_j) a similarity with k(x, x) = 1, and
    H_q their Renyi entropy of order q (q = 1: Shannon; q = inf: -log max lambda), in nats
    over the positive eigenvalues, as ``vendi_score.vendi.score_K``. A number between 1 (all
    samples alike) and n (all orthogonal): the effective number of distinct samples.

    - ``"cosine"``: k = x_i.x_j / (|x_i| |x_j|) (rows scaled to unit norm; zero rows stay 0,
      as sklearn's ``normalize`` in ``vendi.score_dual``). The spectrum comes from the (d, d)
      matrix X^T X / n when d < n: time O(n d^2 + d^3), memory O(n d + d^2).
    - ``"rbf"``: k = exp(-|x_i - x_j|^2 / (2 b^2)), b = ``bandwidth``, by default the median
      pairwise distance of x (``median_distance``; ValueError if it is 0, when more than half
      of the pairs coincide). Needs the (n, n) matrix: memory O(n^2), time O(n^3); keep n to a
      few thousand.

    Computed in float64; q >= 0 (``math.inf`` allowed).
    """
    x, _ = check_samples(x)
    if kernel not in VENDI_KERNELS:
        raise ValueError(f"kernel must be one of {VENDI_KERNELS}, got {kernel!r}")
    if not q >= 0:
        raise ValueError(f"q must be >= 0 (or math.inf), got {q}")
    if kernel == "cosine" and bandwidth is not None:
        raise ValueError("kernel='cosine' takes no bandwidth")
    n = len(x)
    with torch.no_grad():
        x = x.double()
        if kernel == "cosine":
            x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
            gram = x.T @ x if x.shape[1] < n else x @ x.T
        else:
            b = median_bandwidth(x) if bandwidth is None else float(bandwidth)
            if not b > 0:
                raise ValueError(f"bandwidth must be positive, got {b}")
            centred = x - x.mean(0)
            gram = torch.exp(squared_distances(centred, centred) / (-2 * b * b))
        eigenvalues = torch.linalg.eigvalsh(gram / n)
    return _entropy_exponential(eigenvalues[eigenvalues > 0], q)


def nearest_centres(x: Tensor, centres: Tensor, chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """The squared distance (n,) of each row of x (n, d) to its nearest centre of ``centres``
    (k, d), and that centre's index (n,) int64 (the first on ties). One matmul per ``chunk``
    rows (:func:`~genmodels.metrics.kernels.squared_distances`, memory O(chunk · k)): centre
    the points first when they lie far from the origin."""
    parts = [squared_distances(block, centres).min(1) for block in x.split(chunk)]
    return torch.cat([p.values for p in parts]), torch.cat([p.indices for p in parts])


def kmeans(x: Samples, k: int, seed: int | torch.Generator = 0, max_iter: int = 100,
           chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means of the rows of x (n, d), one start: centres (k, d) and labels (n,)
    int64, the index of each point's nearest centre.

    - Start: k-means++ (Arthur & Vassilvitskii 2007). The first centre is a uniformly random
      row, each next one a row drawn with probability ∝ its squared distance to the nearest
      centre so far (a uniformly random row once every point sits on a centre). The draws come
      from ``seed``: a CPU ``torch.Generator``, or an int that seeds a fresh one; the global
      RNG is untouched.
    - Iterations: every centre moves to the mean of its points; a centre left without points
      is re-seeded at the point farthest from its centre (the next emptied one at the next
      farthest point), so cells do not stay empty.
    - Stop: when an iteration changes no label, or after ``max_iter`` iterations. The labels
      returned are the nearest centres of the centres returned.

    The points are centred first (the matmul distances lose less precision) and go ``chunk``
    at a time through :func:`nearest_centres`: memory O(n · d + chunk · k).
    """
    x, _ = check_samples(x)
    check_positive_int(k, "k")
    n = len(x)
    if k > n:
        raise ValueError(f"k-means needs 1 <= k <= n, got k = {k} for {n} points")
    generator = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    offset = x.mean(0)
    x = x - offset
    centres = x.new_empty(k, x.shape[1])
    closest = x.new_full((n,), math.inf)  # squared distance to the nearest centre so far
    for i in range(k):
        weights = closest.double().cpu()
        pick = (torch.multinomial(weights, 1, generator=generator) if i and weights.sum() > 0
                else torch.randint(n, (1,), generator=generator)).item()
        centres[i] = x[pick]
        closest = torch.minimum(closest, (x - centres[i]).square_().sum(1))
    distances, labels = nearest_centres(x, centres, chunk)
    for _ in range(max_iter):
        counts = torch.bincount(labels, minlength=k)
        sums = torch.zeros_like(centres).index_add_(0, labels, x)
        centres = sums / counts.clamp_min(1).unsqueeze(1).to(x.dtype)
        for empty in torch.nonzero(counts == 0).flatten().tolist():
            far = int(distances.argmax())
            centres[empty], distances[far] = x[far], 0
        distances, new_labels = nearest_centres(x, centres, chunk)
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
    return centres + offset, labels


@dataclass(frozen=True)
class NDBResult:
    """NDB: ``different_bins`` of ``bins`` whose proportions differ significantly (two-sided
    pooled two-proportion z-test at level ``alpha``) between the reference (n_reference) and
    the samples (n_samples); ``js_divergence`` between the two bin histograms, in nats (at most
    log 2). Per-bin tuples follow bins ordered by decreasing reference proportion."""

    different_bins: int
    bins: int
    alpha: float
    js_divergence: float
    n_reference: int
    n_samples: int
    reference_proportions: tuple[float, ...]
    sample_proportions: tuple[float, ...]
    p_values: tuple[float, ...]


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in nats over p > 0; q > 0 wherever p > 0."""
    positive = p > 0
    return float(np.sum(p[positive] * np.log(p[positive] / q[positive])))


def ndb(real: Samples, fake: Samples, bins: int = 100, alpha: float = 0.05, seed: int = 0,
        max_iter: int = 100) -> NDBResult:
    """Number of statistically different bins (Richardson & Weiss 2018, gans-n-gmms ``ndb.py``).

    The reference ``real`` (n, d) is split into ``bins`` cells by k-means (``kmeans``, seeded
    with ``seed``; gans-n-gmms uses sklearn's KMeans with max_iter 100 and no whitening by
    default); each sample of ``fake`` (m, d) goes to its nearest centre. In each bin the
    proportions p_r (real) and p_f (fake) are compared by the pooled two-proportion z-test,
    z = (p_r - p_f) / sqrt(p (1 - p) (1/n + 1/m)), p = (n p_r + m p_f) / (n + m), two-sided
    p-value 2 Phi(-|z|) < ``alpha``. Also returns the Jensen-Shannon divergence between the
    two histograms (natural log). A held-out set from the reference law gives about
    alpha * bins false positives; a missing class shows up as the bins it filled.
    """
    real, fake = check_samples(real, fake, "real", "fake")
    check_positive_int(bins, "bins")
    if bins < 2 or bins > len(real):
        raise ValueError(f"bins must be in [2, n_real={len(real)}], got {bins}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    with torch.no_grad():
        centres, labels = kmeans(real, bins, seed=seed, max_iter=max_iter)
        offset = real.mean(0)
        fake_labels = nearest_centres(fake - offset, centres - offset)[1]
    real_counts = torch.bincount(labels, minlength=bins).cpu().numpy()
    order = np.argsort(-real_counts, kind="stable")
    n, m = len(real), len(fake)
    p_real = real_counts[order] / n
    p_fake = torch.bincount(fake_labels, minlength=bins).cpu().numpy()[order] / m
    pooled = (n * p_real + m * p_fake) / (n + m)
    z = (p_real - p_fake) / np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    from scipy.special import ndtr  # the standard normal CDF

    p_values = 2 * ndtr(-np.abs(z))
    middle = (p_real + p_fake) / 2
    js = (_kl(p_real, middle) + _kl(p_fake, middle)) / 2
    return NDBResult(int(np.count_nonzero(p_values < alpha)), bins, alpha, js, n, m,
                     tuple(p_real.tolist()), tuple(p_fake.tolist()), tuple(p_values.tolist()))


@dataclass(frozen=True)
class BirthdayResult:
    """Birthday-paradox test of ``batches`` batches of ``s`` samples: ``duplicate_rate``, the
    share of batches holding a pair at distance <= ``threshold``; ``support_estimate`` = s^2,
    Arora & Zhang's estimate of the support size, meaningful when duplicate_rate is about 1/2
    or more; ``pair_support_estimate`` = C(s, 2) * batches / (number of such pairs), the support
    size of a uniform law with as many collisions (inf without any); ``closest_pairs``, the
    ``top`` closest pairs over all batches as (i, j, distance), indices into the samples, for
    the visual check the paper makes."""

    s: int
    batches: int
    threshold: float
    duplicate_rate: float
    support_estimate: int
    pair_support_estimate: float
    closest_pairs: tuple[tuple[int, int, float], ...]


def birthday_test(samples: Samples, s: int, batches: int = 10, threshold: float = 0.0,
                  top: int = 10, seed: int = 0) -> BirthdayResult:
    """Birthday-paradox support estimate of a generator (Arora & Zhang 2017).

    If batches of s samples (n, d) hold a duplicate with probability about 1/2, the support of
    the law is about s^2 (for a uniform law on N points, P(duplicate) = 1 - exp(-s^2 / (2N))
    approximately). Each of ``batches`` batches draws s distinct rows of ``samples`` (a
    ``torch.Generator`` seeded with ``seed``); pairs at Euclidean distance <= ``threshold``
    count as duplicates (0: exact copies; the paper judges near-duplicates by eye among the
    closest pairs, returned too). Distances are exact (no matmul rounding): O(s^2 d) per batch.
    """
    x, _ = check_samples(samples, name_x="samples")
    check_positive_int(batches, "batches")
    check_positive_int(top, "top")
    if isinstance(s, bool) or not isinstance(s, int) or not 2 <= s <= len(x):
        raise ValueError(f"s must be an int in [2, n={len(x)}], got {s!r}")
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    generator = torch.Generator().manual_seed(seed)
    upper = torch.triu_indices(s, s, offset=1)
    batches_with_duplicates = pairs_within = 0
    candidates: dict[tuple[int, int], float] = {}
    with torch.no_grad():
        for _ in range(batches):
            index = torch.randperm(len(x), generator=generator)[:s]
            batch = x[index.to(x.device)]
            distances = torch.cdist(batch, batch, compute_mode="donot_use_mm_for_euclid_dist")
            distances = distances[upper[0], upper[1]].cpu()
            close = int((distances <= threshold).sum())
            batches_with_duplicates += close > 0
            pairs_within += close
            nearest = distances.topk(min(top, len(distances)), largest=False)
            for d, p in zip(nearest.values.tolist(), nearest.indices.tolist(), strict=True):
                i, j = sorted((int(index[upper[0, p]]), int(index[upper[1, p]])))
                candidates[i, j] = d  # a pair drawn in several batches is listed once
    closest = sorted((d, i, j) for (i, j), d in candidates.items())[:top]
    pairs = batches * s * (s - 1) / 2
    return BirthdayResult(s, batches, float(threshold), batches_with_duplicates / batches, s * s,
                          pairs / pairs_within if pairs_within else math.inf,
                          tuple((i, j, d) for d, i, j in closest))
