"""Distances between two samples x (n, d) and y (m, d): energy distance, MMD, sliced Wasserstein,
and the Radon-Sobolev distance from a sample to N(0, I). Plain functions in the manner of POT."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from genmodels.metrics._checks import check_samples, outside_autocast
from genmodels.metrics.kernels import (
    checkpointed,
    median_bandwidth,
    pairwise_sum,
    safe_root,
    unit_scale,
)
from genmodels.metrics.radon_sobolev import xi_exact, xi_smooth

Samples = Tensor | np.ndarray
KERNELS = ("rbf", "imq", "energy")
XI_FUNCTIONS = {"exact": xi_exact, "smooth": xi_smooth}


def _negative_distance(sq: Tensor) -> Tensor:
    return -safe_root(sq)


def _kernel_mmd(x: Tensor, y: Tensor, kernel: Callable[[Tensor], Tensor], unbiased: bool,
                chunk: int) -> Tensor:
    """E k(X, X') + E k(Y, Y') - 2 E k(X, Y), with ``kernel`` acting on squared distances.

    Within-sample means are U-statistics (diagonal left out) if ``unbiased``, else
    V-statistics (diagonal included).
    """
    n, m = len(x), len(y)
    if unbiased and min(n, m) < 2:
        raise ValueError(f"unbiased=True needs at least 2 points in each sample, got n={n}, m={m}")
    within_x = pairwise_sum(x, None, kernel, chunk, exclude_diagonal=unbiased)
    within_y = pairwise_sum(y, None, kernel, chunk, exclude_diagonal=unbiased)
    cross = pairwise_sum(x, y, kernel, chunk)
    pairs_x, pairs_y = (n * (n - 1), m * (m - 1)) if unbiased else (n * n, m * m)
    return within_x / pairs_x + within_y / pairs_y - 2 * cross / (n * m)


@outside_autocast
def energy_distance(x: Samples, y: Samples, unbiased: bool = False, chunk: int = 4096) -> Tensor:
    """Squared energy distance D^2 = 2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely & Rizzo 2013).

    x (n, d), y (m, d); Euclidean norms; returns a 0-d tensor in the units of x, being a
    combination of mean distances ("squared" names D^2, whose root is the metric;
    scipy.stats.energy_distance returns sqrt(D^2), for d = 1). ``unbiased=False``: the
    V-statistic, within-sample means over all n^2 pairs including the zero diagonal, >= 0
    up to rounding; ``unbiased=True``: U-statistics over the n (n - 1) pairs i != j,
    unbiased, may be < 0. Differentiable (duplicate points give gradient 0, not NaN);
    memory O(chunk * max(n, m)). Computed on x / s, y / s and scaled back by s
    (``unit_scale``), so it is right at any finite scale.
    """
    x, y = check_samples(x, y)
    scale = unit_scale(x, y)
    return scale * _kernel_mmd(x / scale, y / scale, _negative_distance, unbiased, chunk)


@outside_autocast
def mmd(x: Samples, y: Samples, kernel: str = "rbf",
        bandwidths: float | Sequence[float] | None = None, unbiased: bool = True,
        chunk: int = 4096) -> Tensor:
    """Squared maximum mean discrepancy MMD^2 = E k(X, X') + E k(Y, Y') - 2 E k(X, Y).

    x (n, d), y (m, d); returns a 0-d tensor (Gretton et al. 2012). Kernels, summed over the
    bandwidths b:

    - ``"rbf"``: k = sum_b exp(-|x - y|^2 / (2 b^2)); default b = the median pairwise distance
      of the pooled samples (``median_distance``, at most 1000 points, detached). If it is 0
      (more than half of the pooled pairs coincide: constant or duplicated samples), the
      heuristic gives no bandwidth and ValueError asks for ``bandwidths``;
    - ``"imq"``: k = sum_b C / (C + |x - y|^2) with C = b; default C = 2 d, the choice of
      Tolstikhin et al. (2018, WAE), C = 2 d sigma^2, for a prior N(0, sigma^2 I) with sigma = 1;
    - ``"energy"``: k = -|x - y| (no bandwidths); MMD^2 is then ``energy_distance``.

    ``unbiased=True``: U-statistic (within-sample diagonal terms left out; unbiased, may be
    < 0); ``False``: V-statistic (biased upwards, >= 0). Differentiable; memory
    O(chunk * max(n, m)). Distances are taken on x / s, y / s (``unit_scale``), the widths
    2 b^2 and C divided by s^2, so any finite scale works.
    """
    x, y = check_samples(x, y)
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if kernel == "energy" and bandwidths is not None:
        raise ValueError("kernel='energy' takes no bandwidths")
    if bandwidths is not None:
        bandwidths = [float(b) for b in np.atleast_1d(bandwidths)]
        if not bandwidths or not all(b > 0 for b in bandwidths):  # NaN too
            raise ValueError(f"bandwidths must be positive, got {bandwidths}")
    scale = unit_scale(x, y)
    x, y = x / scale, y / scale
    if kernel == "energy":
        return scale * _kernel_mmd(x, y, _negative_distance, unbiased, chunk)
    # widths 2 b^2 (rbf) or C (imq) in the units of (x / s)^2, float64
    if kernel == "rbf" and bandwidths is None:  # x, y are in units of s already
        widths = x.new_tensor([2 * median_bandwidth(x, y) ** 2], dtype=torch.float64)
    else:
        given = x.new_tensor(bandwidths or [2.0 * x.shape[1]], dtype=torch.float64)
        given = given / scale.double()
        widths = 2 * given**2 if kernel == "rbf" else given / scale.double()
    # the kernels take |x - y|^2 / width; 1 / width is clamped to the dtype (inf * 0 is NaN)
    inverse = (1 / widths).clamp_max(torch.finfo(x.dtype).max).to(x.dtype)
    if kernel == "rbf":
        return _kernel_mmd(x, y, lambda sq: sum(torch.exp(sq * -w) for w in inverse),
                           unbiased, chunk)
    return _kernel_mmd(x, y, lambda sq: sum(1 / (1 + sq * w) for w in inverse), unbiased, chunk)


def _wasserstein_1d_power(u: Tensor, v: Tensor, p: int) -> Tensor:
    """sum over columns of W_p^p between the uniform empirical laws of u[:, l] and v[:, l].

    u (n, L), v (m, L). The integral over q in (0, 1) of |F_u^-1(q) - F_v^-1(q)|^p, with the
    quantile functions evaluated on the merged grid of levels {i / n} U {j / m}, as in
    ``ot.wasserstein_1d``.
    """
    u, v = u.sort(dim=0).values, v.sort(dim=0).values
    n, m = len(u), len(v)
    if n == m:
        return (u - v).abs().pow(p).sum() / n
    u_levels = torch.arange(1, n + 1, dtype=u.dtype, device=u.device) / n
    v_levels = torch.arange(1, m + 1, dtype=u.dtype, device=u.device) / m
    levels = torch.cat([u_levels, v_levels]).sort().values
    widths = torch.diff(levels, prepend=levels.new_zeros(1))
    u_quantiles = u[torch.searchsorted(u_levels, levels).clamp_max(n - 1)]
    v_quantiles = v[torch.searchsorted(v_levels, levels).clamp_max(m - 1)]
    return (widths[:, None] * (u_quantiles - v_quantiles).abs().pow(p)).sum()


def _sliced_cost(x: Tensor, y: Tensor, theta: Tensor, p: int) -> Tensor:
    """sum over the columns of theta (d, L) of W_p^p between the projections of x and y."""
    return _wasserstein_1d_power(x @ theta, y @ theta, p)


@outside_autocast
def sliced_wasserstein(x: Samples, y: Samples, n_projections: int = 50, p: int = 2,
                       seed: int | None = None, projections: Tensor | np.ndarray | None = None,
                       chunk: int = 1024) -> Tensor:
    """Monte Carlo sliced Wasserstein distance SW_p = (mean_theta W_p^p(theta#x, theta#y))^(1/p).

    x (n, d), y (m, d) with uniform weights; n != m is allowed. Returns a 0-d tensor in the
    units of x: SW_p itself, not raised to p, the convention of
    ``ot.sliced_wasserstein_distance`` (Bonneel et al. 2015), which it matches exactly given
    the same ``projections`` (d, L): unit columns theta, used as given (then ``n_projections``
    and ``seed`` are ignored). By default L = ``n_projections`` directions are drawn uniformly
    on the sphere, normalised Gaussians from a ``torch.Generator`` seeded with ``seed`` on x's
    device (the global RNG is neither used nor advanced), or from the global RNG if seed is
    None. Projections are processed ``chunk`` at a time, memory O((n + m) * chunk), in
    backward too (blocks are checkpointed).
    Differentiable in x and y (gradient 0, not NaN, when SW_p = 0). Computed on x / s, y / s
    and scaled back by s (``unit_scale``), so it is right at any finite scale.
    """
    x, y = check_samples(x, y)
    if p < 1:
        raise ValueError(f"p must be >= 1, got {p}")
    if chunk < 1:
        raise ValueError(f"chunk must be a positive int, got {chunk}")
    d = x.shape[1]
    if projections is None:
        if n_projections < 1:
            raise ValueError(f"n_projections must be a positive int, got {n_projections}")
        generator = None if seed is None else torch.Generator(x.device).manual_seed(seed)
        projections = torch.randn(d, n_projections, generator=generator, device=x.device,
                                  dtype=x.dtype)
        projections = projections / projections.norm(dim=0, keepdim=True)
    else:
        projections = torch.as_tensor(projections, dtype=x.dtype, device=x.device)
        if projections.dim() != 2 or projections.shape[0] != d:
            raise ValueError(f"projections must have shape (d, n_projections) with d={d}, "
                             f"got {tuple(projections.shape)}")
    scale = unit_scale(x, y)
    x, y = x / scale, y / scale
    if projections.shape[1] <= chunk:
        total = _sliced_cost(x, y, projections, p)
    else:
        total = sum(checkpointed(_sliced_cost, x, y, theta, p)
                    for theta in projections.split(chunk, dim=1))
    return scale * safe_root(total / projections.shape[1], p)


@outside_autocast
def radon_sobolev_to_normal(z: Samples, xi: str = "exact", chunk: int = 4096) -> Tensor:
    """Squared Radon-Sobolev distance from the empirical law of z (n, D) to N(0, I_D).

    d^2 = mean_i xi(|z_i|) - (1/2) mean_{i,j} |z_i - z_j| (Turinici 2019, arXiv:1911.13135),
    with xi(x) = E|x e_1 - G| - (1/2) E|G - G'|, G, G' ~ N(0, I_D). With ``xi="exact"``
    (``xi_exact``) this is exactly half the squared energy distance between the empirical law
    of z and N(0, I_D): no Monte Carlo, >= 0 up to rounding, in the units of z,
    V-statistic over the n^2 pairs. ``xi="smooth"`` uses ``xi_smooth``, an approximation.
    Returns a 0-d tensor; differentiable; memory O(chunk * n). Radii and distances are taken
    on z / s and scaled back by s (``unit_scale``): huge codes give large finite values, not
    overflow.
    """
    z, _ = check_samples(z, name_x="z")
    if xi not in XI_FUNCTIONS:
        raise ValueError(f"xi must be one of {tuple(XI_FUNCTIONS)}, got {xi!r}")
    scale = unit_scale(z)
    unit = z / scale
    radii = scale * safe_root(unit.square().sum(1))
    mean_distance = scale * pairwise_sum(unit, None, safe_root, chunk) / len(z) ** 2
    return XI_FUNCTIONS[xi](radii, z.shape[1]).mean() - mean_distance / 2
