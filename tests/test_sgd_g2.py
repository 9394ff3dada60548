"""SGD-G2 (Ayadi & Turinici 2020) against rates and steps computed by hand, and in the Trainer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from conftest import InterruptAt, tiny_config
from torch import nn

from genmodels.config import ConfigError, TrainConfig
from genmodels.models import Model, register
from genmodels.optim import SGDG2, KeepLR, make_optimizer, make_scheduler
from genmodels.train import Callback, Trainer, load_checkpoint

BETA = 0.9


def quadratic_closure(optimizer: torch.optim.Optimizer, params: list[torch.Tensor],
                      curvatures: list[float], *, set_to_none: bool = True):
    """f = Σ a_i |x_i|²/2 over the parameter tensors; records θ at every evaluation."""
    seen: list[list[torch.Tensor]] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=set_to_none)
        seen.append([p.detach().clone() for p in params])
        loss = sum(a * p.pow(2).sum() / 2 for a, p in zip(curvatures, params, strict=True))
        loss.backward()
        return loss

    return closure, seen


def next_rate(h: float, h_opt: float) -> float:
    return BETA * h + (1 - BETA) * h_opt if h <= h_opt else (1 - BETA) * h_opt


@pytest.mark.parametrize("set_to_none", [True, False])
@pytest.mark.parametrize(("h", "h1"), [(0.1, 0.9 * 0.1 + 0.1 * 0.5),  # h <= h_opt = 2/a = 0.5
                                       (1.0, 0.1 * 0.5)])  # h > h_opt
def test_one_step_on_a_quadratic_finds_h_opt_2_over_a(h, h1, set_to_none):
    a, x0 = 4.0, 3.0
    x = torch.tensor([x0], dtype=torch.float64, requires_grad=True)
    optimizer = SGDG2([x], lr=h, beta=BETA)
    closure, seen = quadratic_closure(optimizer, [x], [a], set_to_none=set_to_none)
    loss = optimizer.step(closure)

    # An aliased gradient (g̃ = g) gives h_opt = h and leaves the rate unchanged.
    assert optimizer.param_groups[0]["lr"] == pytest.approx(h1, rel=1e-12)
    assert loss.item() == a * x0**2 / 2  # the loss at θ, before the step
    assert [float(s[0]) for s in seen] == pytest.approx([x0, x0 - h * a * x0], rel=1e-15)
    # θ - h1 g: the trial move is undone (an aliased θ would keep it) and g, not g̃, is used.
    assert x.item() == pytest.approx(x0 - h1 * a * x0, rel=1e-14)
    assert x.grad.item() == a * x0


def test_one_global_rate_from_every_tensor_of_every_group():
    a1, a2, h = 1.0, 10.0, 0.05
    rng = np.random.default_rng(0)
    x0, y0 = rng.normal(size=2), rng.normal(size=3)
    x = torch.tensor(x0, requires_grad=True)
    y = torch.tensor(y0, requires_grad=True)
    optimizer = SGDG2([{"params": [x]}, {"params": [y]}], lr=h, beta=BETA)
    closure, _ = quadratic_closure(optimizer, [x, y], [a1, a2])
    optimizer.step(closure)

    g = np.concatenate([a1 * x0, a2 * y0])
    g_trial = np.concatenate([a1 * (x0 - h * a1 * x0), a2 * (y0 - h * a2 * y0)])
    d = g - g_trial
    h_opt = 2 * h * (d @ g) / (d @ d)
    h1 = next_rate(h, h_opt)
    # One rate per tensor would give 2/a1 and 2/a2 instead.
    assert not np.isclose(h_opt, 2 / a1) and not np.isclose(h_opt, 2 / a2)
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([h1, h1],
                                                                              rel=1e-12)
    np.testing.assert_allclose(x.detach().numpy(), x0 - h1 * a1 * x0, rtol=1e-13)
    np.testing.assert_allclose(y.detach().numpy(), y0 - h1 * a2 * y0, rtol=1e-13)


def test_rate_converges_into_the_stable_range_of_a_quadratic():
    a = 4.0
    x = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    optimizer = SGDG2([x], lr=3.0, beta=BETA)  # plain GD with h = 3 diverges: |1 - 3a| = 11
    closure, _ = quadratic_closure(optimizer, [x], [a])
    rates = []
    for _ in range(100):
        optimizer.step(closure)
        rates.append(optimizer.param_groups[0]["lr"])
    expected = [(1 - BETA) * 2 / a]
    for _ in range(99):
        expected.append(next_rate(expected[-1], 2 / a))
    assert rates == pytest.approx(expected, rel=1e-10)
    assert all(0 < h < 2 / a for h in rates)
    assert rates[-1] == pytest.approx(2 / a, rel=1e-4)
    assert abs(x.item()) < 3.0


def test_ill_conditioned_quadratic_converges():
    a = torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64)
    x = torch.ones(3, dtype=torch.float64, requires_grad=True)
    optimizer = SGDG2([x], lr=1.0, beta=BETA)

    def closure():
        optimizer.zero_grad()
        loss = (a * x**2).sum() / 2
        loss.backward()
        return loss

    first = optimizer.step(closure).item()
    for _ in range(500):
        last = optimizer.step(closure).item()
    assert last < 1e-6 * first


def test_trial_evaluation_replays_the_random_draws():
    """f_B(x) = a (x - ξ)²/2 with ξ drawn inside the closure: the same ξ at θ and at the trial
    point gives h_opt = 2/a exactly; and the RNG moves on as after one evaluation."""
    a, h = 4.0, 0.1
    x = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    optimizer = SGDG2([x], lr=h, beta=BETA)

    def closure():
        optimizer.zero_grad()
        noise = torch.randn((), dtype=torch.float64)
        loss = a * (x - noise).pow(2).sum() / 2
        loss.backward()
        return loss

    torch.manual_seed(0)
    xi, after_one_draw = torch.randn((), dtype=torch.float64), torch.randn(())
    torch.manual_seed(0)
    optimizer.step(closure)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(next_rate(h, 2 / a), rel=1e-12)
    assert x.item() == pytest.approx(3.0 - next_rate(h, 2 / a) * a * (3.0 - float(xi)))
    assert torch.equal(torch.randn(()), after_one_draw)


def test_bad_input_gives_clear_errors():
    x = torch.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="closure"):
        SGDG2([x]).step()
    for lr in (0.0, -1e-3):
        with pytest.raises(ValueError, match="lr"):
            SGDG2([x], lr=lr)
    for beta in (1.0, -0.1):
        with pytest.raises(ValueError, match="beta"):
            SGDG2([x], beta=beta)
    with pytest.raises(ValueError, match="one rate shared"):
        SGDG2([{"params": [x]}, {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.1}])
    with pytest.raises(ConfigError, match="weight_decay"):
        make_optimizer([x], TrainConfig(optimizer="sgd_g2", weight_decay=1e-4))
    with pytest.raises(ConfigError, match="schedule"):
        make_scheduler(SGDG2([x]), TrainConfig(optimizer="sgd_g2", schedule="cosine"), 10)


def regression(seed: int) -> tuple[nn.Module, torch.Tensor]:
    """A small net and 32 inputs; the target is sin(sum of the inputs)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1)), torch.randn(32, 5)


