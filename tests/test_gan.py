"""GAN objectives against hand computations, the gradient penalties (gp, R1) and the old
`wgan_gp` spelling, packing, config errors, divergence, bit-identical resume and
`genmodels sample` on GAN checkpoints."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from conftest import (
    assert_identical,
    assert_resume_is_bit_identical,
    metric_lines,
    tiny_config,
)

from genmodels import load
from genmodels.cli import main
from genmodels.config import ConfigError, config_from_dict
from genmodels.metrics import energy_distance
from genmodels.models import MODELS
from genmodels.models.gan import LOSSES, kernel_distance
from genmodels.models.gan_losses import (
    CRITIC_LOSSES,
    GENERATOR_LOSSES,
    gradient_penalty,
    r1_penalty,
)
from genmodels.train import (
    Callback,
    NonFiniteLossError,
    Trainer,
    load_checkpoint,
    save_checkpoint,
)

D_REAL, D_FAKE = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-0.5, 1.5])


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


@pytest.mark.parametrize("kind, critic, generator", [
    ("minimax", mean(-math.log(sigmoid(r)) for r in D_REAL.tolist())
     + mean(-math.log(1 - sigmoid(f)) for f in D_FAKE.tolist()),
     mean(math.log(1 - sigmoid(f)) for f in D_FAKE.tolist())),
    ("non_saturating", mean(-math.log(sigmoid(r)) for r in D_REAL.tolist())
     + mean(-math.log(1 - sigmoid(f)) for f in D_FAKE.tolist()),
     mean(-math.log(sigmoid(f)) for f in D_FAKE.tolist())),
    ("wasserstein", 0.5 - 0.5, -0.5),
    ("hinge", mean(max(0, 1 - r) for r in D_REAL.tolist())
     + mean(max(0, 1 + f) for f in D_FAKE.tolist()), -0.5),
    ("least_squares", 0.5 * mean((r - 1) ** 2 for r in D_REAL.tolist())
     + 0.5 * mean(f**2 for f in D_FAKE.tolist()),
     0.5 * mean((f - 1) ** 2 for f in D_FAKE.tolist())),
])
def test_losses_by_hand(kind, critic, generator):
    assert float(CRITIC_LOSSES[kind](D_REAL, D_FAKE)) == pytest.approx(critic, rel=1e-6)
    assert float(GENERATOR_LOSSES[kind](D_FAKE)) == pytest.approx(generator, rel=1e-6, abs=1e-7)


def test_gradient_penalty_against_autograd():
    weight = torch.tensor([[3.0, -4.0]])
    critic = lambda x: (x @ weight.T).squeeze(1) + 0.1 * x.pow(2).sum(1)  # noqa: E731
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    gen = torch.Generator().manual_seed(0)
    penalty = gradient_penalty(critic, real, fake, generator=gen)
    eps = torch.rand(6, 1, generator=torch.Generator().manual_seed(0))
    mixed = eps * real + (1 - eps) * fake
    grad = weight + 0.2 * mixed  # the analytic gradient of the critic
    expected = (grad.norm(dim=1) - 1).pow(2).mean()
    torch.testing.assert_close(penalty, expected)


def test_r1_penalty_against_autograd():
    """½ E ‖∇_x D(x)‖² over real examples, one autograd.grad per example of a tiny critic;
    differentiable in the critic's weights; 0 for a constant critic."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    critic = lambda x: net(x).squeeze(1)  # noqa: E731
    real = torch.randn(5, 2)
    penalty = r1_penalty(critic, real)
    by_hand = 0.0
    for x in real:
        x = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(net(x).sum(), x)
        by_hand += 0.5 * float(grad.pow(2).sum()) / 5
    assert float(penalty.detach()) == pytest.approx(by_hand, rel=1e-6)
    weight_grad = torch.autograd.grad(penalty, net[0].weight)[0]
    assert weight_grad.abs().sum() > 0
    constant = torch.nn.Linear(2, 1)
    torch.nn.init.zeros_(constant.weight)
    assert float(r1_penalty(lambda x: constant(x).squeeze(1), real).detach()) == 0.0


