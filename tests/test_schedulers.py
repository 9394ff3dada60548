"""Diffusion and flow samplers (issue 25): diffusers' DDPM/DDIM steps to 1e-6, the sampling
of a Gaussian data law with its closed-form optimal networks, exact minibatch OT pairing, and
the errors users can cause."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from genmodels.checks import ConfigError
from genmodels.errors import InputError
from genmodels.schedulers import (
    DDIMScheduler,
    DDPMScheduler,
    FlowScheduler,
    NoiseSchedule,
    denoise,
    ot_pairing,
)

diffusers = pytest.importorskip("diffusers")

T = 1000
BETA_SCHEDULE = {"linear": "linear", "cosine": "squaredcos_cap_v2"}  # ours -> diffusers'
STEP_TOL = {"atol": 1e-6, "rtol": 1e-6}


def reference(kind: str, cls: str, schedule: NoiseSchedule | None = None, **options):
    """diffusers' scheduler ``cls`` for the schedule ``kind``; with ``schedule``, on its
    ᾱ_t (the same schedule: diffusers' float32 cumprod drifts from ours, see the first
    test)."""
    theirs = getattr(diffusers, cls)(num_train_timesteps=T, beta_schedule=BETA_SCHEDULE[kind],
                                     clip_sample=False, **options)
    if schedule is not None:
        theirs.alphas_cumprod = schedule.alphas_cumprod.clone()
    return theirs


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# 1. the schedule ---------------------------------------------------------------------------

def float64_alphas_cumprod(kind: str) -> Tensor:
    """ᾱ_t in float64 from the papers' formulas, in Python floats (as diffusers computes the
    cosine betas, before it rounds them to float32)."""
    if kind == "linear":
        betas = [1e-4 + (0.02 - 1e-4) * i / (T - 1) for i in range(T)]
    else:
        def alpha_bar(tau: float) -> float:
            return math.cos((tau + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = [min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), 0.999) for i in range(T)]
    return torch.cumprod(1 - torch.tensor(betas, dtype=torch.float64), 0)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_noise_schedule_matches_diffusers(kind):
    ours, theirs = NoiseSchedule(kind, T), reference(kind, "DDPMScheduler")
    assert ours.betas.dtype == ours.alphas_cumprod.dtype == torch.float32
    assert ours.betas.shape == ours.alphas_cumprod.shape == (T,)
    torch.testing.assert_close(ours.betas, theirs.betas, atol=0, rtol=1.2e-7)  # <= 1 ulp
    # diffusers rounds β to float32 before 1 − β (at the cosine tail, β ≈ 0.999, one ulp of
    # β is 6e-5 of 1 − β) and multiplies in float32: 1.3e-5 relative drift where ᾱ ~ 2e-9.
    # Ours is the float64 product rounded once, to 1 float32 ulp of the float64 reference
    torch.testing.assert_close(ours.alphas_cumprod, theirs.alphas_cumprod, atol=0, rtol=3e-5)
    torch.testing.assert_close(ours.alphas_cumprod, float64_alphas_cumprod(kind), atol=0,
                               rtol=1.2e-7, check_dtype=False)

    x0, noise = torch.randn(2, T, 3, 4, generator=seeded(0))  # (T, 3, 4) each
    t = torch.randperm(T, generator=seeded(1))  # (T,): every timestep once
    theirs.alphas_cumprod = ours.alphas_cumprod.clone()
    torch.testing.assert_close(ours.add_noise(x0, noise, t), theirs.add_noise(x0, noise, t),
                               **STEP_TOL)
    torch.testing.assert_close(ours.target("v_prediction", x0, noise, t),
                               theirs.get_velocity(x0, noise, t), **STEP_TOL)
    assert ours.target("epsilon", x0, noise, t) is noise
    x_t = ours.add_noise(x0, noise, t)  # the prediction algebra inverts the forward process
    stable = ours.alphas_cumprod[t] > 1e-3  # there 1/√ᾱ_t, which amplifies rounding, < 32
    for prediction in ("epsilon", "v_prediction"):
        target = ours.target(prediction, x0, noise, t)
        x0_hat, noise_hat = ours.predict_x0_and_noise(prediction, target, x_t, t)
        torch.testing.assert_close(noise_hat, noise, atol=1e-4, rtol=0)
        torch.testing.assert_close(x0_hat[stable], x0[stable], atol=1e-4, rtol=0)


# 2. DDPM and DDIM steps --------------------------------------------------------------------

@pytest.mark.parametrize("steps", [1000, 50, 10, 7])
@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_ddpm_step_matches_diffusers(kind, prediction, steps):
    schedule = NoiseSchedule(kind, T)
    ours = DDPMScheduler(schedule, prediction)
    theirs = reference(kind, "DDPMScheduler", schedule, prediction_type=prediction,
                       variance_type="fixed_small")
    ours.set_timesteps(steps)
    theirs.set_timesteps(steps)
    assert torch.equal(ours.timesteps, theirs.timesteps) and ours.nfe == steps
    g = seeded(2)
    for t in ours.timesteps:
        output, sample = torch.randn(2, 8, 3, 4, generator=g)  # (8, 3, 4) each
        expected = theirs.step(output, t, sample, generator=seeded(int(t))).prev_sample
        # the same noise: from a generator in the same state, or given
        torch.testing.assert_close(ours.step(output, t, sample, generator=seeded(int(t))),
                                   expected, **STEP_TOL)
        noise = torch.randn(sample.shape, generator=seeded(int(t)))
        torch.testing.assert_close(ours.step(output, t, sample, noise=noise), expected,
                                   **STEP_TOL)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("steps", [1000, 50, 10, 7])
@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_ddim_step_matches_diffusers(kind, prediction, steps, eta):
    schedule = NoiseSchedule(kind, T)
    ours = DDIMScheduler(schedule, prediction, eta)
    theirs = reference(kind, "DDIMScheduler", schedule, prediction_type=prediction,
                       set_alpha_to_one=True, steps_offset=0, timestep_spacing="leading")
    ours.set_timesteps(steps)
    theirs.set_timesteps(steps)
    assert torch.equal(ours.timesteps, theirs.timesteps) and ours.nfe == steps
    g = seeded(3)
    for t in ours.timesteps:
        output, sample, noise = torch.randn(3, 8, 3, 4, generator=g)  # (8, 3, 4) each
        expected = theirs.step(output, t, sample, eta=eta, variance_noise=noise).prev_sample
        torch.testing.assert_close(ours.step(output, t, sample, noise=noise), expected,
                                   **STEP_TOL)


@pytest.mark.parametrize("cls", ["DDPMScheduler", "DDIMScheduler"])
def test_seeded_loop_matches_diffusers(cls):
    """A whole ``denoise`` loop with a seeded generator draws diffusers' noise, step for
    step (the DDPM/DDIM pipelines' loop, with the initial noise given); DDIM with η = 1."""
    schedule = NoiseSchedule("cosine", T)
    if cls == "DDPMScheduler":
        ours, step_options = DDPMScheduler(schedule), {}
        theirs = reference("cosine", cls, schedule, variance_type="fixed_small")
    else:
        ours, step_options = DDIMScheduler(schedule, eta=1.0), {"eta": 1.0}
        theirs = reference("cosine", cls, schedule)
    ours.set_timesteps(20)
    theirs.set_timesteps(20)

    def net(x: Tensor, time: Tensor) -> Tensor:  # any smooth function of (x, t)
        return torch.tanh(x) * (1 - time[:, None, None])

    start = torch.randn(4, 3, 5, generator=seeded(4))
    x, g = start, seeded(5)
    for t in theirs.timesteps:
        output = net(x, (t / T).float().expand(len(x)))
        x = theirs.step(output, t, x, generator=g, **step_options).prev_sample
    mine = seeded(5)
    torch.testing.assert_close(denoise(net, ours, start, generator=mine), x, **STEP_TOL)
    assert torch.equal(mine.get_state(), g.get_state())  # as many draws (none at DDPM's t = 0)


# 3. a Gaussian data law, sampled with its optimal networks ---------------------------------

MU, SD = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 2.0])  # data x ~ N(μ, diag σ²)
N = 20_000


