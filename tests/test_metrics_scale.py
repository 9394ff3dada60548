"""Metrics at extreme scales and on degenerate samples, against references at scale 1 (POT, prdc,
scipy, numpy) through the metrics' homogeneity: W_p, SW_p, the energy distance and the
Radon-Sobolev distance of far codes scale with the points; PRDC and the median-bandwidth MMD do
not change. In float32, squared distances overflow beyond |x| ~ 1e19 and underflow below 1e-19."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import ot
import prdc as prdc_package
import pytest
import torch
from scipy.spatial.distance import cdist, pdist

from genmodels.metrics import (
    density_coverage,
    energy_distance,
    median_distance,
    mmd,
    prdc,
    radon_sobolev_to_normal,
    sinkhorn,
    sliced_wasserstein,
    wasserstein,
)

F32, F64 = torch.float32, torch.float64
# float32 squares overflow (1e20) or underflow (1e-30); float64 squares overflow (1e200) or
# underflow (1e-200)
SCALES = [(F32, 1e20), (F32, 1e-30), (F64, 1e200), (F64, 1e-200)]
TOLERANCE = {F32: 1e-5, F64: 1e-10}  # relative; abs=0, as the values are tiny at small scales


def gaussian(*shape: int, seed: int, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return mean + std * torch.randn(*shape, generator=generator, dtype=F64)


def reference_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the sample sizes
        return {name: float(v) for name, v in
                prdc_package.compute_prdc(real, fake, nearest_k=k).items()}


def uniform(n: int) -> np.ndarray:
    return np.full(n, 1 / n)


# --- exact and entropic transport -----------------------------------------------------------

@pytest.mark.parametrize(("dtype", "scale"), SCALES)
def test_wasserstein_at_any_scale(dtype, scale):
    x, y = gaussian(40, 3, seed=0), gaussian(30, 3, seed=1, mean=0.5)
    for p in (1, 2):
        cost = ot.dist(x.numpy(), y.numpy(), metric="euclidean") ** p
        expected = scale * ot.emd2(uniform(40), uniform(30), cost) ** (1 / p)  # W_p(s x, s y)
        got = wasserstein((scale * x).to(dtype), (scale * y).to(dtype), p)
        assert got.dtype == dtype
        assert got.item() == pytest.approx(expected, rel=TOLERANCE[dtype], abs=0), p


@pytest.mark.parametrize(("dtype", "scale"), SCALES)
@pytest.mark.filterwarnings("ignore:Sinkhorn did not converge")
def test_sinkhorn_at_any_scale(dtype, scale):
    # p = 1, so that reg (in the units of the cost |x - y|^p) stays a float at every scale;
    # costs |x_i - x_j| from the matmul shortcut carry sqrt(eps) |x| of rounding (ours and POT's
    # alike), which the debiased terms OT(x, x) and OT(y, y) see: 1e-7, not 1e-10, in float64
    x, y = gaussian(30, 3, seed=0), gaussian(25, 3, seed=1, mean=0.5)
    for debiased in (False, True):
        value = ot.solve_sample(x.numpy(), y.numpy(), reg=0.5, reg_type="KL", metric="euclidean",
                                debias=debiased, max_iter=5000, tol=1e-13).value
        got = sinkhorn((scale * x).to(dtype), (scale * y).to(dtype), reg=0.5 * scale, p=1,
                       debiased=debiased, max_iter=5000, tol=1e-13)
        assert got.item() == pytest.approx(scale * value, rel=max(TOLERANCE[dtype], 1e-7),
                                           abs=0), debiased


def test_wasserstein_of_sets_1e20_apart_in_float32():
    # in float32 x + 1e20 is the point (1e20, 1e20, 1e20) n times: every coupling sends each
    # x_i there, so W_p^p = mean_i |x_i - c|^p
    x = gaussian(50, 3, seed=0).float()
    far = x + 1e20
    centre = far[0].double().numpy()
    for p in (1, 2):
        expected = np.mean(np.linalg.norm(x.double().numpy() - centre, axis=1) ** p) ** (1 / p)
        assert wasserstein(x, far, p).item() == pytest.approx(expected, rel=1e-6)
        entropic = sinkhorn(x, far, reg=1e-3 * expected**p, p=p).item()
        assert entropic == pytest.approx(expected, rel=1e-6)


def test_wasserstein_of_a_set_with_itself_is_zero_in_float32():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(200, 784, generator=generator)  # images in [0, 1], |x| ~ 16
    other = torch.rand(200, 784, generator=generator)
    # W(x, x) = 0; costs in float32 would be off by ~sqrt(eps) |x| (2e-3 here)
    between = ot.emd2(uniform(200), uniform(200), ot.dist(x.double().numpy(),
                                                          other.double().numpy())) ** 0.5
    assert wasserstein(x, x.clone()).item() < 1e-7 * between
    assert wasserstein(x, other).item() == pytest.approx(between, rel=1e-6)


# --- precision, recall, density, coverage ---------------------------------------------------

@pytest.mark.parametrize(("dtype", "scale"), SCALES)
def test_prdc_at_any_scale(dtype, scale):
    real, fake = gaussian(200, 8, seed=0), gaussian(150, 8, seed=1, mean=0.2, std=1.2)
    expected = reference_prdc(real.numpy(), fake.numpy(), 5)  # scale-invariant
    scaled_real, scaled_fake = (scale * real).to(dtype), (scale * fake).to(dtype)
    assert prdc(scaled_real, scaled_fake, k=5, chunk=64) == pytest.approx(expected, abs=1e-9)
    assert density_coverage(scaled_real, scaled_fake, k=5) == pytest.approx(
        (expected["density"], expected["coverage"]), abs=1e-9)
    itself = reference_prdc(real.numpy(), real.numpy(), 5)
    got = prdc(scaled_real, scaled_real.clone(), k=5)
    for name in ("precision", "recall", "coverage"):  # density has ties at each ball's edge
        assert got[name] == itself[name] == 1.0, name


# --- energy distance, MMD, sliced Wasserstein, Radon-Sobolev --------------------------------

def naive_energy(x: np.ndarray, y: np.ndarray) -> float:
    return 2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean()


def naive_rbf_mmd(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    """Unbiased MMD^2 with the kernel exp(-|x - y|^2 / (2 b^2)), full numpy matrices."""
    kxx, kyy, kxy = (np.exp(-cdist(a, b) ** 2 / (2 * bandwidth**2))
                     for a, b in ((x, x), (y, y), (x, y)))
    n, m = len(x), len(y)
    return ((kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - m) / (m * (m - 1))
            - 2 * kxy.mean())


@pytest.mark.parametrize(("dtype", "scale"), SCALES)
def test_pairwise_distances_at_any_scale(dtype, scale):
    x, y = gaussian(40, 5, seed=0), gaussian(30, 5, seed=1, mean=0.4)
    scaled_x, scaled_y = (scale * x).to(dtype), (scale * y).to(dtype)
    tolerance = TOLERANCE[dtype]
    assert energy_distance(scaled_x, scaled_y, chunk=16).item() == pytest.approx(
        scale * naive_energy(x.numpy(), y.numpy()), rel=tolerance, abs=0)
    median = np.median(pdist(np.concatenate([x.numpy(), y.numpy()])))
    assert median_distance(scaled_x, scaled_y) == pytest.approx(scale * median, rel=tolerance,
                                                                abs=0)
    rbf = naive_rbf_mmd(x.numpy(), y.numpy(), median)  # the median heuristic is scale-free
    assert mmd(scaled_x, scaled_y).item() == pytest.approx(rbf, rel=tolerance)
    assert mmd(scaled_x, scaled_y, bandwidths=2 * scale).item() == pytest.approx(
        naive_rbf_mmd(x.numpy(), y.numpy(), 2.0), rel=tolerance)
    projections = ot.sliced.get_random_projections(5, 20, seed=0)
    sliced = ot.sliced_wasserstein_distance(x.numpy(), y.numpy(), projections=projections)
    assert sliced_wasserstein(scaled_x, scaled_y, projections=projections).item() == (
        pytest.approx(scale * sliced, rel=tolerance, abs=0))


def test_radon_sobolev_of_huge_codes_in_float32():
    # |z| = 1e20: xi(r) = r - E|G| / sqrt(2) + O(1/r), so d^2 = mean |z_i| - mean |z_i - z_j| / 2
    # (V-statistic) to float32 precision
    z = gaussian(30, 4, seed=0)
    pairs = cdist(z.numpy(), z.numpy()).mean()
    expected = 1e20 * (np.linalg.norm(z.numpy(), axis=1).mean() - pairs / 2)
    assert radon_sobolev_to_normal((1e20 * z).float()).item() == pytest.approx(expected, rel=1e-5)


# --- degenerate samples ---------------------------------------------------------------------

def test_mmd_with_a_zero_median_distance_says_so():
    constant = torch.ones(6, 3)
    # 14 of 15 pooled images alike: 91 of the 105 pairs coincide
    images = torch.rand(2, 784, generator=torch.Generator().manual_seed(0))
    duplicated = images[[0] * 9 + [1]]
    for x, y in [(constant, constant.clone()), (duplicated, images[[0] * 5]),
                 (torch.cat([constant, torch.zeros(1, 3)]), constant)]:
        with pytest.raises(ValueError, match="median pairwise distance .* is 0.*pass bandwidths"):
            mmd(x, y)
    # an explicit bandwidth is used as given
    x, y = torch.cat([constant, torch.zeros(1, 3)]).double(), constant.double()
    assert mmd(x, y, bandwidths=1.0).item() == pytest.approx(
        naive_rbf_mmd(x.numpy(), y.numpy(), 1.0), rel=1e-12)


def test_median_distance_checks_its_inputs():
    with pytest.raises(ValueError, match="x has d=2 features but y has d=4"):
        median_distance(torch.zeros(3, 2), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        median_distance(torch.full((3, 2), np.nan), torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"x must have shape \(n, d\)"):
        median_distance(torch.zeros(5), torch.zeros(5))
    with pytest.raises(ValueError, match="at least 2 points"):
        median_distance(torch.zeros(1, 3))
    x = gaussian(31, 4, seed=0).numpy()  # one set, numpy: 465 pairs, an odd number
    assert median_distance(x) == pytest.approx(np.median(pdist(x)), rel=1e-12)