def make(**model):
    return MODELS["gan"](config_from_dict({"model": {"kind": "gan", **model}}).model)


def test_wgan_gp_is_wasserstein_with_the_gradient_penalty():
    """The old spelling gives the same config and, for a seeded step, the same losses to the
    bit: E D(x̃) − E D(x) + λ GP."""
    spellings = [{"loss": "wgan_gp"}, {"loss": "wasserstein", "penalty": "gp"},
                 {"loss": "wgan_gp", "penalty": "gp"}]
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    results = []
    for spelling in spellings:
        torch.manual_seed(0)
        model = make(net="dcgan", channels=[8, 16], latent_dim=4, pack=2, gp_weight=5.0,
                     **spelling)
        assert (model.config.loss, model.config.penalty) == ("wasserstein", "gp")
        torch.manual_seed(1)
        critic = model.critic_loss((real,))
        generator = {f"g_{k}": v for k, v in model.generator_loss((real,)).items()}
        results.append({**critic, **generator})
    for other in results[1:]:
        assert other.keys() == results[0].keys()
        assert all(torch.equal(other[k], results[0][k]) for k in other)
    critic = results[0]
    assert torch.equal(critic["loss"], critic["d_fake"] - critic["d_real"]
                       + 5.0 * critic["gradient_penalty"])


