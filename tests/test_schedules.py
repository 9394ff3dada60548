"""Learning-rate schedules, and SGD estimating a mean: constant rates stall, 1/(n+1) converges."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from genmodels.config import ConfigError, TrainConfig
from genmodels.optim import lr_factor, make_optimizer, make_scheduler
from genmodels.optim.sgd_mean import main as sgd_mean_example
from genmodels.optim.sgd_mean import sgd_mean_estimate


def test_schedule_factors():
    constant = lr_factor("constant", total_steps=100, n0=10)
    assert [constant(n) for n in (0, 50, 10**6)] == [1.0, 1.0, 1.0]
    inverse = lr_factor("inverse", total_steps=100, n0=10)
    assert [inverse(n) for n in (0, 10, 30, 90)] == pytest.approx([1, 1 / 2, 1 / 4, 1 / 10])
    cosine = lr_factor("cosine", total_steps=100, n0=10)
    assert [cosine(n) for n in (0, 25, 50, 100, 150)] == pytest.approx(
        [1, (1 + math.sqrt(0.5)) / 2, 0.5, 0, 0], abs=1e-15)
    with pytest.raises(ConfigError, match="constant, inverse or cosine"):
        lr_factor("linear", total_steps=100, n0=10)


@pytest.mark.parametrize(("schedule", "expected"), [
    ("constant", [0.1] * 4),
    ("inverse", [0.1, 0.1 / 1.5, 0.1 / 2, 0.1 / 2.5]),  # ρ0 / (1 + n/n0), n0 = 2
    ("cosine", [0.1, 0.1 * (1 + math.cos(math.pi / 3)) / 2,
                0.1 * (1 + math.cos(2 * math.pi / 3)) / 2, 0.0]),  # 3 steps in all
])
def test_configured_schedule_drives_the_optimizer_lr(schedule, expected):
    config = TrainConfig(optimizer="sgd", lr=0.1, schedule=schedule, schedule_n0=2)
    weight = torch.zeros(1, requires_grad=True)
    optimizer = make_optimizer([weight], config)
    scheduler = make_scheduler(optimizer, config, total_steps=3)
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        weight.grad = torch.ones(1)
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx(expected, abs=1e-15)


def test_constant_rate_sgd_is_an_ema_with_nonzero_limit_variance():
    """X_n = (1 - ρ) X_{n-1} + ρ Y_n: Var X_n -> ρσ²/(2 - ρ), measured over 20000 runs."""
    m, sigma, rho, runs = 1.0, 2.0, 0.2, 20_000
    samples = np.random.default_rng(0).normal(m, sigma, size=(runs, 120))
    estimates = sgd_mean_estimate(samples, rho, x0=m)
    limit = rho * sigma**2 / (2 - rho)  # 0.444...
    for n in (60, 119):  # long past the (1 - ρ)^n transient: the variance stays put
        variance = estimates[:, n].var()
        # the sample variance of 20000 Gaussians has a relative standard error of sqrt(2/20000)
        assert variance == pytest.approx(limit, rel=5 * math.sqrt(2 / runs))
    assert estimates[:, -1].mean() == pytest.approx(m, abs=5 * math.sqrt(limit / runs))
    ema = np.full(runs, m)  # the recursion written as a moving average, independently
    for n in range(samples.shape[1]):
        ema = (1 - rho) * ema + rho * samples[:, n]
    np.testing.assert_allclose(estimates[:, -1], ema, rtol=1e-12)


def test_rate_one_over_n_plus_one_gives_the_empirical_mean():
    samples = np.random.default_rng(1).normal(3.0, 2.0, size=(3, 1000))
    estimates = sgd_mean_estimate(samples, lambda n: 1 / (n + 1), x0=-50.0)
    for n in (0, 1, 9, 499, 999):
        np.testing.assert_allclose(estimates[:, n], samples[:, :n + 1].mean(axis=1),
                                   rtol=0, atol=1e-12)


def test_mean_estimation_example_runs(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["sgd_mean", "--runs", "500", "--steps", "200"])
    sgd_mean_example()
    out = capsys.readouterr().out
    assert "1/(n+1)" in out and "largest |X_N - empirical mean|" in out


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_runs_fused_and_matches_a_numpy_adam(name):
    """Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019, decoupled decay) by hand in
    float64 NumPy, against make_optimizer's (fused on the CPU) for 30 steps of a least-squares
    problem."""
    lr, (b1, b2), decay, eps = 0.01, (0.8, 0.95), 0.1, 1e-8
    config = TrainConfig(optimizer=name, lr=lr, betas=[b1, b2], weight_decay=decay)
    rng = np.random.default_rng(0)
    a, y, w0 = rng.normal(size=(20, 5)), rng.normal(size=20), rng.normal(size=5)
    a32, y32 = torch.tensor(a, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    weight = torch.tensor(w0, dtype=torch.float32, requires_grad=True)
    optimizer = make_optimizer([weight], config)
    assert optimizer.defaults["fused"]

    w, m, v = w0.copy(), np.zeros(5), np.zeros(5)
    for t in range(1, 31):
        optimizer.zero_grad()
        ((a32 @ weight - y32) ** 2).mean().backward()
        optimizer.step()
        g = 2 * a.T @ (a @ w - y) / len(y)
        if name == "adam":
            g = g + decay * w  # L2 penalty in the gradient
        else:
            w = w * (1 - lr * decay)  # decoupled decay
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(weight.detach().numpy(), w, rtol=1e-5, atol=1e-6)
