"""One MNIST epoch of our DCGAN through the Trainer against a pytorch/examples dcgan loop, in one
process.

    python benchmarks/gan_speed.py [--subset 0] [--repeats 1] [section.key=value ...]

The reference is the loop of pytorch/examples dcgan/main.py on the same generator and critic
(configs/gan_mnist.toml, 28×28): ``torchvision.datasets.MNIST`` with ``ToTensor()`` and
``Normalize((0.5,), (0.5,))`` behind a ``DataLoader`` (per-sample PIL decoding and collation, no
worker process: the benchmark has one core), then per batch a critic update on real and
detached fake images (BCE on logits), and a generator update through the same fakes; Adam with
the config's learning rates and betas. Ours is ``Trainer.fit()`` with the same nets, batch size,
loss and optimisers, the data held in memory as uint8 tensors; packing, the energy term, the
cells (``model.clusters``), EMA, the monitor and the end-of-epoch evaluation are switched off
(the reference has none of them), logging and the checkpoint and final save are included.
Four loops are timed: the reference as written (float32), the reference with its forward passes
under bfloat16 autocast, the Trainer in float32 and the Trainer with ``train.amp=true``
(bfloat16 autocast on the CPU). ``--subset N`` times the first N training images instead of all
60,000 (same for every loop). The loops alternate and the best of ``--repeats`` is kept.
Speed-ups are against the float32 reference, in process CPU time (one thread: robust to other
processes sharing the core); wall-clock times are recorded too. Results go to
docs/results/gan_speed.json and the ``gan-speed`` table of docs/gan.md; target >= 1.5x.
"""

from __future__ import annotations

import argparse
import copy
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
             "model.energy_weight=0", "model.clusters=0", "model.cell_weight=0",
             "train.monitor_every=0", "train.eval_every=1000000000", "train.epochs=1",
             "train.max_steps=0", "train.progress=false", "train.schedule=constant"]


def reference_epoch(config: Config, subset: int, bfloat16: bool = False
                    ) -> tuple[float, float, int]:
    """pytorch/examples dcgan/main.py-style epoch, optionally with the forward passes under
    bfloat16 autocast; returns (wall seconds, CPU seconds, steps)."""
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
    autocast = torch.autocast("cpu", torch.bfloat16, enabled=bfloat16)
    for real, _ in loader:
        b = real.size(0)
        ones, zeros = torch.ones(b), torch.zeros(b)
        critic.zero_grad()
        with autocast:
            loss_real = F.binary_cross_entropy_with_logits(critic(real).view(-1), ones)
        loss_real.backward()
        with autocast:
            fake = generator(torch.randn(b, c.latent_dim))
            loss_fake = F.binary_cross_entropy_with_logits(critic(fake.detach()).view(-1), zeros)
        loss_fake.backward()
        opt_d.step()
        generator.zero_grad()
        with autocast:
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
    amp_config = copy.deepcopy(config)
    amp_config.train.amp = True
    loops = {  # name -> a function timing one epoch: (wall s, CPU s, steps)
        "reference": lambda: reference_epoch(config, args.subset),
        "reference_bfloat16": lambda: reference_epoch(config, args.subset, bfloat16=True),
        "trainer": lambda: trainer_epoch(config),
        "trainer_amp": lambda: trainer_epoch(amp_config),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in loops}
    steps = {}
    for _ in range(args.repeats):  # the loops alternate, the best of the repeats is kept
        for name, epoch in loops.items():
            *seconds, steps[name] = epoch()
            times[name].append(tuple(seconds))
    best = {name: (min(t[0] for t in ts), min(t[1] for t in ts)) for name, ts in times.items()}
    ref_wall, ref_cpu = best["reference"]
    c = config.model
    result = {
        "config": "configs/gan_mnist.toml " + " ".join(SAME_WORK + args.overrides),
        "net": f"dcgan channels={c.channels} latent_dim={c.latent_dim}",
        "batch_size": config.train.batch_size, "images": args.subset or 60_000,
        "loops": {name: {"steps": steps[name], "cpu_seconds": round(cpu, 2),
                         "wall_seconds": round(wall, 2),
                         "speedup": round(ref_cpu / cpu, 2),
                         "wall_speedup": round(ref_wall / wall, 2),
                         "all_seconds": [[round(x, 2) for x in t] for t in times[name]]}
                  for name, (wall, cpu) in best.items()},
        "target": TARGET,
        "machine": f"{platform.processor() or platform.machine()}, "
                   f"{torch.get_num_threads()} threads, torch {torch.__version__}",
    }
    print(json.dumps(result, indent=2))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    write_between_markers(args.doc, markdown(result), "gan-speed")


def markdown(result: dict) -> str:
    """The four loops, CPU time and speed-up against the float32 reference."""
    names = {"reference": "pytorch/examples dcgan, float32",
             "reference_bfloat16": "pytorch/examples dcgan, bfloat16 autocast",
             "trainer": "genmodels Trainer, float32",
             "trainer_amp": "genmodels Trainer, `train.amp=true` (bfloat16 autocast)"}
    lines = ["| loop | steps | CPU s | CPU ms / step | wall s | speed-up (CPU) |",
             "|---|---|---|---|---|---|"]
    for name, r in result["loops"].items():
        lines.append(f"| {names[name]} | {r['steps']} | {r['cpu_seconds']} "
                     f"| {1000 * r['cpu_seconds'] / r['steps']:.0f} | {r['wall_seconds']} "
                     f"| {r['speedup']}x |")
    loops = result["loops"]
    return "\n".join(lines) + (
        f"\n\nSpeed-up of `train.amp=true` over the pytorch/examples loop: "
        f"{loops['trainer_amp']['speedup']}x in CPU time (wall "
        f"{loops['trainer_amp']['wall_speedup']}x; target >= {result['target']}x); at the same "
        f"arithmetic (float32) {loops['trainer']['speedup']}x. {result['images']} images, "
        f"{result['net']}, batch {result['batch_size']}, {result['machine']}.")

if __name__ == "__main__":
    main()