def train_steps(model: nn.Module, optimizer: SGDG2, x: torch.Tensor, steps: int) -> None:
    def closure():
        optimizer.zero_grad()
        loss = (model(x).squeeze(1) - x.sum(1).sin()).pow(2).mean()
        loss.backward()
        return loss

    for _ in range(steps):
        optimizer.step(closure)


def test_state_dict_round_trip_continues_identically():
    model, x = regression(0)
    optimizer = SGDG2(model.parameters(), lr=1e-2)
    train_steps(model, optimizer, x, 5)
    saved_model, saved_optimizer = model.state_dict(), optimizer.state_dict()
    saved_model = {k: v.clone() for k, v in saved_model.items()}
    assert saved_optimizer["param_groups"][0]["lr"] != 1e-2  # h has moved
    train_steps(model, optimizer, x, 5)

    resumed, _ = regression(1)
    resumed.load_state_dict(saved_model)
    optimizer2 = SGDG2(resumed.parameters(), lr=0.5)
    optimizer2.load_state_dict(saved_optimizer)
    train_steps(resumed, optimizer2, x, 5)
    for a, b in zip(model.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    assert optimizer2.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]


def test_constant_schedule_keeps_the_adapted_rate():
    model, x = regression(0)
    optimizer = make_optimizer(model.parameters(), TrainConfig(optimizer="sgd_g2", lr=1e-2))
    scheduler = make_scheduler(optimizer, TrainConfig(optimizer="sgd_g2"), total_steps=10)
    assert isinstance(scheduler, KeepLR)
    reference_model, _ = regression(0)
    reference = SGDG2(reference_model.parameters(), lr=1e-2)
    for _ in range(3):
        train_steps(model, optimizer, x, 1)
        scheduler.step()
        train_steps(reference_model, reference, x, 1)
        assert scheduler.get_last_lr() == [reference.param_groups[0]["lr"]]
        assert optimizer.param_groups[0]["lr"] == reference.param_groups[0]["lr"] != 1e-2


