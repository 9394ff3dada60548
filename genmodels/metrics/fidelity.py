"""Fidelity and coverage of generated samples from k-nearest-neighbour balls: precision and recall
(Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020).

Each real point i gets a ball of radius r_i, its distance to its k-th nearest real neighbour
(itself left out); likewise each fake point j gets s_j among the fakes. With Euclidean
distances d_ij = |real_i - fake_j| and strict inequalities, as the ``prdc`` package:

- precision = share of fakes inside at least one real ball: mean_j [exists i: d_ij < r_i];
- recall    = share of reals inside at least one fake ball: mean_i [exists j: d_ij < s_j];
- density   = mean_j (number of real balls holding fake j) / k;
- coverage  = share of real balls holding at least one fake: mean_i [min_j d_ij < r_i].

Distances are computed ``chunk`` rows at a time (squared, one matmul per block, after
centring), so memory is O(chunk * max(n, m)) instead of prdc's three full distance matrices.
The scores are scale-invariant: both sets are first divided by one power of two s
(``unit_scale``), which is exact, so that squared distances neither overflow nor underflow.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from genmodels.metrics._checks import check_neighbours, check_positive_int, check_samples
from genmodels.metrics.kernels import unit_scale

Samples = Tensor | np.ndarray


def _shifted_squared_distances(a: Tensor, b: Tensor, b_norms: Tensor) -> Tensor:
    """(n, m) |b_j|^2 - 2 a_i.b_j = |a_i - b_j|^2 - |a_i|^2 for a (n, d), b (m, d), b_norms =
    |b_j|^2 (m,): one fused matmul (``torch.addmm``), without the passes that form and clamp
    the full squared distances (``kernels.squared_distances``); rows keep their order."""
    return torch.addmm(b_norms, a, b.T, alpha=-2)


def kth_neighbour_radii(x: Tensor, k: int, chunk: int = 1024) -> Tensor:
    """(n,) squared distance from each row of x (n, d) to its k-th nearest other row.

    The (k + 1)-th smallest squared distance in the row, the zero self-distance included, as
    prdc (``argpartition`` with k + 1): duplicates of a point count as neighbours at distance 0.
    Memory O(chunk * n). In x's units, so x should be at unit scale (``prdc`` rescales first).
    """
    check_neighbours(k, len(x), "x")
    x = x - x.mean(0)  # distances do not change; the matmul loses less precision
    norms = x.square().sum(1)
    radii = torch.empty(len(x), dtype=x.dtype, device=x.device)
    for start in range(0, len(x), chunk):
        # |x_i - x_j|^2 - |x_i|^2: the same order within a row
        block = _shifted_squared_distances(x[start:start + chunk], x, norms)
        rows = torch.arange(len(block), device=x.device)
        block_norms = norms[start:start + chunk]
        block[rows, rows + start] = -block_norms  # the self-distance is exactly 0
        kth = block.topk(k + 1, dim=1, largest=False).values[:, k]
        radii[start:start + chunk] = (kth + block_norms).clamp_min(0)
    return radii


def _ball_statistics(real: Tensor, fake: Tensor, real_radii: Tensor, fake_radii: Tensor | None,
                     chunk: int) -> tuple[Tensor, Tensor | None, Tensor]:
    """One pass over blocks of reals: per fake, the number of real balls holding it (n_fake,);
    per real, whether some fake ball holds it (n_real,) bool, or None without ``fake_radii``;
    per real, whether its ball holds some fake (n_real,) bool. Radii are squared."""
    centre = torch.cat([real, fake]).mean(0)
    real, fake = real - centre, fake - centre
    real_norms, fake_norms = real.square().sum(1), fake.square().sum(1)
    balls_per_fake = torch.zeros(len(fake), dtype=torch.long, device=real.device)
    in_fake_ball = torch.empty(len(real), dtype=torch.bool, device=real.device)
    covered = torch.empty(len(real), dtype=torch.bool, device=real.device)
    # block counts fit in int16 when chunk < 2^15: summing bytes so is 4x faster than bools
    count_dtype = torch.int16 if chunk < 2**15 else torch.int32
    for start in range(0, len(real), chunk):
        stop = start + chunk
        # |real_i - fake_j|^2 - |real_i|^2, compared with per-row thresholds radius - |real_i|^2
        block = _shifted_squared_distances(real[start:stop], fake, fake_norms)
        thresholds = (real_radii[start:stop] - real_norms[start:stop])[:, None]
        inside = block < thresholds
        balls_per_fake += inside.view(torch.uint8).sum(0, dtype=count_dtype)
        covered[start:stop] = block.amin(1) < thresholds[:, 0]
        if fake_radii is not None:  # |real_i - fake_j|^2 < s_j, in place on the block
            in_fake_ball[start:stop] = block.sub_(fake_radii).amin(1) < -real_norms[start:stop]
    return balls_per_fake, None if fake_radii is None else in_fake_ball, covered


def prdc(real: Samples, fake: Samples, k: int = 5, chunk: int = 1024) -> dict[str, float]:
    """Precision, recall, density and coverage of fake (m, d) against real (n, d) features.

    Returns ``{"precision", "recall", "density", "coverage"}`` as floats, the definitions and
    conventions of ``prdc.compute_prdc(real, fake, nearest_k=k)`` (Naeem et al. 2020; module
    docstring), computed in one chunked pass: memory O(chunk * max(n, m)). Precision, recall
    and coverage lie in [0, 1]; density in [0, n / k] (1 on average for fake ~ real). Needs
    1 <= k < min(n, m). Not differentiable.
    """
    real, fake = check_samples(real, fake, "real", "fake")
    check_neighbours(k, len(real), "real")
    check_neighbours(k, len(fake), "fake")
    check_positive_int(chunk, "chunk")
    with torch.no_grad():
        scale = unit_scale(real, fake)
        real, fake = real / scale, fake / scale
        real_radii = kth_neighbour_radii(real, k, chunk)
        fake_radii = kth_neighbour_radii(fake, k, chunk)
        balls_per_fake, in_fake_ball, covered = _ball_statistics(real, fake, real_radii,
                                                                 fake_radii, chunk)
    return {"precision": (balls_per_fake > 0).double().mean().item(),
            "recall": in_fake_ball.double().mean().item(),
            "density": balls_per_fake.double().sum().item() / (k * len(fake)),
            "coverage": covered.double().mean().item()}


def precision_recall(real: Samples, fake: Samples, k: int = 3,
                     chunk: int = 1024) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019; k = 3 as in the paper) of fake
    (m, d) against real (n, d) features: (precision, recall), the share of fakes inside the
    real k-NN balls and of reals inside the fake k-NN balls, both in [0, 1]; as ``prdc``
    (module docstring). Needs 1 <= k < min(n, m); memory O(chunk * max(n, m))."""
    scores = prdc(real, fake, k, chunk)
    return scores["precision"], scores["recall"]


def density_coverage(real: Samples, fake: Samples, k: int = 5,
                     chunk: int = 1024) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020; k = 5 as in the paper) of fake (m, d) against
    real (n, d) features: (density, coverage). Density = mean number of real k-NN balls holding
    a fake, over k (about 1 when fake ~ real, unbounded above); coverage = share of real balls
    holding a fake, in [0, 1]; as ``prdc`` (module docstring). Only real balls are needed:
    1 <= k < n; memory O(chunk * max(n, m))."""
    real, fake = check_samples(real, fake, "real", "fake")
    check_neighbours(k, len(real), "real")
    check_positive_int(chunk, "chunk")
    with torch.no_grad():
        scale = unit_scale(real, fake)
        real, fake = real / scale, fake / scale
        real_radii = kth_neighbour_radii(real, k, chunk)
        balls_per_fake, _, covered = _ball_statistics(real, fake, real_radii, None, chunk)
    return (balls_per_fake.double().sum().item() / (k * len(fake)),
            covered.double().mean().item())