@pytest.mark.parametrize("penalty, batch_norm", [("none", True), ("gp", False), ("r1", False)])
def test_gradient_penalties_keep_batch_norm_out_of_the_critic(penalty, batch_norm):
    model = make(net="dcgan", channels=[8, 16], latent_dim=4, loss="hinge", penalty=penalty)
    norms = [m for m in model.critic.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bool(norms) == batch_norm


@pytest.mark.parametrize("values, message", [
    ({"loss": "energy", "penalty": "r1"}, "model.penalty = 'r1' regularises a critic, and "
                                          "model.loss = 'energy' trains without one; set "
                                          "model.penalty = 'none'"),
    ({"loss": "mmd", "penalty": "gp"}, "model.penalty = 'gp' regularises a critic"),
    ({"loss": "wgan_gp", "penalty": "r1"}, "model.loss = 'wgan_gp' is loss = 'wasserstein' with "
                                           "penalty = 'gp'; for penalty = 'r1' write model.loss "
                                           "= 'wasserstein'"),
    ({"penalty": "r2"}, "model.penalty = 'r2'; choose one of: none, gp, r1"),
    ({"loss": "wgan"}, "model.loss = 'wgan'; choose one of: minimax, non_saturating, hinge, "
                       "least_squares, wasserstein, energy, mmd"),
    ({"gp_weight": -1.0}, "model.gp_weight = -1.0 should be >= 0"),
])
def test_penalty_combinations_are_config_errors(values, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict({"model": {"kind": "gan", **values}})


def test_old_wgan_gp_checkpoint_loads(tmp_path, data_root):
    """A checkpoint whose config says loss = "wgan_gp" and gp_weight (no penalty key), as
    every WGAN-GP checkpoint before `penalty` did, loads as wasserstein + gp."""
    config = tiny_config(model={"kind": "gan", "net": "dcgan", "channels": [8, 16],
                                "latent_dim": 8, "loss": "wasserstein", "penalty": "gp",
                                "gp_weight": 5.0},
                         data={"view": "symmetric", "subset": 64}, train={"max_steps": 2})
    Trainer(config, tmp_path / "run", data_root=data_root).fit()
    state = load_checkpoint(tmp_path / "run" / "final.pt")
    model_config = dict(state["config"]["model"])
    del model_config["penalty"]
    state["config"] = {**state["config"], "model": {**model_config, "loss": "wgan_gp"}}
    save_checkpoint(state, tmp_path / "old.pt")
    old = load(tmp_path / "old.pt")
    assert (old.config.loss, old.config.penalty, old.config.gp_weight) == ("wasserstein", "gp", 5.0)
    assert_identical(old.state_dict(), load(tmp_path / "run" / "final.pt").state_dict())


def test_packing_shapes():
    images = make(net="dcgan", channels=[8, 16], latent_dim=4, pack=4)
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    assert images.pack(x).shape == (2, 4, 28, 28)
    torch.testing.assert_close(images.pack(x)[1, 2], x[6, 0])  # pack 1 holds samples 4..7
    assert images.judge(x).shape == (2,)
    points = make(net="mlp", hidden=[8], pack=2)
    assert points.judge(torch.randn(6, 2)).shape == (3,)
    with pytest.raises(ConfigError, match="cannot be packed"):
        points.pack(torch.randn(5, 2))


def test_samples_and_losses_are_finite():
    for loss, penalty in (("minimax", "none"), ("wgan_gp", "none"), ("wasserstein", "r1"),
                          ("hinge", "none"), ("least_squares", "gp"), ("energy", "none"),
                          ("mmd", "none")):
        model = make(net="mlp", hidden=[16], loss=loss, penalty=penalty,
                     spectral_norm=loss == "hinge")
        batch = (torch.randn(16, 2),)
        for phase in model.phases():
            assert torch.isfinite(phase.loss(batch)["loss"])
    images = make(net="dcgan", channels=[8, 16], latent_dim=4).sample(3)
    assert images.shape == (3, 1, 28, 28) and 0 <= images.min() and images.max() <= 1


def test_kernel_loss_is_the_energy_distance():
    model = make(net="mlp", hidden=[8], loss="energy")
    assert model.critic is None and set(model.parameter_groups()) == {"generator"}
    real = torch.randn(32, 2)
    torch.manual_seed(0)
    loss = model.kernel_generator_loss((real,))["loss"]
    torch.manual_seed(0)
    torch.testing.assert_close(loss, energy_distance(model.generate(32), real))


def test_energy_weight_adds_the_energy_distance_to_the_generator_loss():
    model = make(net="mlp", hidden=[8], energy_weight=0.5)
    real = torch.randn(16, 2, dtype=torch.float64).float()
    torch.manual_seed(0)
    model.critic_loss((real,))  # keeps its fakes for the generator update
    losses = {k: v.detach() for k, v in model.generator_loss((real,)).items()}
    torch.manual_seed(0)
    fake = model.generate(16).detach().double().numpy()
    x, y = fake, real.double().numpy()

    def mean_distance(a, b):
        return np.linalg.norm(a[:, None] - b[None], axis=-1).mean()

    energy = 2 * mean_distance(x, y) - mean_distance(x, x) - mean_distance(y, y)
    with torch.no_grad():
        d_fake = model.judge(torch.from_numpy(fake).float()).double()
    adversarial = float(torch.nn.functional.softplus(-d_fake).mean())  # non-saturating
    assert float(losses["energy_distance"]) == pytest.approx(energy, rel=1e-5)
    assert float(losses["loss"]) == pytest.approx(adversarial + 0.5 * energy, rel=1e-5)


def test_kernel_distances_stay_float32_under_autocast():
    """bfloat16's |x|² + |y|² - 2 x·y would cancel: images near 1 are far from the origin."""
    torch.manual_seed(0)
    a, b = 0.9 + 0.05 * torch.rand(64, 784), 0.9 + 0.05 * torch.rand(64, 784)
    for kind in ("energy", "mmd"):
        exact = kernel_distance(kind, a, b)
        with torch.autocast("cpu", torch.bfloat16):
            assert float(kernel_distance(kind, a, b)) == pytest.approx(float(exact), rel=1e-6)


@pytest.mark.parametrize("values, message", [
    ({"pack": 0}, "model.pack = 0 should be > 0"),
    ({"n_critic": 0}, "model.n_critic = 0 should be > 0"),
    ({"clusters": -1}, "model.clusters = -1 should be >= 0"),
    ({"energy_weight": -1.0}, "model.energy_weight = -1.0 should be >= 0"),
])
def test_gan_ranges_are_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"model": {"kind": "gan", **values}})