def optimal_net(target: str, schedule: NoiseSchedule) -> Callable[[Tensor, Tensor], Tensor]:
    """The exact minimiser of each training loss for the Gaussian data law, per coordinate.

    Diffusion: x_t = √ᾱ x + √(1−ᾱ) ε is jointly Gaussian with ε and x, with Var x_t =
    ᾱσ² + 1 − ᾱ, Cov(ε, x_t) = √(1−ᾱ), Cov(x, x_t) = √ᾱ σ²; with r = (x_t − √ᾱ μ) /
    (ᾱσ² + 1 − ᾱ): E[ε | x_t] = √(1−ᾱ) r, E[x | x_t] = μ + √ᾱ σ² r, and
    E[v | x_t] = √ᾱ E[ε | x_t] − √(1−ᾱ) E[x | x_t].

    Flow: x_t = (1−t) x_0 + t x_1 with x_0 ~ N(0, 1), x_1 ~ N(μ, σ²): E x_t = tμ,
    Var x_t = (1−t)² + t²σ², Cov(x_1 − x_0, x_t) = tσ² − (1−t), E[x_1 − x_0] = μ, so
    E[x_1 − x_0 | x_t] = μ + (tσ² − (1−t)) (x_t − tμ) / ((1−t)² + t²σ²)."""
    def net(x: Tensor, time: Tensor) -> Tensor:  # x (N, 2), time (N,)
        mu, var = MU.to(x), SD.to(x) ** 2
        if target == "velocity":
            t = time.to(x)[:, None]
            return mu + (t * var - (1 - t)) * (x - t * mu) / ((1 - t) ** 2 + t**2 * var)
        alpha_bar = schedule.alpha_bar((time * schedule.timesteps).round().long(), x)  # (N, 1)
        r = (x - alpha_bar.sqrt() * mu) / (alpha_bar * var + 1 - alpha_bar)
        eps = (1 - alpha_bar).sqrt() * r
        if target == "epsilon":
            return eps
        return alpha_bar.sqrt() * eps - (1 - alpha_bar).sqrt() * (mu + alpha_bar.sqrt() * var * r)
    return net


