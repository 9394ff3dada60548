"""Class-conditional models (docs/conditional.md): the CVAE, the masked CVAE of the Pyro
protocol and the projection-discriminator GAN train a few steps and sample the labels asked
for; the projection and the ELBOs against hand computations; bit-identical resume; the
`sample --label` command and its errors; unconditional checkpoints load as before."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, assert_resume_is_bit_identical, tiny_config

from genmodels import load
from genmodels.cli import main
from genmodels.config import ConfigError, config_from_dict
from genmodels.data.build import from_tensors
from genmodels.errors import InputError
from genmodels.models import (
    CVAE,
    GAN,
    MODELS,
    VAE,
    ConditionalGAN,
    ConditionalSampler,
    LatentVariableModel,
    MaskedCVAE,
    Sampler,
)
from genmodels.pipelines.run_evaluation import draw_samples
from genmodels.train import Trainer, load_checkpoint, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

CVAE_MODEL = {"kind": "vae", "conditional": True, "hidden": [32], "latent_dim": 4}
CGAN_MODEL = {"kind": "gan", "conditional": True, "net": "dcgan", "channels": [8, 16],
              "latent_dim": 8}
SMALL = {"subset": 256, "eval_batch_size": 256}


def build(model: dict, shape=(1, 28, 28)):
    config = config_from_dict({"model": model})
    return MODELS[config.kind](config.model, shape)


def inputs_of(module: torch.nn.Module) -> list[torch.Tensor]:
    """Records the first input of every call of ``module``."""
    seen: list[torch.Tensor] = []
    module.register_forward_hook(lambda m, args, out: seen.append(args[0].detach()))
    return seen


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_root):
    """A CVAE and a conditional GAN trained 4 steps on 256 MNIST images."""
    folder = tmp_path_factory.mktemp("conditional")
    for name, model, data in (("cvae", CVAE_MODEL, SMALL),
                              ("cgan", CGAN_MODEL, {**SMALL, "view": "symmetric"})):
        Trainer(tiny_config(model=model, data=data, train={"max_steps": 4}), folder / name,
                data_root=data_root).fit()
    return folder


# --- training and sampling --------------------------------------------------------------------
def test_cvae_samples_the_labels_asked_for(runs, data_root):
    model = load(runs / "cvae")
    assert type(model) is CVAE and isinstance(model, ConditionalSampler)
    assert not isinstance(model, LatentVariableModel)  # no encoder of x alone, no p(x)
    from genmodels.data import load_images

    train_labels = load_images("mnist", "train", data_root).labels[:256]
    assert model.labels.counts.tolist() == torch.bincount(train_labels, minlength=10).tolist()
    decoded = inputs_of(model.decoder)
    labels = torch.tensor([7, 0, 3, 9, 7])
    samples = model.sample(5, torch.Generator().manual_seed(0), labels)
    assert samples.shape == (5, 1, 28, 28) and 0 <= samples.min() and samples.max() <= 1
    assert torch.equal(decoded[-1][:, -10:], F.one_hot(labels, 10).float())  # [z, one-hot y]
    unconditional = model.sample(6, torch.Generator().manual_seed(0))
    assert unconditional.shape == (6, 1, 28, 28)


def test_cgan_samples_the_labels_asked_for(runs):
    model = load(runs / "cgan")
    assert type(model) is ConditionalGAN and isinstance(model, ConditionalSampler)
    generated = inputs_of(model.generator)
    labels = torch.tensor([1, 1, 4, 8])
    samples = model.sample(4, torch.Generator().manual_seed(0), labels)
    assert samples.shape == (4, 1, 28, 28)
    assert torch.equal(generated[-1][:, 8:], model.label_embedding(labels))  # [z, e(y)]
    same_codes = model.sample(4, torch.Generator().manual_seed(0), torch.tensor([2, 2, 2, 2]))
    assert torch.equal(generated[-1][:, :8], generated[-2][:, :8])  # z does not hang on y
    assert not torch.equal(same_codes, samples)
    with pytest.raises(ValueError, match=r"lie in \[0, 10\)"):
        model.sample(2, labels=torch.tensor([3, 10]))


def test_the_critic_of_a_training_step_sees_the_batch_labels():
    torch.manual_seed(0)
    model = build(CGAN_MODEL)
    x, y = torch.rand(6, 1, 28, 28) * 2 - 1, torch.tensor([0, 1, 2, 3, 4, 5])
    projected = inputs_of(model.projection)
    model.critic_loss((x, y))
    assert [p.tolist() for p in projected] == [y.tolist(), y.tolist()]  # real, then fakes
    generated = inputs_of(model.generator)
    model.generator_loss((x, y))  # reuses the critic update's fakes: no new generator call
    assert generated == [] and projected[-1].tolist() == y.tolist()


@pytest.mark.parametrize("model, shape", [
    ({"kind": "gan", "conditional": True, "net": "mlp", "hidden": [16, 8]}, (2,)),
    (CGAN_MODEL, (1, 28, 28)),
    ({**CGAN_MODEL, "spectral_norm": True}, (1, 28, 28)),
])
def test_projection_discriminator_by_hand(model, shape):
    torch.manual_seed(0)
    gan = build(model, shape).eval()  # eval: batch norm and spectral norm as fixed maps
    x, y = torch.randn(5, *shape), torch.tensor([0, 3, 3, 9, 1])
    layers = list(gan.critic.net if model["net"] == "dcgan" else gan.critic)
    phi = x
    for layer in layers[:-1]:
        phi = layer(phi)
    psi = layers[-1]
    embedding = gan.projection.weight  # spectrally normalised when asked: the weight in use
    by_hand = phi @ psi.weight[0] + psi.bias[0] + (embedding[y] * phi).sum(1)
    assert phi.shape == (5, psi.in_features) and embedding.shape == (10, psi.in_features)
    assert torch.allclose(gan.judge(x, y), by_hand, atol=1e-5)
    other = torch.tensor([1, 3, 4, 9, 2])  # changing y changes exactly the projection term
    assert torch.allclose(gan.judge(x, other) - gan.judge(x, y),
                          ((embedding[other] - embedding[y]) * phi).sum(1), atol=1e-5)
    if model.get("spectral_norm"):
        norm = float(torch.linalg.matrix_norm(embedding.detach(), ord=2))
        assert norm == pytest.approx(1, abs=0.05)  # the power iteration's estimate
    assert {id(p) for p in gan.projection.parameters()} <= \
        {id(p) for p in gan.parameters_of(critic=True)}
    assert {id(p) for p in gan.label_embedding.parameters()} <= \
        {id(p) for p in gan.parameters_of(critic=False)}


# --- the ELBOs by hand ------------------------------------------------------------------------
def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)


def test_cvae_elbo_by_hand():
    torch.manual_seed(0)
    model = build({"kind": "vae", "conditional": True, "hidden": [3], "latent_dim": 2,
                   "num_classes": 3}, (1, 2, 2))
    x, y = torch.rand(2, 1, 2, 2), torch.tensor([2, 0])
    torch.manual_seed(1)
    elbo, log_px, kl = model.elbo_terms(x, y)
    onehot = torch.tensor([[0.0, 0, 1], [1, 0, 0]])
    h = model.encoder.net(torch.cat([x.flatten(1), onehot], 1))
    mu, log_var = h[:, :2], h[:, 2:]
    torch.manual_seed(1)
    z = mu + torch.exp(0.5 * log_var) * torch.empty(2, 2).normal_()
    logits = model.decoder.net(torch.cat([z, onehot], 1))
    expected_log_px = bernoulli_log_prob(logits, x.flatten(1)).sum(1)
    expected_kl = 0.5 * (mu**2 + log_var.exp() - 1 - log_var).sum(1)
    assert torch.allclose(log_px, expected_log_px, atol=1e-5)
    assert torch.allclose(kl, expected_kl, atol=1e-5)
    assert torch.allclose(elbo, expected_log_px - expected_kl, atol=1e-5)
    torch.manual_seed(1)  # the training loss at the same draw: batch means of the terms
    loss = {name: float(value.detach()) for name, value in model.loss((x, y)).items()}
    assert loss["nelbo"] == pytest.approx(float(-(expected_log_px - expected_kl).detach().mean()))
    assert loss["loss"] == pytest.approx(loss["recon"] + loss["kl"])  # beta = 1


def test_masked_cvae_elbo_by_hand():
    """Condition = the observed quadrant (bottom-left), -1 elsewhere; the likelihood covers the
    three missing quadrants; the KL is to the prior net's Gaussian."""
    torch.manual_seed(0)
    model = build({"kind": "vae", "conditional": True, "condition": "quadrants1",
                   "prior_net": True, "hidden": [5], "latent_dim": 2}, (1, 4, 4))
    assert type(model) is MaskedCVAE and not isinstance(model, Sampler)
    x = torch.rand(3, 1, 4, 4)
    cond = model.condition(x)
    observed = torch.zeros(4, 4, dtype=torch.bool)
    observed[2:, :2] = True
    assert torch.equal(cond[:, 0, observed], x[:, 0, observed])
    assert (cond[:, 0, ~observed] == -1).all()
    torch.manual_seed(1)
    elbo, log_px, kl = model.elbo_terms(x, cond)
    h = model.encoder.net(torch.cat([x.flatten(1), cond.flatten(1)], 1))
    mu, log_var = h[:, :2], h[:, 2:]
    p = model.prior_net(cond.flatten(1))
    mu_p, log_var_p = p[:, :2], p[:, 2:]
    torch.manual_seed(1)
    z = mu + torch.exp(0.5 * log_var) * torch.empty(3, 2).normal_()
    logits = model.decoder.net(torch.cat([z, cond.flatten(1)], 1))
    pixels = bernoulli_log_prob(logits, x.flatten(1))
    expected_log_px = pixels[:, ~observed.flatten()].sum(1)  # 12 missing pixels
    expected_kl = (0.5 * (log_var_p - log_var) + (log_var.exp() + (mu - mu_p) ** 2)
                   / (2 * log_var_p.exp()) - 0.5).sum(1)
    assert torch.allclose(log_px, expected_log_px, atol=1e-5)
    assert torch.allclose(kl, expected_kl, atol=1e-5)
    torch.manual_seed(2)  # Pyro's Trace_ELBO(num_particles=k): a mean over k draws of q
    particles = model.particle_elbo(x, cond, 4)
    torch.manual_seed(2)
    eps = torch.empty(4, 3, 2).normal_()
    zs = mu + torch.exp(0.5 * log_var) * eps
    logits = model.decoder.net(torch.cat([zs, cond.flatten(1).expand(4, -1, -1)], -1))
    log_q = (-0.5 * eps**2 - 0.5 * log_var - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_p = (-0.5 * (zs - mu_p) ** 2 / log_var_p.exp() - 0.5 * log_var_p
             - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_px = bernoulli_log_prob(logits, x.flatten(1))[..., ~observed.flatten()].sum(-1)
    assert torch.allclose(particles, (log_px + log_p - log_q).mean(0), atol=1e-4)
    assert model.log_likelihood_given(x, cond, 64).shape == (3,)
    completions = model.complete(x, 2)
    assert completions.shape == (2, 3, 1, 4, 4)
    assert torch.equal(completions[:, :, 0, observed], x[:, 0, observed].expand(2, -1, -1))


def test_masked_cvae_trains_and_is_no_sampler(tmp_path, data_root, capsys):
    model = {"kind": "vae", "conditional": True, "condition": "quadrants2", "prior_net": True,
             "hidden": [16], "latent_dim": 4, "eval_samples": 8}
    trainer = Trainer(tiny_config(model=model, data=SMALL, train={"max_steps": 3}),
                      tmp_path / "run", data_root=data_root)
    trainer.fit()
    numbers = trainer.evaluate()
    assert {"nelbo", "recon", "kl", "mse", "cond_nll"} <= set(numbers)
    assert numbers["cond_nll"] <= numbers["nelbo"] + 1  # the tighter bound, up to noise
    assert (tmp_path / "run" / "figures" / "completions_0000003.png").is_file()
    assert main(["sample", str(tmp_path / "run"), "--out", str(tmp_path / "x.png")]) == 2
    assert "holds a vae conditioned on observed pixels (MaskedCVAE), which cannot sample" \
        in capsys.readouterr().err


def test_messages_name_a_conditional_model_by_what_it_is(runs, capsys):
    assert main(["latent", "interpolate", str(runs / "cvae")]) == 2
    assert "holds a class-conditional vae (CVAE); latent tools need a VAE" \
        in capsys.readouterr().err  # not "holds a vae; ... need a VAE"


# --- resume, the command line, old checkpoints ------------------------------------------------
@pytest.mark.parametrize("model, data", [
    ({**CGAN_MODEL, "n_critic": 2, "lr_critic": 4e-4}, {"view": "symmetric", "subset": 512}),
    ({**CVAE_MODEL, "prior_net": True}, {"subset": 512}),
])
def test_conditional_resume_is_bit_identical(tmp_path, data_root, model, data):
    config = tiny_config(model=model, data=data, train={"epochs": 2, "ema": 0.9})
    assert_resume_is_bit_identical(config, tmp_path, data_root, interrupt_at=13)


def test_sample_command_with_labels(runs, tmp_path):
    from genmodels.cli import _sample_labels, parser

    out = tmp_path / "sevens.npy"
    assert main(["sample", str(runs / "cvae"), "--label", "7", "--n", "5", "--out",
                 str(out)]) == 0
    assert np.load(out).shape == (5, 1, 28, 28)
    rows = tmp_path / "rows.pt"
    assert main(["sample", str(runs / "cgan"), "--per-class", "2", "--out", str(rows)]) == 0
    assert torch.load(rows).shape == (20, 1, 28, 28)
    assert main(["sample", str(runs / "cvae"), "--label", "all", "--out",
                 str(tmp_path / "classes.png")]) == 0
    assert (tmp_path / "classes.png").is_file()
    model = load(runs / "cgan")
    for flags, n, labels, nrow in (
            (["--per-class", "3"], 30, torch.arange(10).repeat_interleave(3), 3),
            (["--label", "all"], 80, torch.arange(10).repeat_interleave(8), 8),
            (["--label", "4", "--nrow", "5"], 64, torch.full((64,), 4), 5),
            ([], 64, None, 8)):
        args = parser().parse_args(["sample", str(runs / "cgan"), *flags])
        got = _sample_labels(args, model)
        assert got[0] == n and got[2] == nrow
        assert (got[1] is None and labels is None) or torch.equal(got[1], labels)


@pytest.mark.parametrize("run, flags, message", [
    ("vae", ["--label", "3"], "holds an unconditional vae; labels apply to models trained "
                              "with model.conditional = true"),
    ("vae", ["--per-class", "2"], "--per-class 2: .* holds an unconditional vae"),
    ("cvae", ["--label", "10"], "--label 10 is out of range: the model has 10 classes "
                                r"\(labels 0 to 9\)"),
    ("cvae", ["--label", "seven"], "argument --label should be a class number"),
    ("cvae", ["--label", "-1"], "argument --label should be a class number"),
    ("cvae", ["--label", "3", "--per-class", "2"], "--per-class draws every class"),
    ("cvae", ["--label", "all", "--n", "5"], "drop --n"),
])
def test_sample_label_errors_are_one_line(runs, tmp_path, capsys, run, flags, message, data_root):
    if run == "vae" and not (runs / "vae").exists():
        Trainer(tiny_config(model={"kind": "vae", "hidden": [16], "latent_dim": 2}, data=SMALL,
                            train={"max_steps": 1}), runs / "vae", data_root=data_root).fit()
    capsys.readouterr()
    out = tmp_path / "x.png"
    assert main(["sample", str(runs / run), *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("genmodels sample: error: "), err
    assert re.search(message, err), err
    assert not out.exists()


def test_draw_samples_refuses_labels_for_an_unconditional_model():
    with pytest.raises(InputError, match="not class-conditional"):
        draw_samples(build({"kind": "gan", "net": "mlp", "hidden": [8]}, (2,)), 3,
                     labels=torch.tensor([0, 1, 2]))
    with pytest.raises(InputError, match=r"shape \(3,\)"):
        draw_samples(build(CGAN_MODEL), 3, labels=torch.tensor([0, 1]))


def test_unconditional_checkpoints_load_as_before(tmp_path):
    """The shipped checkpoints (written before conditional models existed) and a checkpoint
    whose config lacks the new keys load as the plain kinds, with the same weights."""
    for name, kind in (("gan_mnist", GAN), ("iwae_mnist_nll", VAE), ("gan_ring", GAN)):
        model = load(ROOT / "samples" / "checkpoints" / name)
        assert isinstance(model, kind) and not isinstance(model, ConditionalSampler)
        assert model.sample(2, torch.Generator().manual_seed(0)).shape[0] == 2
    for values in ({"kind": "vae", "hidden": [8], "latent_dim": 2},
                   {"kind": "gan", "net": "mlp", "hidden": [8]}):
        torch.manual_seed(0)
        config = config_from_dict({"model": values})
        model = MODELS[config.kind](config.model, (2,) if values["kind"] == "gan" else None)
        assert type(model) is MODELS[config.kind]
        saved = config.to_dict()
        for key in ("conditional", "num_classes", "condition", "prior_net"):
            saved["model"].pop(key, None)  # the config of a checkpoint of before
        save_checkpoint({"format": "genmodels/model/1", "kind": config.kind, "config": saved,
                         "model": model.state_dict(), "ema": None,
                         "input_shape": list(model.input_shape)}, tmp_path / "final.pt")
        loaded = load(tmp_path / "final.pt")
        assert type(loaded) is type(model)
        state = load_checkpoint(tmp_path / "final.pt")["model"]
        assert loaded.state_dict().keys() == state.keys()
        assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())


# --- config and data errors -------------------------------------------------------------------
@pytest.mark.parametrize("model, message", [
    ({"kind": "gan", "conditional": True, "clusters": 10}, "does not support model.clusters"),
    ({"kind": "gan", "conditional": True, "pack": 2}, "does not support model.pack = 2"),
    ({"kind": "gan", "conditional": True, "loss": "energy"}, "does not support model.loss"),
    ({"kind": "gan", "conditional": True, "num_classes": 0}, "num_classes = 0 should be > 0"),
    ({"kind": "iwae", "conditional": True}, "only kind = 'vae' has a conditional form"),
    ({"kind": "wae_mmd", "conditional": True}, "only kind = 'vae' has a conditional form"),
    ({"kind": "vae", "prior_net": True}, "set model.conditional = true"),
    ({"kind": "vae", "condition": "quadrants1"}, "set model.conditional = true"),
    ({"kind": "vae", "conditional": True, "condition": "random:0.5"}, "model.condition"),
])
def test_unsupported_combinations_are_config_errors(model, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"model": model})


@pytest.mark.parametrize("model", [CVAE_MODEL, CGAN_MODEL])
def test_unlabelled_data_is_a_config_error(tmp_path, model):
    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    config = tiny_config(model=model, train={"max_steps": 1})
    with pytest.raises(ConfigError, match="this data has none"):
        Trainer(config, tmp_path / "run", data=from_tensors(images, batch_size=32))


def test_labels_beyond_num_classes_are_a_config_error(tmp_path, data_root):
    config = tiny_config(model={**CVAE_MODEL, "num_classes": 5}, data=SMALL)
    with pytest.raises(ConfigError, match="set model.num_classes = 10"):
        Trainer(config, tmp_path / "run", data_root=data_root)


@pytest.mark.parametrize("name", ["cvae_mnist", "cgan_mnist", "pyro_cvae_mnist"])
def test_the_configs_build(name, capsys):
    assert main(["summary", str(ROOT / "configs" / f"{name}.toml")]) == 0
    assert capsys.readouterr().out.strip()