@pytest.mark.parametrize("model, train, message", [
    ({"n_critic": 3}, {"batch_size": 32}, "cannot be split into 3 equal micro-batches"),
    ({"pack": 3}, {"batch_size": 32}, "not divisible by model.pack = 3"),
])
def test_batch_divisibility_is_a_config_error(tmp_path, data_root, model, train, message):
    config = tiny_config(model={"kind": "gan", "net": "dcgan", "channels": [8, 16], **model},
                         train=train)
    with pytest.raises(ConfigError, match=message):
        Trainer(config, tmp_path, data_root=data_root)


def test_separate_learning_rates(tmp_path):
    config = tiny_config(model={"kind": "gan", "net": "mlp", "hidden": [8], "lr_generator": 1e-4,
                                "lr_critic": 4e-4},
                         data={"name": "ring", "toy_size": 256}, train={"max_steps": 2})
    trainer = Trainer(config, tmp_path)
    assert trainer.optimizers["generator"].param_groups[0]["lr"] == 1e-4
    assert trainer.optimizers["critic"].param_groups[0]["lr"] == 4e-4
    trainer.fit()
    assert (tmp_path / "figures" / "samples_0000002.png").exists()


@pytest.mark.parametrize("loss, penalty", [*((loss, "none") for loss in LOSSES),
                                           ("wasserstein", "gp"), ("non_saturating", "r1")])
def test_every_loss_trains_under_cpu_amp(tmp_path, data_root, loss, penalty):
    """bfloat16 autocast on the CPU (``train.amp``), the gradient penalties' double backward
    included: finite losses, float32 weights that moved."""
    config = tiny_config(model={"kind": "gan", "net": "dcgan", "channels": [8, 16], "loss": loss,
                                "penalty": penalty, "pack": 2},
                         train={"max_steps": 3, "amp": True, "eval_every": 10**6})
    trainer = Trainer(config, tmp_path, data_root=data_root)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [v for line in logged for k, v in line.items()
              if k.startswith("train/") and k.endswith("loss")]
    assert losses and all(math.isfinite(v) for v in losses)
    after = trainer.model.state_dict()
    assert all(v.dtype == before[k].dtype for k, v in after.items())
    for net in ("generator", "critic") if loss in CRITIC_LOSSES else ("generator",):
        assert any(not torch.equal(v, before[k]) for k, v in after.items()
                   if k.startswith(net + ".")), f"the {net} did not move"


class PoisonAt(Callback):
    """Sets one weight of ``net`` (critic or generator) to NaN after ``step`` steps."""

    def __init__(self, net: str, step: int) -> None:
        self.net, self.step = net, step

    def on_step(self, trainer, losses):
        if trainer.step == self.step:
            with torch.no_grad():
                next(getattr(trainer.model, self.net).parameters()).view(-1)[0] = float("nan")


RING = {"name": "ring", "toy_size": 1024}


def test_r1_gan_trains_on_the_ring_and_logs_its_penalty(tmp_path):
    """configs/gan_ring.toml in small (MLP, PacGAN4, non-saturating) with R1 (γ = 1)."""
    config = tiny_config(model={"kind": "gan", "net": "mlp", "hidden": [16, 16], "pack": 4,
                                "penalty": "r1", "gp_weight": 1.0},
                         data=RING, train={"max_steps": 6, "batch_size": 64, "log_every": 2,
                                           "betas": [0.5, 0.999], "eval_every": 10**6})
    trainer = Trainer(config, tmp_path)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    logged = [line for line in metric_lines(tmp_path) if "train/critic_loss" in line]
    assert len(logged) == 3
    for line in logged:
        assert 0 < line["train/critic_r1_penalty"] < math.inf
        assert "train/critic_gradient_penalty" not in line
    assert any(not torch.equal(v, before[k]) for k, v in trainer.model.state_dict().items()
               if k.startswith("critic."))


