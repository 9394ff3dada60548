"""Distances in genmodels.metrics against independent references: scipy, POT, naive numpy,
closed forms and Monte Carlo."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import ot
import pytest
import scipy.integrate
import scipy.stats
import torch
from scipy.spatial.distance import cdist, pdist
from torch.utils._python_dispatch import TorchDispatchMode

from genmodels.metrics import (
    energy_distance,
    expected_norm_gaussian,
    mmd,
    radon_sobolev_to_normal,
    sliced_wasserstein,
    xi_exact,
    xi_smooth,
)
from genmodels.metrics._checks import check_samples

F64 = torch.float64


def gaussian(*shape: int, seed: int, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return mean + std * torch.randn(*shape, generator=generator, dtype=F64)


def naive_mmd(x: np.ndarray, y: np.ndarray, kernel, unbiased: bool) -> float:
    """MMD^2 from full numpy kernel matrices; ``kernel`` maps distances (not squared)."""
    kxx, kyy, kxy = kernel(cdist(x, x)), kernel(cdist(y, y)), kernel(cdist(x, y))
    n, m = len(x), len(y)
    if unbiased:
        return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
                + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())
    return kxx.mean() + kyy.mean() - 2 * kxy.mean()


def curvature_at_zero(dim: int) -> float:
    """xi''(0) = Gamma(1/2 + D/2) / (sqrt(2) Gamma(1 + D/2))."""
    return math.exp(math.lgamma(0.5 + dim / 2) - math.lgamma(1 + dim / 2)) / math.sqrt(2)


# --- input checks ---------------------------------------------------------------------------

@pytest.mark.parametrize(("x", "y", "message"), [
    (torch.zeros(3, 4), torch.zeros(3, 5), "x has d=4 features but y has d=5"),
    (torch.zeros(0, 4), torch.zeros(3, 4), "x is empty"),
    (torch.zeros(3, 4), torch.full((3, 4), math.nan), "y contains NaN or Inf"),
    (torch.full((3, 4), math.inf), torch.zeros(3, 4), "x contains NaN or Inf"),
    (torch.zeros(2, 1, 2, 2), torch.zeros(2, 4), r"reshape images to \(n, d\) with x.flatten\(1\)"),
])
@pytest.mark.parametrize("distance", [energy_distance, mmd, sliced_wasserstein])
def test_bad_inputs_raise(distance, x, y, message):
    with pytest.raises(ValueError, match=message):
        distance(x, y)


def test_bad_codes_raise():
    with pytest.raises(ValueError, match=r"z must have shape \(n, d\), got \(5,\)"):
        radon_sobolev_to_normal(torch.zeros(5))
    with pytest.raises(ValueError, match="z contains NaN or Inf"):
        radon_sobolev_to_normal(torch.tensor([[0.0, math.nan]]))


def test_check_samples_promotes_dtype():
    x, y = check_samples(np.zeros((2, 3)), torch.zeros(4, 3))
    assert x.dtype == y.dtype == F64
    x, y = check_samples(torch.zeros(2, 3, dtype=torch.int64), np.zeros((4, 3), np.float16))
    assert x.dtype == y.dtype == torch.float32


# --- energy distance ------------------------------------------------------------------------

def test_energy_distance_matches_scipy_in_1d():
    x, y = gaussian(50, seed=0), gaussian(70, seed=1, mean=0.5, std=2.0)
    # scipy returns sqrt(2 E|X-Y| - E|X-X'| - E|Y-Y'|), the V-statistic
    expected = scipy.stats.energy_distance(x.numpy(), y.numpy()) ** 2
    assert energy_distance(x[:, None], y[:, None]).item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("unbiased", [False, True])
def test_energy_distance_matches_naive_numpy(unbiased):
    x, y = gaussian(40, 5, seed=0), gaussian(30, 5, seed=1, mean=0.3)
    expected = naive_mmd(x.numpy(), y.numpy(), lambda dist: -dist, unbiased)
    got = energy_distance(x, y, unbiased=unbiased)
    assert got.item() == pytest.approx(expected, rel=1e-10)
    chunked = energy_distance(x.numpy(), y.numpy(), unbiased=unbiased, chunk=7)
    assert chunked.item() == pytest.approx(expected, rel=1e-10)
    as_float32 = energy_distance(x.float(), y.float(), unbiased=unbiased)
    assert as_float32.dtype == torch.float32
    assert as_float32.item() == pytest.approx(expected, rel=1e-4)


def test_energy_distance_gradients_chunked_and_at_duplicates():
    x = gaussian(30, 4, seed=0).requires_grad_()
    y = gaussian(20, 4, seed=1, mean=1.0)
    grads = [torch.autograd.grad(energy_distance(x, y, chunk=chunk), x)[0] for chunk in (7, 4096)]
    torch.testing.assert_close(grads[0], grads[1])
    duplicated = torch.cat([x, x[:3]])  # points repeated within x and across x and y
    loss = energy_distance(duplicated, duplicated.clone()) + energy_distance(x, x, unbiased=True)
    (grad,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(grad).all()
    assert energy_distance(x, x.clone()).item() < 1e-8


# --- MMD ------------------------------------------------------------------------------------

@pytest.mark.parametrize("unbiased", [False, True])
def test_mmd_with_energy_kernel_is_energy_distance(unbiased):
    x, y = gaussian(25, 3, seed=0), gaussian(35, 3, seed=1, std=1.5)
    assert mmd(x, y, kernel="energy", unbiased=unbiased).item() == pytest.approx(
        energy_distance(x, y, unbiased=unbiased).item(), rel=1e-12)


@pytest.mark.parametrize("unbiased", [False, True])
def test_mmd_matches_naive_numpy(unbiased):
    x, y = gaussian(40, 6, seed=0), gaussian(30, 6, seed=1, mean=0.2)
    bandwidths = [0.5, 2.0]
    rbf = naive_mmd(x.numpy(), y.numpy(), lambda dist: sum(
        np.exp(-dist**2 / (2 * b**2)) for b in bandwidths), unbiased)
    got = mmd(x, y, "rbf", bandwidths, unbiased=unbiased, chunk=9)
    assert got.item() == pytest.approx(rbf, rel=1e-10)
    imq = naive_mmd(x.numpy(), y.numpy(), lambda dist: 12 / (12 + dist**2), unbiased)
    assert mmd(x, y, "imq", unbiased=unbiased).item() == pytest.approx(imq, rel=1e-10)  # C = 2d
    # median heuristic: 50 pooled points, an odd number (1225) of pairs, so one median
    x, y = x[:30], y[:20]
    median = np.median(pdist(np.concatenate([x.numpy(), y.numpy()])))
    assert mmd(x, y, unbiased=unbiased).item() == pytest.approx(
        mmd(x, y, bandwidths=median, unbiased=unbiased).item(), rel=1e-10)


@pytest.mark.parametrize(("kernel", "bandwidths"), [("rbf", 1.0), ("imq", None)])
def test_unbiased_mmd_is_centred_under_the_null(kernel, bandwidths):
    repeats = 50
    estimates = {unbiased: torch.stack([
        mmd(gaussian(40, 3, seed=2 * i), gaussian(40, 3, seed=2 * i + 1), kernel, bandwidths,
            unbiased=unbiased) for i in range(repeats)]) for unbiased in (True, False)}
    unbiased = estimates[True]
    assert unbiased.mean().abs() < 3 * unbiased.std() / math.sqrt(repeats)
    biased = estimates[False]  # the V-statistic is biased upwards: the test can tell
    assert biased.mean() > 3 * biased.std() / math.sqrt(repeats)


@pytest.mark.parametrize("kernel", ["rbf", "imq", "energy"])
def test_mmd_gradients_are_finite(kernel):
    x = gaussian(20, 3, seed=0).requires_grad_()
    loss = mmd(torch.cat([x, x[:2]]), x.clone(), kernel) + mmd(x, x[:5].detach() + 1, kernel)
    (grad,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(grad).all()
    assert grad.abs().sum() > 0


def test_mmd_rejects_bad_options():
    x, y = gaussian(5, 2, seed=0), gaussian(5, 2, seed=1)
    with pytest.raises(ValueError, match="kernel must be one of"):
        mmd(x, y, kernel="laplace")
    with pytest.raises(ValueError, match="bandwidths must be positive"):
        mmd(x, y, bandwidths=[1.0, 0.0])
    with pytest.raises(ValueError, match="takes no bandwidths"):
        mmd(x, y, kernel="energy", bandwidths=1.0)
    with pytest.raises(ValueError, match="at least 2 points"):
        mmd(x[:1], y)


# --- sliced Wasserstein ---------------------------------------------------------------------

@pytest.mark.parametrize(("n", "m", "p"), [(60, 60, 2), (100, 60, 2), (45, 80, 1), (30, 70, 3)])
def test_sliced_wasserstein_equals_pot_given_projections(n, m, p):
    x, y = gaussian(n, 4, seed=0), gaussian(m, 4, seed=1, mean=0.5, std=1.5)
    projections = ot.sliced.get_random_projections(4, 30, seed=1)  # (d, L)
    expected = ot.sliced_wasserstein_distance(x.numpy(), y.numpy(), projections=projections, p=p)
    got = sliced_wasserstein(x, y, p=p, projections=projections, chunk=7)
    assert got.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("m", [100, 150])
def test_sliced_wasserstein_matches_pot_in_monte_carlo(m):
    x, y = gaussian(100, 6, seed=0), gaussian(m, 6, seed=1, mean=0.4, std=1.3)
    expected = ot.sliced_wasserstein_distance(x.numpy(), y.numpy(), n_projections=2000, p=2,
                                              seed=0)
    got = sliced_wasserstein(x, y, n_projections=2000, p=2, seed=1)
    assert got.item() == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("m", [50, 80])
def test_sliced_wasserstein_in_1d_is_wasserstein(m):
    x, y = gaussian(50, 1, seed=0), gaussian(m, 1, seed=1, mean=0.5, std=2.0)
    w1 = scipy.stats.wasserstein_distance(x[:, 0].numpy(), y[:, 0].numpy())
    assert sliced_wasserstein(x, y, n_projections=3, p=1).item() == pytest.approx(w1, rel=1e-12)
    w2 = ot.wasserstein_1d(x[:, 0].numpy(), y[:, 0].numpy(), p=2) ** 0.5
    assert sliced_wasserstein(x, y, n_projections=3, p=2).item() == pytest.approx(w2, rel=1e-12)


def test_sliced_wasserstein_seeding_and_gradients():
    x, y = gaussian(40, 5, seed=0), gaussian(30, 5, seed=1)
    state = torch.get_rng_state()
    first = sliced_wasserstein(x, y, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left alone
    assert sliced_wasserstein(x, y, seed=3).item() == first.item()
    assert sliced_wasserstein(x, y, seed=4).item() != first.item()
    x.requires_grad_()
    zero = sliced_wasserstein(x, x.clone(), seed=0)
    (grad,) = torch.autograd.grad(zero, x)
    assert zero.item() == 0 and torch.equal(grad, torch.zeros_like(x))
    grads = [torch.autograd.grad(sliced_wasserstein(x, y, seed=0, chunk=chunk), x)[0]
             for chunk in (7, 1024)]
    torch.testing.assert_close(grads[0], grads[1])
    with pytest.raises(ValueError, match=r"projections must have shape \(d, n_projections\)"):
        sliced_wasserstein(x, y, projections=torch.zeros(30, 5))


# --- Radon-Sobolev --------------------------------------------------------------------------

def test_xi_exact_in_1d_matches_closed_form():
    # D = 1: E|x - G| = x (2 Phi(x) - 1) + 2 phi(x) and E|G - G'| = 2 / sqrt(pi)
    r = np.array([0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 30.0])
    expected_distance = r * (2 * scipy.stats.norm.cdf(r) - 1) + 2 * scipy.stats.norm.pdf(r)
    closed = expected_distance - 1 / math.sqrt(math.pi)
    np.testing.assert_allclose(xi_exact(torch.tensor(r), 1).numpy(), closed, rtol=1e-11)


@pytest.mark.parametrize("dim", [2, 8])
def test_xi_exact_matches_monte_carlo(dim):
    draws = 400_000
    g = torch.randn(draws, dim, generator=torch.Generator().manual_seed(dim), dtype=F64)
    half_mean_pair = (g[: draws // 2] - g[draws // 2:]).norm(dim=1) / 2  # (1/2) |G - G'|
    for x in (0.0, 0.5, 2.0, 5.0):
        shifted = g[: draws // 2].clone()
        shifted[:, 0] -= x
        samples = shifted.norm(dim=1) - half_mean_pair  # |x e1 - G| - (1/2) |G - G'|, iid
        error = xi_exact(torch.tensor(x, dtype=F64), dim) - samples.mean()
        assert abs(error) < 4 * samples.std() / math.sqrt(len(samples)), (x, error)


@pytest.mark.parametrize("dim", [1, 2, 3, 8, 50])
def test_xi_exact_at_zero_and_far_away(dim):
    expected_norm = expected_norm_gaussian(dim)
    at_zero = xi_exact(torch.zeros(1, dtype=F64), dim)
    assert at_zero.item() == pytest.approx(expected_norm * (1 - 1 / math.sqrt(2)), rel=1e-12)
    # xi(x) = x - E|G| / sqrt(2) + (D - 1) / (2x) - (D - 1)(D - 3) / (8 x^3) + O(x^-5)
    x = torch.tensor([50.0, 100.0, 200.0], dtype=F64)
    asymptote = x - expected_norm / math.sqrt(2) + (dim - 1) / (2 * x)
    bound = 1.1 * abs((dim - 1) * (dim - 3)) / (8 * x**3) + 1e-8
    assert ((xi_exact(x, dim) - asymptote).abs() <= bound).all()


@pytest.mark.parametrize("dim", [1, 3, 8])
def test_xi_exact_gradient(dim):
    r = torch.tensor([0.0, 0.3, 1.7, 4.0, 9.0], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r: xi_exact(r, dim), (r,))
    (grad,) = torch.autograd.grad(xi_exact(r, dim).sum(), r)
    assert grad[0].item() == 0.0
    assert (grad[1:] > 0).all() and (grad < 1).all()  # xi is increasing, 1-Lipschitz


def test_xi_exact_terms():
    r = torch.tensor([0.0, 1.0, 5.0], dtype=F64)
    torch.testing.assert_close(xi_exact(r, 4, terms=200), xi_exact(r, 4))
    assert (xi_exact(r, 4, terms=2) - xi_exact(r, 4)).abs().max() > 0.1
    # each element gets its own window of terms: a batch equals its elements one by one
    r = torch.tensor([[0.0, 3.0], [40.0, 200.0]], dtype=F64)
    alone = torch.stack([xi_exact(radius, 5) for radius in r.flatten()]).reshape(2, 2)
    torch.testing.assert_close(xi_exact(r, 5), alone, rtol=1e-13, atol=0)


def expected_distance_closed_form(x: float, dim: int) -> tuple[float, float]:
    """E|x e1 - G| = sqrt(2) Gamma((D+1)/2) / Gamma(D/2) 1F1(-1/2; D/2; -x^2/2) and its
    derivative, sqrt(2) Gamma((D+1)/2) / Gamma(D/2) (x / D) 1F1(1/2; D/2 + 1; -x^2/2), by mpmath
    in 40 digits (the mean of a noncentral chi variable)."""
    mpmath.mp.dps = 40
    half_dim, z = mpmath.mpf(dim) / 2, -mpmath.mpf(x) ** 2 / 2
    factor = mpmath.sqrt(2) * mpmath.gamma(half_dim + mpmath.mpf(1) / 2) / mpmath.gamma(half_dim)
    return (float(factor * mpmath.hyp1f1(-0.5, half_dim, z)),
            float(factor * x / dim * mpmath.hyp1f1(0.5, half_dim + 1, z)))


def expected_distance_by_quadrature(x: float, dim: int) -> float:
    """E|x e1 - G| = E sqrt(T), T noncentral chi-square (dim, x^2), by scipy.integrate.quad."""
    density = scipy.stats.ncx2(dim, x * x) if x > 0 else scipy.stats.chi2(dim)
    mean, spread = dim + x * x, math.sqrt(2 * (dim + 2 * x * x))
    return scipy.integrate.quad(lambda t: math.sqrt(t) * density.pdf(t),
                                max(0.0, mean - 40 * spread), mean + 40 * spread,
                                points=[mean], epsabs=0, epsrel=1e-13, limit=500)[0]


@pytest.mark.parametrize("dim", [1, 2, 3, 8, 50, 500])
def test_xi_exact_matches_closed_form_and_quadrature(dim):
    # radii 0..50 cross the switch from the Poisson series to the large-radius expansion
    r = torch.cat([torch.linspace(0, 50, 101, dtype=F64), torch.tensor([1e4, 1e8], dtype=F64)])
    r.requires_grad_()
    (derivative,) = torch.autograd.grad(xi_exact(r, dim).sum(), r)
    offset = expected_norm_gaussian(dim) / math.sqrt(2)
    value = xi_exact(r.detach(), dim) + offset
    closed = np.array([expected_distance_closed_form(x, dim) for x in r.tolist()])
    np.testing.assert_allclose(value.numpy(), closed[:, 0], rtol=1e-12)
    np.testing.assert_allclose(derivative.numpy(), closed[:, 1], rtol=1e-11, atol=1e-15)
    quadrature = [expected_distance_by_quadrature(x, dim) for x in r[:101:10].tolist()]
    np.testing.assert_allclose(value[:101:10].numpy(), quadrature, rtol=1e-10)
    # the fixed series k = 0 .. 1999 holds all the Poisson(r^2/2 <= 1250) mass
    series = xi_exact(r[:101].detach(), dim, terms=2000) + offset
    np.testing.assert_allclose(value[:101].numpy(), series.numpy(), rtol=1e-11)
    switch = math.sqrt(2 * (dim + 120))  # r^2 / 2 = D + 120: series below, expansion above
    around = torch.tensor([switch - 1e-3, switch + 1e-3], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r: xi_exact(r, dim), (around,))


class LargestTensor(TorchDispatchMode):
    """Records the most elements of any tensor an operation returns while active."""

    def __init__(self) -> None:
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in torch.utils._pytree.tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self.numel = max(self.numel, leaf.numel())
        return out


def largest_tensor_of_xi(r: torch.Tensor, dim: int) -> tuple[int, torch.Tensor, torch.Tensor]:
    """(most elements of a tensor xi_exact allocates, xi(r), dxi/dr) for r (n,)."""
    r = r.clone().requires_grad_()
    with LargestTensor() as mode:
        value = xi_exact(r, dim)
        (derivative,) = torch.autograd.grad(value.sum(), r)
    return mode.numel, value.detach(), derivative


@pytest.mark.parametrize("huge", [1e4, 1e8, math.inf, math.nan])
def test_xi_exact_memory_does_not_grow_with_the_radius(huge):
    # a batch of 128 codes with one diverging: the window of Poisson terms used to be as wide
    # for every code as the widest needs, 24 sqrt(r^2 / 2) + 60 terms (1.7 TB for r = 1e8)
    dim = 8
    r = gaussian(128, dim, seed=0).norm(dim=1)
    baseline, _, _ = largest_tensor_of_xi(r, dim)
    r[5] = huge
    largest, value, derivative = largest_tensor_of_xi(r, dim)
    assert largest <= baseline
    if math.isnan(huge):
        assert math.isnan(value[5]) and math.isnan(derivative[5])
    elif math.isinf(huge):
        assert value[5].item() == math.inf and derivative[5].item() == 1.0
    else:
        closed = expected_distance_closed_form(huge, dim)
        offset = expected_norm_gaussian(dim) / math.sqrt(2)
        assert value[5].item() + offset == pytest.approx(closed[0], rel=1e-15)
        assert derivative[5].item() == pytest.approx(closed[1], rel=1e-15)
    others = torch.ones(128, dtype=torch.bool)
    others[5] = False
    torch.testing.assert_close(value[others], xi_exact(r[others], dim), rtol=1e-15, atol=0)


@pytest.mark.parametrize(("dim", "measured"), [(2, 0.3425), (8, 0.1764), (32, 0.0884)])
def test_xi_smooth_matches_xi_exact(dim, measured):
    zero = torch.zeros(1, dtype=F64)
    assert xi_smooth(zero, dim).item() == pytest.approx(xi_exact(zero, dim).item(), rel=1e-12)
    h = torch.tensor([-1e-3, 0.0, 1e-3], dtype=F64)
    second = [(f[0] + f[2] - 2 * f[1]).item() / 1e-6 for f in (xi_smooth(h, dim), xi_exact(h, dim))]
    assert second[0] == pytest.approx(second[1], rel=1e-5)
    # xi_smooth - xi decreases from 0 to E|G| - 1/xi''(0) < 0 as x grows, its sup distance
    r = torch.cat([torch.linspace(0, 10, 501, dtype=F64), torch.logspace(1, 2.3, 300, dtype=F64)])
    gap = xi_smooth(r, dim) - xi_exact(r, dim)
    limit = expected_norm_gaussian(dim) - 1 / curvature_at_zero(dim)
    assert (gap.diff() <= 1e-12).all()
    assert limit < gap[-1].item() < 0.9 * limit and abs(limit) == pytest.approx(measured, rel=1e-3)


def test_radon_sobolev_to_normal_detects_departures():
    dim, n = 8, 2000
    z = gaussian(n, dim, seed=0)
    null = radon_sobolev_to_normal(z).item()
    # E d^2 = E|G - G'| / (2n) under the null: the V-statistic keeps the n zero pairs i = j
    assert 0 < null < 3 * math.sqrt(2) * expected_norm_gaussian(dim) / (2 * n)
    assert radon_sobolev_to_normal(2 * z).item() > 100 * null
    assert radon_sobolev_to_normal(z + 1).item() > 100 * null
    smooth = radon_sobolev_to_normal(2 * z, xi="smooth")
    exact = radon_sobolev_to_normal(2 * z)
    assert abs(smooth - exact) < abs(expected_norm_gaussian(dim) - 1 / curvature_at_zero(dim))


def test_radon_sobolev_is_half_the_energy_distance_to_a_gaussian_sample():
    dim, n, m, repeats = 4, 300, 2000, 8
    z = gaussian(n, dim, seed=0, std=1.5)
    exact = radon_sobolev_to_normal(z).item()
    estimates = torch.stack([energy_distance(z, gaussian(m, dim, seed=1 + i))
                             for i in range(repeats)])
    # the V-statistic's within-G mean is (1 - 1/m) E|G - G'|, E|G - G'| = sqrt(2) E|G|
    expected = 2 * exact + math.sqrt(2) * expected_norm_gaussian(dim) / m
    standard_error = estimates.std().item() / math.sqrt(repeats)
    assert abs(estimates.mean().item() - expected) < 5 * standard_error
    assert standard_error < 0.05 * expected


def test_radon_sobolev_gradient():
    z = gaussian(6, 3, seed=0).requires_grad_()
    assert torch.autograd.gradcheck(lambda z: radon_sobolev_to_normal(z, chunk=4), (z,))
    with_kinks = torch.cat([z, z[:2], torch.zeros(1, 3)])  # duplicates and a zero code
    loss = radon_sobolev_to_normal(with_kinks) + radon_sobolev_to_normal(with_kinks, "smooth")
    (grad,) = torch.autograd.grad(loss, z)
    assert torch.isfinite(grad).all()


def test_training_distances_ignore_autocast():
    """Used as training losses under ``train.amp``, the distances keep float32: bfloat16 would
    cancel in |x|² + |y|² - 2 x·y for points far from the origin (images near 1)."""
    torch.manual_seed(0)
    a, b = 0.9 + 0.05 * torch.rand(64, 784), 0.9 + 0.05 * torch.rand(64, 784)
    distances = {"energy": lambda: energy_distance(a, b), "mmd": lambda: mmd(a, b),
                 "sliced": lambda: sliced_wasserstein(a, b, seed=0),
                 "radon_sobolev": lambda: radon_sobolev_to_normal(a[:, :8] * 10)}
    for name, distance in distances.items():
        exact = float(distance())
        with torch.autocast("cpu", torch.bfloat16):
            assert float(distance()) == pytest.approx(exact, rel=1e-6), name
