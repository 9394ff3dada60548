"""Gaussian summaries of feature sets: the Fréchet distance (FID, Heusel et al. 2017), the kernel
inception distance (KID, Bińkowski et al. 2018) and the Bures-Wasserstein algebra they share.

Matrix square roots go through a symmetric eigendecomposition (``psd_sqrt``): negative rounding
eigenvalues are set to 0, so no result is ever complex or NaN, unlike ``scipy.linalg.sqrtm`` of
a non-symmetric product.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable

from genmodels.metrics._checks import check_positive_int, check_samples
from genmodels.metrics.features import image_features
from genmodels.nets.classifier import INFERENCE_BATCH

Samples = Tensor | np.ndarray


class _PSDSqrt(torch.autograd.Function):
    """Square root of a symmetric positive semi-definite matrix, with a stable backward."""

    @staticmethod
    def forward(ctx: FunctionCtx, a: Tensor) -> Tensor:
        eigenvalues, eigenvectors = torch.linalg.eigh(a)
        # eigenvalues within rounding of 0 (or below) are 0: their roots would be noise
        tolerance = eigenvalues.abs().max() * a.shape[-1] * torch.finfo(a.dtype).eps
        roots = torch.where(eigenvalues > tolerance, eigenvalues, 0.0).sqrt()
        ctx.save_for_backward(roots, eigenvectors)
        return (eigenvectors * roots) @ eigenvectors.T

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor) -> Tensor:
        # Daleckii-Krein: d sqrt(A)[H] = V ((V^T H V) / (r_i + r_j)) V^T, a self-adjoint map;
        # directions along the null space (r_i = r_j = 0) get 0, a subgradient
        roots, eigenvectors = ctx.saved_tensors
        sums = roots[:, None] + roots[None, :]
        weights = torch.where(sums > 0, 1 / sums.where(sums > 0, 1.0), 0.0)
        rotated = eigenvectors.T @ ((grad + grad.T) / 2) @ eigenvectors
        return eigenvectors @ (rotated * weights) @ eigenvectors.T


def psd_sqrt(a: Tensor) -> Tensor:
    """Symmetric square root A^(1/2) of a symmetric PSD matrix a (d, d); differentiable.

    By ``torch.linalg.eigh`` (which reads the lower triangle): eigenvalues below
    d * eps * max|eigenvalue| count as 0. The gradient is the Daleckii-Krein formula
    V ((V^T G V) / (r_i + r_j)) V^T with r the roots, 0 where r_i + r_j = 0, so it stays finite
    for singular matrices and repeated eigenvalues.
    """
    return _PSDSqrt.apply(a)


def gaussian_fit(x: Tensor, unbiased: bool) -> tuple[Tensor, Tensor]:
    """Mean (d,) and covariance (d, d) of samples x (n, d), in x's dtype.

    ``unbiased=True`` divides by n - 1 (``numpy.cov``, pytorch-fid, torchmetrics), else by n
    (maximum likelihood, as ``ot.gaussian.empirical_bures_wasserstein_distance``).
    """
    n = len(x)
    if unbiased and n < 2:
        raise ValueError(f"an unbiased covariance needs at least 2 samples, got {n}")
    mean = x.mean(0)
    centred = x - mean
    return mean, centred.T @ centred / (n - 1 if unbiased else n)


def gaussian_w2_squared(mean_x: Tensor, cov_x: Tensor, mean_y: Tensor, cov_y: Tensor) -> Tensor:
    """Squared 2-Wasserstein distance between N(mean_x, cov_x) and N(mean_y, cov_y), 0-d tensor:

        |mean_x - mean_y|^2 + Tr(cov_x + cov_y - 2 (cov_x^(1/2) cov_y cov_x^(1/2))^(1/2))

    (the Bures-Wasserstein formula, Dowson & Landau 1982), clamped at 0 against rounding.
    Differentiable through ``psd_sqrt``.
    """
    root_x = psd_sqrt(cov_x)
    middle = root_x @ cov_y @ root_x
    cross = psd_sqrt((middle + middle.T) / 2).trace()
    value = (mean_x - mean_y).square().sum() + cov_x.trace() + cov_y.trace() - 2 * cross
    return value.clamp_min(0)


@dataclass(frozen=True)
class FrechetResult:
    """A squared Fréchet distance ``value`` (in squared feature units) and the sample sizes
    n_x, n_y it was estimated from (the estimate is biased upwards by O(d / n)).
    ``float(result)`` is the value."""

    value: float
    n_x: int
    n_y: int

    def __float__(self) -> float:
        return self.value


def frechet_distance(x: Samples, y: Samples) -> FrechetResult:
    """Squared Fréchet distance between Gaussian fits of features x (n, d) and y (m, d).

    d^2 = |mu_x - mu_y|^2 + Tr(S_x + S_y - 2 (S_x^(1/2) S_y S_x^(1/2))^(1/2)), the FID of
    Heusel et al. (2017) when x, y are Inception features: the **squared** 2-Wasserstein
    distance between N(mu_x, S_x) and N(mu_y, S_y), with unbiased (n - 1) covariances as in
    pytorch-fid and torchmetrics' ``FrechetInceptionDistance``. Computed in float64 through
    symmetric eigendecompositions: never complex or NaN, >= 0 (rounding clamped), exactly
    0 for identical sets up to rounding. Not differentiable (see ``bures_wasserstein``).
    """
    x, y = check_samples(x, y)
    with torch.no_grad():
        x, y = x.double(), y.double()
        if max(len(x), len(y)) < x.shape[1]:  # fewer samples than features: low rank
            value = _low_rank_w2_squared(x, y)
        else:
            value = gaussian_w2_squared(*gaussian_fit(x, True), *gaussian_fit(y, True))
    return FrechetResult(value.item(), len(x), len(y))


def _low_rank_w2_squared(x: Tensor, y: Tensor) -> Tensor:
    """The squared Fréchet distance of unbiased Gaussian fits of x (n, d) and y (m, d) in
    O(n m d) instead of O(d³): with S_x = A_xᵀ A_x, A_x = (x - mean) / √(n - 1) (n, d), the
    eigenvalues of S_x^(1/2) S_y S_x^(1/2) are those of S_x S_y, i.e. the squared singular
    values of A_x A_yᵀ (n, m), so Tr (S_x^(1/2) S_y S_x^(1/2))^(1/2) = ||A_x A_yᵀ||_* (the
    nuclear norm) and Tr S = ||A||_F²."""
    a_x = (x - x.mean(0)) / math.sqrt(len(x) - 1)
    a_y = (y - y.mean(0)) / math.sqrt(len(y) - 1)
    cross = torch.linalg.matrix_norm(a_x @ a_y.T, ord="nuc")
    value = (x.mean(0) - y.mean(0)).square().sum() + a_x.square().sum() + a_y.square().sum() \
        - 2 * cross
    return value.clamp_min(0)


def fid(x_images: Tensor, y_images: Tensor, features: str | nn.Module = "mnist",
        batch_size: int = INFERENCE_BATCH) -> FrechetResult:
    """``frechet_distance`` between the features of two image sets (N, C, H, W).

    ``features``: ``"mnist"`` (FID-MNIST: the shipped MNIST CNN's 128-d penultimate layer,
    per channel), ``"pixels"`` (raw pixels in [0, 1]) or any ``nn.Module`` mapping a batch of
    images to (batch, d); see ``genmodels.metrics.features``. uint8 images are divided by 255;
    float images must lie in [0, 1].
    """
    return frechet_distance(image_features(x_images, features, batch_size),
                            image_features(y_images, features, batch_size))


@dataclass(frozen=True)
class KIDResult:
    """KID: the ``mean`` and population ``std`` over ``subsets`` of the unbiased MMD^2 (squared
    feature-kernel units) between random subsets of ``subset_size`` points of x (n_x) and y
    (n_y). ``float(result)`` is the mean."""

    mean: float
    std: float
    n_x: int
    n_y: int
    subsets: int
    subset_size: int

    def __float__(self) -> float:
        return self.mean


def polynomial_mmd(x: Tensor, y: Tensor, degree: int = 3, gamma: float | None = None,
                   coef: float = 1.0) -> Tensor:
    """Unbiased MMD^2 (U-statistic, diagonals left out) between x (n, d) and y (m, d) with the
    polynomial kernel k(a, b) = (gamma a.b + coef)^degree, gamma = 1/d by default; 0-d tensor.
    Memory O((n + m)^2): meant for KID subsets."""
    n, m = len(x), len(y)
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    k_xx = (x @ x.T * gamma + coef) ** degree
    k_yy = (y @ y.T * gamma + coef) ** degree
    k_xy = (x @ y.T * gamma + coef) ** degree
    within_x = (k_xx.sum() - k_xx.trace()) / (n * (n - 1))
    within_y = (k_yy.sum() - k_yy.trace()) / (m * (m - 1))
    return within_x + within_y - 2 * k_xy.mean()


def kid(x: Samples, y: Samples, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
        gamma: float | None = None, coef: float = 1.0, seed: int = 0) -> KIDResult:
    """Kernel inception distance (Bińkowski et al. 2018) between features x (n, d), y (m, d).

    For each of ``subsets`` rounds, ``subset_size`` points are drawn without replacement from
    x and, independently, from y, and the **unbiased** MMD^2 (U-statistic) with the cubic
    polynomial kernel k(a, b) = (a.b / d + 1)^3 is computed (``polynomial_mmd``); the result
    holds the mean and population standard deviation over rounds, as torchmetrics'
    ``KernelInceptionDistance``. Squared units; unbiased, so it may be < 0 when x and y come
    from one law. Computed in float64; subsets drawn from a ``torch.Generator`` seeded with
    ``seed`` (the global RNG is untouched). Raises ValueError if ``subset_size`` exceeds n or m.
    """
    x, y = check_samples(x, y)
    check_positive_int(subsets, "subsets")
    check_positive_int(subset_size, "subset_size")
    if subset_size < 2:
        raise ValueError("subset_size must be at least 2 for the unbiased MMD^2")
    for name, count in (("x", len(x)), ("y", len(y))):
        if subset_size > count:
            raise ValueError(f"subset_size={subset_size} exceeds the {count} samples of {name}; "
                             f"pass subset_size <= {min(len(x), len(y))}")
    generator = torch.Generator().manual_seed(seed)

    def subset(z: Tensor) -> Tensor:
        return z[torch.randperm(len(z), generator=generator)[:subset_size].to(z.device)]

    with torch.no_grad():
        x, y = x.double(), y.double()
        values = torch.stack([polynomial_mmd(subset(x), subset(y), degree, gamma, coef)
                              for _ in range(subsets)])
    return KIDResult(values.mean().item(), values.std(correction=0).item(), len(x), len(y),
                     subsets, subset_size)
