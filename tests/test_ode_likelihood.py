"""Likelihoods through the probability-flow ODE against closed forms: Gaussian data, whose optimal
flow velocity and optimal ε̂ are known, recover log N(x; μ, Σ) for flow matching and DDPM; the
solvers converge at their orders; Hutchinson's estimate is unbiased; bits per dimension of
dequantized 8-bit data; bad input."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.interpolate import CubicSpline
from torch import Tensor, nn

from genmodels.errors import InputError
from genmodels.models.ode_likelihood import (
    bits_per_dim,
    bits_per_dim_of,
    dequantize,
    diffusion_log_likelihood,
    interpolated_alphas_cumprod,
    ode_log_likelihood,
)

T = 1000
ANGLE = 0.6  # the data's principal axes, rotated from the coordinate axes (full covariance)


class Gaussian:
    """Data N(μ, Σ) in d = 2 with Σ = Q diag(λ) Qᵀ, and the optimal velocity and ε̂ of its
    flow-matching and DDPM training objectives (all functions of Σ commute with it)."""

    def __init__(self, angle: float = ANGLE) -> None:
        c, s = math.cos(angle), math.sin(angle)
        self.mu = torch.tensor([0.5, -0.3], dtype=torch.float64)
        self.q = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
        self.lam = torch.tensor([0.6**2, 0.25**2], dtype=torch.float64)
        self.cov = self.q @ torch.diag(self.lam) @ self.q.T

    def log_prob(self, x: Tensor, mean: Tensor | None = None, extra_var: float = 0.0,
                 scale: float = 1.0) -> Tensor:
        """log N(x; scale·μ (or ``mean``), scale²Σ + extra_var I)."""
        mean = scale * self.mu if mean is None else mean
        cov = scale**2 * self.cov + extra_var * torch.eye(2, dtype=torch.float64)
        return torch.distributions.MultivariateNormal(mean, cov).log_prob(x)

    def points(self, n: int = 8, seed: int = 0) -> Tensor:
        z = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        return self.mu + (z * self.lam.sqrt()) @ self.q.T

    def flow_velocity(self, x: Tensor, t: Tensor) -> Tensor:
        """v*(x, t) = E[x_1 − x_0 | x_t = x] for x_t = (1 − t) x_0 + t x_1: x_t ~ N(tμ, C_t),
        C_t = (1 − t)² I + t² Σ, Cov(x_1 − x_0, x_t) = tΣ − (1 − t) I, so
        v* = μ + (tΣ − (1 − t) I) C_t⁻¹ (x − tμ)."""
        t = t[:, None]
        gain = (t * self.lam - (1 - t)) / ((1 - t) ** 2 + t**2 * self.lam)  # eigenvalues, (N, 2)
        return self.mu + (gain * ((x - t * self.mu) @ self.q)) @ self.q.T

    def eps(self, x: Tensor, alpha: Tensor) -> Tensor:
        """ε̂*(x, ᾱ) = E[ε | x_t = x] for x_t = √ᾱ x_0 + √(1 − ᾱ) ε:
        √(1 − ᾱ) (ᾱΣ + (1 − ᾱ) I)⁻¹ (x − √ᾱ μ), ᾱ (N, 1)."""
        z = (x - alpha.sqrt() * self.mu) @ self.q
        return (1 - alpha).sqrt() * ((z / (alpha * self.lam + 1 - alpha)) @ self.q.T)

    def ddpm_ends(self, x: Tensor, alphas_cumprod: Tensor) -> tuple[Tensor, Tensor]:
        """(log-density of the exact marginal at step 0, N(√ᾱ_0 μ, ᾱ_0 Σ + (1 − ᾱ_0) I), at x;
        the error of the noise end's N(0, (1 − ᾱ_{T−1}) I) at the end of x's trajectory).
        In y = x/√ᾱ the flow is y − μ ↦ (Σ + σ² I)^½ (Σ + σ_0² I)^−½ (y − μ), σ² = (1 − ᾱ)/ᾱ,
        and the exact law at the noise end is N(μ, Σ + σ² I)."""
        a0, a_end = float(alphas_cumprod[0]), float(alphas_cumprod[-1])
        s0, s_end = (1 - a0) / a0, (1 - a_end) / a_end
        data_end = self.log_prob(x, scale=math.sqrt(a0), extra_var=1 - a0)
        gain = ((self.lam + s_end) / (self.lam + s0)).sqrt()
        y_end = self.mu + ((x / math.sqrt(a0) - self.mu) @ self.q * gain) @ self.q.T
        prior = torch.distributions.Normal(0.0, math.sqrt(s_end)).log_prob(y_end).sum(1)
        return data_end, prior - self.log_prob(y_end, extra_var=s_end)


def linear_schedule() -> Tensor:
    """ᾱ_k = Π_{i<=k} (1 − β_i), β linear from 1e-4 to 0.02 (Ho et al. 2020)."""
    return torch.cumprod(1 - torch.linspace(1e-4, 0.02, T, dtype=torch.float64), 0)


def cosine_alpha(t: Tensor, s: float = 0.008) -> Tensor:
    """Nichol & Dhariwal 2021: f(t)/f(0), f(t) = cos²((t + s)/(1 + s) · π/2)."""
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return f / math.cos(s / (1 + s) * math.pi / 2) ** 2


def cosine_schedule() -> Tensor:
    """ᾱ_k = Π_{i<=k} (1 − β_i), β_i = min(1 − ᾱ((i + 1)/T)/ᾱ(i/T), 0.999)."""
    a = cosine_alpha(torch.arange(T + 1, dtype=torch.float64) / T)
    return torch.cumprod(1 - (1 - a[1:] / a[:-1]).clamp(max=0.999), 0)


SCHEDULES = {"linear": linear_schedule, "cosine": cosine_schedule}


def consistent_eps(law: Gaussian, alphas_cumprod: Tensor, prediction: str = "epsilon"):
    """The optimal net of the ODE's own continuous ᾱ(t): ε̂* or v* = √ᾱ ε̂* − √(1 − ᾱ) x̂_0."""

    def net(x: Tensor, t: Tensor) -> Tensor:
        alpha = interpolated_alphas_cumprod(alphas_cumprod, t)[:, None]
        eps = law.eps(x, alpha)
        if prediction == "epsilon":
            return eps
        x0 = (x - (1 - alpha).sqrt() * eps) / alpha.sqrt()
        return alpha.sqrt() * eps - (1 - alpha).sqrt() * x0

    return net