@pytest.mark.parametrize("net, loss, where", [
    ("critic", "non_saturating", " in the critic update"),
    ("generator", "hinge", " in the critic update"),  # NaN fakes reach the critic first
    ("generator", "energy", ""),  # critic-free: one optimiser
])
def test_diverging_gan_stops_and_keeps_the_last_good_checkpoint(tmp_path, net, loss, where):
    config = tiny_config(model={"kind": "gan", "net": "mlp", "hidden": [8], "loss": loss},
                         data=RING, train={"max_steps": 30})
    trainer = Trainer(config, tmp_path, callbacks=[PoisonAt(net, 12)])
    with pytest.raises(NonFiniteLossError, match=f"step 13{where}: .*checkpoint.pt is kept"):
        trainer.fit()
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 10 and not (tmp_path / "final.pt").exists()
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_gan_resume_is_bit_identical(tmp_path, data_root):
    """DCGAN (batch norm) with n_critic = 2, EMA, Adam betas and two learning rates."""
    config = tiny_config(model={"kind": "gan", "net": "dcgan", "channels": [8, 16],
                                "latent_dim": 8, "n_critic": 2, "lr_critic": 4e-4},
                         data={"view": "symmetric", "subset": 512},
                         train={"epochs": 2, "ema": 0.9, "betas": [0.5, 0.999]})
    assert_resume_is_bit_identical(config, tmp_path, data_root, interrupt_at=13)


def test_the_sample_scatter_of_a_2d_model_draws_its_data_beneath(tmp_path, data_root,
                                                                 monkeypatch):
    """``genmodels sample`` of a model of a 2-D mixture draws as many of the mixture's own
    points in grey under the samples (``scatter_points``' reference)."""
    from genmodels import plots
    from genmodels.data import GaussianMixture2D

    config = tiny_config(model={"kind": "gan", "net": "mlp", "hidden": [8]}, data=RING,
                         train={"max_steps": 2})
    Trainer(config, tmp_path / "run", data_root=data_root).fit()
    drawn = {}

    def record(points, out_path, reference=None, title=None):
        drawn.update(points=points, reference=reference, title=title)
        return out_path

    monkeypatch.setattr(plots, "scatter_points", record)
    assert main(["sample", str(tmp_path / "run"), "--n", "300", "--out",
                 str(tmp_path / "s.png")]) == 0
    ring = GaussianMixture2D.ring()
    assert drawn["points"].shape == drawn["reference"].shape == (300, 2)
    assert torch.cdist(drawn["reference"], ring.means).min(1).values.max() < 6 * ring.std
    assert drawn["title"].startswith("300 samples of gan")


@pytest.mark.parametrize("net, model, data", [
    ("mlp", {"hidden": [8]}, RING),
    ("dcgan", {"channels": [8, 16], "latent_dim": 8}, {"view": "symmetric", "subset": 256}),
])
def test_sample_command_on_a_gan_checkpoint(tmp_path, data_root, net, model, data):
    from PIL import Image

    config = tiny_config(model={"kind": "gan", "net": net, **model}, data=data,
                         train={"max_steps": 4})
    Trainer(config, tmp_path / "run", data_root=data_root).fit()
    out = tmp_path / "samples.png"
    assert main(["sample", str(tmp_path / "run" / "final.pt"), "--n", "64", "--out",
                 str(out)]) == 0
    grid = 8 * 30 + 2  # 8 x 8 tiles of 28 + 2 pixels, drawn at scale 2 under a title
    with Image.open(out) as image:  # points get a matplotlib scatter instead
        assert min(image.size) > 200
        if net == "dcgan":
            assert image.width >= 2 * grid and image.height > 2 * grid
