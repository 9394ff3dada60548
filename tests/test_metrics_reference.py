"""Transport, Fréchet, KID, fidelity and diversity metrics against independent references: POT,
torchmetrics, prdc, vendi-score, scikit-learn, scipy and closed forms."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import ot
import prdc as prdc_package
import pytest
import scipy.linalg
import scipy.stats
import sklearn.cluster
import sklearn.metrics
import torch
from scipy.spatial.distance import cdist, jensenshannon, pdist
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance, poly_mmd
from vendi_score import vendi

from genmodels.metrics import (
    birthday_test,
    bures_wasserstein,
    density_coverage,
    frechet_distance,
    kid,
    kmeans,
    ndb,
    polynomial_mmd,
    prdc,
    precision_recall,
    psd_sqrt,
    sinkhorn,
    vendi_score,
    wasserstein,
)
from genmodels.metrics.frechet import gaussian_fit, gaussian_w2_squared

F64 = torch.float64
pytestmark = [  # noise from the reference packages
    pytest.mark.filterwarnings("ignore:Please import `csr_matrix`:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save"),
]


def gaussian(*shape: int, seed: int, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return mean + std * torch.randn(*shape, generator=generator, dtype=F64)


def with_moments(n: int, mean: np.ndarray, cov: np.ndarray, seed: int, ddof: int) -> np.ndarray:
    """n points whose sample mean and covariance (divided by n - ddof) are exactly mean, cov."""
    z = np.random.default_rng(seed).standard_normal((n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(z.T @ z / (n - ddof))).T  # exactly white
    return mean + z @ np.linalg.cholesky(cov).T


def closed_form_w2_squared(m1, s1, m2, s2) -> float:
    """|m1 - m2|^2 + Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2) by scipy.linalg.sqrtm."""
    root = scipy.linalg.sqrtm(s1)
    cross = scipy.linalg.sqrtm(root @ s2 @ root)
    return float(np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * cross.real))


def random_cov(d: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


class Identity(nn.Module):
    """Features as given, with the ``num_features`` torchmetrics asks a custom extractor for."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def reference_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the sample sizes
        return prdc_package.compute_prdc(real, fake, nearest_k=k)


# --- bad input ------------------------------------------------------------------------------

PAIRED = {
    "wasserstein": wasserstein,
    "sinkhorn": lambda x, y: sinkhorn(x, y, reg=1.0),
    "bures_wasserstein": bures_wasserstein,
    "frechet_distance": frechet_distance,
    "kid": lambda x, y: kid(x, y, subsets=2, subset_size=2),
    "prdc": lambda x, y: prdc(x, y, k=1),
    "precision_recall": lambda x, y: precision_recall(x, y, k=1),
    "density_coverage": lambda x, y: density_coverage(x, y, k=1),
    "ndb": lambda x, y: ndb(x, y, bins=2),
}


@pytest.mark.parametrize(("x", "y", "message"), [
    (torch.zeros(3, 4), torch.zeros(3, 5), "has d=4 features but .* has d=5"),
    (torch.zeros(0, 4), torch.zeros(3, 4), "is empty"),
    (torch.zeros(3, 4), torch.full((3, 4), math.nan), "contains NaN or Inf"),
    (torch.full((3, 4), math.inf), torch.zeros(3, 4), "contains NaN or Inf"),
])
@pytest.mark.parametrize("name", list(PAIRED))
def test_bad_inputs_raise(name, x, y, message):
    with pytest.raises(ValueError, match=message):
        PAIRED[name](x, y)


@pytest.mark.parametrize("metric", [vendi_score, lambda x: birthday_test(x, s=2)])
def test_bad_single_sets_raise(metric):
    with pytest.raises(ValueError, match="is empty"):
        metric(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="contains NaN or Inf"):
        metric(torch.tensor([[0.0, math.nan], [1.0, 2.0]]))


