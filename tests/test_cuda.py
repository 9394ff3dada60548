"""CUDA: float16 AMP with gradient scaling, CPU/CUDA agreement, exact resume on the GPU, and
checkpoints that move between devices. Skipped without a CUDA device; run on a lent GPU by
``benchmarks/gpu_session.py`` (docs/gpu.md records what ran), never in CI."""

from __future__ import annotations

import pytest
import torch
from conftest import (
    InterruptAt,
    assert_identical,
    assert_resume_is_bit_identical,
    first_linear_output_dtypes,
    metric_lines,
    tiny_config,
    weights,
)

from genmodels import load
from genmodels.metrics import embed_images
from genmodels.train import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

TINY_UNET = {"net": "unet", "channels": [8, 16], "attention": True, "time_dim": 16,
             "sample_steps": 4}


def test_float16_amp_trains_with_a_gradient_scaler_and_resumes_bit_identically(tmp_path,
                                                                               data_root):
    config = tiny_config(train={"device": "cuda", "amp": True, "epochs": 2})
    full = Trainer(config, tmp_path / "full", data_root=data_root)
    assert full.scaler.is_enabled() and full.amp_dtype == torch.float16
    dtypes = first_linear_output_dtypes(full.model)
    full.fit()
    assert dtypes == {torch.float16, torch.float32}  # training under autocast, evaluation not
    final = weights(tmp_path / "full" / "final.pt")
    assert all(w.dtype == torch.float32 for w in final.values())  # float32 master weights
    config.train.amp = False  # float32 on the GPU: the same test accuracy to within 2 points
    Trainer(config, tmp_path / "float32", data_root=data_root).fit()
    accuracy = {run: [r["eval/accuracy"] for r in metric_lines(tmp_path / run)
                      if "eval/accuracy" in r][-1] for run in ("full", "float32")}
    assert abs(accuracy["full"] - accuracy["float32"]) < 0.02, accuracy
    config.train.amp = True

    Trainer(config, tmp_path / "part", data_root=data_root, callbacks=[InterruptAt(45)]).fit()
    resumed = Trainer(config, tmp_path / "part", data_root=data_root, resume=True)
    assert resumed.scaler.get_scale() == torch.load(
        tmp_path / "part" / "checkpoint.pt", weights_only=True)["scaler"]["scale"]
    resumed.fit()
    assert_identical(final, weights(tmp_path / "part" / "final.pt"))
    assert metric_lines(tmp_path / "full") == metric_lines(tmp_path / "part")


@pytest.mark.parametrize("kind", ["diffusion", "flow_matching"])
def test_convolutional_runs_resume_bit_identically_on_cuda(tmp_path, data_root, kind):
    """train.deterministic (the default) picks deterministic cuDNN kernels: the U-Net's
    convolutions and upsampling, EMA and noise on the GPU, resumed after a Ctrl-C."""
    config = tiny_config(model={"kind": kind, **TINY_UNET},
                         data={"view": "symmetric", "subset": 256, "validation": True,
                               "validation_size": 64},
                         train={"device": "cuda", "epochs": 2, "ema": 0.9, "batch_size": 32})
    assert_resume_is_bit_identical(config, tmp_path, data_root, interrupt_at=5)
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark


def test_cuda_training_matches_cpu(tmp_path, data_root):
    """float32 on both devices from the same seed: the same data order and initial weights, so
    after 20 Adam steps the weights agree to rounding (no TF32 in float32 matmuls by default)."""
    config = tiny_config(train={"max_steps": 20, "eval_every": 10**6})
    finals = {}
    for device in ("cpu", "cuda"):
        config.train.device = device
        Trainer(config, tmp_path / device, data_root=data_root).fit()
        finals[device] = weights(tmp_path / device / "final.pt")
    for name, on_cpu in finals["cpu"].items():
        torch.testing.assert_close(finals["cuda"][name].cpu(), on_cpu, rtol=1e-4, atol=1e-5,
                                   msg=name)


@pytest.mark.parametrize("kind", ["diffusion", "flow_matching"])
def test_denoising_models_train_under_amp_and_sample_on_either_device(tmp_path, data_root,
                                                                      kind, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # compared at float32 below
    config = tiny_config(model={"kind": kind, **TINY_UNET},
                         data={"view": "symmetric", "subset": 256, "validation": True,
                               "validation_size": 64},
                         train={"device": "cuda", "amp": True, "ema": 0.9, "batch_size": 32,
                                "epochs": 2})
    Trainer(config, tmp_path / "run", data_root=data_root).fit()
    losses = [r["train/loss"] for r in metric_lines(tmp_path / "run") if "train/loss" in r]
    assert all(torch.isfinite(torch.tensor(losses)))
    on_cuda = load(tmp_path / "run", device="cuda")
    on_cpu = load(tmp_path / "run")  # a checkpoint written on the GPU loads on the CPU
    assert next(on_cuda.parameters()).is_cuda and not next(on_cpu.parameters()).is_cuda
    with torch.no_grad():
        x = on_cuda.sample(8, torch.Generator("cuda").manual_seed(0), steps=3)
    assert x.is_cuda and x.shape == (8, 1, 28, 28) and torch.isfinite(x).all()
    noise = torch.randn(8, 1, 28, 28)  # the same net on both devices: the same velocity
    t = torch.full((8,), 0.5)
    with torch.no_grad():
        torch.testing.assert_close(on_cuda.net(noise.cuda(), t.cuda()).cpu(),
                                   on_cpu.net(noise, t), rtol=1e-3, atol=1e-4)


def test_gan_phases_train_under_amp(tmp_path, data_root):
    """Two optimisers and two critic micro-batches a step, each stepped through the one
    GradScaler."""
    config = tiny_config(model={"kind": "gan", "net": "dcgan", "channels": [8, 16],
                                "latent_dim": 8, "n_critic": 2},
                         data={"view": "symmetric", "subset": 256},
                         train={"device": "cuda", "amp": True, "max_steps": 30,
                                "eval_every": 10**6})
    trainer = Trainer(config, tmp_path / "run", data_root=data_root)
    trainer.fit()
    assert trainer.step == 30 and len(trainer.optimizers) == 2
    final = weights(tmp_path / "run" / "final.pt")
    assert all(torch.isfinite(w).all() for w in final.values())


def test_shipped_features_agree_across_devices(data_root):
    """The FID features of the shipped MNIST CNN on the GPU equal the CPU's to rounding (cuDNN
    may use TF32 in convolutions: the tolerance allows for it)."""
    images = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    on_cpu = embed_images(images, "mnist-cnn").features
    on_cuda = embed_images(images.cuda(), "mnist-cnn").features
    assert on_cuda.is_cuda
    torch.testing.assert_close(on_cuda.cpu(), on_cpu, rtol=1e-2, atol=1e-3)
