"""Diffusion training and sampling through genmodels against a diffusers-style loop, in one
process, on the same U-Net, batch and data.

    python benchmarks/diffusion_speed.py [--images 2560] [--samples 64] [--steps 20]
                                         [--repeats 2] [--threads 1]

Training: one epoch over the first ``--images`` MNIST training images with
configs/diffusion_mnist.toml (U-Net 32-64-64, batch 128, Adam 2e-4, EMA off on both sides).
Ours is ``Trainer.fit()`` (uint8 tensors in memory, its noise schedule, logging); the reference
is the loop of diffusers' unconditional training example: torchvision ``MNIST`` with
``ToTensor`` and ``Normalize`` behind a ``DataLoader``, diffusers' ``DDPMScheduler.add_noise``,
then zero_grad / forward / MSE / backward / Adam step. Both are timed per step, from the end
of the first step to the end of the last (the reference does no end-of-run evaluation,
figures or checkpoint, which ``fit()`` adds; its whole time is reported beside). Sampling:
``model.sample(n, steps)`` (DDIM) against diffusers' ``DDIMScheduler`` loop on the same net at
the same number of network evaluations. The two alternate and the best of ``--repeats`` is
kept. Targets (issue 25): training >= 1.5x, sampling >= 1.0x. Results go to
docs/results/diffusion_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision import datasets, transforms

from genmodels.config import Config, load_config
from genmodels.data import resolve_data_root
from genmodels.models import MODELS
from genmodels.train import Callback, Trainer

ROOT = Path(__file__).resolve().parents[1]


def reference_epoch(config: Config, images: int) -> float:
    """diffusers-style training epoch (examples/unconditional_image_generation); seconds."""
    from diffusers import DDPMScheduler

    torch.manual_seed(0)
    model = MODELS[config.kind](config.model, (1, 28, 28))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    scheduler = DDPMScheduler(num_train_timesteps=config.model.timesteps,
                              beta_schedule="squaredcos_cap_v2")
    to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
    dataset = datasets.MNIST(resolve_data_root(), train=True, transform=to_tensor)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, range(images)),
                                         batch_size=config.train.batch_size, shuffle=True,
                                         drop_last=True)
    model.train()
    stamps = []
    for x, _ in loader:
        noise = torch.randn_like(x)
        t = torch.randint(0, config.model.timesteps, (len(x),))
        noisy = scheduler.add_noise(x, noise, t)
        optimizer.zero_grad()
        loss = F.mse_loss(model.net(noisy, t.float() / config.model.timesteps), noise)
        loss.backward()
        optimizer.step()
        stamps.append(time.perf_counter())
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1)


class StepClock(Callback):
    """The wall-clock time at the end of every step."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_step(self, trainer: Trainer, losses: dict) -> None:
        self.stamps.append(time.perf_counter())


def trainer_epoch(config: Config) -> tuple[float, float, Trainer]:
    """(seconds per step, seconds of the whole fit(), the trainer)."""
    clock = StepClock()
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, out, callbacks=[clock])
        start = time.perf_counter()
        trainer.fit()
        whole = time.perf_counter() - start
    return (clock.stamps[-1] - clock.stamps[0]) / (len(clock.stamps) - 1), whole, trainer


@torch.no_grad()
def reference_sampling(model, n: int, steps: int) -> float:
    """diffusers' DDIMScheduler loop on our net, eta 0; seconds."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(num_train_timesteps=model.config.timesteps,
                              beta_schedule="squaredcos_cap_v2", clip_sample=False)
    scheduler.set_timesteps(steps)
    start = time.perf_counter()
    x = torch.randn(n, *model.input_shape, generator=torch.Generator().manual_seed(0))
    for t in scheduler.timesteps:
        eps = model.net(x, torch.full((n,), float(t) / model.config.timesteps))
        x = scheduler.step(eps, t, x).prev_sample
    return time.perf_counter() - start


def our_sampling(model, n: int, steps: int) -> float:
    start = time.perf_counter()
    model.sample(n, torch.Generator().manual_seed(0), steps=steps)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2560)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = load_config(ROOT / "configs" / "diffusion_mnist.toml",
                         ["train.epochs=1", "train.progress=false", "train.ema=0",
                          f"data.subset={args.images}", "train.eval_every=1000000000",
                          "train.figure_every=1000000000", "model.sampler=ddim"])
    reference, ours, whole_fit = [], [], []
    sample_reference, sample_ours = [], []
    for _ in range(args.repeats):
        reference.append(reference_epoch(config, args.images))
        seconds, whole, trainer = trainer_epoch(config)
        ours.append(seconds)
        whole_fit.append(whole)
        model = trainer.model.eval()
        sample_reference.append(reference_sampling(model, args.samples, args.steps))
        sample_ours.append(our_sampling(model, args.samples, args.steps))
    results = {
        "training": {"images": args.images, "batch_size": config.train.batch_size,
                     "reference_seconds_per_step": round(min(reference), 3),
                     "trainer_seconds_per_step": round(min(ours), 3),
                     "speedup": round(min(reference) / min(ours), 2), "target": 1.5,
                     "all_reference_seconds_per_step": [round(t, 3) for t in reference],
                     "all_trainer_seconds_per_step": [round(t, 3) for t in ours],
                     "trainer_whole_fit_seconds": [round(t, 1) for t in whole_fit]},
        "sampling": {"samples": args.samples, "nfe": args.steps,
                     "reference_seconds": round(min(sample_reference), 2),
                     "ours_seconds": round(min(sample_ours), 2),
                     "speedup": round(min(sample_reference) / min(sample_ours), 2),
                     "target": 1.0},
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} thread(s), "
                   f"torch {torch.__version__}",
        "command": "python benchmarks/diffusion_speed.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
    }
    out = ROOT / "docs" / "results" / "diffusion_speed.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