def test_too_many_neighbours_or_too_large_subsets_raise():
    x, y = gaussian(5, 2, seed=0), gaussian(8, 2, seed=1)
    with pytest.raises(ValueError, match="k=5 nearest neighbours need k < n, but real has n=5"):
        prdc(x, y, k=5)
    with pytest.raises(ValueError, match="k=4 nearest neighbours need k < n, but fake has n=4"):
        precision_recall(y, x[:4], k=4)
    with pytest.raises(ValueError, match="k=6 nearest neighbours need k < n, but real has n=5"):
        density_coverage(x, y, k=6)
    with pytest.raises(ValueError, match="subset_size=6 exceeds the 5 samples of x"):
        kid(x, y, subset_size=6)
    with pytest.raises(ValueError, match=r"s must be an int in \[2, n=5\]"):
        birthday_test(x, s=6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    x, y = gaussian(300, 6, seed=0), gaussian(200, 6, seed=1, mean=0.3)
    for name, metric in [("wasserstein", wasserstein), ("bures", bures_wasserstein),
                         ("sinkhorn", lambda x, y: sinkhorn(x, y, 1.0)),
                         ("frechet", lambda x, y: frechet_distance(x, y).value),
                         ("kid", lambda x, y: kid(x, y, 10, 100).mean),
                         ("prdc", lambda x, y: prdc(x, y, 3)["coverage"]),
                         ("vendi", lambda x, y: vendi_score(x)),
                         ("ndb", lambda x, y: ndb(x, y, bins=10).js_divergence)]:
        on_cpu, on_cuda = metric(x, y), metric(x.cuda(), y.cuda())
        assert float(on_cuda) == pytest.approx(float(on_cpu), rel=1e-6, abs=1e-9), name


# --- exact and entropic transport -----------------------------------------------------------

@pytest.mark.parametrize("p", [1, 2, 3])
def test_wasserstein_equals_pot_emd2(p):
    x, y = gaussian(40, 3, seed=0), gaussian(55, 3, seed=1, mean=0.5, std=1.5)
    cost = ot.dist(x.numpy(), y.numpy(), metric="euclidean") ** p
    expected = ot.emd2(np.full(40, 1 / 40), np.full(55, 1 / 55), cost) ** (1 / p)
    assert wasserstein(x, y, p).item() == pytest.approx(expected, rel=1e-10)
    assert wasserstein(x.numpy(), y.numpy(), p).item() == pytest.approx(expected, rel=1e-10)


def test_wasserstein_closed_forms():
    x = gaussian(50, 3, seed=0)
    # a translation moves every point by b: W_p = |b| for every p
    b = torch.tensor([0.3, -1.0, 2.0], dtype=F64)
    for p in (1, 2):
        assert wasserstein(x, x + b, p).item() == pytest.approx(b.norm().item(), rel=1e-10)
    # y_i = A x_i with A symmetric positive definite is the gradient of a convex map, hence
    # the optimal pairing (Brenier): W_2^2 = mean |x_i - A x_i|^2
    a = torch.tensor(random_cov(3, seed=2))
    y = x @ a
    expected = (x - y).square().sum(1).mean().sqrt().item()
    assert wasserstein(x, y[torch.randperm(50)]).item() == pytest.approx(expected, rel=1e-10)


def test_wasserstein_gradient():
    x = gaussian(12, 2, seed=0).requires_grad_()
    y = gaussian(9, 2, seed=1, mean=1.0)
    assert torch.autograd.gradcheck(lambda x: wasserstein(x, y), (x,))
    (grad,) = torch.autograd.grad(wasserstein(x, x.detach().clone(), p=1), x)
    assert torch.equal(grad, torch.zeros_like(x))  # W = 0: gradient 0, not NaN


SINKHORN_SLOW = "ignore:Sinkhorn did not converge"  # POT's log-domain Sinkhorn stalls near tol


@pytest.mark.filterwarnings(SINKHORN_SLOW)  # both run the same iterations
@pytest.mark.parametrize(("p", "metric"), [(2, "sqeuclidean"), (1, "euclidean")])
@pytest.mark.parametrize("debiased", [False, True])
def test_sinkhorn_equals_pot(p, metric, debiased):
    x, y = gaussian(30, 3, seed=0), gaussian(45, 3, seed=1, mean=0.5)
    expected = ot.solve_sample(x.numpy(), y.numpy(), reg=0.5, reg_type="KL", metric=metric,
                               debias=debiased, max_iter=2000).value
    got = sinkhorn(x, y, 0.5, p, debiased, max_iter=2000).item() ** p
    assert got == pytest.approx(expected, rel=1e-8)


@pytest.mark.filterwarnings(SINKHORN_SLOW)  # marginals within 2e-6: the bounds have slack
def test_sinkhorn_tends_to_wasserstein():
    x, y = gaussian(30, 2, seed=0), gaussian(30, 2, seed=1, mean=0.5)
    exact = wasserstein(x, y).item() ** 2
    gaps = []
    for reg in (1.0, 0.3, 0.1):
        entropic = sinkhorn(x, y, reg, max_iter=20_000, tol=1e-6).item() ** 2
        # W^2 <= OT_reg <= W^2 + reg KL(P* | a b^T), and KL(P* | a b^T) <= log n
        assert exact - 1e-4 <= entropic <= exact + reg * math.log(30) + 1e-4
        gaps.append(entropic - exact)
    assert gaps[0] > gaps[1] > gaps[2]
    same = sinkhorn(x, x.clone(), 0.5, debiased=True)
    assert same.item() == pytest.approx(0, abs=1e-6)


def test_sinkhorn_gradient_is_the_envelope_gradient():
    x = gaussian(8, 2, seed=0).requires_grad_()
    y = gaussian(10, 2, seed=1, mean=0.5)
    assert torch.autograd.gradcheck(lambda x: sinkhorn(x, y, 0.5, tol=1e-14, max_iter=10_000),
                                    (x,), atol=1e-6)


# --- Gaussian fits: Bures-Wasserstein and Fréchet -------------------------------------------

def test_bures_wasserstein_equals_pot():
    x, y = gaussian(60, 4, seed=0), gaussian(80, 4, seed=1, mean=0.5, std=1.3)
    expected = ot.gaussian.empirical_bures_wasserstein_distance(x.numpy(), y.numpy(), reg=0)
    assert bures_wasserstein(x, y).item() == pytest.approx(float(expected), rel=1e-10)


def test_bures_wasserstein_closed_form_and_gelbrich_bound():
    m1, m2 = np.array([0.0, 1.0, -1.0]), np.array([0.5, 0.0, 2.0])
    s1, s2 = random_cov(3, seed=0), random_cov(3, seed=1)
    x = with_moments(70, m1, s1, seed=0, ddof=0)  # maximum-likelihood moments exactly m, S
    y = with_moments(90, m2, s2, seed=1, ddof=0)
    expected = math.sqrt(closed_form_w2_squared(m1, s1, m2, s2))
    assert bures_wasserstein(x, y).item() == pytest.approx(expected, rel=1e-10)
    # the empirical laws have these moments: W_2 between them is at least the Gaussian one
    assert wasserstein(x, y).item() >= bures_wasserstein(x, y).item()


def test_bures_wasserstein_gradients():
    x = gaussian(10, 3, seed=0).requires_grad_()
    y = gaussian(12, 3, seed=1, mean=0.3, std=1.4)
    assert torch.autograd.gradcheck(bures_wasserstein, (x, y))
    # singular covariances: fewer points than dimensions, and a constant feature
    z = torch.cat([gaussian(4, 6, seed=2), torch.ones(4, 1, dtype=F64)], 1).requires_grad_()
    loss = bures_wasserstein(z, gaussian(5, 7, seed=3)) + bures_wasserstein(z, z.detach())
    (grad,) = torch.autograd.grad(loss, z)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_psd_sqrt_matches_scipy_and_its_gradient_is_right():
    a = torch.tensor(random_cov(5, seed=0))
    np.testing.assert_allclose(psd_sqrt(a).numpy(), scipy.linalg.sqrtm(a.numpy()).real,
                               rtol=1e-10, atol=1e-12)
    a.requires_grad_()
    assert torch.autograd.gradcheck(lambda a: psd_sqrt((a + a.T) / 2), (a,))
    singular = torch.diag(torch.tensor([4.0, 1.0, 0.0, 0.0], dtype=F64)).requires_grad_()
    root = psd_sqrt(singular)
    torch.testing.assert_close(root, torch.diag(torch.tensor([2.0, 1.0, 0.0, 0.0], dtype=F64)))
    (grad,) = torch.autograd.grad(root.trace(), singular)  # d tr sqrt(A) = A^(-1/2) / 2
    torch.testing.assert_close(grad, torch.diag(torch.tensor([0.25, 0.5, 0.0, 0.0], dtype=F64)))


def test_frechet_distance_closed_form():
    m1, m2 = np.array([1.0, 0.0, 0.0, 2.0]), np.array([0.0, 0.5, 0.0, 1.0])
    s1, s2 = random_cov(4, seed=2), random_cov(4, seed=3)
    x = with_moments(50, m1, s1, seed=0, ddof=1)  # unbiased moments exactly m, S
    y = with_moments(65, m2, s2, seed=1, ddof=1)
    result = frechet_distance(x, y)
    assert result.value == pytest.approx(closed_form_w2_squared(m1, s1, m2, s2), rel=1e-10)
    assert (result.n_x, result.n_y) == (50, 65) and float(result) == result.value


def test_frechet_distance_matches_torchmetrics():
    x, y = gaussian(300, 16, seed=0), gaussian(250, 16, seed=1, mean=0.2, std=1.2)
    metric = FrechetInceptionDistance(feature=Identity(16)).double()
    metric.update(x, real=True)
    metric.update(y, real=False)
    assert frechet_distance(x, y).value == pytest.approx(metric.compute().item(), rel=1e-6)


def test_frechet_distance_of_a_set_with_itself_is_zero_and_never_nan():
    x = gaussian(200, 10, seed=0)
    assert frechet_distance(x, x.clone()).value == pytest.approx(0, abs=1e-10)
    # rank-deficient covariances (n < d), where sqrtm of the product returns complex values
    few, other = gaussian(5, 20, seed=1), gaussian(6, 20, seed=2, std=2.0)
    assert frechet_distance(few, few).value == pytest.approx(0, abs=1e-10)
    value = frechet_distance(few, other).value
    assert math.isfinite(value) and value > 0
    assert frechet_distance(few.float(), other.float()).value == pytest.approx(value, rel=1e-5)


def test_frechet_distance_with_fewer_samples_than_features_is_the_full_formula():
    """Below d samples the distance goes through the nuclear norm of A_x A_yᵀ (O(n m d));
    it equals the eigendecomposition route, and the closed form of the same fits."""
    x, y = gaussian(12, 300, seed=3), gaussian(9, 300, seed=4, mean=0.1, std=1.3)
    full = gaussian_w2_squared(*gaussian_fit(x, True), *gaussian_fit(y, True))
    assert frechet_distance(x, y).value == pytest.approx(float(full), rel=1e-9)
    small_x, small_y = gaussian(6, 8, seed=5), gaussian(5, 8, seed=6, std=0.5)
    expected = closed_form_w2_squared(small_x.mean(0).numpy(), np.cov(small_x.numpy().T),
                                      small_y.mean(0).numpy(), np.cov(small_y.numpy().T))
    assert frechet_distance(small_x, small_y).value == pytest.approx(expected, rel=1e-8)


# --- KID ------------------------------------------------------------------------------------

def test_polynomial_mmd_matches_torchmetrics_and_numpy():
    x, y = gaussian(40, 6, seed=0), gaussian(40, 6, seed=1, mean=0.3)
    expected = poly_mmd(x, y).item()  # (x.y / d + 1)^3, unbiased; equal sizes only
    assert polynomial_mmd(x, y).item() == pytest.approx(expected, rel=1e-12)
    x, y = x.numpy(), y[:25].numpy()
    k_xx, k_yy, k_xy = ((a @ b.T / 6 + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    within = [(k.sum() - np.trace(k)) / (len(k) * (len(k) - 1)) for k in (k_xx, k_yy)]
    expected = within[0] + within[1] - 2 * k_xy.mean()
    assert polynomial_mmd(torch.tensor(x), torch.tensor(y)).item() == pytest.approx(expected,
                                                                                    rel=1e-12)


def test_kid_matches_torchmetrics_on_whole_sets():
    x, y = gaussian(60, 5, seed=0), gaussian(60, 5, seed=1, mean=0.4)
    metric = KernelInceptionDistance(feature=Identity(5), subsets=3, subset_size=60).double()
    metric.update(x, real=True)
    metric.update(y, real=False)
    expected_mean, expected_std = metric.compute()
    result = kid(x, y, subsets=3, subset_size=60)  # subsets of every point: no randomness
    assert result.mean == pytest.approx(expected_mean.item(), rel=1e-10)
    assert result.std == pytest.approx(expected_std.item(), abs=1e-12)


def test_kid_subsets_average_to_the_whole_set_statistic():
    x, y = gaussian(200, 4, seed=0), gaussian(150, 4, seed=1, mean=0.3)
    whole = polynomial_mmd(x, y).item()
    result = kid(x, y, subsets=400, subset_size=50, seed=0)
    # each subset's U-statistic is unbiased for the whole-set one
    assert abs(result.mean - whole) < 4 * result.std / math.sqrt(400)
    assert kid(x, y, subsets=5, subset_size=50, seed=1).mean != kid(x, y, 5, 50, seed=2).mean


# --- precision, recall, density, coverage ---------------------------------------------------

@pytest.mark.parametrize("k", [1, 3, 5])
def test_prdc_matches_the_prdc_package(k):
    real = gaussian(300, 8, seed=0).numpy()
    fake = gaussian(250, 8, seed=1, mean=0.2, std=1.2).numpy()
    expected = reference_prdc(real, fake, k)
    got = prdc(real, fake, k, chunk=64)
    assert got == pytest.approx({name: float(v) for name, v in expected.items()}, abs=1e-6)
    assert precision_recall(real, fake, k, chunk=37) == pytest.approx(
        (expected["precision"], expected["recall"]), abs=1e-6)
    assert density_coverage(real, fake, k) == pytest.approx(
        (expected["density"], expected["coverage"]), abs=1e-6)


def test_prdc_of_a_set_with_itself():
    x = gaussian(100, 4, seed=0)
    scores = prdc(x, x.clone(), k=3)
    assert scores["precision"] == scores["recall"] == scores["coverage"] == 1.0
    far = prdc(x, x + 100.0, k=3)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


# --- Vendi score ----------------------------------------------------------------------------

@pytest.mark.parametrize("q", [0.5, 1.0, 2.0, math.inf])
@pytest.mark.parametrize("n", [40, 12])  # d < n (dual (d, d) spectrum) and d > n
def test_vendi_cosine_matches_vendi_score(q, n):
    x = gaussian(n, 20, seed=0, mean=0.5).numpy()
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    q_vendi = "inf" if math.isinf(q) else q
    # both spectra carry the same positive eigenvalues; vendi's own choice is the smaller one
    expected = (vendi.score_dual(x, q_vendi) if n > 20 else
                vendi.score_K(unit @ unit.T, q=q_vendi))
    assert vendi_score(x, "cosine", q) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("q", [0.5, 1.0, 2.0])
def test_vendi_rbf_matches_vendi_score(q):
    x = gaussian(50, 3, seed=0).numpy()
    distances = cdist(x, x)
    for bandwidth in (0.5, None):
        b = np.median(pdist(x)) if bandwidth is None else bandwidth
        expected = vendi.score_K(np.exp(-distances**2 / (2 * b * b)), q=q)
        assert vendi_score(x, "rbf", q, bandwidth) == pytest.approx(expected, rel=1e-9)


def test_vendi_bounds():
    assert vendi_score(torch.ones(30, 4)) == pytest.approx(1.0, rel=1e-9)  # all alike
    assert vendi_score(torch.eye(6)) == pytest.approx(6.0, rel=1e-9)  # all orthogonal
    with pytest.raises(ValueError, match="kernel must be one of"):
        vendi_score(torch.eye(3), kernel="laplace")


# --- k-means and NDB ------------------------------------------------------------------------

def blobs(counts: list[int], seed: int, centres: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Points around well-separated centres, counts[c] of them around centre c, and labels."""
    labels = np.repeat(np.arange(len(counts)), counts)
    noise = np.random.default_rng(seed).standard_normal((len(labels), centres.shape[1]))
    return torch.tensor(centres[labels] + 0.1 * noise), labels


CENTRES = 10.0 * np.eye(5)


def test_kmeans_finds_separated_blobs_and_matches_sklearn_inertia():
    x, labels = blobs([50, 80, 30, 60, 40], seed=0, centres=CENTRES)
    centres, found = kmeans(x, 5, seed=0)
    assert sklearn.metrics.adjusted_rand_score(labels, found.numpy()) == 1.0
    torch.testing.assert_close(centres[found], torch.tensor(CENTRES[labels]), atol=0.1, rtol=0)
    data = gaussian(2000, 4, seed=1)
    centres, found = kmeans(data, 20, seed=0)
    inertia = (data - centres[found]).square().sum().item()
    reference = sklearn.cluster.KMeans(20, n_init=1, random_state=0).fit(data.numpy()).inertia_
    assert inertia <= 1.03 * reference
    assert torch.equal(kmeans(data, 20, seed=0)[1], found)  # seeded


def test_ndb_statistics_match_scipy():
    real_counts, fake_counts = [400, 300, 150, 100, 50], [60, 80, 20, 20, 20]
    real, real_labels = blobs(real_counts, seed=0, centres=CENTRES)
    fake, _ = blobs(fake_counts, seed=1, centres=CENTRES)
    result = ndb(real, fake, bins=5, alpha=0.05)
    # bins are the blobs, ordered by reference size; the pooled two-proportion z-test
    n, m = sum(real_counts), sum(fake_counts)
    p, q = np.array(real_counts) / n, np.array(fake_counts) / m
    pooled = (n * p + m * q) / (n + m)
    z = (p - q) / np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    p_values = 2 * scipy.stats.norm.sf(np.abs(z))
    np.testing.assert_allclose(result.reference_proportions, p, rtol=1e-12)
    np.testing.assert_allclose(result.sample_proportions, q, rtol=1e-12)
    np.testing.assert_allclose(result.p_values, p_values, rtol=1e-9)
    assert result.different_bins == np.count_nonzero(p_values < 0.05) == 3
    assert result.js_divergence == pytest.approx(jensenshannon(p, q) ** 2, rel=1e-9)
    assert len(real_labels) == result.n_reference
    same = ndb(real, blobs(real_counts, seed=2, centres=CENTRES)[0], bins=5)
    assert same.different_bins == 0 and same.js_divergence == pytest.approx(0, abs=1e-12)


# --- birthday paradox -----------------------------------------------------------------------

def test_birthday_test_on_a_known_support():
    support = 400
    points = gaussian(support, 5, seed=0)
    draws = torch.randint(support, (20_000,), generator=torch.Generator().manual_seed(1))
    result = birthday_test(points[draws], s=24, batches=500, seed=0)
    # P(duplicate) = 1 - exp(-s(s - 1) / (2 N)) for s draws from N equally likely points
    expected_rate = 1 - math.exp(-24 * 23 / (2 * support))
    assert abs(result.duplicate_rate - expected_rate) < 4 * math.sqrt(expected_rate / 500)
    assert result.support_estimate == 576
    assert result.pair_support_estimate == pytest.approx(support, rel=0.2)
    assert all(distance == 0.0 for _, _, distance in result.closest_pairs)


def test_birthday_test_closest_pairs_are_exact():
    x = gaussian(30, 3, seed=0)
    result = birthday_test(x, s=30, batches=1, top=5)
    assert result.duplicate_rate == 0.0 and math.isinf(result.pair_support_estimate)
    expected = np.sort(pdist(x.numpy()))[:5]
    np.testing.assert_allclose([d for _, _, d in result.closest_pairs], expected, rtol=1e-12)
    i, j, d = result.closest_pairs[0]
    assert (x[i] - x[j]).norm().item() == pytest.approx(d, rel=1e-12)
