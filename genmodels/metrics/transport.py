"""Optimal transport distances between samples x (n, d) and y (m, d) with uniform weights: exact
(POT's network simplex), entropic (POT's log-domain Sinkhorn) and between Gaussian fits.

All three return distances in the units of x (W_p, not W_p^p), like ``sliced_wasserstein``, and
are differentiable: POT's solvers give the gradient of the transport cost through the optimal
plan (envelope theorem), so they serve as training losses. Exact and entropic transport need
the (n, m) cost matrix: memory O(n m), unlike the chunked energy distance, MMD and sliced
Wasserstein. That matrix is computed in float64 on the points divided by a power of two s
(``unit_scale``), whatever their dtype, and the result scaled back by s: right at any scale,
and W_p(x, x) is of order 1e-8 |x| instead of sqrt(eps) |x| (2e-3 for 784 pixels in float32).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from genmodels.metrics._checks import check_samples
from genmodels.metrics.frechet import gaussian_fit, gaussian_w2_squared
from genmodels.metrics.kernels import safe_root, squared_distances, unit_scale

Samples = Tensor | np.ndarray


def _check_power(p: int) -> None:
    """Raise ValueError unless the transport cost's power p is an int >= 1."""
    if isinstance(p, bool) or not isinstance(p, int) or p < 1:
        raise ValueError(f"p must be an int >= 1, got {p!r}")


def _cost_matrix(x: Tensor, y: Tensor, p: int) -> Tensor:
    """(n, m) float64 costs |x_i - y_j|^p, after centring (distances are unchanged, precision
    improves); differentiable, gradient 0 (not NaN) at coincident points for p = 1."""
    x, y = x.double(), y.double()
    centre = torch.cat([x, y]).mean(0).detach()
    sq = squared_distances(x - centre, y - centre)
    return sq if p == 2 else safe_root(sq, 2 / p)


def _uniform(n: int, like: Tensor) -> Tensor:
    return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)


def wasserstein(x: Samples, y: Samples, p: int = 2, max_iter: int = 1_000_000) -> Tensor:
    """Exact p-Wasserstein distance W_p between the uniform empirical laws of x (n, d) and y (m, d).

    W_p = (min_P sum_ij P_ij |x_i - y_j|^p)^(1/p) over couplings P with marginals 1/n and 1/m,
    solved by POT's network simplex (``ot.emd2``; ``max_iter`` is its ``numItermax``). Returns a
    0-d tensor in the units of x: W_p itself, ``ot.emd2(a, b, M) ** (1 / p)`` with
    M = ``ot.dist(x, y, "euclidean") ** p``, in x's dtype; M is computed in float64 at unit
    scale (module docstring). Differentiable: POT sets the gradient of the
    cost with respect to M to the optimal plan; W_p = 0 has gradient 0. Memory and time grow
    as n m (the cost matrix) and faster (the simplex): meant for n, m up to a few thousand.
    """
    x, y = check_samples(x, y)
    _check_power(p)
    scale = unit_scale(x, y)
    costs = _cost_matrix(x / scale, y / scale, p)
    import ot  # POT imports scikit-learn: seconds, paid by the metrics that use it only

    cost = ot.emd2(_uniform(len(x), costs), _uniform(len(y), costs), costs, numItermax=max_iter)
    return (scale.double() * safe_root(cost, p)).to(x.dtype)


def sinkhorn(x: Samples, y: Samples, reg: float, p: int = 2, debiased: bool = False,
             max_iter: int = 1000, tol: float = 1e-9) -> Tensor:
    """Entropic optimal transport between the uniform empirical laws of x (n, d) and y (m, d).

    OT_reg(x, y) = min_P <P, C> + reg KL(P | a b^T), C_ij = |x_i - y_j|^p, a = 1/n, b = 1/m
    (Cuturi 2013), by POT's log-domain Sinkhorn (``ot.solve(C, reg=reg, reg_type="KL")``, its
    ``value``; ``max_iter`` and ``tol`` are POT's). ``reg`` is in the units of the cost,
    |x - y|^p. ``debiased=True`` returns the Sinkhorn divergence
    S = OT_reg(x, y) - (OT_reg(x, x) + OT_reg(y, y)) / 2 (Feydy et al. 2019), which is 0 for
    x = y; ``debiased=False`` is OT_reg(x, y) >= W_p^p, > 0 even for x = y.

    Returns a 0-d tensor in the units of x (in x's dtype): the p-th root of OT_reg (or of S,
    clamped at 0), which tends to ``wasserstein(x, y, p)`` as reg -> 0. The iterations run in
    float64 on the costs at unit scale, C / s^p with reg / s^p (module docstring).
    Differentiable by the envelope theorem (POT's ``grad="envelope"``: the gradient with
    respect to C is the plan, no unrolled iterations); memory O(n m).
    """
    x, y = check_samples(x, y)
    _check_power(p)
    if not reg > 0:
        raise ValueError(f"reg must be positive, got {reg}")
    scale = unit_scale(x, y)
    x, y = x / scale, y / scale
    unit_reg = math.ldexp(reg, -p * (math.frexp(scale.item())[1] - 1))  # reg / s^p, exactly

    import ot

    def entropic_cost(u: Tensor, v: Tensor) -> Tensor:
        costs = _cost_matrix(u, v, p)
        return ot.solve(costs, _uniform(len(u), costs), _uniform(len(v), costs), reg=unit_reg,
                        reg_type="KL", max_iter=max_iter, tol=tol, grad="envelope").value

    value = entropic_cost(x, y)
    if debiased:
        value = value - (entropic_cost(x, x) + entropic_cost(y, y)) / 2
    return (scale.double() * safe_root(value.clamp_min(0), p)).to(x.dtype)


def bures_wasserstein(x: Samples, y: Samples) -> Tensor:
    """2-Wasserstein distance between Gaussian fits of x (n, d) and y (m, d), 0-d tensor.

    W_2(N(mu_x, S_x), N(mu_y, S_y)) with maximum-likelihood (1/n) covariances, in the units of
    x (not squared): the square root of |mu_x - mu_y|^2 + Tr(S_x + S_y - 2 (S_x^(1/2) S_y
    S_x^(1/2))^(1/2)), as ``ot.gaussian.empirical_bures_wasserstein_distance(x, y, reg=0)``.
    It is a lower bound on ``wasserstein(x, y, 2)``, since the empirical laws have exactly these
    means and covariances (Gelbrich 1990); its square with unbiased covariances is
    ``frechet_distance``. Differentiable, also for
    singular covariances (n <= d, constant features), through ``psd_sqrt``; memory O(n d + d^2).
    """
    x, y = check_samples(x, y)
    return safe_root(gaussian_w2_squared(*gaussian_fit(x, False), *gaussian_fit(y, False)))
