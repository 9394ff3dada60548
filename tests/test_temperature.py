"""Reduced-temperature sampling of the VAE family (Kingma & Dhariwal 2018): prior codes
z = μ + τ σ ε, declared by :class:`TemperedSampler`, with ``--temperature`` on the CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import tiny_config
from torch.distributions import Independent, Normal

from genmodels import load
from genmodels.cli import main
from genmodels.config import config_from_dict
from genmodels.errors import InputError
from genmodels.models import MODELS, TemperedSampler
from genmodels.models.base import check_temperature
from genmodels.models.distributions import DiagonalGaussianMixture, draw
from genmodels.pipelines.run_evaluation import draw_samples
from genmodels.train import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"subset": 256, "eval_batch_size": 256}


def build(model: dict, shape=(1, 28, 28)):
    config = config_from_dict({"model": model})
    return MODELS[config.kind](config.model, shape)


def test_draw_scales_the_standard_deviations_and_nothing_else():
    loc, scale = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.5, 2.0, 1.0])
    gaussian = Independent(Normal(loc, scale), 1)
    at_one = draw(gaussian, 7, torch.Generator().manual_seed(3))
    at_half = draw(gaussian, 7, torch.Generator().manual_seed(3), temperature=0.5)
    torch.testing.assert_close(at_half, loc + 0.5 * (at_one - loc), rtol=0, atol=1e-6)
    mixture = DiagonalGaussianMixture(torch.tensor([[0.0, 0.0], [10.0, -10.0]]),
                                      torch.tensor([[1.0, 2.0], [0.5, 0.5]]))
    plain = draw(mixture, 200, torch.Generator().manual_seed(0))
    cooled = draw(mixture, 200, torch.Generator().manual_seed(0), temperature=0.25)
    centre = torch.where((plain[:, :1] > 5), mixture.loc[1], mixture.loc[0])  # same components
    torch.testing.assert_close(cooled, centre + 0.25 * (plain - centre), rtol=0, atol=1e-5)
    many = draw(Independent(Normal(torch.zeros(2), torch.ones(2)), 1), 200_000,
                torch.Generator().manual_seed(1), temperature=0.7)
    assert many.std(0).sub(0.7).abs().max() < 0.005  # 5 standard errors (0.7 / sqrt(2 n))


def test_vae_samples_decode_cooled_prior_codes():
    model = build({"kind": "vae", "hidden": [16], "latent_dim": 3}).eval()
    eps = torch.randn(5, 3, generator=torch.Generator().manual_seed(4))
    got = model.sample(5, torch.Generator().manual_seed(4), temperature=0.6)
    torch.testing.assert_close(got, model.decode(0.6 * eps).mean)
    assert torch.equal(model.sample(5, torch.Generator().manual_seed(4), temperature=1.0),
                       model.sample(5, torch.Generator().manual_seed(4)))
    vamp = build({"kind": "vamp_vae", "hidden": [16], "latent_dim": 3, "pseudo_inputs": 4})
    assert vamp.sample(6, torch.Generator().manual_seed(0), temperature=0.5).shape == \
        (6, 1, 28, 28)


def test_cvae_cools_the_learned_prior_of_each_label():
    model = build({"kind": "vae", "conditional": True, "hidden": [16], "latent_dim": 3,
                   "prior_net": True}).eval()
    labels = torch.tensor([2, 7, 7])
    prior = model.prior(labels).base_dist
    eps = torch.randn(3, 3, generator=torch.Generator().manual_seed(9))
    got = model.sample(3, torch.Generator().manual_seed(9), labels, temperature=0.3)
    torch.testing.assert_close(got, model.decode(prior.loc + 0.3 * prior.scale * eps,
                                                 labels).mean)


def test_the_vae_family_declares_temperature_and_other_kinds_do_not():
    tempered = {kind for kind, cls in MODELS.items() if issubclass(cls, TemperedSampler)}
    assert {"vae", "iwae", "vamp_vae", "wae_mmd", "sliced_wae", "radon_sobolev"} <= tempered
    assert not tempered & {"gan", "diffusion", "flow_matching", "classifier"}
    assert isinstance(build({"kind": "vae", "conditional": True, "hidden": [8]}),
                      TemperedSampler)
    for kind in ("gan", "diffusion", "flow_matching"):
        with pytest.raises(InputError, match="does not draw Gaussian prior codes"):
            draw_samples(build({"kind": kind, "net": "mlp", "hidden": [8]}, (2,)), 2,
                         temperature=0.5)


@pytest.mark.parametrize("value", [0, -1.0, math.nan, math.inf, True, "0.5"])
def test_a_temperature_must_be_a_positive_number(value):
    with pytest.raises(ValueError, match="temperature should be a finite number > 0"):
        check_temperature(value)


@pytest.fixture(scope="module")
def vae_and_gan(tmp_path_factory, data_root):
    folder = tmp_path_factory.mktemp("tempered")
    for name, model, data in (
            ("vae", {"kind": "vae", "hidden": [16], "latent_dim": 2}, SMALL),
            ("gan", {"kind": "gan", "net": "dcgan", "channels": [8, 16], "latent_dim": 8},
             {**SMALL, "view": "symmetric"})):
        Trainer(tiny_config(model=model, data=data, train={"max_steps": 2}), folder / name,
                data_root=data_root).fit()
    return folder


def test_sample_and_evaluate_take_a_temperature(vae_and_gan, tmp_path, capsys):
    out = tmp_path / "cool.npy"
    assert main(["sample", str(vae_and_gan / "vae"), "--n", "6", "--temperature", "0.5",
                 "--out", str(out)]) == 0
    model = load(vae_and_gan / "vae")
    expected = model.sample(6, torch.Generator().manual_seed(0), temperature=0.5).clamp(0, 1)
    np.testing.assert_allclose(np.load(out), expected.numpy(), atol=1e-6)
    assert main(["sample", str(vae_and_gan / "vae"), "--n", "4", "--temperature", "0.5",
                 "--out", str(tmp_path / "cool.png")]) == 0
    capsys.readouterr()
    report = tmp_path / "eval.json"
    assert main(["evaluate", str(vae_and_gan / "vae"), "--metrics", "fid", "--n", "50",
                 "--temperature", "0.8", "--out", str(report)]) == 0
    assert report.is_file()


@pytest.mark.parametrize("command, flags, message", [
    ("sample", ["--temperature", "0"], "argument --temperature should be a finite number > 0"),
    ("sample", ["--temperature", "warm"], "argument --temperature should be a number"),
    ("sample", ["--temperature", "0.5"], "does not draw Gaussian prior codes"),
    ("evaluate", ["--temperature", "0.5", "--metrics", "fid"],
     "does not draw Gaussian prior codes"),
])
def test_temperature_errors_are_one_line(vae_and_gan, tmp_path, capsys, command, flags,
                                         message):
    capsys.readouterr()
    out = tmp_path / ("x.png" if command == "sample" else "x.json")
    assert main([command, str(vae_and_gan / "gan"), *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"genmodels {command}: error: "), err
    assert message in err
    assert not out.exists()


def test_sample_files_refuse_sampler_options(tmp_path, capsys):
    samples = tmp_path / "samples.npy"
    np.save(samples, np.zeros((4, 1, 28, 28), dtype=np.float32))
    for flags in (["--temperature", "0.5"], ["--steps", "3"]):
        capsys.readouterr()
        assert main(["evaluate", str(samples), *flags, "--out", str(tmp_path / "e.json")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"holds samples, not a model: {flags[0]}" in err, err