def pushforward(net: Callable, scheduler, steps: int) -> tuple[Tensor, Tensor]:
    """The exact law (mean, std) that a deterministic sampler makes of N(0, I) noise: with a
    linear optimal net its map is affine and increasing per coordinate, so it sends 0 to the
    mean and 1 to mean + std (in float64)."""
    scheduler.set_timesteps(steps)
    ends = denoise(net, scheduler, torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64))
    return ends[0].float(), (ends[1] - ends[0]).float()


# name: scheduler, steps, network target, allowed bias of the mean and of the std (× σ)
SAMPLERS = {
    # "fixed_small" β̃ ignores Var[x_0 | x_t] and the chain starts at N(0, I) for ᾱ = 4e-5
    # (exact law: std −0.8 %, −0.3 %); stochastic, so only checked by its samples
    "ddpm-1000": (lambda s: DDPMScheduler(s), 1000, "epsilon", 0.001, 0.01),
    # first-order discretisation of the probability-flow ODE: mean +1.5 % σ, std −5.5 %
    "ddim-50": (lambda s: DDIMScheduler(s), 50, "epsilon", 0.02, 0.06),
    "ddim-50-v": (lambda s: DDIMScheduler(s, "v_prediction"), 50, "v_prediction", 0.02, 0.06),
    # Euler, O(h): std −1.5 %; Heun, O(h²): std +0.1 %, −0.13 %; both keep the mean exactly
    "euler-100": (lambda s: FlowScheduler("euler"), 100, "velocity", 1e-6, 0.02),
    "heun-20": (lambda s: FlowScheduler("heun"), 20, "velocity", 1e-6, 0.003),
}