def test_trainer_runs_and_resumes_sgd_g2_bit_identically(tmp_path, data_root):
    config = tiny_config(model={"dropout": 0.2}, data={"view": "dynamic_binary"},
                         train={"optimizer": "sgd_g2", "lr": 0.01, "epochs": 2})
    full = Trainer(config, tmp_path / "full", data_root=data_root)
    full.fit()
    rates = [r["lr"] for r in map(json.loads, (tmp_path / "full" / "metrics.jsonl").open())
             if "lr" in r]
    assert len(set(rates)) == len(rates) and rates[0] != 0.01  # h adapts, no schedule resets it
    assert rates[-1] == full.optimizers["model"].param_groups[0]["lr"]
    metrics = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").open()]
    assert metrics[-1]["eval/accuracy"] > 0.5

    part = Trainer(config, tmp_path / "part", data_root=data_root, callbacks=[InterruptAt(21)])
    part.fit()
    assert part.interrupted and part.step == 21
    Trainer(config, tmp_path / "part", data_root=data_root, resume=True).fit()
    full_weights = load_checkpoint(tmp_path / "full" / "final.pt")["model"]
    part_weights = load_checkpoint(tmp_path / "part" / "final.pt")["model"]
    for name in full_weights:
        assert torch.equal(full_weights[name], part_weights[name]), name


class ZAtEveryEvaluation(Callback):
    """Records the generator's input z at every forward, step by step."""

    def __init__(self, trainer: Trainer) -> None:
        self.steps: list[list[torch.Tensor]] = [[]]
        trainer.model.generator.register_forward_pre_hook(
            lambda module, args: self.steps[-1].append(args[0].detach().clone()))

    def on_step(self, trainer, losses):
        self.steps.append([])


@pytest.mark.parametrize("n_critic", [1, 2])
def test_every_evaluation_of_a_gan_step_sees_the_same_z(tmp_path, n_critic):
    """The generator update's two closures (at θ and at the trial point) get one z: the same
    f_B is differentiated twice. It failed when the first reused the critic's fakes and the
    trial drew a new z."""
    config = tiny_config(model={"kind": "gan", "net": "mlp", "hidden": [16], "latent_dim": 4,
                                "n_critic": n_critic},
                         data={"name": "ring", "toy_size": 1024},
                         train={"optimizer": "sgd_g2", "lr": 0.01, "max_steps": 6})
    trainer = Trainer(config, tmp_path)
    record = ZAtEveryEvaluation(trainer)
    trainer.callbacks.append(record)
    trainer.fit()
    for step in record.steps[:-1]:
        # n_critic = 1: the critic's draw (twice) serves the generator update too;
        # n_critic = 2: two critic draws (twice each), then the generator's own (twice)
        generator_z = step[-2:] if n_critic > 1 else step
        assert len(generator_z) >= 2
        for z in generator_z:
            assert torch.equal(z, generator_z[0])


