"""The VampPrior VAE (Tomczak & Welling 2018) as one small subclass: its prior, its Monte Carlo
KL, and every pipeline (train, sample, evaluate, latent, inpaint) unchanged."""

from __future__ import annotations

import inspect
import json
import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from genmodels import load
from genmodels.cli import main
from genmodels.config import config_from_dict
from genmodels.models import VAE, VampPriorVAE
from genmodels.models.distributions import DiagonalGaussianMixture, draw, standard_normal


def vamp(**options) -> VampPriorVAE:
    config = config_from_dict({"model": {"kind": "vamp_vae", "hidden": [16], "latent_dim": 3,
                                         "pseudo_inputs": 5, **options}})
    return VampPriorVAE(config.model)


def test_the_subclass_is_small():
    assert len(inspect.getsource(VampPriorVAE).splitlines()) <= 40


def test_mixture_log_prob_and_draws_match_torch():
    torch.manual_seed(0)
    loc, scale = torch.randn(6, 4), torch.rand(6, 4) + 0.05
    mixture = DiagonalGaussianMixture(loc, scale)
    reference = MixtureSameFamily(Categorical(logits=torch.zeros(6)),
                                  Independent(Normal(loc, scale), 1))
    z = 3 * torch.randn(5, 7, 4)
    torch.testing.assert_close(mixture.log_prob(z), reference.log_prob(z), rtol=1e-5, atol=1e-4)
    draws = mixture.sample((200_000,), torch.Generator().manual_seed(1))
    torch.testing.assert_close(draws.mean(0), reference.mean, atol=0.02, rtol=0)
    torch.testing.assert_close(draws.var(0), reference.variance, atol=0.05, rtol=0.02)
    torch.testing.assert_close(mixture.variance, reference.variance)
    assert torch.equal(draws, mixture.sample((200_000,), torch.Generator().manual_seed(1)))


def test_the_standard_prior_draws_what_randn_draws():
    """Sampling a VAE through prior() left its samples as they were."""
    model = VAE(config_from_dict({"model": {"kind": "vae", "hidden": [8],
                                            "latent_dim": 3}}).model).eval()
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(2))
    assert torch.equal(draw(standard_normal(3), 4, torch.Generator().manual_seed(2)), z)
    assert torch.equal(model.sample(4, torch.Generator().manual_seed(2)), model.decode(z).mean)


def test_vampprior_is_the_mean_posterior_at_the_pseudo_inputs():
    torch.manual_seed(0)
    model = vamp()
    q = model.encode(model.pseudo_inputs.clamp(0, 1))
    z = torch.randn(8, 3)
    by_hand = torch.logsumexp(q.log_prob(z[:, None]), dim=1) - math.log(5)
    torch.testing.assert_close(model.prior().log_prob(z), by_hand, rtol=1e-5, atol=1e-5)


def test_the_kl_is_monte_carlo_at_the_same_draw():
    torch.manual_seed(0)
    model = vamp()
    x = torch.rand(4, 1, 28, 28).round()
    torch.manual_seed(3)
    elbo = model.elbo(x)
    torch.manual_seed(3)
    q = model.encode(x)
    z = q.rsample()
    by_hand = model.decode(z).log_prob(x) - q.log_prob(z) + model.prior().log_prob(z)
    torch.testing.assert_close(elbo, by_hand)
    elbo.mean().backward()  # the pseudo-inputs learn through the prior
    assert model.pseudo_inputs.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def vamp_run(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("vamp") / "run"
    assert main(["train", "configs/vampprior_mnist.toml", "--out", str(out),
                 "--data-root", str(data_root), "model.hidden=[32]", "model.latent_dim=4",
                 "model.pseudo_inputs=10", "data.subset=512", "train.max_steps=20",
                 "train.progress=false", "data.eval_batch_size=500"]) == 0
    return out


def test_vampprior_trains_samples_and_scores_its_likelihood(vamp_run, tmp_path):
    model = load(vamp_run)
    assert isinstance(model, VampPriorVAE) and model.pseudo_inputs.shape == (10, 1, 28, 28)
    x = torch.rand(3, 1, 28, 28).round()
    k_small, k_large = model.log_likelihood(x, 10), model.log_likelihood(x, 2000)
    assert (k_large > model.elbo(x) - 5).all() and torch.isfinite(k_small).all()
    assert main(["sample", str(vamp_run), "--n", "5", "--out", str(tmp_path / "s.npy")]) == 0
    report = tmp_path / "eval.json"
    assert main(["evaluate", str(vamp_run), "--n", "200", "--importance-samples", "10",
                 "--metrics", "held_out,fid,prdc", "--out", str(report)]) == 0
    assert math.isfinite(json.loads(report.read_text())["held_out"]["nll"])


def test_vampprior_goes_through_latent_tools_and_inpainting(vamp_run, tmp_path):
    assert main(["latent", "quantize", str(vamp_run), "--points", "4",
                 "--out", str(tmp_path / "q.png")]) == 0
    assert main(["inpaint", str(vamp_run), "--mask", "top", "--n", "2", "--samples", "2",
                 "--steps", "2", "--nll", "10", "--out", str(tmp_path / "i.png")]) == 0