@pytest.mark.parametrize("name", SAMPLERS)
def test_samplers_reproduce_a_gaussian_law(name):
    make, steps, target, bias_mean, bias_std = SAMPLERS[name]
    schedule = NoiseSchedule("linear", T)
    scheduler, net = make(schedule), optimal_net(target, schedule)
    scheduler.set_timesteps(steps)
    g = seeded(6)
    x = denoise(net, scheduler, scheduler.init_noise((N, 2), generator=g), generator=g)
    mean, std = x.mean(0), x.std(0)
    se_mean, se_std = SD / math.sqrt(N), SD / math.sqrt(2 * N)  # Monte Carlo standard errors
    assert ((mean - MU).abs() <= 4 * se_mean + bias_mean * SD).all(), (name, mean)
    assert ((std - SD).abs() <= 4 * se_std + bias_std * SD).all(), (name, std)
    if name != "ddpm-1000":  # the bias is the sampler's, the rest Monte Carlo error
        law_mean, law_std = pushforward(net, scheduler, steps)
        assert ((law_mean - MU).abs() <= bias_mean * SD).all(), (name, law_mean)
        assert ((law_std - SD).abs() <= bias_std * SD).all(), (name, law_std)
        assert ((mean - law_mean).abs() <= 4 * se_mean).all(), (name, mean, law_mean)
        assert ((std - law_std).abs() <= 4 * se_std).all(), (name, std, law_std)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_epsilon_and_v_optimal_nets_give_one_sampler(sampler):
    """The optimal ε and v networks imply the same (x̂_0, ε̂), so the samplers move the
    same points the same way: the v algebra, tighter than the law's tolerances."""
    schedule = NoiseSchedule("linear", T)
    cls = DDIMScheduler if sampler == "ddim" else DDPMScheduler
    ends = []
    for prediction in ("epsilon", "v_prediction"):
        scheduler = cls(schedule, prediction)
        scheduler.set_timesteps(50)
        x = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
        ends.append(denoise(optimal_net(prediction, schedule), scheduler, x,
                            generator=seeded(8)))
    torch.testing.assert_close(ends[0], ends[1], atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize(("solver", "order"), [("euler", 1), ("heun", 2)])
def test_flow_solver_order(solver, order):
    """Halving h divides the error of the sampled std by 2^order."""
    net = optimal_net("velocity", NoiseSchedule())
    coarse, fine = ((pushforward(net, FlowScheduler(solver), n)[1] - SD).abs()
                    for n in (20, 40))
    ratio = coarse / fine
    assert ((0.85 * 2**order <= ratio) & (ratio <= 1.15 * 2**order)).all(), ratio


def test_flow_timesteps_and_heun_step():
    euler, heun = FlowScheduler("euler"), FlowScheduler("heun")
    euler.set_timesteps(4)
    heun.set_timesteps(4)
    torch.testing.assert_close(euler.timesteps, torch.tensor([0, 0.25, 0.5, 0.75]))
    torch.testing.assert_close(heun.timesteps,
                               torch.tensor([0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1]))
    assert (euler.nfe, heun.nfe) == (4, 8)
    # dx/dt = x over one interval h = 1: Euler 2x, Heun x + (x + 2x)/2 = 2.5x
    heun.set_timesteps(1)
    x = torch.ones(3, 2)
    predictor = heun.step(x, heun.timesteps[0], x)
    torch.testing.assert_close(predictor, 2 * x)
    torch.testing.assert_close(heun.step(predictor, heun.timesteps[1], predictor), 2.5 * x)


# 4. minibatch optimal transport ------------------------------------------------------------

def pairing_cost(x0: Tensor, x1: Tensor, perm) -> float:
    """Σ_j ‖x0[perm[j]] − x1[j]‖² of the pairs (x0[perm], x1)."""
    return float(((x0[torch.as_tensor(perm)] - x1) ** 2).sum())


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6])
def test_ot_pairing_is_the_brute_force_optimum(n):
    g = seeded(7 + n)
    for _ in range(5):
        x0, x1 = torch.randn(n, 3, generator=g), torch.randn(n, 3, generator=g) + 1
        perm = ot_pairing(x0, x1)
        assert perm.dtype == torch.int64 and sorted(perm.tolist()) == list(range(n))
        cost = pairing_cost(x0, x1, perm)
        best = min(pairing_cost(x0, x1, p) for p in itertools.permutations(range(n)))
        assert cost == pytest.approx(best, rel=1e-6)
        assert cost <= pairing_cost(x0, x1, range(n)) + 1e-6
    images = torch.randn(2, 4, 1, 2, 2, generator=g)  # rows of any shape are flattened
    perm = ot_pairing(images[0], images[1])
    assert sorted(perm.tolist()) == [0, 1, 2, 3]