@dataclass
class NormalisedConfig:
    width: int = 8


@register
class Normalised(Model):
    """Linear + batch norm: the running statistics count the updates of a step."""

    kind = "test_normalised"
    Config = NormalisedConfig

    def __init__(self, config, input_shape=None):
        super().__init__(config, input_shape)
        self.linear, self.norm = nn.Linear(784, config.width), nn.BatchNorm1d(config.width)

    def loss(self, batch):
        return {"loss": self.norm(self.linear(batch[0].flatten(1))).pow(2).mean()}


def test_trial_point_leaves_the_normalisation_statistics_alone(tmp_path, data_root):
    config = tiny_config(model={"kind": "test_normalised"},
                         train={"optimizer": "sgd_g2", "lr": 0.01, "max_steps": 1})
    trainer = Trainer(config, tmp_path, data_root=data_root)
    (x, _), = [next(iter(trainer.batches))]
    trainer.batches.set_epoch(0)
    with torch.no_grad():  # one update of the statistics, from the batch at θ
        h = trainer.model.linear(x.flatten(1))
        mean, var = 0.1 * h.mean(0), 0.9 + 0.1 * h.var(0)
    trainer.fit()
    norm = trainer.model.norm
    assert int(norm.num_batches_tracked) == 1
    torch.testing.assert_close(norm.running_mean, mean)
    torch.testing.assert_close(norm.running_var, var)


@dataclass
class QuadraticConfig:
    curvatures: list[float] = field(default_factory=lambda: [100.0, 1.0])


@register
class Quadratic(Model):
    """f(θ) = Σ a_i θ_i² / 2 from θ = (1, ..., 1), whatever the batch."""

    kind = "test_quadratic"
    Config = QuadraticConfig

    def __init__(self, config, input_shape=None):
        super().__init__(config, input_shape)
        self.theta = nn.Parameter(torch.ones(len(config.curvatures), dtype=torch.float64))
        self.register_buffer("a", torch.tensor(config.curvatures, dtype=torch.float64))

    def loss(self, batch):
        return {"loss": (self.a * self.theta.square()).sum() / 2}


def test_clipping_limits_the_step_not_the_rate_estimate(tmp_path, data_root):
    """On curvatures (100, 1) with grad_clip 1, h comes from the unclipped g and g̃ (by hand
    below); clipping both made h jump to 671 on the first step."""
    h = 0.01
    config = tiny_config(model={"kind": "test_quadratic"},
                         train={"optimizer": "sgd_g2", "lr": h, "max_steps": 1,
                                "grad_clip": 1.0})
    trainer = Trainer(config, tmp_path, data_root=data_root)
    trainer.fit()
    a, theta = np.array([100.0, 1.0]), np.ones(2)
    g = a * theta
    difference = g - a * (theta - h * g)
    h_opt = 2 * h * (difference @ g) / (difference @ difference)
    h1 = next_rate(h, h_opt)
    assert trainer.optimizers["model"].param_groups[0]["lr"] == pytest.approx(h1, rel=1e-12)
    step = g / np.linalg.norm(g)  # clipped to norm 1
    np.testing.assert_allclose(trainer.model.theta.detach().numpy(), theta - h1 * step,
                               rtol=1e-5)


def test_a_failed_trial_evaluation_leaves_theta():
    x = torch.tensor([3.0, -1.0], dtype=torch.float64, requires_grad=True)
    optimizer = SGDG2([x], lr=0.1)
    calls = []

    def closure():
        optimizer.zero_grad()
        calls.append(1)
        if len(calls) == 2:
            raise FloatingPointError("the trial loss is NaN")
        loss = x.pow(2).sum()
        loss.backward()
        return loss

    with pytest.raises(FloatingPointError):
        optimizer.step(closure)
    assert x.tolist() == [3.0, -1.0]
