"""Diffusion and flow-matching models on the common loop: the training pairs by hand, exact
resume with EMA, sampling with any number of steps, the declared capability, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import assert_resume_is_bit_identical, tiny_config

from genmodels import load
from genmodels.checks import ConfigError
from genmodels.cli import main
from genmodels.config import config_from_dict
from genmodels.models import MODELS, IterativeSampler
from genmodels.schedulers import ot_pairing

RING = {"name": "ring", "toy_size": 512}
TINY_UNET = {"net": "unet", "channels": [8, 16], "attention": True, "time_dim": 16,
             "sample_steps": 4}
TINY_MLP = {"net": "mlp", "hidden": [32, 32], "time_dim": 16, "sample_steps": 5}


def build(kind: str, shape=None, **options):
    config = config_from_dict({"model": {"kind": kind, **options}})
    return MODELS[kind](config.model, shape)


def test_diffusion_training_pair_by_hand():
    """x_t = √ᾱ_t x + √(1 − ᾱ_t) ε with t ~ U{0..T−1}; target ε or v = √ᾱ ε − √(1 − ᾱ) x; the
    net sees t / T."""
    for prediction in ("epsilon", "v_prediction"):
        model = build("diffusion", **TINY_MLP, prediction=prediction, timesteps=100)
        x = torch.randn(6, 2)
        x_t, time, target = model.regression(x, torch.Generator().manual_seed(0))
        generator = torch.Generator().manual_seed(0)
        t = torch.randint(100, (6,), generator=generator)
        noise = torch.randn(6, 2, generator=generator)
        a = model.noise_schedule.alphas_cumprod[t].view(-1, 1)
        torch.testing.assert_close(x_t, a.sqrt() * x + (1 - a).sqrt() * noise)
        torch.testing.assert_close(time, t.float() / 100)
        expected = noise if prediction == "epsilon" else a.sqrt() * noise - (1 - a).sqrt() * x
        torch.testing.assert_close(target, expected)
        loss = model.loss((x,), torch.Generator().manual_seed(0))["loss"]
        torch.testing.assert_close(loss, (model.net(x_t, time) - target).pow(2).mean())


@pytest.mark.parametrize("ot", [False, True])
def test_flow_matching_training_pair_by_hand(ot):
    """x_t = (1 − t) x_0 + t x_1 with x_0 noise and x_1 data, target x_1 − x_0; with OT the
    noise rows are permuted by the minibatch optimal-transport plan."""
    model = build("flow_matching", **TINY_MLP, ot_pairing=ot)
    x = torch.randn(8, 2) + 3
    x_t, t, target = model.regression(x, torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn(8, 2, generator=generator)
    if ot:
        noise = noise[ot_pairing(noise, x)]
        cost = (noise - x).pow(2).sum()
        assert cost <= (torch.randn(8, 2, generator=torch.Generator().manual_seed(1))
                        - x).pow(2).sum()
    time = torch.rand(8, generator=generator)
    torch.testing.assert_close(t, time)
    torch.testing.assert_close(x_t, (1 - time[:, None]) * noise + time[:, None] * x)
    torch.testing.assert_close(target, x - noise)


@pytest.mark.parametrize("kind", ["diffusion", "flow_matching"])
def test_resume_is_bit_identical_with_ema(tmp_path, data_root, kind):
    config = tiny_config(model={"kind": kind, **TINY_UNET},
                         data={"view": "symmetric", "subset": 256, "validation": True,
                               "validation_size": 64},  # evaluations on 64 images: quick
                         train={"epochs": 2, "ema": 0.9, "batch_size": 32})
    assert_resume_is_bit_identical(config, tmp_path, data_root, interrupt_at=5)


@pytest.mark.parametrize("kind, options", [
    ("diffusion", {"sampler": "ddpm"}), ("diffusion", {"sampler": "ddim", "eta": 0.5}),
    ("flow_matching", {"solver": "euler"}), ("flow_matching", {"solver": "heun"})])
def test_samples_of_any_size_and_steps(kind, options):
    model = build(kind, (3, 8, 12), **TINY_UNET, **options).eval()
    assert isinstance(model, IterativeSampler)
    torch.manual_seed(0)  # the output layer starts at zero: give the net a non-zero output
    torch.nn.init.normal_(model.net.out[-1].weight, std=0.1)
    x = model.sample(3, torch.Generator().manual_seed(0), steps=3)
    assert x.shape == (3, 3, 8, 12) and 0 <= x.min() and x.max() <= 1
    assert torch.equal(x, model.sample(3, torch.Generator().manual_seed(0), steps=3))
    assert not torch.equal(x, model.sample(3, torch.Generator().manual_seed(0), steps=2))


@pytest.mark.filterwarnings("ignore::genmodels.train.monitor.ModeCollapseWarning")  # 20 steps
def test_the_command_line_samples_and_evaluates_with_steps(tmp_path, data_root, capsys):
    config = tmp_path / "ring.toml"
    config.write_text('[model]\nkind = "flow_matching"\nnet = "mlp"\n')
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run), "--data-root", data_root,
                 "data.name=ring", "data.toy_size=512", "train.max_steps=20",
                 "train.batch_size=64", "train.progress=false", "model.hidden=[32]",
                 "model.sample_steps=5", "train.monitor_every=10",
                 "train.monitor_samples=200"]) == 0
    out = tmp_path / "points.npy"
    assert main(["sample", str(run), "--n", "50", "--steps", "3", "--out", str(out)]) == 0
    assert np.load(out).shape == (50, 2)
    report = tmp_path / "mixture.json"
    assert main(["evaluate", str(run), "--metrics", "mixture", "--steps", "4",
                 "--out", str(report)]) == 0
    assert 0 <= json.loads(report.read_text())["mixture"]["modes_captured"] <= 8
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(key.startswith("monitor/") for record in records for key in record)
    capsys.readouterr()
    vae = tmp_path / "vae"
    assert main(["train", "configs/demo_vae.toml", "--out", str(vae), "--data-root", data_root,
                 "train.max_steps=2", "data.subset=256", "train.progress=false"]) == 0
    assert main(["sample", str(vae), "--steps", "3", "--out", str(tmp_path / "v.png")]) == 2
    assert "samples in one pass" in capsys.readouterr().err
    assert isinstance(load(run), IterativeSampler) and not isinstance(load(vae), IterativeSampler)


def test_bad_input_is_one_clear_error():
    with pytest.raises(ConfigError, match="choose one of: linear, cosine"):
        build("diffusion", schedule="quadratic")
    with pytest.raises(ConfigError, match="choose one of: epsilon, v_prediction"):
        build("diffusion", prediction="x0")
    with pytest.raises(ConfigError, match="choose one of: euler, heun"):
        build("flow_matching", solver="rk4")
    with pytest.raises(ConfigError, match=r"model.eta = 2"):
        build("diffusion", eta=2.0)
    with pytest.raises(ConfigError, match="sample_steps = 0 should be > 0"):
        build("diffusion", sample_steps=0)
    config = tiny_config(model={"kind": "diffusion", **TINY_UNET})
    with pytest.raises(ConfigError, match="set data.view=symmetric"):
        MODELS["diffusion"](config.model).validate(config)
    model = build("diffusion", **TINY_MLP)
    with pytest.raises(ConfigError, match="steps"):
        model.sample(2, steps=0)


@pytest.mark.parametrize("kind", ["diffusion", "flow_matching"])
def test_image_sampling_runs_nhwc_with_the_values_of_nchw(kind):
    """sample() hands the U-Net channels-last noise (faster oneDNN convolutions): the images are
    those of the same loop on NCHW noise."""
    from genmodels.schedulers.loop import denoise

    model = build(kind, (1, 8, 8), net="unet", channels=[8, 16], attention=False,
                  time_dim=16).eval()
    got = model.sample(5, torch.Generator().manual_seed(3), steps=4)
    scheduler = model.scheduler()
    scheduler.set_timesteps(4)
    generator = torch.Generator().manual_seed(3)
    x = scheduler.init_noise((5, 1, 8, 8), generator, "cpu")
    assert x.is_contiguous()
    expected = (denoise(model.net, scheduler, x, generator).clamp(-1, 1) + 1) / 2
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert model.sample_batch_size == 64 and build(kind, (2,), net="mlp").sample_batch_size == 1000