def flow_ll(law: Gaussian, x: Tensor, **options) -> tuple[Tensor, int]:
    return ode_log_likelihood(law.flow_velocity, x, t_data=1.0, t_noise=0.0, **options)


# --- flow matching --------------------------------------------------------------------------
@pytest.mark.parametrize("angle", [0.0, ANGLE])
@pytest.mark.parametrize("solver, tolerance", [("heun", 1e-3), ("rk4", 1e-6), ("rk45", 1e-4)])
def test_flow_gaussian_exact_trace(angle, solver, tolerance):
    """The optimal velocity of Gaussian data pushes N(0, I) at t = 0 exactly to N(μ, Σ) at
    t = 1: the ODE recovers log N(x; μ, Σ) up to the solver's error (100 steps; measured:
    heun 6.8e-4, rk4 5e-9, rk45 2.6e-5 nats at 38 evaluations)."""
    law = Gaussian(angle)
    x = law.points()
    log_p, _ = flow_ll(law, x, steps=100, solver=solver, exact_trace=True)
    assert (log_p - law.log_prob(x)).abs().max() < tolerance


@pytest.mark.parametrize("solver, order", [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_solvers_converge_at_their_order(solver, order):
    """From 20 to 40 steps the error falls by 2^order (measured 1.86, 4.25, 17.0)."""
    law = Gaussian()
    x = law.points()
    coarse, fine = ((flow_ll(law, x, steps=steps, solver=solver, exact_trace=True)[0]
                     - law.log_prob(x)).abs().max() for steps in (20, 40))
    assert 0.8 * 2**order < coarse / fine < 1.2 * 2**order


def test_nfe_counts_the_evaluations():
    """NFE: steps × stages for the fixed-step solvers; what scipy's RK45 took."""
    law = Gaussian()
    calls = []

    def counted(x: Tensor, t: Tensor) -> Tensor:
        calls.append(1)
        return law.flow_velocity(x, t)

    for solver, stages in (("euler", 1), ("heun", 2), ("rk4", 4), ("rk45", None)):
        calls.clear()
        _, nfe = ode_log_likelihood(counted, law.points(), t_data=1.0, t_noise=0.0, steps=7,
                                    solver=solver, exact_trace=True)
        assert nfe == len(calls) == (7 * stages if stages else nfe)


@pytest.mark.parametrize("distribution", ["rademacher", "gaussian"])
def test_flow_hutchinson_is_unbiased(distribution):
    """Hutchinson's estimate of the divergence: over 400 independent single-probe trajectories
    of each point the mean is within 4 standard errors of the exact log N(x; μ, Σ), and one
    trajectory with 256 probes within 4 of its standard errors (std of a single probe: 0.82
    nats Rademacher, ~2 Gaussian; with a diagonal Σ Rademacher probes would be exact)."""
    law = Gaussian()
    x = law.points()
    exact = law.log_prob(x)
    repeats = 400
    single, _ = flow_ll(law, x.repeat(repeats, 1), steps=50, solver="rk4",
                        generator=torch.Generator().manual_seed(1),
                        probe_distribution=distribution)
    single = single.view(repeats, len(x))
    std = single.std(0)
    assert (std > 0.3).all()  # really stochastic
    assert ((single.mean(0) - exact).abs() < 4 * std / math.sqrt(repeats)).all()
    many, _ = flow_ll(law, x, steps=50, solver="rk4", probes=256,
                      generator=torch.Generator().manual_seed(2), probe_distribution=distribution)
    assert ((many - exact).abs() < 4 * std / math.sqrt(256)).all()


# --- DDPM -----------------------------------------------------------------------------------
def test_interpolated_alphas_cumprod():
    """Through the knots ᾱ_k at t = k/T; log-linear in between (the geometric mean midway)."""
    alphas = linear_schedule()
    k = torch.tensor([0, 1, 500, T - 1])
    torch.testing.assert_close(interpolated_alphas_cumprod(alphas, k / T), alphas[k])
    middle = interpolated_alphas_cumprod(alphas, (k[:3] + 0.5) / T)
    torch.testing.assert_close(middle, (alphas[k[:3]] * alphas[k[:3] + 1]).sqrt())


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddpm_gaussian_exact_trace(schedule, prediction):
    """The optimal ε̂ (or v) of Gaussian data at the ODE's own ᾱ(t): RK4, 100 steps in log σ.

    Exact against the marginal at step 0, N(√ᾱ_0 μ, ᾱ_0 Σ + (1 − ᾱ_0) I), plus the error of the
    noise end's N(0, (1 − ᾱ_{T−1}) I), both in closed form: measured 5.5e-7 (linear) and
    2.5e-6 (cosine) nats. Against log N(x; μ, Σ) itself the error is those two ends: the
    step-0 marginal 2.4e-3 (linear, β_0 = 1e-4) and 1.0e-3 (cosine), the noise end 7.1e-3
    (linear, √ᾱ_{T−1} = 6e-3) and 5.5e-5 (cosine); total 8.7e-3 and 1.05e-3."""
    law = Gaussian()
    x = law.points()
    alphas = SCHEDULES[schedule]()
    data_end, noise_end = law.ddpm_ends(x, alphas)
    log_p, nfe = diffusion_log_likelihood(consistent_eps(law, alphas, prediction), alphas, x,
                                          prediction=prediction, steps=100, solver="rk4",
                                          exact_trace=True)
    assert nfe == 400
    assert (log_p - data_end - noise_end).abs().max() < 1e-5
    bound = (data_end - law.log_prob(x)).abs() + noise_end.abs() + 1e-5
    assert ((log_p - law.log_prob(x)).abs() <= bound).all()
    assert bound.max() < {"linear": 1.2e-2, "cosine": 1.2e-3}[schedule]


@pytest.mark.parametrize("solver, tolerance", [("heun", 5e-3), ("rk45", 1e-4)])
def test_ddpm_gaussian_other_solvers(solver, tolerance):
    """Heun, 100 steps (200 evaluations): 2.4e-3 nats; RK45: 1.3e-5 at 86 evaluations
    (linear schedule)."""
    law = Gaussian()
    x = law.points()
    alphas = linear_schedule()
    data_end, noise_end = law.ddpm_ends(x, alphas)
    log_p, _ = diffusion_log_likelihood(consistent_eps(law, alphas), alphas, x, steps=100,
                                        solver=solver, exact_trace=True)
    assert (log_p - data_end - noise_end).abs().max() < tolerance


@pytest.mark.parametrize("schedule, tolerance", [("linear", 2e-4), ("cosine", 3e-3)])
def test_ddpm_interpolation_error(schedule, tolerance):
    """A net that knows ᾱ only at the knots and is smooth between them (a cubic spline of
    log ᾱ for the linear schedule, the cosine formula ᾱ((τ + 1)/T) for the cosine one) against
    the ODE's piecewise-linear log ᾱ: the error of the discrete-to-continuous interpolation,
    measured 7.6e-5 (linear) and 1.5e-3 nats (cosine: from the last, clipped step, where
    the formula's ᾱ goes to 0 but the schedule's stays 1e-3 × ᾱ_{T−2})."""
    law = Gaussian()
    x = law.points()
    alphas = SCHEDULES[schedule]()
    if schedule == "linear":
        spline = CubicSpline(torch.arange(T).numpy(), alphas.log().numpy())

        def alpha_of(t: Tensor) -> Tensor:
            return torch.from_numpy(spline(t.numpy() * T)).exp()
    else:
        def alpha_of(t: Tensor) -> Tensor:
            return cosine_alpha(t + 1 / T)

    def smooth_net(x: Tensor, t: Tensor) -> Tensor:
        return law.eps(x, alpha_of(t)[:, None])

    data_end, noise_end = law.ddpm_ends(x, alphas)
    log_p, _ = diffusion_log_likelihood(smooth_net, alphas, x, steps=100, solver="rk4",
                                        exact_trace=True)
    assert (log_p - data_end - noise_end).abs().max() < tolerance


def test_ddpm_hutchinson_is_unbiased():
    """Gaussian probes through the DDPM parametrisation: within 4 standard errors."""
    law = Gaussian()
    x = law.points(4)
    alphas = cosine_schedule()
    data_end, noise_end = law.ddpm_ends(x, alphas)
    repeats = 200
    single, _ = diffusion_log_likelihood(consistent_eps(law, alphas), alphas,
                                         x.repeat(repeats, 1), steps=50, solver="rk4",
                                         generator=torch.Generator().manual_seed(3),
                                         probe_distribution="gaussian")
    single = single.view(repeats, len(x))
    error = (single.mean(0) - data_end - noise_end).abs()
    assert (error < 4 * single.std(0) / math.sqrt(repeats)).all()


# --- bits per dimension ---------------------------------------------------------------------
def test_uniform_density_is_8_bits_per_dim():
    """The uniform density 2^−D on [-1, 1]^D is 256^−D in 8-bit units: exactly 8 bits/dim."""
    for dims in (1, 3, 784):
        log_p = torch.full((5,), -dims * math.log(2), dtype=torch.float64)
        bpd = bits_per_dim(log_p, dims, dequantized_8bit=True)
        torch.testing.assert_close(bpd, torch.full_like(bpd, 8.0), rtol=0, atol=1e-12)
        on_unit = bits_per_dim(torch.zeros(2), dims, dequantized_8bit=True, data_range=(0, 1))
        torch.testing.assert_close(on_unit, torch.full((2,), 8.0))


def test_bits_per_dim_by_hand():
    """D = 3, log p = −5 nats in [-1, 1] units: x = 2v/256 − 1, so log p_v = −5 + 3 log(1/128)
    and bpd = (5 + 3 · 7 ln 2)/(3 ln 2) = 5/(3 ln 2) + 7 = 9.40449...; without the
    8-bit change of units 5/(3 ln 2) = 2.40449..."""
    log_p = torch.tensor([-5.0], dtype=torch.float64)
    expected = 5 / (3 * math.log(2)) + 7
    assert abs(expected - 9.404491734814) < 1e-11
    torch.testing.assert_close(bits_per_dim(log_p, 3, dequantized_8bit=True),
                               torch.tensor([expected], dtype=torch.float64))
    torch.testing.assert_close(bits_per_dim(log_p, 3, dequantized_8bit=False),
                               torch.tensor([expected - 7], dtype=torch.float64))


def test_dequantize():
    """x = 2(k + u)/256 − 1 in [-1, 1): each value's bin is recovered, and the noise fills it."""
    images = torch.arange(256, dtype=torch.uint8).repeat(40, 1)
    x = dequantize(images, torch.Generator().manual_seed(0))
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() < 1
    torch.testing.assert_close(((x + 1) * 128).floor().long(), images.long())
    u = (x + 1) * 128 - images
    assert 0.4 < u.mean() < 0.6 and u.min() < 0.05 and u.max() > 0.95


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("options, match", [
    ({"steps": 0}, "steps = 0"), ({"steps": -3}, "steps = -3"),
    ({"solver": "midpoint"}, "choose one of: euler, heun, rk4, rk45"),
    ({"probes": 0}, "probes = 0"),
    ({"probe_distribution": "uniform"}, "choose one of: rademacher, gaussian"),
    ({"prior_std": 0.0}, "prior_std")])
def test_bad_solver_options(options, match):
    law = Gaussian()
    with pytest.raises(InputError, match=match):
        flow_ll(law, law.points(), **options)


def test_bad_inputs():
    law = Gaussian()
    x = law.points()
    alphas = linear_schedule()
    with pytest.raises(InputError, match="prediction"):
        diffusion_log_likelihood(consistent_eps(law, alphas), alphas, x, prediction="x0")
    with pytest.raises(InputError, match="decrease strictly"):
        diffusion_log_likelihood(consistent_eps(law, alphas), alphas.flip(0), x)
    with pytest.raises(InputError, match="steps = 0"):
        diffusion_log_likelihood(consistent_eps(law, alphas), alphas, x, steps=0)
    with pytest.raises(InputError, match="dims"):
        bits_per_dim(torch.zeros(1), 0, dequantized_8bit=True)
    with pytest.raises(InputError, match="data_range"):
        bits_per_dim(torch.zeros(1), 2, dequantized_8bit=True, data_range=(1, -1))
    with pytest.raises(InputError, match="torch.uint8"):
        dequantize(torch.rand(2, 3))


# --- the user-facing entry ------------------------------------------------------------------
class IsotropicGaussianNet(nn.Module):
    """The optimal net of per-pixel N(m, s²) images for a flow (velocity) or a DDPM (ε̂), in
    place of a trained U-Net (its one parameter only tells the device)."""

    def __init__(self, m: float, s: float, alphas_cumprod: Tensor | None = None) -> None:
        super().__init__()
        self.m, self.s, self.alphas_cumprod = m, s, alphas_cumprod
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        m, var = self.m, self.s**2
        if self.alphas_cumprod is None:
            t = t.view(-1, 1, 1, 1)
            return m + (t * var - (1 - t)) / ((1 - t) ** 2 + t**2 * var) * (x - t * m)
        a = interpolated_alphas_cumprod(self.alphas_cumprod, t).to(x.dtype).view(-1, 1, 1, 1)
        return (1 - a).sqrt() * (x - a.sqrt() * m) / (a * var + 1 - a)


def build_denoiser(kind: str):
    """A ``diffusion`` (cosine schedule, T = 1000) or ``flow_matching`` model of 1×4×4 images
    with a tiny U-Net."""
    pytest.importorskip("genmodels.schedulers")  # written alongside (issue 25)
    from genmodels.models.diffusion import Diffusion
    from genmodels.models.flow import FlowMatching

    cls = Diffusion if kind == "diffusion" else FlowMatching
    config = cls.Config(net="unet", channels=[8, 16], attention=False, time_dim=16)
    return cls(config, (1, 4, 4))


@pytest.mark.parametrize("kind", ["flow_matching", "diffusion"])
def test_bits_per_dim_of_a_model(kind):
    """A model whose net is the optimal one for per-pixel N(−0.2, 0.5²) images: the bits per
    dimension of dequantized 8-bit images are those of that density (of the step-0 marginal
    for DDPM; Rademacher probes are exact here, as the Jacobian is diagonal), to the solver's
    error; in batches, the same within the dequantization noise."""
    model = build_denoiser(kind)
    m, s = -0.2, 0.5
    alphas = model.noise_schedule.alphas_cumprod if kind == "diffusion" else None
    model.net = IsotropicGaussianNet(m, s, alphas)
    images = torch.randint(0, 256, (10, 1, 4, 4), generator=torch.Generator().manual_seed(0),
                           dtype=torch.uint8)
    one_batch = bits_per_dim_of(model, images, steps=50, probes=1, solver="rk4",
                                generator=torch.Generator().manual_seed(5), batch_size=10)
    x = dequantize(images, torch.Generator().manual_seed(5)).double()  # the same draws
    a0 = float(alphas[0]) if alphas is not None else 1.0
    density = torch.distributions.Normal(math.sqrt(a0) * m, math.sqrt(a0 * s**2 + 1 - a0))
    expected = bits_per_dim(density.log_prob(x).flatten(1).sum(1), 16, dequantized_8bit=True)
    assert one_batch["n"] == 10 and one_batch["nfe"] == 200
    assert abs(one_batch["mean"] - float(expected.mean())) < 1e-4
    assert abs(one_batch["standard_error"] - float(expected.std()) / math.sqrt(10)) < 1e-4
    batched = bits_per_dim_of(model, images, steps=50, probes=1, solver="rk4",
                              generator=torch.Generator().manual_seed(6), batch_size=4)
    assert batched["n"] == 10 and batched["nfe"] == 200
    assert abs(batched["mean"] - one_batch["mean"]) < 0.05


def test_bits_per_dim_of_bad_input():
    with pytest.raises(InputError, match="no probability-flow ODE"):
        bits_per_dim_of(nn.Linear(2, 2), torch.zeros(1, 2, dtype=torch.uint8))
    model = build_denoiser("flow_matching")
    with pytest.raises(InputError, match=r"expected \(n, 1, 4, 4\)"):
        bits_per_dim_of(model, torch.zeros(3, 1, 8, 8, dtype=torch.uint8))
