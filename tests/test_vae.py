"""The VAE family: every loss against an independent computation on small tensors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from torch.distributions import Bernoulli, Independent, MultivariateNormal

from genmodels.config import config_from_dict, load_config
from genmodels.metrics import mmd, radon_sobolev_to_normal, sliced_wasserstein
from genmodels.models import MODELS, MaskedCVAE, vae
from genmodels.models.distributions import BernoulliImages, PointMass
from genmodels.train import NonFiniteLossError, Trainer

CONFIGS = Path(__file__).parents[1] / "configs"
VAE_KINDS = ["vae", "iwae", "wae_mmd", "sliced_wae", "radon_sobolev"]


def make(kind: str = "vae", **model):
    return MODELS[kind](config_from_dict({"model": {"kind": kind, **model}}).model)


def images(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", VAE_KINDS)
def test_interface(kind):
    model = make(kind, latent_dim=3, hidden=[16])
    x = images()
    q = model.encode(x)
    assert model.latent_dim == 3 and q.event_shape == (3,) and q.batch_shape == (6,)
    assert isinstance(q, PointMass) == (kind in ("wae_mmd", "sliced_wae", "radon_sobolev"))
    likelihood = model.decode(q.rsample())
    assert likelihood.event_shape == (1, 28, 28) and likelihood.batch_shape == (6,)
    samples = model.sample(5)
    assert samples.shape == (5, 1, 28, 28) and 0 <= samples.min() and samples.max() <= 1
    assert model.reconstruct(x).shape == x.shape
    assert model.log_likelihood(x, k=10).shape == (6,)
    losses = model.loss((x,))
    assert losses["loss"].shape == () and torch.isfinite(losses["loss"])


def test_elbo_terms_match_closed_forms():
    model = make("vae", latent_dim=4, hidden=[32], beta=4.0)
    x = images()
    torch.manual_seed(1)
    losses = model.loss((x,))
    h = model.encoder(x)
    mu, log_var = h.chunk(2, dim=1)
    torch.manual_seed(1)
    z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
    logits = model.decoder(z)
    bce = -(x * torch.nn.functional.logsigmoid(logits)
            + (1 - x) * torch.nn.functional.logsigmoid(-logits)).flatten(1).sum(1)
    kl = 0.5 * (mu.pow(2) + log_var.exp() - 1 - log_var).sum(1)  # closed-form Gaussian KL
    torch.testing.assert_close(losses["recon"], bce.mean())
    torch.testing.assert_close(losses["kl"], kl.mean())
    torch.testing.assert_close(losses["nelbo"], (bce + kl).mean())  # the true -ELBO
    torch.testing.assert_close(losses["loss"], (bce + 4.0 * kl).mean())


@pytest.mark.parametrize("values", ["binary", "grey"])
def test_bernoulli_images_match_torch_bernoulli(values):
    """The fast log-density equals torch's Bernoulli (float64) in value and gradient, from
    logits far below zero to far above (the clamped and the overflow-safe branches)."""
    generator = torch.Generator().manual_seed(0)
    for scale in (4.0, 300.0):  # typical decoder logits; beyond ±80 (the stable branch)
        logits = (torch.randn(3, 5, 1, 28, 28, generator=generator) * scale - 20).requires_grad_()
        x = torch.rand(5, 1, 28, 28, generator=generator)
        x = x.round() if values == "binary" else x
        ours = BernoulliImages(logits).log_prob(x)
        exact = Independent(Bernoulli(logits=logits.double(), validate_args=False), 3)
        reference = exact.log_prob(x.double())
        assert ours.shape == reference.shape == (3, 5)
        torch.testing.assert_close(ours.double(), reference, atol=2e-3, rtol=1e-6)
        ours.sum().backward()
        expected = x.double() - torch.sigmoid(logits.double())  # d/dl of x·l − softplus(l)
        torch.testing.assert_close(logits.grad.double(), expected.expand_as(logits), atol=1e-6,
                                   rtol=0)
        with torch.no_grad():  # the in-place path gives the same numbers
            torch.testing.assert_close(BernoulliImages(logits).log_prob(x), ours.detach())


def test_iwae_bound_by_hand():
    model = make("iwae", latent_dim=2, hidden=[16], samples=7, likelihood="gaussian", sigma=0.3)
    x = images(3)
    torch.manual_seed(2)
    bound = model.iw_bound(x, 7)
    mu, log_var = model.encoder(x).chunk(2, dim=1)
    std = torch.exp(0.5 * log_var)
    torch.manual_seed(2)
    z = mu + std * torch.randn(7, *mu.shape)

    def normal_log_pdf(v, mean, s):
        return (-0.5 * ((v - mean) / s) ** 2 - torch.log(s) - 0.5 * math.log(2 * math.pi))

    mean = torch.sigmoid(model.decoder(z.reshape(-1, 2))).view(7, 3, 1, 28, 28)
    log_px = normal_log_pdf(x, mean, torch.tensor(0.3)).flatten(2).sum(2)
    log_pz = normal_log_pdf(z, torch.zeros(()), torch.ones(())).sum(2)
    log_q = normal_log_pdf(z, mu, std).sum(2)
    expected = torch.logsumexp(log_px + log_pz - log_q, 0) - math.log(7)
    torch.testing.assert_close(bound, expected, rtol=1e-5, atol=1e-3)
    assert model.loss((x,))["loss"].shape == ()


def linear_gaussian_vae(perturb: bool):
    """x = W z + sigma * eps with orthogonal columns in W: p(x) and the posterior are exact."""
    d, sigma = 3, 0.2
    model = make("vae", latent_dim=d, hidden=[], likelihood="gaussian", sigma=sigma,
                 sigmoid_mean=False)
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(784, d, generator=gen))
    s = torch.tensor([1.0, 0.5, 0.25])
    w = q * s
    post_var = 1 / (1 + s**2 / sigma**2)
    with torch.no_grad():
        model.decoder.net[0].weight.copy_(w)
        model.decoder.net[0].bias.zero_()
        enc = model.encoder.net[0]
        enc.weight.zero_()
        enc.bias.zero_()
        enc.weight[:d] = (post_var * s / sigma**2)[:, None] * q.T
        enc.bias[d:] = post_var.log()
        if perturb:  # a worse proposal: inflated variance and a shifted mean
            enc.bias[d:] += math.log(2.0)
            enc.bias[:d] += 0.3
    z = torch.randn(5, d, generator=gen)
    x = (z @ w.T + sigma * torch.randn(5, 784, generator=gen)).view(5, 1, 28, 28)
    exact = MultivariateNormal(torch.zeros(784), w @ w.T + sigma**2 * torch.eye(784))
    return model, x, exact.log_prob(x.flatten(1))


def test_importance_sampling_is_exact_with_the_true_posterior(monkeypatch):
    model, x, exact = linear_gaussian_vae(perturb=False)
    monkeypatch.setattr(vae, "IMAGES_PER_CHUNK", 7)  # many chunks: streaming log-sum-exp
    torch.testing.assert_close(model.log_likelihood(x, k=10), exact, rtol=1e-4, atol=1e-2)
    torch.manual_seed(0)  # with the true posterior the ELBO is tight: its mean is log p(x)
    elbo = torch.stack([model.elbo(x) for _ in range(400)]).mean(0)
    torch.testing.assert_close(elbo, exact, rtol=0, atol=0.1)


def test_importance_sampling_converges_to_the_exact_likelihood():
    model, x, exact = linear_gaussian_vae(perturb=True)
    torch.manual_seed(0)
    gaps = {k: float((exact - model.log_likelihood(x, k=k)).mean()) for k in (1, 5000)}
    assert gaps[1] > 0.5  # a loose bound with one sample
    assert abs(gaps[5000]) < 0.05 * gaps[1] and abs(gaps[5000]) < 0.1


@pytest.mark.parametrize("kind, distance", [
    ("wae_mmd", lambda z, prior: mmd(z, prior, kernel="imq")),
    ("sliced_wae", lambda z, prior: sliced_wasserstein(z, prior, 50, p=2) ** 2),
    ("radon_sobolev", lambda z, prior: radon_sobolev_to_normal(z)),
])
def test_latent_matching_losses(kind, distance):
    model = make(kind, latent_dim=4, hidden=[32], reg_weight=7.0)
    x = images(16)
    torch.manual_seed(3)
    losses = model.loss((x,))
    z = model.encoder(x)
    torch.manual_seed(3)
    penalty = distance(z, torch.randn_like(z))
    sse = (torch.sigmoid(model.decoder(z)) - x).pow(2).flatten(1).sum(1).mean()
    torch.testing.assert_close(losses["penalty"], penalty)
    torch.testing.assert_close(losses["recon"], sse)
    torch.testing.assert_close(losses["loss"], sse + 7.0 * penalty)


def test_bad_inputs():
    model = make("vae", latent_dim=2, hidden=[8])
    with pytest.raises(ValueError, match=r"bernoulli likelihood should lie in \[0.0, 1.0\]"):
        model.encode(images() * 2 - 1)
    with pytest.raises(ValueError, match=r"shape \(N, 1, 28, 28\)"):
        model.encode(torch.rand(4, 784))
    with pytest.raises(ValueError, match="ELBO is undefined"):
        make("radon_sobolev", latent_dim=2, hidden=[8]).elbo(images())
    with pytest.raises(ValueError, match="choose one of: bernoulli, gaussian"):
        make("vae", likelihood="poisson")


@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_nan_in_kl_or_recon_stops_training(tmp_path, data_root, part):
    config = tiny_config(model={"kind": "vae", "latent_dim": 2, "hidden": [16]})
    trainer = Trainer(config, tmp_path, data_root=data_root)
    with torch.no_grad():
        getattr(trainer.model, part).net[0].bias.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="non-finite loss at step 1"):
        trainer.fit()


@pytest.mark.parametrize("kind", ["radon_sobolev", "wae_mmd", "sliced_wae"])
@pytest.mark.parametrize("value", [1e10, float("inf"), float("nan")])
def test_diverging_codes_of_latent_matching_aes_stop_training(tmp_path, data_root, kind, value):
    """Huge codes give finite penalties; codes the distances refuse (inf, NaN) reach the
    non-finite stop, not a ValueError (nor, for Radon-Sobolev, a gigabyte-sized series)."""
    config = tiny_config(model={"kind": kind, "latent_dim": 2, "hidden": [16]},
                         train={"max_steps": 2})
    trainer = Trainer(config, tmp_path, data_root=data_root)
    with torch.no_grad():
        trainer.model.encoder.net[-1].bias.fill_(value)
    if math.isfinite(value):
        trainer.fit()  # a huge but finite penalty is a loss like any other
    else:
        with pytest.raises(NonFiniteLossError, match="non-finite loss at step 1"):
            trainer.fit()


VAE_CONFIGS = sorted(p for p in CONFIGS.glob("*.toml")
                     if load_config(p).kind in VAE_KINDS)


def test_every_variant_has_a_config():
    assert {load_config(p).kind for p in VAE_CONFIGS} == set(VAE_KINDS)


@pytest.mark.parametrize("path", VAE_CONFIGS, ids=lambda p: p.stem)
def test_configs_train(path, tmp_path, data_root):
    config = load_config(path, ["train.max_steps=3", "data.subset=256", "train.batch_size=32",
                                "train.progress=false"])
    model = Trainer(config, tmp_path, data_root=data_root).fit()
    assert (tmp_path / "final.pt").exists()
    if isinstance(model, MaskedCVAE):  # configs/pyro_cvae_mnist.toml completes, not samples
        assert model.complete(torch.rand(2, 1, 28, 28)).shape == (1, 2, 1, 28, 28)
    else:
        assert model.sample(2).shape[1:] == (1, 28, 28)