# 5. errors users can cause -----------------------------------------------------------------

def test_bad_inputs_raise_one_clear_error():
    schedule = NoiseSchedule()
    for scheduler in (DDPMScheduler(schedule), DDIMScheduler(schedule), FlowScheduler()):
        for steps in (0, -1):
            with pytest.raises(ConfigError, match=f"steps = {steps} should be an int >= 1"):
                scheduler.set_timesteps(steps)
    with pytest.raises(ConfigError, match=r"steps = 1001 .*<= 1000 \(the schedule's"):
        DDIMScheduler(schedule).set_timesteps(1001)
    with pytest.raises(ConfigError, match="kind = 'quadratic'; choose one of: linear, cosine"):
        NoiseSchedule("quadratic")
    with pytest.raises(ConfigError, match="prediction = 'sample'; choose one of: epsilon, v_"):
        DDPMScheduler(schedule, "sample")
    with pytest.raises(ConfigError, match="prediction = 'x0'; choose one of: epsilon, v_pre"):
        schedule.target("x0", torch.zeros(1), torch.zeros(1), torch.zeros(1, dtype=int))
    with pytest.raises(ConfigError, match="solver = 'rk4'; choose one of: euler, heun"):
        FlowScheduler("rk4")
    with pytest.raises(ConfigError, match=r"eta = 2 should be in \[0, 1\]"):
        DDIMScheduler(schedule, eta=2)

    ddim = DDIMScheduler(schedule)
    ddim.set_timesteps(10)  # timesteps 900, 800, …, 0; the net is fed t / 1000

    def nan_late(x: Tensor, time: Tensor) -> Tensor:  # NaN from t = 400, the 6th step
        return torch.where(time[:, None] < 0.45, torch.nan, x)

    with pytest.raises(InputError, match=r"non-finite \(NaN or inf\) at step 6 of 10 "
                                         r"\(timestep 400\)"):
        denoise(nan_late, ddim, torch.randn(4, 2))
    with pytest.raises(InputError, match=r"net returned shape \(4,\) for a sample of shape"):
        denoise(lambda x, time: time, ddim, torch.randn(4, 2))
    flow = FlowScheduler("heun")
    with pytest.raises(InputError, match="no timestep left; call set_timesteps"):
        flow.step(torch.zeros(2), 0.0, torch.zeros(2))
    flow.set_timesteps(2)
    with pytest.raises(InputError, match="timestep 0.5 where 0 is next"):
        flow.step(torch.zeros(2), 0.5, torch.zeros(2))
    with pytest.raises(InputError, match="generator or noise, not both"):
        DDPMScheduler(schedule).step(torch.zeros(2), 500, torch.zeros(2), seeded(0),
                                     noise=torch.zeros(2))
    with pytest.raises(InputError, match=r"x0 of shape \(3, 2\) and x1 of shape \(4, 2\)"):
        ot_pairing(torch.zeros(3, 2), torch.zeros(4, 2))


def test_each_scheduler_declares_the_label_of_its_figures():
    """``Scheduler.label`` names the sampler in figure titles and ``genmodels sample``'s line
    (``DenoisingModel.sampler_label``), with DDIM's η when it is not 0."""
    schedule = NoiseSchedule("cosine", 100)
    assert DDPMScheduler(schedule).label == "ddpm"
    assert DDIMScheduler(schedule).label == "ddim"
    assert DDIMScheduler(schedule, eta=1.0).label == "ddim, η = 1"
    assert DDIMScheduler(schedule, eta=0.5).label == "ddim, η = 0.5"
    assert [FlowScheduler(solver).label for solver in ("euler", "heun")] == ["euler", "heun"]
