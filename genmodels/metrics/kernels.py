"""Pairwise Euclidean distances between samples, summed block by block to bound memory."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from genmodels.metrics._checks import check_positive_int, check_samples


def safe_root(t: Tensor, p: float = 2.0) -> Tensor:
    """``t ** (1/p)`` elementwise for t >= 0, with gradient 0 (not NaN or Inf) where t == 0."""
    positive = t > 0
    return torch.where(positive, t.where(positive, 1.0) ** (1 / p), 0.0)


def unit_scale(*samples: Tensor) -> Tensor:
    """Detached 0-d tensor s, the power of two with max |entry| of ``samples`` / s in [1, 2)
    (s = 1 if all entries are 0), in the samples' dtype.

    Homogeneous metrics are computed on x / s and scaled back: dividing by a power of two is
    exact, so the result has the same bits as without it wherever squares stay normal floats,
    and stays right where they would overflow or underflow (|x| beyond 1e+-19 in float32,
    1e+-154 in float64).
    """
    largest = torch.stack([t.detach().abs().amax() for t in samples]).amax()
    power = largest / (2 * torch.frexp(largest).mantissa)  # largest = mantissa 2^e -> 2^(e-1)
    return torch.where(largest > 0, power, 1.0)


def squared_distances(x: Tensor, y: Tensor) -> Tensor:
    """(n, m) squared Euclidean distances |x_i - y_j|^2 for x (n, d), y (m, d).

    One matmul, |x|^2 + |y|^2 - 2 x.y, clamped at 0; it loses precision when |x_i - y_j| is
    small next to |x_i|, so centre the points first (``pairwise_sum`` does).
    """
    sq = x.square().sum(1, keepdim=True) + y.square().sum(1) - 2 * x @ y.T
    return sq.clamp_min(0)


def checkpointed(fn: Callable[..., Tensor], *args: object) -> Tensor:
    """``fn(*args)``, recomputed in backward instead of storing its intermediates when
    autograd would need them: memory for a block stays the block's, not the whole graph's."""
    if torch.is_grad_enabled() and any(torch.is_tensor(a) and a.requires_grad for a in args):
        return checkpoint(fn, *args, use_reentrant=False, preserve_rng_state=False)
    return fn(*args)


def pairwise_sum(x: Tensor, y: Tensor | None, fn: Callable[[Tensor], Tensor],
                 chunk: int = 4096, exclude_diagonal: bool = False) -> Tensor:
    """0-d tensor sum_{i,j} fn(|x_i - y_j|^2) for x (n, d), y (m, d); differentiable.

    ``fn`` maps a block of squared Euclidean distances elementwise (e.g. ``safe_root`` for
    distances). ``y=None`` pairs x with itself: the diagonal distances are then exactly 0,
    and ``exclude_diagonal=True`` leaves the n diagonal terms out of the sum. Rows of x are
    taken ``chunk`` at a time, so memory is O(chunk * m), in backward too: with more than
    one block, each is checkpointed (recomputed in backward).
    """
    if chunk < 1:
        raise ValueError(f"chunk must be a positive int, got {chunk}")
    if exclude_diagonal and y is not None:
        raise ValueError("exclude_diagonal=True needs y=None (pairs of x with itself)")
    self_pairs = y is None
    y = x if y is None else y
    centre = torch.cat([x, y]).mean(0).detach()  # distances do not change; precision does
    x, y = x - centre, y - centre
    columns = torch.arange(len(y), device=x.device)

    def block_sum(start: int, x_block: Tensor, y: Tensor) -> Tensor:
        sq = squared_distances(x_block, y)
        if not self_pairs:
            return fn(sq).sum()
        rows = torch.arange(start, start + len(x_block), device=x.device)
        diagonal = rows[:, None] == columns
        values = fn(sq.masked_fill(diagonal, 0.0))
        return (values.masked_fill(diagonal, 0.0) if exclude_diagonal else values).sum()

    if len(x) <= chunk:
        return block_sum(0, x, y)
    return sum(checkpointed(block_sum, start, x[start:start + chunk], y)
               for start in range(0, len(x), chunk))


def median_distance(x: Tensor | np.ndarray, y: Tensor | np.ndarray | None = None,
                    max_points: int = 1000) -> float:
    """Median of |z_i - z_j| over pairs i < j of the pooled points z = (x, y) (z = x if y is
    None), detached; x (n, d), y (m, d) as for the other metrics (``check_samples``).

    At most ``max_points`` of the pooled points are used, evenly spaced through (x, y); this
    is the median heuristic for kernel bandwidths (Gretton et al. 2012). Distances are exact
    differences in float64 (``torch.pdist``), after rescaling (``unit_scale``): duplicate
    points are at distance 0, and any finite scale works. With an even number of pairs, the
    lower of the two middle distances. Memory O(max_points^2).
    """
    x, y = check_samples(x, y)
    check_positive_int(max_points, "max_points")
    z = (x if y is None else torch.cat([x, y])).detach()
    if len(z) < 2:
        raise ValueError(f"median_distance needs at least 2 points, got {len(z)}")
    if len(z) > max_points:
        z = z[torch.linspace(0, len(z) - 1, max_points, device=z.device).round().long()]
    scale = unit_scale(z)
    return (torch.pdist((z / scale).double()).median() * scale.double()).item()


def median_bandwidth(x: Tensor, y: Tensor | None = None) -> float:
    """``median_distance(x, y)`` as a kernel bandwidth: raises ValueError if it is 0."""
    median = median_distance(x, y)
    if median == 0:
        raise ValueError(
            "the median pairwise distance of the pooled samples is 0 (more than half of the "
            "pairs of points coincide: constant or duplicated samples), so the median heuristic "
            "gives no kernel bandwidth; pass bandwidths explicitly, in the units of x")
    return median
