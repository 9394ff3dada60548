"""One MNIST epoch of our DCGAN through the Trainer against a pytorch/examples dcgan loop, in one
process.

    python benchmarks/gan_speed.py [--subset 0] [--repeats 1] [section.key=value ...]

The reference is the loop of pytorch/examples dcgan/main.py on the same generator and critic
(configs/gan_mnist.toml, 28×28): ``torchvision.datasets.MNIST`` with ``ToTensor()`` and
``Normalize((0.5,), (0.5,))`` behind a ``DataLoader`` (per-sample PIL decoding and collation, no
worker process: the benchmark has one core), then per batch a critic update on real and
detached fake images (BCE on logits), and a generator update through the same fakes; Adam with
the config's learning rates and betas. Ours is ``Trainer.fit()`` with the same nets, batch size,
loss and optimisers, the data held in memory as uint8 tensors; packing, EMA, the monitor and
the end-of-epoch evaluation are switched off (the reference has none of them), logging and the
checkpoint and final save are included. ``--subset N`` times the first N training images
instead of all 60,000 (same for both loops). The two loops alternate and the best of
``--repeats`` is kept. The speed-up is measured in process CPU time (one thread: robust to
other processes sharing the core); wall-clock times are recorded too. Results go to
docs/results/gan_speed.json and the ``gan-speed`` table of docs/gan.md; target >= 1.5x.
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
from common import ROOT, write_between_markers
from torchvision import datasets, transforms

from genmodels.config import Config, load_config
from genmodels.data import resolve_data_root
from genmodels.models import MODELS
from genmodels.train import Trainer

TARGET = 1.5
SAME_WORK = ["model.pack=1", "model.loss=non_saturating", "model.n_critic=1", "train.ema=0",
             "train.monitor_every=0", "train.eval_every=1000000000", "train.epochs=1",
             "train.max_steps=0", "train.progress=false", "train.schedule=constant"]


def reference_epoch(config: Config, subset: int) -> tuple[float, float, int]:
    """pytorch/examples dcgan/main.py-style epoch; returns (wall seconds, CPU seconds, steps)."""
    torch.manual_seed(0)
    model = MODELS[config.kind](config.model)
    generator, critic = model.generator, model.critic
    c, t = config.model, config.train
    opt_d = torch.optim.Adam(critic.parameters(), lr=c.lr_critic or t.lr, betas=tuple(t.betas))
    opt_g = torch.optim.Adam(generator.parameters(), lr=c.lr_generator or t.lr,
                             betas=tuple(t.betas))
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    dataset = datasets.MNIST(resolve_data_root(), train=True, transform=transform)
    if subset:
        dataset = torch.utils.data.Subset(dataset, range(subset))
    loader = torch.utils.data.DataLoader(dataset, batch_size=t.batch_size, shuffle=True,
                                         drop_last=True)
    model.train()
    steps = 0
    start, cpu = time.perf_counter(), time.process_time()
    for real, _ in loader:
        b = real.size(0)
        ones, zeros = torch.ones(b), torch.zeros(b)
        critic.zero_grad()
        loss_real = F.binary_cross_entropy_with_logits(critic(real).view(-1), ones)
        loss_real.backward()
        fake = generator(torch.randn(b, c.latent_dim))
        loss_fake = F.binary_cross_entropy_with_logits(critic(fake.detach()).view(-1), zeros)
        loss_fake.backward()
        opt_d.step()
        generator.zero_grad()
        loss_g = F.binary_cross_entropy_with_logits(critic(fake).view(-1), ones)
        loss_g.backward()
        opt_g.step()
        steps += 1
    return time.perf_counter() - start, time.process_time() - cpu, steps


def trainer_epoch(config: Config) -> tuple[float, float, int]:
    """``Trainer.fit()`` for one epoch; returns (wall seconds, CPU seconds, steps)."""
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, out)
        start, cpu = time.perf_counter(), time.process_time()
        trainer.fit()
        return time.perf_counter() - start, time.process_time() - cpu, trainer.step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    parser.add_argument("--subset", type=int, default=0,
                        help="time the first N training images (0: the whole epoch)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "results" /
                        "gan_speed.json")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "gan.md")
    args = parser.parse_args()

    config = load_config(ROOT / "configs" / "gan_mnist.toml",
                         [*SAME_WORK, f"data.subset={args.subset}", *args.overrides])
    reference, ours = [], []  # (wall, CPU) seconds
    for _ in range(args.repeats):
        *seconds, steps = reference_epoch(config, args.subset)
        reference.append(seconds)
        *seconds, trainer_steps = trainer_epoch(config)
        ours.append(seconds)
    wall_ref, cpu_ref = min(r[0] for r in reference), min(r[1] for r in reference)
    wall_ours, cpu_ours = min(r[0] for r in ours), min(r[1] for r in ours)
    c = config.model
    result = {
        "config": "configs/gan_mnist.toml " + " ".join(SAME_WORK + args.overrides),
        "net": f"dcgan channels={c.channels} latent_dim={c.latent_dim}",
        "batch_size": config.train.batch_size, "steps": trainer_steps,
        "reference_steps": steps,
        "images": args.subset or 60_000,
        "reference_cpu_seconds": round(cpu_ref, 2), "trainer_cpu_seconds": round(cpu_ours, 2),
        "speedup": round(cpu_ref / cpu_ours, 2), "target": TARGET,
        "reference_wall_seconds": round(wall_ref, 2), "trainer_wall_seconds": round(wall_ours, 2),
        "wall_speedup": round(wall_ref / wall_ours, 2),
        "all_reference_seconds": [[round(s, 2) for s in r] for r in reference],
        "all_trainer_seconds": [[round(s, 2) for s in r] for r in ours],
        "machine": f"{platform.processor() or platform.machine()}, "
                   f"{torch.get_num_threads()} threads, torch {torch.__version__}",
    }
    print(json.dumps(result, indent=2))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    r = result
    table = ("| loop | images | steps | CPU s | CPU ms / step | wall s |\n"
             "|---|---|---|---|---|---|\n"
             f"| pytorch/examples dcgan (DataLoader + ToTensor + Normalize) | {r['images']} "
             f"| {steps} | {r['reference_cpu_seconds']} "
             f"| {1000 * cpu_ref / steps:.0f} | {r['reference_wall_seconds']} |\n"
             f"| genmodels Trainer | {r['images']} | {trainer_steps} "
             f"| {r['trainer_cpu_seconds']} | {1000 * cpu_ours / trainer_steps:.0f} "
             f"| {r['trainer_wall_seconds']} |\n\n"
             f"Speed-up {r['speedup']}x in process CPU time (wall: {r['wall_speedup']}x; target "
             f">= {TARGET}x), {r['net']}, batch {r['batch_size']}, {r['machine']}.")
    write_between_markers(args.doc, table, "gan-speed")


if __name__ == "__main__":
    main()
